"""Supervised fine-tuning on the preferred completions (TRL SFTTrainer)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.methods.base import MethodParams, MethodSpec


class Params(MethodParams):
    name: Literal["sft"] = "sft"
    completion_only_loss: bool = Field(
        True, description="Train on completion tokens only (the prompt is context, not a target)."
    )
    packing: bool = Field(False, description="Pack several short examples into one sequence.")


SPEC = MethodSpec(
    name="sft",
    title="Supervised fine-tuning",
    params=Params,
    consumes="text",
    accepts=("text", "paired"),
    citations=("lora",),
)
