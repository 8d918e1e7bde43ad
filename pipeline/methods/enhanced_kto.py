"""Enhanced KTO: KTO with a prospect-theory value function, probability weighting,
an odds-ratio term and a staged BCO shift (its own loss on TRL's KTOTrainer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.methods.base import MethodSpec
from pipeline.methods.enhanced_kto_params import GAMMA_MIN, Params

if TYPE_CHECKING:
    from pipeline.methods.context import TrainContext


COMPONENT_METRICS = ("ekto/margin", "ekto/value_margin", "ekto/weighted_p", "ekto/odds_ratio", "ekto/delta")
"""log_history keys of the Enhanced KTO components (each present only when its component is on)."""


def build_trainer(ctx: TrainContext) -> Any:
    """EnhancedKTOTrainer (TRL's KTOTrainer with the Enhanced KTO loss) on prompt/completion/label rows."""
    from pipeline.methods.enhanced_kto_trainer import EnhancedKTOConfig, EnhancedKTOTrainer

    params: Params = ctx.params  # type: ignore[assignment]
    args = ctx.make_args(EnhancedKTOConfig, loss_type="kto", **params.model_dump(exclude={"name"}))
    return EnhancedKTOTrainer(args=args, **ctx.trainer_kwargs())


SPEC = MethodSpec(
    name="enhanced_kto",
    title="Enhanced KTO (prospect-theory KTO)",
    params=Params,
    consumes="unpaired",
    accepts=("unpaired", "paired"),
    citations=("kto", "tversky_kahneman_1992", "orpo", "bco", "lora"),
    build_trainer=build_trainer,
    min_batch_size=2,
    metrics=("rewards/chosen", "rewards/rejected", "rewards/margins", "kl", *COMPONENT_METRICS),
)

__all__ = ["COMPONENT_METRICS", "GAMMA_MIN", "SPEC", "Params", "build_trainer"]
