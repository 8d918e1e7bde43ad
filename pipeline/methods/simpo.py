"""Simple Preference Optimization: CPOTrainer with loss_type simpo and no NLL term."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from pipeline.methods.base import MethodParams, MethodSpec

if TYPE_CHECKING:
    from pipeline.methods.context import TrainContext


class Params(MethodParams):
    name: Literal["simpo"] = "simpo"
    beta: float = Field(2.0, gt=0, description="Reward scale β (the SimPO paper uses 2.0-2.5).")
    simpo_gamma: float = Field(0.5, ge=0, description="Target reward margin γ (TRL's simpo_gamma).")


def build_trainer(ctx: TrainContext) -> Any:
    """trl.experimental's CPOTrainer with loss_type simpo and cpo_alpha 0: SimPO has no NLL term."""
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    params: Params = ctx.params  # type: ignore[assignment]
    args = ctx.make_args(CPOConfig, loss_type="simpo", beta=params.beta, simpo_gamma=params.simpo_gamma, cpo_alpha=0.0)
    return CPOTrainer(args=args, **ctx.trainer_kwargs())


SPEC = MethodSpec(
    name="simpo",
    title="Simple Preference Optimization (SimPO)",
    params=Params,
    consumes="paired",
    accepts=("paired",),
    build_trainer=build_trainer,
    citations=("simpo", "lora"),
    metrics=("rewards/chosen", "rewards/rejected", "rewards/margins"),
)
