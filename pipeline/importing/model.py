"""The imported adapter and merged model: copied where the chain keeps them, then measured by pubctl.

An imported folder is copied, not linked: push publishes runs/NAME/merge/model and the gates check it against
the record, and a folder outside the project could change (or be a link to anything) after the import. The
``model`` section is measured on the copies (files, sha256, parameters and dtype from safetensors headers,
architecture from config.json), as the merge stage measures its own output. With the adapter and a base pubctl
can load, parity of the merged model against adapter-on-base is measured too (the ``merge`` section); without
them there is no merge section, and the merge_parity gate says so.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import lineage as lineage_of
from pipeline.errors import UsageError
from pipeline.importing.declared import written
from pipeline.importing.files import ReadFile, copy_files, model_files, read_json, shown
from pipeline.merging.adapter import ADAPTER_CONFIG, ADAPTER_WEIGHTS, NOT_ADAPTER
from pipeline.merging.checkpoint import Checkpoint
from pipeline.origin import Origin
from pipeline.results import FileEntry, MergeRecord, ModelRecord, ParityGate

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig
    from pipeline.layout import Layout

STRATEGY = "external"
"""The merge section's strategy for a model merged outside pubctl (pubctl measured its parity only)."""


@dataclass
class Staged:
    """What the import copied into its staging folder, before anything is moved into place."""

    adapter: Path | None = None
    adapter_config: tuple[dict[str, Any], ReadFile] | None = None
    adapter_digest: str | None = None
    """The copied adapter's lineage digest, from the hashes the copy measured (no second read)."""
    model: Path | None = None
    model_source: Path | None = None
    files: list[FileEntry] | None = None


def stage_adapter(source: Path, staging: Path, staged: Staged) -> None:
    """Copy a peft LoRA adapter (safetensors only) into ``staging/adapter``."""
    config_file = source / ADAPTER_CONFIG
    if not config_file.exists():
        raise UsageError(f"import.adapter: {source} holds no {ADAPTER_CONFIG}; name the folder peft saved.")
    # The folder's files first: a link out of it (adapter_config.json to a file elsewhere) is refused unread.
    files = [path for path in model_files(source, "adapter folder") if path.name not in NOT_ADAPTER]
    adapter_config, read = read_json(config_file, "adapter config")
    if adapter_config.get("peft_type") != "LORA":
        raise UsageError(f"import.adapter: {config_file}: peft_type is {adapter_config.get('peft_type')!r}, not LORA.")
    if not (source / ADAPTER_WEIGHTS).is_file():
        raise UsageError(
            f"import.adapter: {source} holds no {ADAPTER_WEIGHTS} (pubctl reads safetensors only, never pickles)."
        )
    entries = copy_files(source, files, staging / "adapter")
    staged.adapter, staged.adapter_config = staging / "adapter", (adapter_config, read)
    staged.adapter_digest = lineage_of.files_digest(entries)  # the copy's digest, as lineage_of.folder would read it


def stage_model(source: Path, staging: Path, staged: Staged) -> None:
    """Copy a merged model folder (config.json and safetensors weights) into ``staging/merge/model``."""
    files = model_files(source, "merged model folder")
    names = {path.relative_to(source).as_posix() for path in files}
    if "config.json" not in names or not any(name.endswith(".safetensors") for name in names):
        raise UsageError(
            f"import.merged_model: {source} is not a model folder pubctl can publish (it needs config.json and "
            "*.safetensors weights; save it with save_pretrained(..., safe_serialization=True))."
        )
    staged.model, staged.model_source = staging / "merge" / "model", source
    staged.files = copy_files(source, files, staged.model)


def base_reference(config: ReleaseConfig, staged: Staged) -> str:
    """The base model as the config writes it, else as the adapter's config names it."""
    declared = written(config, "model.base_model")
    if declared is not None:
        return declared
    named = staged.adapter_config[0].get("base_model_name_or_path") if staged.adapter_config else None
    if isinstance(named, str) and named:
        return named
    raise UsageError(
        "import: no file names the base model of the imported model (no adapter was imported); set "
        "model.base_model in the config to the model it was fine-tuned from."
    )


def model_section(config: ReleaseConfig, layout: Layout, staged: Staged) -> ModelRecord:
    """The model section, measured on the copied files."""
    assert staged.model is not None and staged.files is not None and staged.model_source is not None
    try:
        checkpoint = Checkpoint.read(staged.model)
    except UsageError as exc:  # about the copy being measured: name the folder the user gave
        raise _about_source(exc, staged) from None
    architectures = checkpoint.config.get("architectures")
    if not isinstance(architectures, list) or not architectures or not isinstance(architectures[0], str):
        raise UsageError(f"import.merged_model: {staged.model_source / 'config.json'} names no architectures.")
    declared = ["model.base_model"] if written(config, "model.base_model") is not None else []
    return ModelRecord(
        base_model=base_reference(config, staged),
        base_model_revision=written(config, "model.revision"),
        architecture=architectures[0],
        parameters=sum(info.numel for info in checkpoint.tensors.values()),
        dtype=checkpoint.dtype_name(),
        files=staged.files,
        origin=Origin(
            kind="measured",
            file=shown(staged.model_source, layout.root, "merged_model", staged.model_source),
            sha256=lineage_of.files_digest(staged.files),
            measured=["model.files", "model.parameters", "model.dtype", "model.architecture"],
            declared=declared or ["model.base_model (from the adapter's adapter_config.json)"],
        ),
    )


def merge_section(config: ReleaseConfig, layout: Layout, staged: Staged, model: ModelRecord) -> MergeRecord:
    """Parity of the imported merged model against the imported adapter on its base, measured here."""
    from pipeline.merging.adapter import load_adapter
    from pipeline.merging.parity import measure_parity
    from pipeline.merging.refusals import check_same_base
    from pipeline.rehearsal.model_checks import load_tokenizer
    from pipeline.sources import resolve_model

    assert staged.adapter is not None and staged.model is not None and staged.files is not None
    resolved = resolve_model(model.base_model, model.base_model_revision, layout)
    check_same_base(load_adapter(staged.adapter, streaming=False), model.base_model, resolved.path, layout.root)
    trust = config.model.trust_remote_code
    try:
        tokenizer = load_tokenizer(staged.model, trust, "the merged model's tokenizer")
    except UsageError as exc:
        raise _about_source(exc, staged) from None
    prompts = list(config.merge.probe_prompts)
    report = measure_parity(resolved.path, staged.adapter, staged.model, tokenizer, prompts, trust_remote_code=trust)
    measure, bound = config.merge.parity_gate(model.dtype)
    consumed = {
        "adapter": staged.adapter_digest,
        "base_model": lineage_of.base_model_key(config, layout, resolved.revision),
    }
    return MergeRecord(
        strategy=STRATEGY,
        parity_max_abs_diff=report.max_abs_diff,
        probe_prompts=report.prompts,
        parity_adapter_effect=report.adapter_effect,
        parity_gate=ParityGate(measure=measure, bound=bound),
        parity_compute_dtype=report.compute_dtype,
        lineage=lineage_of.lineage(consumed, {"merged_model": lineage_of.files_digest(staged.files)}),
        origin=Origin(
            kind="measured",
            file=model.origin.file if model.origin else None,
            measured=["merge.parity_max_abs_diff", "merge.parity_adapter_effect"],
        ),
    )


def _about_source(exc: UsageError, staged: Staged) -> UsageError:
    """``exc``, about the staged copy being measured, naming the folder the user gave instead."""
    return UsageError(f"import.merged_model: {str(exc).replace(str(staged.model), str(staged.model_source))}")


def replace(target: Path, new: Path | None) -> None:
    """Put ``new`` at ``target`` by renames (readers see the old folder or the new one); None: remove ``target``,
    which described what an earlier run or import left, not this import."""
    old = target.with_name(f".{target.name}-old") if target.exists() else None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    if new is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        new.rename(target)
    if old is not None:
        shutil.rmtree(old)
