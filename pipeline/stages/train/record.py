"""The ``training`` section of the record, built from the trainer's state; a run that did not really train
is refused here, before anything is written.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pipeline.errors import StageFailed

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig
    from pipeline.results import TrainingRecord
    from pipeline.training_data import PreparedData


def samples_seen(
    steps: int, *, rows: int, per_device_batch_size: int, gradient_accumulation_steps: int, num_processes: int
) -> int:
    """Training rows consumed by ``steps`` optimizer steps, epochs included, as transformers batches them.

    Each epoch is cut into batches of ``per_device_batch_size`` rows (the last may be partial), dealt round-robin
    to the processes (accelerate pads a rank short of a batch with repeated rows, not counted here), and each
    optimizer step takes ``gradient_accumulation_steps`` batches per process (the epoch's last step what is left).
    So every full epoch is ``rows`` samples; steps × effective batch would count an epoch's short last step as
    full and overstate every later epoch.
    """
    batches_per_process = math.ceil(math.ceil(rows / per_device_batch_size) / num_processes)
    steps_per_epoch = max(math.ceil(batches_per_process / gradient_accumulation_steps), 1)
    epochs, steps_into_epoch = divmod(steps, steps_per_epoch)
    rows_per_step = per_device_batch_size * gradient_accumulation_steps * num_processes
    return epochs * rows + min(steps_into_epoch * rows_per_step, rows)


def build_record(
    config: ReleaseConfig,
    *,
    data: PreparedData,
    state: Any,
    resumed_from: int,
    runtime: float,
    runtime_this_run: float,
    rows_trained: int,
    hardware: dict[str, Any],
    base_revision: str | None,
    finished_checkpoint: bool = False,
) -> TrainingRecord:
    """The training section from the trainer's state; a run that did not really train is a StageFailed."""
    from pipeline.results import TrainingRecord

    steps = int(state.global_step)
    log_history = [dict(entry) for entry in state.log_history]
    # A run finished from a checkpoint that already held all of it trained its steps before that checkpoint.
    refuse_untrained(
        config, steps=steps, resumed_from=0 if finished_checkpoint else resumed_from, log_history=log_history
    )
    t = config.training
    samples = samples_seen(
        steps,
        rows=rows_trained,
        per_device_batch_size=t.per_device_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        num_processes=t.launcher.num_processes,
    )
    if samples < config.checks.min_samples:
        raise StageFailed(
            f"training of '{config.name}' saw {samples} samples, fewer than checks.min_samples "
            f"({config.checks.min_samples}); nothing was recorded. Train longer (training.max_steps or epochs) "
            "or, for a smoke run, lower checks.min_samples."
        )
    losses = [entry["loss"] for entry in log_history if "loss" in entry]
    train_loss = next((entry["train_loss"] for entry in reversed(log_history) if "train_loss" in entry), None)
    dataset = data.record()
    dataset["rows_after_trainer_filtering"] = rows_trained
    return TrainingRecord(
        method=config.method.name,
        method_params=config.method.model_dump(mode="json", exclude={"name"}),
        datasets=[dataset],
        hyperparameters=hyperparameters(config),
        steps=steps,
        samples=samples,
        runtime_seconds=round(runtime, 3),
        runtime_seconds_this_run=round(runtime_this_run, 3),
        final_loss=losses[-1],
        train_loss=train_loss,
        resumed_from_step=resumed_from,
        steps_this_run=steps - resumed_from,
        epochs_completed=state.epoch,
        base_model_revision=base_revision,
        log_history=nulled_non_finite(log_history),
        hardware=hardware,
    )


def _finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def refuse_untrained(
    config: ReleaseConfig, *, steps: int, resumed_from: int, log_history: list[dict[str, Any]]
) -> None:
    """A StageFailed for a run that took no step, diverged, or logged no loss: such a run is not a release."""
    if steps - resumed_from <= 0:
        hint = (
            f" The last checkpoint is already at step {resumed_from}: raise training.max_steps or epochs to train "
            f"further, or start over with pubctl train {config.name} --no-resume."
            if resumed_from
            else ""
        )
        raise StageFailed(f"training of '{config.name}' took no optimizer step; nothing was recorded.{hint}")
    bad = [
        (entry.get("step"), key, entry[key])
        for entry in log_history
        for key in ("loss", "train_loss", "grad_norm")
        if key in entry and not _finite(entry[key])
    ]
    if bad:
        step, key, value = bad[0]
        raise StageFailed(
            f"training of '{config.name}' produced a non-finite {key} ({value}) at step {step}; nothing was "
            "recorded. Lower training.learning_rate or check the data (empty completions, extreme lengths)."
        )
    if not any("loss" in entry for entry in log_history):
        raise StageFailed(
            f"training of '{config.name}' logged no loss in {steps} steps (training.logging_steps is "
            f"{config.training.logging_steps}); nothing was recorded. Log at least once: logging_steps <= the number "
            "of steps."
        )


def nulled_non_finite(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``log_history`` with NaN/inf metrics as None: a metric TRL could not compute for a batch (e.g. no
    undesirable rows in it) is logged as NaN, and JSON has no NaN."""
    return [{key: value if _finite(value) else None for key, value in entry.items()} for entry in log_history]


def hyperparameters(config: ReleaseConfig) -> dict[str, Any]:
    """The settings that shaped the run, as the record's ``hyperparameters`` holds them."""
    t, lora = config.training, config.lora
    return {
        "epochs": t.epochs,
        "max_steps": t.max_steps,
        "per_device_batch_size": t.per_device_batch_size,
        "gradient_accumulation_steps": t.gradient_accumulation_steps,
        "num_processes": t.launcher.num_processes,
        "effective_batch_size": t.effective_batch_size,
        "learning_rate": t.learning_rate,
        "lr_scheduler_type": t.lr_scheduler_type,
        "warmup_ratio": t.warmup_ratio,
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.max_grad_norm,
        "max_length": t.max_length,
        "max_prompt_length": t.max_prompt_length,
        "seed": t.seed,
        "dtype": config.model.dtype,
        "gradient_checkpointing": t.gradient_checkpointing,
        "lora": {
            "r": lora.r,
            "alpha": lora.alpha,
            "dropout": lora.dropout,
            "target_modules": lora.target_modules,
            "modules_to_save": list(lora.modules_to_save),
            "use_rslora": lora.use_rslora,
            "use_dora": lora.use_dora,
        },
    }


def hardware(world_size: int, ranks: list[dict[str, Any]], distributed_type: str) -> dict[str, Any]:
    """Where it trained: the machine, the process group and what each rank did."""
    import torch

    from pipeline.provenance import hardware as machine

    info = machine()
    info["world_size"] = world_size
    info["distributed_type"] = distributed_type  # accelerate's: MULTI_CPU, MULTI_GPU, DEEPSPEED, FSDP or NO
    info["backend"] = torch.distributed.get_backend() if world_size > 1 and torch.distributed.is_initialized() else None
    info["ranks"] = ranks
    return info
