"""Kahneman-Tversky Optimization (TRL KTOTrainer) on unpaired desirable/undesirable completions."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.methods.base import MethodParams, MethodSpec


class Params(MethodParams):
    name: Literal["kto"] = "kto"
    beta: float = Field(0.1, gt=0, description="Inverse temperature of the implicit reward (KTO's β).")
    desirable_weight: float = Field(1.0, gt=0, description="Loss weight λ_D of desirable completions.")
    undesirable_weight: float = Field(1.0, gt=0, description="Loss weight λ_U of undesirable completions.")
    loss_type: Literal["kto", "apo_zero_unpaired"] = Field("kto", description="TRL KTOConfig.loss_type.")


SPEC = MethodSpec(
    name="kto",
    title="Kahneman-Tversky Optimization (KTO)",
    params=Params,
    consumes="unpaired",
    accepts=("unpaired", "paired"),
    citations=("kto", "lora"),
    min_batch_size=2,
    metrics=("rewards/chosen", "rewards/rejected", "rewards/margins", "kl"),
)
