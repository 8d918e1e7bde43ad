"""How merge parity is judged, shared by the merge stage and the honesty gates (light: no torch).

float32 merges must reproduce adapter-on-base's logits to 1e-4. A half-precision merge
must round ``W + dW`` to bf16/fp16, which moves logits by an amount that grows with the
model's logit scale, so an absolute bound either rejects correct bf16 merges or accepts
wrong ones. Its error is judged instead relative to what the adapter itself changes: a
correct merge loses a few percent of the adapter's effect to rounding (0.4% on the tiny
model, 1.2% on a 174M-parameter one), a wrong one about 100% (alpha/r applied twice or not
at all) or its share (a module left out). The default bound, 25% (merge.parity_max_relative),
sits between. An adapter so small that bf16 cannot represent its change fails too, and
should: the merged model would not be the model that was trained.
"""

from __future__ import annotations

OPTIONS = {"max_abs_diff": "merge.parity_tolerance", "relative_to_adapter_effect": "merge.parity_max_relative"}


def parity_value(measure: str, max_abs_diff: float, adapter_effect: float | None) -> float | None:
    """The number the gate compares with its bound; None when the record lacks the adapter effect."""
    if measure == "max_abs_diff":
        return max_abs_diff
    if adapter_effect is None:
        return None
    if adapter_effect == 0.0:
        # An adapter that changes nothing: any difference at all is the merge's fault.
        return 0.0 if max_abs_diff == 0.0 else float("inf")
    return max_abs_diff / adapter_effect


def describe(measure: str, value: float) -> str:
    """Human wording of a parity value."""
    what = "max |logit difference|" if measure == "max_abs_diff" else "logit difference / adapter effect"
    return f"{what} {value:.3g}"
