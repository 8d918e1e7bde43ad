"""Direct Preference Optimization, sigmoid loss (TRL DPOTrainer)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.methods.base import MethodParams, MethodSpec


class Params(MethodParams):
    name: Literal["dpo"] = "dpo"
    beta: float = Field(0.1, gt=0, description="Inverse temperature of the implicit reward (DPO's β).")
    label_smoothing: float = Field(
        0.0, ge=0, lt=0.5, description="Assumed probability that a preference label is flipped (cDPO)."
    )


SPEC = MethodSpec(
    name="dpo",
    title="Direct Preference Optimization (DPO)",
    params=Params,
    consumes="paired",
    accepts=("paired",),
    citations=("dpo", "lora"),
    metrics=("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"),
)
