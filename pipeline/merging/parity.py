"""Parity: the merged model must compute what adapter-on-base computes.

Both are loaded the way a user would load them (transformers, and peft for the adapter),
one after the other so that at most one model is in memory, and their logits on the
config's probe prompts are compared. Both run in float32 whatever the stored dtype: a
bfloat16 checkpoint upcasts exactly, so the difference measured is what the merge itself
lost (rounding ``W + ΔW`` to the stored dtype), not the noise of bfloat16 arithmetic, which
differs between the two computations even for a perfect merge. Loading the merged folder also proves it is complete:
a missing, unexpected or mis-shaped tensor (which transformers would silently initialise
at random) fails the stage.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import StageFailed
from pipeline.merging.reference import load_base

COMPUTE_DTYPE = "float32"


@dataclass
class ParityReport:
    max_abs_diff: float
    adapter_effect: float
    """Largest |adapter-on-base - base| logit difference: how much the adapter changes the model."""
    prompts: int
    parameters: int
    """Parameters of the loaded merged model (a tied matrix counted once)."""
    architecture: str
    device: str
    compute_dtype: str = COMPUTE_DTYPE


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _logits(model: Any, encoded: list[Any], device: str) -> list[Any]:
    import torch

    model.to(device).eval()
    with torch.inference_mode():
        return [model(input_ids=ids.to(device)).logits.float().cpu() for ids in encoded]


def measure_parity(
    base_path: Path,
    adapter_dir: Path,
    merged_dir: Path,
    tokenizer: Any,
    prompts: list[str],
    dequantize: bool = False,
    trust_remote_code: bool = False,
) -> ParityReport:
    """Largest |logit difference| between adapter-on-base and the merged model over ``prompts``."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    device = _device()
    encoded = [tokenizer(prompt, return_tensors="pt").input_ids for prompt in prompts]
    encoded = [ids for ids in encoded if ids.shape[1] > 0]
    if not encoded:
        raise StageFailed("merge parity: every probe prompt tokenizes to nothing; set merge.probe_prompts.")

    base = load_base(base_path, COMPUTE_DTYPE, dequantize, trust_remote_code)
    with_adapter = PeftModel.from_pretrained(base, adapter_dir)
    reference = _logits(with_adapter, encoded, device)
    with with_adapter.disable_adapter():
        base_logits = _logits(with_adapter, encoded, device)
    del base, with_adapter
    gc.collect()

    merged, info = AutoModelForCausalLM.from_pretrained(
        merged_dir, dtype=COMPUTE_DTYPE, output_loading_info=True, trust_remote_code=trust_remote_code
    )
    problems = {key: sorted(info.get(key) or []) for key in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    problems = {key: value for key, value in problems.items() if value}
    if problems:
        listed = "; ".join(f"{key}: {', '.join(map(str, value[:5]))}" for key, value in problems.items())
        raise StageFailed(f"merge: the merged model in {merged_dir} does not load cleanly ({listed}).")
    outputs = _logits(merged, encoded, device)

    diff = effect = 0.0
    for ref, out, plain in zip(reference, outputs, base_logits, strict=True):
        if not (torch.isfinite(ref).all() and torch.isfinite(out).all()):
            raise StageFailed("merge parity: non-finite logits from the merged model or adapter-on-base.")
        diff = max(diff, (ref - out).abs().max().item())
        effect = max(effect, (ref - plain).abs().max().item())
    report = ParityReport(
        max_abs_diff=diff,
        adapter_effect=effect,
        prompts=len(encoded),
        parameters=merged.num_parameters(),
        architecture=type(merged).__name__,
        device=device,
    )
    del merged
    gc.collect()
    return report
