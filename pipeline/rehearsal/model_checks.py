"""The base's small files checked before a rehearsal builds anything: JSON that parses, a config that names its
architecture and layer count, ``--layers`` within that count, a tokenizer that loads.

The files come from the user (``--model-files DIR``) or the Hub; either way a broken one is an exit 2
naming the file and what is wrong with it, not a traceback from deep inside transformers after minutes of
work. The JSON checks need no heavy import and run first; the tokenizer and a weightless build of the
model (on torch's meta device, which allocates nothing) run before the random weights are made.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import UsageError
from pipeline.hashing import kind_of, open_regular
from pipeline.refs import excerpt

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

SMALL_FILES = ("*.json", "*.jinja", "*.txt", "*.model", "*.tiktoken")
"""What a model repository holds besides weights: config, tokenizer, chat template, generation config."""
MAX_SMALL_FILE_BYTES = 256 << 20
"""The largest config or tokenizer JSON read (real tokenizer.json files are tens of MB)."""
LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
"""Names model configs give their decoder layer count (transformers maps them onto num_hidden_layers)."""
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")
"""Any of these says the folder holds a tokenizer (a *.tiktoken file does too)."""


def check_model_files(folder: Path, label: str, layers: int) -> int:
    """The base's real decoder layer count (0 when config.json does not say) once its JSON files parse and
    ``layers`` fits; ``label`` names the source in messages ('--model-files DIR', 'the base's files in DIR')."""
    if layers < 1:
        raise UsageError(f"--layers {layers}: a rehearsal base needs at least 1 decoder layer.")
    config = read_json_object(folder / "config.json", label)
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type.strip():
        found = "has none" if model_type is None else f"has {excerpt(model_type)}"
        raise UsageError(
            f'{label}: config.json names no architecture: its \'model_type\' (e.g. "qwen3", "llama") {found}, and '
            "transformers builds the model from it. Download the model's own config.json again."
        )
    architectures = config.get("architectures")
    if architectures is not None and not (
        isinstance(architectures, list) and architectures and all(isinstance(a, str) for a in architectures)
    ):
        raise UsageError(
            f"{label}: config.json's 'architectures' is {excerpt(architectures)}; it must be a list of class names "
            'such as ["Qwen3ForCausalLM"].'
        )
    for path in sorted(p for pattern in SMALL_FILES for p in folder.glob(pattern)):
        if path.suffix == ".json" and path.name != "config.json":
            read_json_object(path, label)
        else:
            _check_small_file(path, label)
    if not any((folder / name).exists() for name in TOKENIZER_FILES) and not any(folder.glob("*.tiktoken")):
        raise UsageError(
            f"{label}: no tokenizer files in {folder} (tokenizer.json, tokenizer_config.json, vocab.json, "
            "tokenizer.model): the rehearsal trains with the base's own tokenizer. Download them with the config."
        )
    real = _layer_count(config, label)
    if real and layers > real:
        raise UsageError(
            f"--layers {layers}: the base model has {real} decoder layers (config.json in {folder}); give --layers "
            f"1 to {real}."
        )
    return real


def read_json_object(path: Path, label: str) -> dict[str, Any]:
    """``path`` parsed as a JSON object; any other content is a UsageError naming the file."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UsageError(f"{label}: no {path.name} in {path.parent}.") from None
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{label}: {path.name} is {kind_of(info.st_mode)}, not a regular file.")
    if info.st_size > MAX_SMALL_FILE_BYTES:
        raise UsageError(f"{label}: {path.name} is over {MAX_SMALL_FILE_BYTES >> 20} MiB: not a config or tokenizer.")
    with open_regular(path) as handle:
        raw = handle.read()
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"{label}: {path.name} is not UTF-8 text (byte {exc.start}).") from None
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{label}: {path.name} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); it "
            f"starts {excerpt(raw[:60].decode('utf-8', errors='replace'))}."
        ) from None
    except RecursionError:
        raise UsageError(f"{label}: {path.name} is JSON nested too deep to be a model file.") from None
    if not isinstance(data, dict):
        kind = {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(type(data), "a number")
        raise UsageError(f"{label}: {path.name} holds {kind} ({excerpt(data)}), not a JSON object {{key: value}}.")
    return data


def _check_small_file(path: Path, label: str) -> None:
    """A regular file of bounded size: the tokenizer would block on a FIFO, and the files are hashed and copied."""
    info = path.stat()
    if stat.S_ISDIR(info.st_mode):
        return  # a folder named like a file is not read
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{label}: {path.name} is {kind_of(info.st_mode)}, not a regular file.")
    if info.st_size > MAX_SMALL_FILE_BYTES:
        raise UsageError(f"{label}: {path.name} is over {MAX_SMALL_FILE_BYTES >> 20} MiB: not a config or tokenizer.")


def _layer_count(config: dict[str, Any], label: str) -> int:
    """Decoder layers as config.json states them (its text_config's, for a multimodal model); 0 when unstated."""
    text = config.get("text_config")
    nested = text if isinstance(text, dict) else {}
    for source in (nested, config):
        for key in LAYER_KEYS:
            if key in source:
                value = source[key]
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise UsageError(
                        f"{label}: config.json's '{key}' is {excerpt(value)}; it must be a whole number of decoder "
                        "layers (at least 1)."
                    )
                return value
    return 0


def check_tokenizer(folder: Path, trust_remote_code: bool) -> None:
    """The base's tokenizer loads as training will load it."""
    load_tokenizer(folder, trust_remote_code)


def load_tokenizer(
    folder: Path, trust_remote_code: bool, what: str = "the base's tokenizer"
) -> PreTrainedTokenizerBase:
    """The tokenizer in ``folder``, or a UsageError naming the folder and the library's reason."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
    # The tokenizers library reports a malformed tokenizer.json as a bare Exception, transformers a bad
    # tokenizer_config.json as whatever its parsing hit: the message is kept, the file named.
    except Exception as exc:
        raise UsageError(
            f"{what} in {folder} does not load: {one_line(exc)}. Check tokenizer.json and "
            "tokenizer_config.json (download them again with the config)."
        ) from None


def probe_model(model_config: Any, folder: Path, dtype: Any, trust_remote_code: bool) -> int:
    """Parameters of the model ``model_config`` describes, built weightless; refused when its random weights
    would not fit in this machine's memory or its config does not build a model."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(model_config, dtype=dtype, trust_remote_code=trust_remote_code)
    # A config of the wrong shape fails wherever the model's code first uses the bad value: the message is
    # the library's, the file is named.
    except Exception as exc:
        raise UsageError(f"the base's config.json in {folder} does not build a model: {one_line(exc)}.") from None
    parameters = sum(p.numel() for p in model.parameters())
    need = parameters * torch.empty((), dtype=dtype).element_size()
    memory = _physical_memory()
    if memory and need > memory:
        raise UsageError(
            f"the rehearsal base of config.json in {folder} would have {parameters:,} parameters ({need / 2**30:.1f} "
            f"GiB), more than this machine's {memory / 2**30:.1f} GiB of memory; check hidden_size, vocab_size and "
            "intermediate_size in config.json, or rehearse with fewer --layers."
        )
    return parameters


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system that says: no bound
        return 0


def one_line(exc: BaseException) -> str:
    """A library's error message on one line, cut at 300 characters."""
    line = " ".join(str(exc).split()) or type(exc).__name__
    return line if len(line) <= 300 else f"{line[:300]}..."
