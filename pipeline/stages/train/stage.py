"""The train stage: a TRL trainer with a peft LoRA adapter, resumable, with an honest record.

``run`` checks the config and data, then trains here or as several processes
(launcher.py). ``train_process`` is one process's part: it builds a
:class:`~pipeline.methods.context.TrainContext`, lets the method's
``build_trainer`` build its TRL trainer, trains (resuming from the last
checkpoint in runs/NAME/train/ by default) and, on rank 0, saves the adapter and
the tokenizer and returns the ``training`` record for the chain to write. A run
that did not really train (no optimizer step, a non-finite loss, too few
samples) is a StageFailed and leaves no adapter.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.atomic import normalise_modes
from pipeline.console import captured, say
from pipeline.errors import StageFailed, UsageError
from pipeline.precision import check_precision, warn_emulated_bfloat16
from pipeline.stage import StageResult
from pipeline.stages.train.arguments import (
    check_target_modules,
    check_trackers,
    check_trl_version,
    lora_config,
    training_arguments,
)
from pipeline.stages.train.checkpoints import (
    adapter_from_checkpoint,
    checkpoint_progress,
    claim_train_dir,
    last_checkpoint,
    replace_dir,
)
from pipeline.stages.train.launcher import in_worker, launch
from pipeline.stages.train.record import build_record, hardware

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainerCallback

    from pipeline.config import ReleaseConfig
    from pipeline.layout import Layout
    from pipeline.results import Lineage, TrainingRecord
    from pipeline.stages.train.callbacks import RuntimeClock
    from pipeline.stages.train.checkpoints import Progress
    from pipeline.training_data import PreparedData


def run(config: ReleaseConfig, layout: Layout, *, resume: bool = True) -> StageResult:
    """Train the config's method with LoRA; write the adapter and tokenizer, return the ``training`` record."""
    check_trl_version()
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    spec = config.method_spec
    if spec.build_trainer is None:
        raise UsageError(f"method '{spec.name}' has no trainer in this pubctl build yet.")
    # Every input error surfaces here, before checkpoints are touched or processes launched.
    check_precision(config)
    warn_emulated_bfloat16(config)
    check_trackers(config.training.report_to)
    model_path, _ = _resolve_base(config, layout)
    check_target_modules(config, model_path)
    tokenizer = _load_tokenizer(config, model_path)
    data = _prepare(config, layout, tokenizer)
    claim_train_dir(config, layout, resume=resume)
    checkpoint = last_checkpoint(layout) if resume else None
    if checkpoint is not None:
        progress = checkpoint_progress(config, checkpoint)
        if progress.complete:
            say(f"train: {progress.describe(checkpoint)} already holds the whole run; finishing from it")
        else:
            say(f"train: resuming from {progress.describe(checkpoint)}")
    if config.training.launcher.num_processes > 1 and not in_worker():
        record = launch(config, layout, resume=resume)
    else:
        record = train_process(config, layout, resume=resume, data=data, tokenizer=tokenizer)
    if record is None:
        raise StageFailed("this process is not rank 0 of its run and has no training record to hand over.")
    return StageResult(summary=summary(record, layout), sections={"training": record})


def summary(record: TrainingRecord, layout: Layout) -> str:
    """One line for the terminal, the stamp and ``pubctl list``."""
    resumed = f" (resumed from step {record.resumed_from_step})" if record.resumed_from_step else ""
    loss = f"{record.final_loss:.4f}" if record.final_loss is not None else "none"
    return (
        f"trained {record.steps} steps{resumed} on {record.samples} samples in {record.runtime_seconds:.1f} s, "
        f"final loss {loss}; adapter in {layout.adapter_dir.relative_to(layout.root)}"
    )


def train_process(
    config: ReleaseConfig,
    layout: Layout,
    *,
    resume: bool,
    data: PreparedData | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> TrainingRecord | None:
    """Train in this process (one rank of a multi-process run, or the only one).

    Rank 0 writes the adapter and returns the record; the other ranks return None.
    """
    from pipeline.stages.train.callbacks import RankCounter, RuntimeClock, gather
    from pipeline.stages.train.progress import ProgressReporter

    check_trl_version()
    model_path, model_revision = _resolve_base(config, layout)
    tokenizer = tokenizer if tokenizer is not None else _load_tokenizer(config, model_path)
    data = data if data is not None else _prepare(config, layout, tokenizer)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    checkpoint = last_checkpoint(layout) if resume else None
    progress = checkpoint_progress(config, checkpoint)
    resumed_from, earlier_runtime = progress.step, progress.runtime
    counter, clock = RankCounter(), RuntimeClock(earlier_runtime)
    with captured():  # model loading and TRL's preparation print what a pubctl user cannot act on: into the log
        trainer = _build_trainer(config, layout, model_path, tokenizer, data, callbacks=[counter, clock])
    trainer.add_callback(ProgressReporter())
    distributed_type = str(trainer.accelerator.distributed_type.value)
    if world_size > 1 and distributed_type == "NO":
        raise StageFailed(
            f"training of '{config.name}' was launched as {world_size} processes, but accelerate set up no "
            "data-parallel group (DistributedType.NO): each process would train its own shard without sharing "
            "gradients. Check the launcher and training.launcher.config_file. Nothing was recorded."
        )

    staging = layout.train_dir / ".adapter-staging"
    if trainer.is_world_process_zero() and staging.exists():
        shutil.rmtree(staging)  # left by an interrupted run
    with captured():
        runtime_this_run = _train_into(trainer, checkpoint, progress, clock, staging)
    ranks = gather(counter.summary(), world_size)
    if not trainer.is_world_process_zero():
        return None  # rank 0 writes the adapter and returns the record
    try:
        record = build_record(
            config,
            data=data,
            state=trainer.state,
            resumed_from=resumed_from,
            runtime=earlier_runtime + runtime_this_run,
            runtime_this_run=runtime_this_run,
            rows_trained=len(trainer.train_dataset),
            hardware=hardware(world_size, ranks, distributed_type),
            base_revision=model_revision,
            finished_checkpoint=progress.complete,
        )
        tokenizer.save_pretrained(str(staging))
        normalise_modes(staging)
        replace_dir(staging, layout.adapter_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    record.lineage = _lineage(config, layout, record, model_revision)
    return record


def _train_into(
    trainer: Trainer, checkpoint: str | None, progress: Progress, clock: RuntimeClock, staging: Path
) -> float:
    """Train (or finish from a checkpoint that already holds the whole run) and leave the adapter in ``staging``
    on rank 0; returns the seconds this process trained."""
    if progress.complete and checkpoint is not None:
        # Stopped after its last save, before the adapter and record were written: the checkpoint is the
        # finished run. Its adapter and state are taken as they are instead of training it all again.
        from transformers import TrainerState

        trainer.state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))
        if trainer.is_world_process_zero():
            adapter_from_checkpoint(checkpoint, staging)
        return 0.0
    clock.start()
    trainer.train(resume_from_checkpoint=checkpoint)
    elapsed = clock.elapsed()
    # save_model on every rank: under DeepSpeed/FSDP the weights are gathered collectively; it writes on rank 0.
    trainer.save_model(str(staging))
    return elapsed


def _lineage(config: ReleaseConfig, layout: Layout, record: TrainingRecord, model_revision: str | None) -> Lineage:
    """What this run trained on and the adapter it left (the training section's lineage)."""
    from pipeline.lineage import base_model_key, dataset_key, folder, lineage

    data_revision = record.datasets[0].revision if record.datasets else None
    return lineage(
        consumed={
            "base_model": base_model_key(config, layout, model_revision),
            "dataset": dataset_key(config, layout, data_revision),
        },
        produced={"adapter": folder(layout.adapter_dir)},
    )


def _build_trainer(
    config: ReleaseConfig,
    layout: Layout,
    model_path: Path,
    tokenizer: PreTrainedTokenizerBase,
    data: PreparedData,
    *,
    callbacks: list[TrainerCallback],
) -> Trainer:
    """The method's TRL trainer on the base model, with the LoRA and the arguments every method shares."""
    from transformers import PrinterCallback

    from pipeline.methods.context import TrainContext

    model = _load_model(config, model_path)
    ctx = TrainContext(
        params=config.method,
        model=model,
        peft_config=lora_config(config),
        tokenizer=tokenizer,
        train_dataset=data.train,
        eval_dataset=data.eval,
        training_args=training_arguments(config, layout, model_dtype=model.dtype, has_eval=data.eval is not None),
        callbacks=callbacks,
    )
    trainer = config.method_spec.build_trainer(ctx)
    # With disable_tqdm the trainer prints each log as a raw dict on stdout; ProgressReporter shows them instead.
    trainer.remove_callback(PrinterCallback)
    return trainer


def _resolve_base(config: ReleaseConfig, layout: Layout) -> tuple[Path, str | None]:
    from pipeline.sources import resolve_model

    resolved = resolve_model(config.model.base_model, config.model.revision, layout)
    return resolved.path, resolved.revision


def _load_tokenizer(config: ReleaseConfig, model_path: Path) -> PreTrainedTokenizerBase:
    from pipeline.rehearsal.model_checks import load_tokenizer

    tokenizer = load_tokenizer(model_path, config.model.trust_remote_code)
    if tokenizer.pad_token is None:
        # Batches need a pad token; the eos is what TRL's trainers fall back to as well.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _prepare(config: ReleaseConfig, layout: Layout, tokenizer: PreTrainedTokenizerBase) -> PreparedData:
    from pipeline.training_data import prepare_data

    return prepare_data(config, layout, tokenizer)


def _load_model(config: ReleaseConfig, model_path: Path) -> PreTrainedModel:
    from transformers import AutoModelForCausalLM

    dtype = config.model.dtype  # "auto" keeps the checkpoint's own dtype
    return AutoModelForCausalLM.from_pretrained(
        str(model_path), dtype=dtype, trust_remote_code=config.model.trust_remote_code
    )
