"""Supervised fine-tuning on the preferred completions (TRL SFTTrainer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from pipeline.methods.base import MethodParams, MethodSpec

if TYPE_CHECKING:
    from pipeline.methods.context import TrainContext


class Params(MethodParams):
    name: Literal["sft"] = "sft"
    completion_only_loss: bool = Field(
        True,
        description="Train on completion tokens only (the prompt is context, not a target); text rows train on all.",
    )
    packing: bool = Field(False, description="Pack several short examples into one sequence.")


def build_trainer(ctx: TrainContext) -> Any:
    """TRL's SFTTrainer on prompt/completion rows (or plain text)."""
    from trl import SFTConfig, SFTTrainer

    params: Params = ctx.params  # type: ignore[assignment]
    # plain-text rows have no prompt to mask (TRL refuses completion_only_loss for them)
    completion_only = params.completion_only_loss and "prompt" in ctx.train_dataset.column_names
    args = ctx.make_args(SFTConfig, completion_only_loss=completion_only, packing=params.packing)
    return SFTTrainer(args=args, **ctx.trainer_kwargs())


SPEC = MethodSpec(
    name="sft",
    title="Supervised fine-tuning",
    params=Params,
    consumes="text",
    accepts=("text", "paired"),
    build_trainer=build_trainer,
    citations=("lora",),
)
