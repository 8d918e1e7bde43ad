"""Identity Preference Optimisation: DPOTrainer with loss_type ipo."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.methods.base import MethodParams, MethodSpec


class Params(MethodParams):
    name: Literal["ipo"] = "ipo"
    beta: float = Field(0.1, gt=0, description="IPO's τ: the regularisation toward the reference model.")


SPEC = MethodSpec(
    name="ipo",
    title="Identity Preference Optimisation (IPO)",
    params=Params,
    consumes="paired",
    accepts=("paired",),
    citations=("ipo", "lora"),
    metrics=("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"),
)
