"""Contrastive Preference Optimization, sigmoid loss (trl.experimental CPOTrainer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from pipeline.methods.base import MethodParams, MethodSpec

if TYPE_CHECKING:
    from pipeline.methods.context import TrainContext


class Params(MethodParams):
    name: Literal["cpo"] = "cpo"
    beta: float = Field(0.1, gt=0, description="Inverse temperature of the preference term (CPO's β).")
    cpo_alpha: float = Field(1.0, ge=0, description="Weight of the NLL term on chosen completions.")
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="Assumed label-flip probability.")


def build_trainer(ctx: TrainContext) -> Any:
    """trl.experimental's CPOTrainer with the sigmoid loss and the NLL term weighted by cpo_alpha."""
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    params: Params = ctx.params  # type: ignore[assignment]
    args = ctx.make_args(
        CPOConfig,
        loss_type="sigmoid",
        beta=params.beta,
        cpo_alpha=params.cpo_alpha,
        label_smoothing=params.label_smoothing,
    )
    return CPOTrainer(args=args, **ctx.trainer_kwargs())


SPEC = MethodSpec(
    name="cpo",
    title="Contrastive Preference Optimization (CPO)",
    params=Params,
    consumes="paired",
    accepts=("paired",),
    build_trainer=build_trainer,
    citations=("cpo", "lora"),
    metrics=("rewards/chosen", "rewards/rejected", "rewards/margins", "nll_loss"),
)
