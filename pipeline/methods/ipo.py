"""Identity Preference Optimisation: DPOTrainer with loss_type ipo."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from pipeline.methods.base import MethodParams, MethodSpec

if TYPE_CHECKING:
    from pipeline.methods.context import TrainContext


class Params(MethodParams):
    name: Literal["ipo"] = "ipo"
    beta: float = Field(0.1, gt=0, description="IPO's τ: the regularisation toward the reference model.")


def build_trainer(ctx: TrainContext) -> Any:
    """TRL's DPOTrainer with the IPO loss (β is IPO's τ)."""
    from trl import DPOConfig, DPOTrainer

    params: Params = ctx.params  # type: ignore[assignment]
    args = ctx.make_args(DPOConfig, loss_type=["ipo"], beta=params.beta)
    return DPOTrainer(args=args, **ctx.trainer_kwargs())


SPEC = MethodSpec(
    name="ipo",
    title="Identity Preference Optimisation (IPO)",
    params=Params,
    consumes="paired",
    accepts=("paired",),
    build_trainer=build_trainer,
    citations=("ipo", "lora"),
    metrics=("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"),
)
