"""The LoRA merge arithmetic, for one tensor at a time.

Written by hand because peft's merge (``LoraLayer.merge`` / ``merge_and_unload``) works on
modules of a fully built model, which needs the whole model in memory; the streaming merge
holds one tensor. The formulas are peft 0.21's, checked tensor by tensor against
``merge_and_unload`` in tests/test_merge.py (test_streaming_merge_equals_peft):

- LoRA / rsLoRA: ``W' = W + s · B @ A`` with ``s = alpha / r`` (``alpha / sqrt(r)`` with rsLoRA);
  an embedding's factors are stored the other way round, so its delta is ``(B @ A)ᵀ · s``.
- DoRA: ``W' = m / ‖W + s · B @ A‖_row · (W + s · B @ A)``, the norm taken over each output row
  of the un-merged weight, exactly as peft's ``DoraLinearVariant.merge_unsafe``.

Everything is computed in float32 and rounded once to the tensor's own dtype, so a bfloat16
base stays bfloat16 (never silently float32) and loses no more precision than one rounding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from pipeline.merging.adapter import LoraEdit


def lora_delta(edit: LoraEdit) -> torch.Tensor:
    """``s · B @ A`` in float32, laid out like the base weight it is added to (a new tensor)."""
    delta = edit.lora_b.float() @ edit.lora_a.float()
    delta.mul_(edit.scaling)
    if edit.kind == "embedding" or edit.fan_in_fan_out:
        delta = delta.T
    return delta


def merge_tensor(weight: torch.Tensor, edit: LoraEdit, out_dtype: torch.dtype | None = None) -> torch.Tensor:
    """``weight`` with ``edit`` merged in, in ``out_dtype`` (default: the weight's dtype)."""
    out_dtype = out_dtype or weight.dtype
    merged = lora_delta(edit)
    if tuple(merged.shape) != tuple(weight.shape):
        raise ValueError(f"{edit.target}: LoRA update has shape {tuple(merged.shape)}, weight {tuple(weight.shape)}")
    # In place, so a bfloat16 weight is upcast element by element instead of into another float32 copy.
    merged.add_(weight)
    if edit.magnitude is not None:
        # DoRA: rescale each output row to the learned magnitude; rows are dim 0 of an (out, in) weight.
        rows = merged.T if edit.fan_in_fan_out else merged
        rows.mul_((edit.magnitude.float() / rows.norm(p=2, dim=1)).view(-1, 1))
    return merged.to(out_dtype).contiguous()
