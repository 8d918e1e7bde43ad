"""The base model's own config and tokenizer files, and a random-weight base built from them.

Only the small files are fetched (config.json, tokenizer, chat template, generation config: a few MB
at the config's revision), never the weights: the rehearsal's base keeps the real architecture,
width, vocabulary and tokenizer, with ``layers`` decoder layers initialised from a fixed seed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.atomic import private_to_normal
from pipeline.errors import UsageError
from pipeline.refs import ModelRef
from pipeline.rehearsal.model_checks import SMALL_FILES, check_model_files

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig
    from pipeline.layout import Layout
    from pipeline.rehearsal.options import RehearsalOptions

NOT_COPIED = ("config.json", "model.safetensors.index.json", "pytorch_model.bin.index.json")
"""Small files of the real model that describe its real weights; the random base writes its own."""
SEED = 1234
BASE_MARKER = ".pubctl-rehearsal-base.json"
RECIPE_VERSION = 1


@dataclass(frozen=True)
class ModelFiles:
    """Where the base's config and tokenizer came from."""

    folder: Path
    source: str
    """'hub' or 'local folder <path>'."""
    revision: str | None
    """Commit sha of the Hub files, None for local ones."""


def fetch_model_files(config: ReleaseConfig, layout: Layout, options: RehearsalOptions) -> ModelFiles:
    """The real base's small files: --model-files, a local base folder, the built-in model, or the Hub."""
    reference = config.model.base_model
    if options.model_files is not None:
        folder = options.model_files.expanduser().resolve()
        if not folder.is_dir() or not (folder / "config.json").exists():
            raise UsageError(
                f"--model-files {options.model_files}: no config.json in {folder}; give the folder holding "
                f"{reference}'s config.json and tokenizer files (weights are not needed)."
            )
        check_model_files(folder, f"--model-files {options.model_files}", options.layers)
        return ModelFiles(folder, f"local folder {folder}", None)
    from pipeline.sources import resolve_model

    if _is_local(reference, layout.root):
        resolved = resolve_model(reference, config.model.revision, layout)
        files = ModelFiles(resolved.path, f"local folder {resolved.path}", None)
    else:
        problem = offline_model_problem(config, layout.root, options)
        if problem:
            raise UsageError(problem)
        files = _download(reference, config.model.revision)
    check_model_files(files.folder, f"the files of {reference} in {files.folder}", options.layers)
    return files


def offline_model_problem(config: ReleaseConfig, root: Path, options: RehearsalOptions) -> str | None:
    """Why an offline rehearsal cannot get the base's files, or None."""
    reference = config.model.base_model
    if not options.offline or options.model_files is not None or _is_local(reference, root):
        return None
    return (
        f"model.base_model {reference!r} is a Hub model and the rehearsal is offline: give its config.json "
        f"and tokenizer files with --model-files DIR (on a machine with Hub access: hf download {reference} "
        "--include '*.json' '*.txt' '*.jinja' --local-dir DIR; no weights are needed)."
    )


def _is_local(reference: str, root: Path) -> bool:
    """A built-in model or a local folder: no Hub needed to read its files."""
    return not ModelRef.parse(reference, root).is_hub


def _download(reference: str, revision: str | None) -> ModelFiles:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    from pipeline.sources import download_error

    try:
        folder = Path(snapshot_download(reference, revision=revision, allow_patterns=list(SMALL_FILES)))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as exc:
        error = download_error("model", reference, revision, exc)
        raise UsageError(f"{error} Offline, rehearse with --offline --model-files DIR --data FILE.") from None
    return ModelFiles(folder, "hub", folder.name)  # snapshot folders are named after their commit sha


def _files_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for pattern in SMALL_FILES for p in folder.glob(pattern) if p.is_file()):
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _text_config(model_config: Any) -> Any:
    """The language model's own config (multimodal configs nest it)."""
    return getattr(model_config, "text_config", None) or model_config


def shrink(model_config: Any, layers: int) -> int:
    """Cut ``model_config`` to ``layers`` decoder layers in place; returns the real number of layers."""
    text = _text_config(model_config)
    real = getattr(text, "num_hidden_layers", None)
    if isinstance(real, bool) or not isinstance(real, int) or real < 1:
        raise UsageError(f"the base's config.json gives no decoder layer count (num_hidden_layers is {real!r}).")
    if not 1 <= layers <= real:
        raise UsageError(f"--layers {layers}: the base model has {real} decoder layers; give --layers 1 to {real}.")
    text.num_hidden_layers = layers
    # Per-layer lists (attention kinds of hybrid models) must stay as long as the layer stack.
    if isinstance(getattr(text, "layer_types", None), list):
        text.layer_types = text.layer_types[:layers]
    if isinstance(getattr(text, "max_window_layers", None), int):
        text.max_window_layers = min(text.max_window_layers, layers)
    return real


@dataclass(frozen=True)
class RandomBase:
    folder: Path
    layers: int
    real_layers: int
    parameters: int
    architecture: str


def build_random_base(
    files: ModelFiles, target: Path, *, layers: int, dtype: str, trust_remote_code: bool
) -> RandomBase:
    """Write a random-weight model of the real architecture at ``target``; reused while its recipe is unchanged."""
    key = {"version": RECIPE_VERSION, "files": _files_digest(files.folder), "layers": layers, "dtype": dtype}
    key["seed"] = SEED
    reused = _built(target, key)
    if reused is not None:
        return reused
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from pipeline.rehearsal.model_checks import check_tokenizer, one_line, probe_model

    try:
        model_config = AutoConfig.from_pretrained(files.folder, trust_remote_code=trust_remote_code)
    # Values of the wrong type fail in the config class's own checks (TypeError, KeyError...): the file is named.
    except Exception as exc:
        raise UsageError(f"the base's config.json in {files.folder} does not load: {one_line(exc)}.") from None
    check_tokenizer(files.folder, trust_remote_code)
    real_layers = shrink(model_config, layers)
    torch_dtype = _torch_dtype(torch, dtype, model_config)
    probe_model(model_config, files.folder, torch_dtype, trust_remote_code)
    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(model_config, dtype=torch_dtype, trust_remote_code=trust_remote_code)
    parameters = sum(p.numel() for p in model.parameters())
    architecture = type(model).__name__
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = private_to_normal(Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent)))
    try:
        model.save_pretrained(staging)
        del model
        for path in sorted(p for pattern in SMALL_FILES for p in files.folder.glob(pattern)):
            if path.is_file() and path.name not in NOT_COPIED:
                shutil.copyfile(path, staging / path.name)  # the base's own generation config and tokenizer win
        built = {"key": key, "real_layers": real_layers, "parameters": parameters, "architecture": architecture}
        (staging / BASE_MARKER).write_text(json.dumps(built, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return RandomBase(target, layers, real_layers, parameters, architecture)


def _built(target: Path, key: dict[str, Any]) -> RandomBase | None:
    """The base already built at ``target`` from the same files, layers and dtype; None to build it."""
    marker = target / BASE_MARKER
    if not marker.is_file():
        return None
    try:
        built = json.loads(marker.read_text(encoding="utf-8"))
        if isinstance(built, dict) and built.get("key") == key:
            return RandomBase(target, key["layers"], built["real_layers"], built["parameters"], built["architecture"])
    except (ValueError, KeyError, OSError):  # a damaged marker of pubctl's own: the base is built again
        return None
    return None


def _torch_dtype(torch: Any, dtype: str, model_config: Any) -> Any:
    """model.dtype, or for 'auto' the dtype the real checkpoint is stored in (what loading it would give)."""
    if dtype != "auto":
        return getattr(torch, dtype)
    stored = getattr(model_config, "dtype", None) or getattr(model_config, "torch_dtype", None)
    if isinstance(stored, str):
        return getattr(torch, stored)
    return stored or torch.float32
