"""Inputs the merge refuses, each with a message that says what is wrong and what to do.

Every check runs before anything is written, so a refusal (exit 2) leaves no output behind.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pipeline.errors import UsageError
from pipeline.merging.adapter import Adapter
from pipeline.merging.checkpoint import LM_HEAD, Checkpoint
from pipeline.refs import ModelRef

_HUB_SNAPSHOT = re.compile(r"models--(?P<org>[^/\\]+?)--(?P<name>[^/\\]+)[/\\]snapshots[/\\]")
_BUILTIN = re.compile(r"(?:^|[/\\])builtin[/\\](?P<name>[A-Za-z0-9_.-]+?)(?:[/\\]|$)")


def quantization_method(quant: dict[str, Any]) -> str:
    method = str(quant.get("quant_method", "unknown"))
    if quant.get("load_in_4bit"):
        return f"{method} 4-bit"
    if quant.get("load_in_8bit"):
        return f"{method} 8-bit"
    bits = quant.get("bits") or quant.get("w_bit")
    return f"{method} {bits}-bit" if bits else method


def check_not_quantized(base: Checkpoint, reference: str, dequantize: bool) -> bool:
    """Refuse a quantized base unless the config asks to dequantize; True when it must be dequantized."""
    quant = base.quantization
    if quant is None:
        return False
    if dequantize:
        return True
    raise UsageError(
        f"The base model {reference!r} is quantized ({quantization_method(quant)}, config.json quantization_config). "
        "Merging a LoRA into quantized weights rounds the update away and degrades the model "
        "(transformers#31293, peft#2321). Merge into the unquantized base instead: set `model.base_model` to the "
        "original full-precision checkpoint (the adapter trained with QLoRA applies to it unchanged), or set "
        "`merge.dequantize: true` to dequantize this base explicitly before merging (needs its quantization "
        "library, and the merged model is then full precision, not the original weights)."
    )


def _expected_shape(base: Checkpoint, name: str) -> tuple[int, ...] | None:
    if name in base.tensors:
        return base.tensors[name].shape
    if name == LM_HEAD and base.tied:
        return base.tensors[base.embed_name].shape  # type: ignore[index]
    return None


def _vocab_rows(base: Checkpoint, name: str) -> bool:
    return name == LM_HEAD or name == base.embed_name


def check_adapter_fits(base: Checkpoint, adapter: Adapter, reference: str) -> None:
    """Every tensor the adapter touches exists in the base with the shape the adapter was trained on."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name, edit in adapter.edits.items():
        out_features, in_features = edit.lora_b.shape[0], edit.lora_a.shape[1]
        if edit.kind == "embedding":
            shapes[name] = (in_features, out_features)
        else:
            shapes[name] = (in_features, out_features) if edit.fan_in_fan_out else (out_features, in_features)
    for name, tensor in {**adapter.replacements, **adapter.base_layers}.items():
        shapes[name] = tuple(tensor.shape)

    for name, shape in sorted(shapes.items()):
        expected = _expected_shape(base, name)
        if expected is None:
            if name == LM_HEAD and LM_HEAD not in base.tensors:
                raise UsageError(
                    f"The adapter changes {LM_HEAD} but the base {reference!r} stores no output head and pubctl "
                    "cannot tell which tensor is its input embedding. Set `merge.strategy: peft` to merge with peft."
                )
            raise UsageError(
                f"The adapter in {adapter.folder} changes {name!r}, which the base model {reference!r} does not have: "
                "it was trained on another base model. Set `model.base_model` to the model the adapter was trained "
                f"on (its adapter_config.json says {adapter.base_model_name_or_path!r})."
            )
        if tuple(expected) == tuple(shape):
            continue
        if _vocab_rows(base, name) and expected[1:] == shape[1:]:
            raise UsageError(
                f"Vocabulary size mismatch: the adapter's {name} has {shape[0]} rows but the base model "
                f"{reference!r} has {expected[0]} (vocab_size {base.vocab_size}). The adapter was trained after "
                "resizing the token embeddings (added tokens) or on another base. Merge it into the base it was "
                "trained on, with the tokenizer saved beside the adapter; pubctl does not resize embeddings."
            )
        raise UsageError(
            f"The adapter in {adapter.folder} does not fit the base model {reference!r}: {name} is "
            f"{tuple(expected)} in the base but {tuple(shape)} in the adapter, so it was trained on another base "
            f"(adapter_config.json says {adapter.base_model_name_or_path!r}). Set `model.base_model` to that model."
        )


def check_vocab(base: Checkpoint, tokenizer_size: int, tokenizer_folder: Path, reference: str) -> None:
    """The tokenizer must not produce ids the embedding matrix has no rows for."""
    rows = base.tensors[base.embed_name].shape[0] if base.embed_name else base.vocab_size
    if rows is not None and tokenizer_size > rows:
        raise UsageError(
            f"Vocabulary size mismatch: the tokenizer in {tokenizer_folder} has {tokenizer_size} tokens but the "
            f"base model {reference!r} has embeddings for {rows}. Tokens were added after the base was saved "
            "(resize_token_embeddings) and the adapter does not carry the resized embeddings; merge into the base "
            "the adapter was trained on, or retrain with `lora.modules_to_save: [embed_tokens, lm_head]`."
        )


def _identity(text: str | None, root: Path | None = None) -> str | None:
    """A comparable name of a model reference: hub:org/name, builtin:name, or None when unknown."""
    if not text:
        return None
    text = str(text)
    snapshot = _HUB_SNAPSHOT.search(text)
    if snapshot:
        return f"hub:{snapshot['org']}/{snapshot['name']}".lower()
    builtin = _BUILTIN.search(text)
    if builtin:
        return f"builtin:{builtin['name']}".lower()
    # A config's reference is relative to the project root; the name peft saved (the path the train stage
    # loaded the base from) is absolute or a Hub id, so the working directory is as good a root as any.
    if ModelRef.parse(text, root or Path.cwd()).is_hub:
        return f"hub:{text}".lower()
    return None


def check_same_base(adapter: Adapter, reference: str, resolved: Path, root: Path) -> None:
    """Refuse an adapter whose adapter_config.json names a different base than the config's.

    Only names pubctl can compare are checked (Hub ids, Hub cache snapshots, built-in models);
    an adapter trained from a local folder is judged by its tensor shapes alone.
    """
    recorded = _identity(adapter.base_model_name_or_path)
    ours = _identity(reference, root) if not ModelRef.parse(reference, root).is_builtin else None
    ours = ours or _identity(str(resolved), root)
    if recorded and ours and recorded != ours:
        raise UsageError(
            f"The adapter in {adapter.folder} was trained on {adapter.base_model_name_or_path!r} "
            f"(adapter_config.json base_model_name_or_path) but the config's base model is {reference!r} "
            f"({resolved}). Merging it into another base gives a meaningless model: set `model.base_model` to the "
            "base the adapter was trained on, or retrain the adapter on this base."
        )
