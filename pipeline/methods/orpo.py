"""Odds Ratio Preference Optimization (trl.experimental ORPOTrainer): reference-free."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from pipeline.methods.base import MethodParams, MethodSpec

if TYPE_CHECKING:
    from pipeline.methods.context import TrainContext


class Params(MethodParams):
    name: Literal["orpo"] = "orpo"
    beta: float = Field(0.1, gt=0, description="Weight λ of the odds-ratio term against the NLL term.")


def build_trainer(ctx: TrainContext) -> Any:
    """trl.experimental's ORPOTrainer: NLL on the chosen answer plus β times the odds-ratio term, no reference."""
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    params: Params = ctx.params  # type: ignore[assignment]
    args = ctx.make_args(ORPOConfig, beta=params.beta)
    return ORPOTrainer(args=args, **ctx.trainer_kwargs())


SPEC = MethodSpec(
    name="orpo",
    title="Odds Ratio Preference Optimization (ORPO)",
    params=Params,
    consumes="paired",
    accepts=("paired",),
    build_trainer=build_trainer,
    citations=("orpo", "lora"),
    metrics=("rewards/chosen", "rewards/rejected", "nll_loss", "log_odds_ratio", "log_odds_chosen"),
)
