"""Direct Preference Optimization, sigmoid loss (TRL DPOTrainer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from pipeline.methods.base import MethodParams, MethodSpec

if TYPE_CHECKING:
    from pipeline.methods.context import TrainContext


class Params(MethodParams):
    name: Literal["dpo"] = "dpo"
    beta: float = Field(0.1, gt=0, description="Inverse temperature of the implicit reward (DPO's β).")
    label_smoothing: float = Field(
        0.0, ge=0, lt=0.5, description="Assumed probability that a preference label is flipped (cDPO)."
    )


def build_trainer(ctx: TrainContext) -> Any:
    """TRL's DPOTrainer with the sigmoid loss; the reference is the base with the adapter disabled."""
    from trl import DPOConfig, DPOTrainer

    params: Params = ctx.params  # type: ignore[assignment]
    args = ctx.make_args(DPOConfig, loss_type=["sigmoid"], beta=params.beta, label_smoothing=params.label_smoothing)
    return DPOTrainer(args=args, **ctx.trainer_kwargs())


SPEC = MethodSpec(
    name="dpo",
    title="Direct Preference Optimization (DPO)",
    params=Params,
    consumes="paired",
    accepts=("paired",),
    build_trainer=build_trainer,
    citations=("dpo", "lora"),
    metrics=("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"),
)
