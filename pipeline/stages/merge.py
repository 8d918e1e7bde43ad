"""The merge stage: LoRA adapter + base -> a standalone model, verified against adapter-on-base.

Input: the adapter (and tokenizer) the train stage saved in ``layout.adapter_dir`` and the
base from ``model.base_model``. Output, in ``layout.merge_dir``: ``model/`` (safetensors
shards + index, config.json, tokenizer files with the chat template, generation_config.json
whose stop tokens are the base's plus the tokenizer's eos) and ``adapter/`` (a copy for an optional adapter repo).

Everything is built in a temporary folder next to the target and renamed into place only
after the parity check passed, so a refusal (exit 2) or a failed parity (exit 1) leaves
neither partial files nor a results.json entry behind.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import lineage as lineage_of
from pipeline.atomic import atomic_write_text, normalise_modes, private_to_normal
from pipeline.config import ReleaseConfig
from pipeline.errors import StageFailed, UsageError
from pipeline.judgments import PARITY_OPTIONS, describe_parity, parity_value
from pipeline.layout import Layout
from pipeline.merging.adapter import NOT_ADAPTER, load_adapter, read_adapter_config
from pipeline.merging.checkpoint import Checkpoint
from pipeline.merging.facts import file_entries
from pipeline.merging.refusals import check_adapter_fits, check_not_quantized, check_same_base, check_vocab
from pipeline.results import MergeRecord, ModelRecord, ParityGate, read_or_new
from pipeline.sources import ResolvedModel, resolve_model
from pipeline.stage import StageResult

TOKENIZER_MARKERS = ("tokenizer_config.json", "tokenizer.json")


def _tokenizer_folder(adapter_dir: Path, base_dir: Path) -> Path:
    """The tokenizer the train stage saved beside the adapter, else the base's."""
    return adapter_dir if any((adapter_dir / name).is_file() for name in TOKENIZER_MARKERS) else base_dir


def _write_config(base: Checkpoint, out_dir: Path, untied: bool, dtype: str) -> None:
    # The base's own config.json with two fields changed, edited as JSON rather than through
    # transformers' config classes so remote-code and future fields pass through untouched.
    config = json.loads(json.dumps(base.config))
    sections = [config] + ([config["text_config"]] if isinstance(config.get("text_config"), dict) else [])
    for section in sections:
        if untied:
            section["tie_word_embeddings"] = False
        # Both spellings where present: a config still carrying the pre-v5 torch_dtype beside the new key
        # would otherwise name the base's dtype in one of them.
        for key in ("dtype", "torch_dtype"):
            if key in section:
                section[key] = dtype
    config["dtype"] = dtype
    atomic_write_text(out_dir / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    for code in base.folder.glob("*.py"):  # modelling code of trust_remote_code models
        shutil.copy2(code, out_dir / code.name)


def _write_generation_config(base_dir: Path, out_dir: Path, tokenizer: Any) -> list[int] | int:
    """generation_config.json of the base, stopping at the tokenizer's eos (the chat end token for Qwen3) too.

    The base's stop tokens are kept: Qwen3 stops at ``[<|im_end|>, <|endoftext|>]``, and collapsing that list to
    the tokenizer's single eos would let a merged model run past a plain-text end of document. The tokenizer's eos
    is added in front when the base's list lacks it (a base whose generation config predates its chat template).
    """
    from transformers import GenerationConfig

    eos = tokenizer.eos_token_id
    if eos is None:
        raise UsageError(
            f"The tokenizer ({tokenizer.name_or_path}) has no eos token, so generation would never stop. "
            "Save the tokenizer with its chat end token as eos_token (for Qwen3: <|im_end|>)."
        )
    if (base_dir / "generation_config.json").is_file():
        generation = GenerationConfig.from_pretrained(base_dir)
    else:
        base_config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
        generation = GenerationConfig(bos_token_id=base_config.get("bos_token_id"))
    generation.eos_token_id = stop_tokens(generation.eos_token_id, eos)
    if generation.pad_token_id is None:
        generation.pad_token_id = tokenizer.pad_token_id
    generation.save_pretrained(out_dir)
    return generation.eos_token_id


def stop_tokens(base_eos: int | list[int] | None, chat_end: int) -> list[int] | int:
    """The base's stop token(s) with ``chat_end`` among them; one id stays a plain int, as transformers saves it."""
    ids = list(base_eos) if isinstance(base_eos, (list, tuple)) else [] if base_eos is None else [base_eos]
    if chat_end not in ids:
        ids.insert(0, chat_end)
    return ids if len(ids) > 1 else ids[0]


def _swap_into_place(staging: Path, target: Path) -> None:
    """Replace ``target`` with ``staging`` by renames, so readers see the old folder or the new one."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
        old.rmdir()
        target.rename(old)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old)


@dataclass(frozen=True)
class _Inputs:
    """The merge's inputs, each checked before anything is written."""

    reference: str
    resolved: ResolvedModel
    base: Checkpoint
    adapter: Any
    tokenizer: Any
    strategy: str
    dequantize: bool
    requested: str | None
    """model.dtype when set, else None (keep the base's)."""
    consumed: dict[str, str]
    """Digests of the adapter and base as read (the merge section's lineage)."""

    @property
    def expected_dtype(self) -> str:
        return self.requested or self.base.dtype_name()


def _check_inputs(config: ReleaseConfig, layout: Layout) -> _Inputs:
    """Every refusal (exit 2) comes from here, before any output exists."""
    from transformers import AutoTokenizer

    adapter_dir = layout.adapter_dir
    read_adapter_config(adapter_dir)  # a missing adapter is reported before any download
    # A corrupt record fails now, before the merged model replaces the previous one on disk: afterwards the new
    # model would sit beside a record that still describes the old one.
    read_or_new(layout.results, config.name)
    reference = config.model.base_model
    resolved = resolve_model(reference, config.model.revision, layout)
    base = Checkpoint.read(resolved.path)
    dequantize = check_not_quantized(base, reference, config.merge.dequantize)
    strategy = "peft" if dequantize else config.merge.strategy
    adapter = load_adapter(adapter_dir, streaming=strategy == "streaming")
    check_same_base(adapter, reference, resolved.path, layout.root)
    if not dequantize:  # packed quantized tensors have other shapes; transformers checks them when loading
        check_adapter_fits(base, adapter, reference)
    tokenizer_dir = _tokenizer_folder(adapter_dir, resolved.path)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, trust_remote_code=config.model.trust_remote_code)
    check_vocab(base, len(tokenizer), tokenizer_dir, reference)
    requested = None if config.model.dtype == "auto" else config.model.dtype
    consumed = {
        "adapter": lineage_of.folder(adapter_dir),
        "base_model": lineage_of.base_model_key(config, layout, resolved.revision),
    }
    return _Inputs(reference, resolved, base, adapter, tokenizer, strategy, dequantize, requested, consumed)


def _build(config: ReleaseConfig, layout: Layout, inputs: _Inputs, staging: Path) -> None:
    """The merged model and the adapter copy, in ``staging``."""
    from pipeline.merging.reference import merge_with_peft
    from pipeline.merging.streaming import merge_streaming

    model_dir, adapter_copy = staging / "model", staging / "adapter"
    if inputs.strategy == "streaming":
        result = merge_streaming(inputs.base, inputs.adapter, model_dir, config.merge.max_shard_size, inputs.requested)
        _write_config(inputs.base, model_dir, result.untied, inputs.expected_dtype)
    else:
        merge_with_peft(
            inputs.resolved.path,
            layout.adapter_dir,
            model_dir,
            config.merge.max_shard_size,
            dtype=inputs.requested,
            dequantize=inputs.dequantize,
            ensure_weight_tying=inputs.adapter.ensure_weight_tying,
            trust_remote_code=config.model.trust_remote_code,
        )
    inputs.tokenizer.save_pretrained(model_dir)
    _write_generation_config(inputs.resolved.path, model_dir, inputs.tokenizer)
    shutil.copytree(layout.adapter_dir, adapter_copy, ignore=shutil.ignore_patterns(*NOT_ADAPTER))


def _verify(config: ReleaseConfig, layout: Layout, inputs: _Inputs, model_dir: Path) -> tuple[Any, str, float, float]:
    """Parity of the merged model against adapter-on-base; a StageFailed when it is not the trained model.

    Returns (parity report, measure, bound, the judged value).
    """
    from pipeline.merging.parity import measure_parity

    merged = Checkpoint.read(model_dir)
    stored = sum(info.numel for info in merged.tensors.values())
    dtype = merged.dtype_name()
    if not inputs.dequantize and dtype != inputs.expected_dtype:
        raise StageFailed(
            f"merge: the merged weights are {dtype} but should be {inputs.expected_dtype} "
            "(the base's dtype, or model.dtype when set)."
        )
    report = measure_parity(
        inputs.resolved.path,
        layout.adapter_dir,
        model_dir,
        inputs.tokenizer,
        list(config.merge.probe_prompts),
        dequantize=inputs.dequantize,
        trust_remote_code=config.model.trust_remote_code,
    )
    if report.parameters != stored:
        raise StageFailed(
            f"merge: the merged model loads with {report.parameters:,} parameters but its files hold {stored:,}."
        )
    measure, bound = config.merge.parity_gate(dtype)
    found = parity_value(measure, report.max_abs_diff, report.adapter_effect)
    if found is None or not found <= bound:
        raise StageFailed(
            f"merge parity failed: {describe_parity(measure, found if found is not None else float('nan'))} above "
            f"{bound:g} ({PARITY_OPTIONS[measure]}) on {report.prompts} probe prompts for a {dtype} merge (max "
            f"|logit diff| {report.max_abs_diff:.3g}, adapter effect {report.adapter_effect:.3g}). The merge "
            f"({inputs.strategy}) is wrong for this adapter, or {dtype} cannot represent its change; nothing was "
            "written."
        )
    return report, measure, bound, found


def _remove_leftovers(layout: Layout) -> None:
    """Staging folders a killed merge left (each the size of the model). The release lock is held, so no other
    merge of this release can be using one."""
    for leftover in sorted(layout.run_dir.glob(".merge-*")):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)


def run(config: ReleaseConfig, layout: Layout) -> StageResult:
    """Merge, check parity, write runs/NAME/merge/; returns the merge and model sections of the record.

    The model section holds what was measured on the merged files only; publication metadata (repo id,
    licence, language) stays in the config, where the card reads it.
    """
    inputs = _check_inputs(config, layout)
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(layout)
    staging = private_to_normal(Path(tempfile.mkdtemp(prefix=".merge-", dir=layout.run_dir)))
    try:
        _build(config, layout, inputs, staging)
        report, measure, bound, found = _verify(config, layout, inputs, staging / "model")
        dtype = Checkpoint.read(staging / "model").dtype_name()
        files = file_entries(staging / "model")
        normalise_modes(staging)
        _swap_into_place(staging, layout.merge_dir)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)

    record = MergeRecord(
        strategy=inputs.strategy,
        parity_max_abs_diff=report.max_abs_diff,
        probe_prompts=report.prompts,
        parity_adapter_effect=report.adapter_effect,
        parity_gate=ParityGate(measure=measure, bound=bound),
        parity_compute_dtype=report.compute_dtype,
        lineage=lineage_of.lineage(inputs.consumed, {"merged_model": lineage_of.files_digest(files)}),
    )
    if inputs.dequantize:
        record.dequantized = True
    model = ModelRecord(
        base_model=inputs.reference,
        base_model_revision=inputs.resolved.revision,
        architecture=report.architecture,
        parameters=report.parameters,
        dtype=dtype,
        files=files,
    )
    where = layout.merged_model_dir.relative_to(layout.root).as_posix()
    # The gate's measure once: the max |logit difference| itself, or its ratio to the adapter's effect.
    gate = f"{describe_parity(measure, found)} <= {bound:g}"
    if measure != "max_abs_diff":
        gate = f"max |logit difference| {record.parity_max_abs_diff:.3g}, {gate}"
    summary = (
        f"merged ({inputs.strategy}) into {where}: {model.parameters:,} parameters, {model.dtype}, "
        f"{len(files)} files; parity {gate} on {record.probe_prompts} probe prompts"
    )
    return StageResult(summary=summary, sections={"merge": record, "model": model})
