"""Simple Preference Optimization: CPOTrainer with loss_type simpo and no NLL term."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.methods.base import MethodParams, MethodSpec


class Params(MethodParams):
    name: Literal["simpo"] = "simpo"
    beta: float = Field(2.0, gt=0, description="Reward scale β (the SimPO paper uses 2.0-2.5).")
    simpo_gamma: float = Field(0.5, ge=0, description="Target reward margin γ (TRL's simpo_gamma).")


SPEC = MethodSpec(
    name="simpo",
    title="Simple Preference Optimization (SimPO)",
    params=Params,
    consumes="paired",
    accepts=("paired",),
    citations=("simpo", "lora"),
    metrics=("rewards/chosen", "rewards/rejected", "rewards/margins"),
)
