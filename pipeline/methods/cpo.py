"""Contrastive Preference Optimization, sigmoid loss (trl.experimental CPOTrainer)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.methods.base import MethodParams, MethodSpec


class Params(MethodParams):
    name: Literal["cpo"] = "cpo"
    beta: float = Field(0.1, gt=0, description="Inverse temperature of the preference term (CPO's β).")
    cpo_alpha: float = Field(1.0, ge=0, description="Weight of the NLL term on chosen completions.")
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="Assumed label-flip probability.")


SPEC = MethodSpec(
    name="cpo",
    title="Contrastive Preference Optimization (CPO)",
    params=Params,
    consumes="paired",
    accepts=("paired",),
    citations=("cpo", "lora"),
    metrics=("rewards/chosen", "rewards/rejected", "rewards/margins", "nll_loss"),
)
