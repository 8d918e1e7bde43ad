"""Odds Ratio Preference Optimization (trl.experimental ORPOTrainer): reference-free."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.methods.base import MethodParams, MethodSpec


class Params(MethodParams):
    name: Literal["orpo"] = "orpo"
    beta: float = Field(0.1, gt=0, description="Weight λ of the odds-ratio term against the NLL term.")


SPEC = MethodSpec(
    name="orpo",
    title="Odds Ratio Preference Optimization (ORPO)",
    params=Params,
    consumes="paired",
    accepts=("paired",),
    citations=("orpo", "lora"),
    metrics=("rewards/chosen", "rewards/rejected", "nll_loss", "log_odds_ratio", "log_odds_chosen"),
)
