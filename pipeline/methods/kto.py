"""Kahneman-Tversky Optimization (TRL KTOTrainer) on unpaired desirable/undesirable completions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from pipeline.methods.base import MethodParams, MethodSpec

if TYPE_CHECKING:
    from pipeline.methods.context import TrainContext


class Params(MethodParams):
    name: Literal["kto"] = "kto"
    beta: float = Field(0.1, gt=0, description="Inverse temperature of the implicit reward (KTO's β).")
    desirable_weight: float = Field(1.0, gt=0, description="Loss weight λ_D of desirable completions.")
    undesirable_weight: float = Field(1.0, gt=0, description="Loss weight λ_U of undesirable completions.")
    loss_type: Literal["kto", "apo_zero_unpaired"] = Field("kto", description="TRL KTOConfig.loss_type.")


def build_trainer(ctx: TrainContext) -> Any:
    """TRL's KTOTrainer on prompt/completion/label rows (sequential sampling keeps its KL pairing)."""
    from trl import KTOConfig, KTOTrainer

    params: Params = ctx.params  # type: ignore[assignment]
    args = ctx.make_args(
        KTOConfig,
        beta=params.beta,
        desirable_weight=params.desirable_weight,
        undesirable_weight=params.undesirable_weight,
        loss_type=params.loss_type,
    )
    return KTOTrainer(args=args, **ctx.trainer_kwargs())


SPEC = MethodSpec(
    name="kto",
    title="Kahneman-Tversky Optimization (KTO)",
    params=Params,
    consumes="unpaired",
    accepts=("unpaired", "paired"),
    citations=("kto", "lora"),
    build_trainer=build_trainer,
    min_batch_size=2,
    metrics=("rewards/chosen", "rewards/rejected", "rewards/margins", "kl"),
)
