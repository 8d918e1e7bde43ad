"""The config's inputs: the base model and the training data."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from pipeline.config.base import STEPS_MAX, Section, check_reference, check_revision
from pipeline.refs import DataRef, ModelRef


# --------------------------------------------------------------------------- model
class ModelSection(Section):
    base_model: str = Field(
        "builtin:tiny-qwen3",
        description="Hub model id (Qwen/Qwen3-0.6B), a local model folder, or builtin:tiny-qwen3.",
    )
    revision: str | None = Field(
        None, description="Hub revision (branch, tag or commit sha) of the base model; None = main."
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype for training and the merged model; auto = the checkpoint's own."
    )
    trust_remote_code: bool = Field(False, description="Allow code from the model repo (off: safer).")

    @field_validator("base_model")
    @classmethod
    def _base_model_kind(cls, value: str, info: ValidationInfo) -> str:
        return check_reference(value, info, ModelRef)

    @field_validator("revision")
    @classmethod
    def _revision(cls, value: str | None) -> str | None:
        return check_revision(value)


# ---------------------------------------------------------------------------- data
class Columns(Section):
    """Where each field lives in the dataset; rename here instead of editing the data."""

    prompt: str = Field("prompt", min_length=1, description="Prompt column (text or list of chat messages).")
    chosen: str = Field("chosen", min_length=1, description="Preferred completion column (paired data).")
    rejected: str = Field("rejected", min_length=1, description="Dispreferred completion column (paired data).")
    completion: str = Field("completion", min_length=1, description="Completion column (unpaired or SFT data).")
    label: str = Field("label", min_length=1, description="Boolean desirability column (unpaired data).")
    text: str = Field("text", min_length=1, description="Plain-text column (SFT data without a prompt).")
    # The fields below are left out of dumps at their defaults: the run fingerprint and the stage cache hash the
    # data section's dump, so configs written before these fields existed keep their checkpoints and cached stages.
    messages: str = Field(
        "messages",
        min_length=1,
        exclude_if=lambda value: value == "messages",
        description="Conversation column (SFT data: a list of {role, content} messages per row).",
    )
    system: str | None = Field(
        None,
        min_length=1,
        exclude_if=lambda value: value is None,
        description="System-prompt column (e.g. 'system' in Intel/orca_dpo_pairs); its non-empty values become a "
        "system message before the prompt, which makes the rows conversational. None = no system column.",
    )


class DataSection(Section):
    train: str = Field(
        "builtin:preferences",
        description="Hub dataset id, a local .json/.jsonl/.parquet file (relative to the project root), "
        "or builtin:preferences.",
    )
    subset: str | None = Field(None, min_length=1, description="Hub dataset configuration name, if it has several.")
    split: str = Field("train", min_length=1, description="Split to train on.")
    revision: str | None = Field(None, description="Hub dataset revision (commit sha pins it).")
    format: Literal["auto", "paired", "unpaired", "text"] = Field(
        "auto",
        description="paired: prompt/chosen/rejected; unpaired: prompt/completion/label; text: SFT. "
        "auto: detected from the columns.",
    )
    columns: Columns = Field(default_factory=Columns, description="Column names in the dataset.")
    eval_split: str | None = Field(None, min_length=1, description="Split to evaluate the training loss on, if any.")
    eval_fraction: float | None = Field(
        None, gt=0, lt=1, description="Hold out this fraction of the train split instead of an eval_split."
    )
    max_samples: int | None = Field(None, gt=0, le=STEPS_MAX, description="Use only the first N rows (smoke runs).")

    @field_validator("train")
    @classmethod
    def _train_source(cls, value: str, info: ValidationInfo) -> str:
        return check_reference(value, info, DataRef)

    @field_validator("revision")
    @classmethod
    def _revision(cls, value: str | None) -> str | None:
        return check_revision(value)

    @model_validator(mode="after")
    def _one_eval_source(self) -> DataSection:
        if self.eval_split and self.eval_fraction:
            raise ValueError("set eval_split or eval_fraction, not both")
        return self
