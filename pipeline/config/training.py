"""How to train and merge: the method, the LoRA adapter, the trainer, the merge."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import Field, ValidationInfo, field_validator, model_validator

from pipeline.config.base import (
    BATCH_MAX,
    LENGTH_MAX,
    LIST_MAX,
    SEED_MAX,
    STEPS_MAX,
    Section,
    check_inside_project,
)
from pipeline.methods import METHODS
from pipeline.refs import REFERENCE_MAX, excerpt

# -------------------------------------------------------------------------- method
MethodSection = Annotated[
    Union[tuple(spec.params for spec in METHODS.values())],  # noqa: UP007 - built from the registry
    Field(discriminator="name", description="Training method and its parameters, e.g. {name: dpo, beta: 0.1}."),
]


# ---------------------------------------------------------------------------- lora
class LoraSection(Section):
    r: int = Field(16, gt=0, le=BATCH_MAX, description="LoRA rank.")
    alpha: int = Field(
        32, gt=0, le=LENGTH_MAX, description="LoRA alpha; the update is scaled by alpha/r (alpha/√r with rsLoRA)."
    )
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: Annotated[list[str], Field(max_length=LIST_MAX)] | Literal["all-linear"] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        description="Modules that get adapters: a list of names or 'all-linear'.",
    )
    modules_to_save: list[str] = Field(
        default_factory=list,
        max_length=LIST_MAX,
        description="Modules trained in full and saved with the adapter (e.g. lm_head).",
    )
    use_rslora: bool = Field(False, description="Rank-stabilised scaling alpha/√r.")
    use_dora: bool = Field(False, description="Weight-decomposed LoRA (DoRA).")


# ------------------------------------------------------------------------ training
class LauncherSection(Section):
    num_processes: int = Field(1, ge=1, le=BATCH_MAX, description="Processes to train with (GPUs, or CPU workers).")
    config_file: str | None = Field(
        None,
        min_length=1,
        max_length=REFERENCE_MAX,
        description="accelerate config file (DeepSpeed ZeRO / FSDP) used on GPUs.",
    )
    main_process_port: int | None = Field(None, ge=1, le=65535, description="Rendezvous port; None = free one.")

    @field_validator("config_file")
    @classmethod
    def _config_inside_project(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Needed only on GPUs, so it may be absent on this machine; where present the stage cache hashes it.
        return None if value is None else check_inside_project(value, info, folder=False, must_exist=False)


class TrainingSection(Section):
    epochs: float = Field(1.0, gt=0, le=10_000, description="Passes over the training data.")
    max_steps: int = Field(-1, le=STEPS_MAX, description="Stop after this many optimizer steps; -1 = run the epochs.")
    per_device_batch_size: int = Field(2, ge=1, le=BATCH_MAX, description="Examples per device per forward pass.")
    gradient_accumulation_steps: int = Field(8, ge=1, le=BATCH_MAX, description="Forward passes per optimizer step.")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate (LoRA usually wants 1e-4..5e-4).")
    lr_scheduler_type: Literal["linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts"] = Field(
        "linear", description="Learning-rate schedule after warm-up."
    )
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Fraction of steps spent warming up.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    max_length: int = Field(
        512, gt=0, le=LENGTH_MAX, description="Longest prompt+completion in tokens; longer rows are truncated."
    )
    max_prompt_length: int | None = Field(
        None,
        gt=0,
        le=LENGTH_MAX,
        description="Longest prompt in tokens (truncated from the left); None = no separate limit.",
    )
    seed: int = Field(42, ge=0, le=SEED_MAX, description="Seed for data order, LoRA init and dropout.")
    logging_steps: int = Field(
        10, ge=1, le=STEPS_MAX, description="Log loss and method metrics every N optimizer steps."
    )
    save_steps: int = Field(
        500, ge=1, le=STEPS_MAX, description="Write a resumable checkpoint every N optimizer steps."
    )
    save_total_limit: int | None = Field(2, ge=1, le=STEPS_MAX, description="Keep at most N checkpoints; None = all.")
    gradient_checkpointing: bool = Field(False, description="Trade compute for activation memory.")
    report_to: list[Literal["trackio", "wandb", "tensorboard"]] = Field(
        default_factory=list, description="Experiment trackers to stream logs to; [] = none."
    )
    launcher: LauncherSection = Field(default_factory=LauncherSection, description="Multi-process launch.")

    @model_validator(mode="after")
    def _lengths(self) -> TrainingSection:
        if self.max_prompt_length is not None and self.max_prompt_length >= self.max_length:
            raise ValueError(
                f"max_prompt_length ({self.max_prompt_length}) must be smaller than max_length ({self.max_length})"
            )
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps must be -1 (use epochs) or a positive number, got {self.max_steps}")
        return self

    @property
    def effective_batch_size(self) -> int:
        return self.per_device_batch_size * self.gradient_accumulation_steps * self.launcher.num_processes


# --------------------------------------------------------------------------- merge
class MergeSection(Section):
    strategy: Literal["streaming", "peft"] = Field(
        "streaming",
        description="streaming: shard by shard, about one shard in memory; peft: load all, merge_and_unload.",
    )
    max_shard_size: str = Field("5GB", description="Largest output shard, as transformers writes it.")
    parity_tolerance: float | None = Field(
        None,
        gt=0,
        description="Max |logit difference| merged vs adapter-on-base. None: 1e-4 for float32 merges; "
        "bfloat16/float16 merges are gated on parity_max_relative instead unless this is set.",
    )
    parity_max_relative: float = Field(
        0.25,
        gt=0,
        description="Half-precision merges: max |merged - adapter-on-base| logit difference as a fraction of the "
        "adapter's own effect, max |adapter-on-base - base|. Rounding W+dW to bf16 costs a few % of that effect; "
        "alpha/r applied twice or not at all costs about 100%, a missing module its share.",
    )
    probe_prompts: list[str] = Field(
        default_factory=lambda: [
            "The capital of France is",
            "Explain why the sky is blue.",
            "def fibonacci(n):",
            "ما هي عاصمة مصر؟",
        ],
        min_length=1,
        max_length=LIST_MAX,
        description="Prompts whose logits are compared in the parity check.",
    )
    dequantize: bool = Field(False, description="Dequantize a 4/8-bit base before merging instead of refusing.")

    def parity_gate(self, dtype: str) -> tuple[str, float]:
        """(measure, bound) the merge parity is judged on for a merged model stored in ``dtype``."""
        if self.parity_tolerance is not None:
            return "max_abs_diff", self.parity_tolerance
        if dtype in ("float32", "float64"):
            return "max_abs_diff", 1e-4
        return "relative_to_adapter_effect", self.parity_max_relative

    @field_validator("max_shard_size")
    @classmethod
    def _shard_size(cls, value: str) -> str:
        if not re.fullmatch(r"\d{1,9}(\.\d{1,6})?\s*(B|KB|MB|GB|KiB|MiB|GiB)", value.strip()):
            raise ValueError(f"expected a size like '5GB' or '500MB', got {excerpt(value)}")
        return value.strip()
