"""The reference merge (``merge.strategy: peft``): peft's own ``merge_and_unload`` on the full model.

Loads the base and the adapter, merges with peft and saves with transformers. It needs the
whole model in memory and is kept as the reference the streaming merge is tested against,
and for adapters the streaming merge does not implement.

One correction to peft: on a base with tied embeddings, ``merge_and_unload`` adds a LoRA
delta of ``embed_tokens`` (or ``lm_head``) in place to the one shared matrix, so the head
changes too and the merged model no longer computes what adapter-on-base computes. The
head is given its own copy of the matrix before merging; the two are tied again afterwards
only when they still hold the same values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import UsageError
from pipeline.merging.streaming import shard_bytes, weights_equal


@dataclass
class ReferenceResult:
    untied: bool
    """The base had tied embeddings and the merged model stores input and output separately."""
    dequantized: bool


def _is_lora_layer(module: Any) -> bool:
    return hasattr(module, "base_layer") and (hasattr(module, "lora_A") or hasattr(module, "lora_embedding_A"))


def _untie_shared_lora_head(model: Any) -> None:
    """Give the output head its own weight when a LoRA layer would merge into a matrix it shares."""
    import torch

    embed, head = model.get_input_embeddings(), model.get_output_embeddings()
    if head is None:
        return
    embed_base = embed.base_layer if _is_lora_layer(embed) else embed
    head_base = head.base_layer if _is_lora_layer(head) else head
    shared = embed_base.weight is head_base.weight
    if shared and (_is_lora_layer(embed) or _is_lora_layer(head)):
        head_base.weight = torch.nn.Parameter(head_base.weight.detach().clone(), requires_grad=False)


def load_base(base_path: Path, dtype: str | None, dequantize: bool, trust_remote_code: bool = False) -> Any:
    """The base model as transformers loads it, dequantized first when asked."""
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(
            base_path, dtype=dtype or "auto", trust_remote_code=trust_remote_code
        )
    except (ImportError, RuntimeError, ValueError) as exc:
        if not dequantize:
            raise
        raise UsageError(
            f"Could not load the quantized base {base_path} to dequantize it ({type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}). Dequantizing needs the base's "
            "quantization library (e.g. bitsandbytes, usually with a GPU); or merge into the unquantized base by "
            "setting `model.base_model` to the original checkpoint."
        ) from None
    if dequantize:
        try:
            model = model.dequantize()
        except (NotImplementedError, ValueError) as exc:
            raise UsageError(
                f"transformers cannot dequantize the base {base_path} ({exc}). Merge into the unquantized base "
                "instead: set `model.base_model` to the original full-precision checkpoint."
            ) from None
    return model


def merge_with_peft(
    base_path: Path,
    adapter_dir: Path,
    out_dir: Path,
    max_shard_size: str,
    dtype: str | None = None,
    dequantize: bool = False,
    ensure_weight_tying: bool = False,
    trust_remote_code: bool = False,
) -> ReferenceResult:
    """Merge with ``PeftModel.from_pretrained(base, adapter).merge_and_unload()`` and save to ``out_dir``."""
    from peft import PeftModel

    base = load_base(base_path, dtype, dequantize, trust_remote_code)
    was_tied = base.get_output_embeddings() is not None and (
        base.get_input_embeddings().weight is base.get_output_embeddings().weight
    )
    model = PeftModel.from_pretrained(base, adapter_dir)
    if was_tied:
        _untie_shared_lora_head(model.base_model.model)
    merged = model.merge_and_unload()
    untied = False
    if was_tied:
        embed, head = merged.get_input_embeddings(), merged.get_output_embeddings()
        if embed.weight is not head.weight:
            if weights_equal(embed.weight.data, head.weight.data, nearly=ensure_weight_tying):
                head.weight = embed.weight
            else:
                untied = True
        for config in {id(c): c for c in (merged.config, merged.config.get_text_config())}.values():
            config.tie_word_embeddings = not untied
    merged.save_pretrained(out_dir, max_shard_size=shard_bytes(max_shard_size))
    return ReferenceResult(untied=untied, dequantized=dequantize)
