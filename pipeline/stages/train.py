"""The train stage: a TRL trainer with a peft LoRA adapter, resumable, with an honest record.

``run`` prepares everything a method needs into a :class:`TrainContext`, lets the
method's ``build_trainer`` build its TRL trainer, trains (resuming from the last
checkpoint in runs/NAME/train/ by default), saves the adapter and tokenizer and
writes the ``training`` section of cards/NAME/results.json. A run that did not
really train (no optimizer step, a non-finite loss, too few samples) is a
StageFailed and writes nothing to the record.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import PubctlError, StageFailed, UsageError
from pipeline.precision import check_precision, warn_emulated_bfloat16

if TYPE_CHECKING:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback

    from pipeline.config import ReleaseConfig
    from pipeline.layout import Layout
    from pipeline.methods.base import MethodParams
    from pipeline.results import TrainingRecord
    from pipeline.training_data import PreparedData

TRL_TESTED = (">=1.16", "<1.17")
"""TRL versions pubctl's trainers are tested with (TRL moves trainers between releases)."""


def check_trl_version() -> str:
    """The installed TRL version; a UsageError when it is outside the range pubctl is tested with."""
    from importlib import metadata

    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    try:
        installed = metadata.version("trl")
    except metadata.PackageNotFoundError:
        raise UsageError(
            "The train stage needs TRL, which is not installed. Install the training stack with: "
            "pip install 'pubctl[train]'."
        ) from None
    tested = SpecifierSet(",".join(TRL_TESTED))
    if Version(installed) not in tested:
        raise UsageError(
            f"TRL {installed} is installed but pubctl's trainers are tested with trl{','.join(TRL_TESTED)} "
            "(TRL moves trainers between releases: KTO left the stable API and came back, BCO was deleted in 1.14). "
            f"Install a tested version: pip install 'trl{','.join(TRL_TESTED)}'."
        )
    return installed


@dataclass
class TrainContext:
    """Everything a method's ``build_trainer(ctx)`` needs to build its TRL trainer.

    The model is the plain base model and ``peft_config`` the LoRA to apply: TRL's
    trainers wrap the model themselves (seeded before the adapter is initialised,
    and using the adapter-disabled model as the reference, so no copy of the base
    is kept in memory).
    """

    config: ReleaseConfig
    layout: Layout
    params: MethodParams
    """The method's validated parameters (``config.method``)."""
    model: PreTrainedModel
    """The base model, loaded in the config's dtype, without the adapter."""
    peft_config: LoraConfig
    """The LoRA adapter from ``config.lora``; pass it to the trainer as ``peft_config``."""
    tokenizer: PreTrainedTokenizerBase
    """Tokenizer of the base model (TRL's ``processing_class``)."""
    train_dataset: Dataset
    """Training rows already in the format ``SPEC.consumes`` (paired, unpaired or text)."""
    eval_dataset: Dataset | None
    """Held-out rows in the same format, or None when the config asks for no evaluation."""
    training_args: dict[str, Any]
    """Common TrainingArguments kwargs derived from the config (output_dir, batches, lr, precision, ...)."""
    callbacks: list[TrainerCallback] = field(default_factory=list)
    """Callbacks pubctl adds to every trainer."""

    def make_args(self, config_class: type, **method_kwargs: Any) -> Any:
        """``config_class`` (a TRL config) built from the common arguments plus the method's own."""
        clash = set(method_kwargs) & set(self.training_args)
        if clash:
            raise ValueError(f"method arguments override common training arguments: {sorted(clash)}")
        return config_class(**self.training_args, **method_kwargs)

    def trainer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments every TRL trainer takes besides ``args``."""
        return {
            "model": self.model,
            "train_dataset": self.train_dataset,
            "eval_dataset": self.eval_dataset,
            "processing_class": self.tokenizer,
            "peft_config": self.peft_config,
            "callbacks": list(self.callbacks),
        }


# ------------------------------------------------------------------------ constants
RUN_FILE = "pubctl-run.json"
"""In runs/NAME/train/: the fingerprint of what the checkpoints were trained on (resume refuses a different run)."""
STATUS_ENV = "PUBCTL_TRAIN_STATUS"
"""File where rank 0 of a multi-process run reports a user error (message and exit code) to the launching stage."""
WORKER_MODULE = "pipeline.stages.train_worker"
RUNTIME_FILE = "pubctl-runtime.json"
"""In each checkpoint: the training time up to it, so a resumed run records the time of all its parts."""


# ----------------------------------------------------------------------- the stage
def run(config: ReleaseConfig, layout: Layout, *, resume: bool = True) -> TrainingRecord:
    """Train the config's method with LoRA; write the adapter, the tokenizer and the ``training`` record."""
    check_trl_version()
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    spec = config.method_spec
    if spec.build_trainer is None:
        raise UsageError(f"method '{spec.name}' has no trainer in this pubctl build yet.")
    # Every input error surfaces here, before checkpoints are touched or processes launched.
    check_precision(config)
    warn_emulated_bfloat16(config)
    _check_trackers(config.training.report_to)
    model_path, _ = _resolve_base(config, layout)
    check_target_modules(config, model_path)
    tokenizer = _load_tokenizer(config, model_path)
    data = _prepare(config, layout, tokenizer)
    _claim_train_dir(config, layout, resume=resume)
    _checkpoint_progress(config, last_checkpoint(layout) if resume else None)
    if config.training.launcher.num_processes > 1 and not _in_worker():
        return _launch(config, layout, resume=resume)
    record = train_process(config, layout, resume=resume, data=data, tokenizer=tokenizer)
    if record is None:
        raise StageFailed("this process is not rank 0 of its run and wrote no training record.")
    return record


def train_process(
    config: ReleaseConfig,
    layout: Layout,
    *,
    resume: bool,
    data: PreparedData | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> TrainingRecord | None:
    """Train in this process (one rank of a multi-process run, or the only one); rank 0 writes the outputs."""
    import torch

    check_trl_version()
    model_path, model_revision = _resolve_base(config, layout)
    tokenizer = tokenizer if tokenizer is not None else _load_tokenizer(config, model_path)
    data = data if data is not None else _prepare(config, layout, tokenizer)
    model = _load_model(config, model_path)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    counter = rank_counter()
    checkpoint = last_checkpoint(layout) if resume else None
    resumed_from, earlier_runtime = _checkpoint_progress(config, checkpoint)
    clock = runtime_clock(earlier_runtime)
    ctx = TrainContext(
        config=config,
        layout=layout,
        params=config.method,
        model=model,
        peft_config=lora_config(config),
        tokenizer=tokenizer,
        train_dataset=data.train,
        eval_dataset=data.eval,
        training_args=training_arguments(config, layout, model_dtype=model.dtype, has_eval=data.eval is not None),
        callbacks=[counter, clock],
    )
    trainer = config.method_spec.build_trainer(ctx)
    distributed_type = str(trainer.accelerator.distributed_type.value)
    if world_size > 1 and distributed_type == "NO":
        raise StageFailed(
            f"training of '{config.name}' was launched as {world_size} processes, but accelerate set up no "
            "data-parallel group (DistributedType.NO): each process would train its own shard without sharing "
            "gradients. Check the launcher and training.launcher.config_file. Nothing was recorded."
        )

    clock.start()
    trainer.train(resume_from_checkpoint=checkpoint)
    runtime_this_run = clock.elapsed()

    ranks = _gather(counter.summary(), world_size)
    staging = layout.train_dir / ".adapter-staging"
    if trainer.is_world_process_zero() and staging.exists():
        shutil.rmtree(staging)  # left by an interrupted run
    # save_model on every rank: under DeepSpeed/FSDP the weights are gathered collectively; it writes on rank 0.
    trainer.save_model(str(staging))
    if not trainer.is_world_process_zero():
        return None  # rank 0 writes the adapter and the record
    try:
        record = build_record(
            config,
            data=data,
            state=trainer.state,
            resumed_from=resumed_from,
            runtime=earlier_runtime + runtime_this_run,
            runtime_this_run=runtime_this_run,
            rows_trained=len(trainer.train_dataset),
            hardware=_hardware(torch, world_size, ranks, distributed_type),
            base_revision=model_revision,
        )
        tokenizer.save_pretrained(str(staging))
        _replace_dir(staging, layout.adapter_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    from pipeline.provenance import collect
    from pipeline.results import update_results

    update_results(layout.results, config.name, training=record, provenance=collect(config, layout.root))
    return record


# ----------------------------------------------------------------------- preparing
def _resolve_base(config: ReleaseConfig, layout: Layout) -> tuple[Path, str | None]:
    from pipeline.sources import resolve_model

    resolved = resolve_model(config.model.base_model, config.model.revision, layout)
    return resolved.path, resolved.revision


def _load_tokenizer(config: ReleaseConfig, model_path: Path) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_path), trust_remote_code=config.model.trust_remote_code)
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


def check_target_modules(config: ReleaseConfig, model_path: Path) -> None:
    """Every lora.target_modules / modules_to_save name must exist in the architecture (found without weights).

    peft would raise the same deep inside the trainer's constructor, after the weights and data are loaded; the
    architecture alone, built on the meta device, answers it in a second.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    lora = config.lora
    wanted = {"lora.target_modules": [] if lora.target_modules == "all-linear" else list(lora.target_modules)}
    wanted["lora.modules_to_save"] = list(lora.modules_to_save)
    if not any(wanted.values()):
        return
    model_config = AutoConfig.from_pretrained(model_path, trust_remote_code=config.model.trust_remote_code)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(model_config, trust_remote_code=config.model.trust_remote_code)
    # peft matches a name against the module's full name or its last dotted parts.
    names = [name for name, _ in model.named_modules() if name]
    for field_name, modules in wanted.items():
        missing = [m for m in modules if not any(n == m or n.endswith(f".{m}") for n in names)]
        if missing:
            linear = sorted(
                {n.rsplit(".", 1)[-1] for n, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)}
            )
            raise UsageError(
                f"{field_name}: {', '.join(repr(m) for m in missing)} not in {type(model).__name__} "
                f"({config.model.base_model}); its linear layers are {', '.join(linear)} (or use 'all-linear')."
            )


def lora_config(config: ReleaseConfig) -> LoraConfig:
    """peft's LoraConfig from the config's lora section."""
    from peft import LoraConfig

    lora = config.lora
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        modules_to_save=list(lora.modules_to_save) or None,
        use_rslora=lora.use_rslora,
        use_dora=lora.use_dora,
        task_type="CAUSAL_LM",
    )


def training_arguments(config: ReleaseConfig, layout: Layout, *, model_dtype: Any, has_eval: bool) -> dict[str, Any]:
    """The TrainingArguments every method shares, from the config's training section."""
    import torch

    t = config.training
    on_gpu = torch.cuda.is_available()
    bf16 = model_dtype == torch.bfloat16
    fp16 = model_dtype == torch.float16
    if fp16 and not on_gpu:  # model.dtype auto on a float16 checkpoint: only known once the weights are loaded
        from pipeline.precision import precision_problem

        raise UsageError(precision_problem("float16 (the checkpoint's own dtype, model.dtype auto)"))
    args: dict[str, Any] = {
        "output_dir": str(layout.train_dir),
        "run_name": config.name,
        "per_device_train_batch_size": t.per_device_batch_size,
        "per_device_eval_batch_size": t.per_device_batch_size,
        "gradient_accumulation_steps": t.gradient_accumulation_steps,
        "learning_rate": t.learning_rate,
        "lr_scheduler_type": t.lr_scheduler_type,
        # transformers 5 takes a ratio of the total steps as a float below 1 in warmup_steps
        "warmup_steps": t.warmup_ratio,
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.max_grad_norm,
        "num_train_epochs": t.epochs,
        "max_steps": t.max_steps,
        "logging_steps": t.logging_steps,
        # transformers' default replaces a NaN/inf step loss by the mean of earlier ones before logging it, which
        # would hide a diverged run from build_record's non-finite-loss check; log the loss as computed.
        "logging_nan_inf_filter": False,
        "save_strategy": "steps",
        "save_steps": t.save_steps,
        "save_total_limit": t.save_total_limit,
        # evaluate when a checkpoint is written: evaluation at every logging step would dominate short runs
        "eval_strategy": "steps" if has_eval else "no",
        "eval_steps": t.save_steps if has_eval else None,
        "seed": t.seed,
        "data_seed": t.seed,
        # TRL defaults bf16 on; pubctl follows the config's dtype instead
        "bf16": bf16,
        "fp16": fp16,
        "max_length": t.max_length,
        "gradient_checkpointing": t.gradient_checkpointing,
        "report_to": list(t.report_to) or "none",
    }
    if not on_gpu and bf16:
        # transformers refuses bf16 without a GPU ("Your setup doesn't support bf16/gpu") unless it is told to train
        # on the CPU, where torch's CPU autocast runs bfloat16.
        args["use_cpu"] = True
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not on_gpu:
        args["ddp_backend"] = "gloo"
        # Without use_cpu, accelerate's PartialState does not take a CPU process group for MULTI_CPU: it reports
        # DistributedType.NO, the model is not wrapped in DDP and every rank trains its own shard unsynchronised.
        args["use_cpu"] = True
    _check_trackers(t.report_to)
    return args


TRACKER_MODULES = {"trackio": ("trackio",), "wandb": ("wandb",), "tensorboard": ("tensorboard", "tensorboardX")}
"""The module transformers' integration for each ``training.report_to`` tracker needs."""


def _check_trackers(trackers: list[str]) -> None:
    """A tracker that is not installed is the user's to fix, before the model is loaded (not mid-run)."""
    import importlib.util

    for tracker in trackers:
        if not any(importlib.util.find_spec(module) for module in TRACKER_MODULES[tracker]):
            raise UsageError(
                f"training.report_to lists '{tracker}', which is not installed: pip install {tracker} "
                "(or remove it from training.report_to)."
            )


def run_fingerprint(config: ReleaseConfig) -> str:
    """Hash of what checkpoints depend on; the step budget, logging and saving may change between resumes."""
    import hashlib

    t = config.training
    payload = {
        "model": config.model.model_dump(mode="json"),
        "data": config.data.model_dump(mode="json"),
        "method": config.method.model_dump(mode="json"),
        "lora": config.lora.model_dump(mode="json"),
        "batch": [t.per_device_batch_size, t.gradient_accumulation_steps, t.launcher.num_processes],
        "optimizer": [t.learning_rate, t.lr_scheduler_type, t.weight_decay, t.max_length, t.max_prompt_length, t.seed],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _claim_train_dir(config: ReleaseConfig, layout: Layout, *, resume: bool) -> None:
    """Start over (--no-resume) or check that the checkpoints there belong to this run before resuming."""
    from pipeline.results import atomic_write_text

    checkpoints = sorted(layout.train_dir.glob("checkpoint-*")) if layout.train_dir.is_dir() else []
    run_file = layout.train_dir / RUN_FILE
    fingerprint = run_fingerprint(config)
    if not resume:
        for checkpoint in checkpoints:
            shutil.rmtree(checkpoint)
    elif checkpoints:
        recorded = json.loads(run_file.read_text(encoding="utf-8")).get("fingerprint") if run_file.is_file() else None
        if recorded != fingerprint:
            raise UsageError(
                f"{layout.train_dir} holds checkpoints of a different training run (model, data, method, LoRA or "
                "optimizer settings changed since they were written); resuming from them would mix two runs. "
                f"Start over with: pubctl train {config.name} --no-resume."
            )
    atomic_write_text(run_file, json.dumps({"fingerprint": fingerprint}, indent=2) + "\n")


def last_checkpoint(layout: Layout) -> str | None:
    """The newest complete checkpoint-N folder of the release's train folder.

    transformers writes a checkpoint in place (weights, optimizer, RNG state, then trainer_state.json) and
    pubctl adds its runtime file after that, so a run killed while saving leaves a newer folder without them.
    transformers' get_last_checkpoint would pick that folder and the resume would fail on it (or, missing only
    the runtime file, record too short a runtime); the newest folder holding both is the one to resume from.
    """
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    if not layout.train_dir.is_dir():
        return None
    complete = [
        (int(folder.name.removeprefix(f"{PREFIX_CHECKPOINT_DIR}-")), folder)
        for folder in layout.train_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*")
        if folder.name.removeprefix(f"{PREFIX_CHECKPOINT_DIR}-").isdigit()
        and (folder / "trainer_state.json").is_file()
        and (folder / RUNTIME_FILE).is_file()
    ]
    return str(max(complete)[1]) if complete else None


def _checkpoint_progress(config: ReleaseConfig, checkpoint: str | None) -> tuple[int, float]:
    """Step and cumulative training time of ``checkpoint``; a UsageError when it already holds the whole run."""
    if checkpoint is None:
        return 0, 0.0
    folder = Path(checkpoint)
    state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    step = int(state["global_step"])
    t = config.training
    done = step >= t.max_steps if t.max_steps > 0 else float(state.get("epoch") or 0) >= t.epochs - 1e-9
    if done:
        budget = f"training.max_steps ({t.max_steps})" if t.max_steps > 0 else f"training.epochs ({t.epochs})"
        raise UsageError(
            f"{folder} already holds the whole run: step {step} reaches {budget}. Raise {budget.split(' ')[0]} to "
            f"train further, or start over with: pubctl train {config.name} --no-resume."
        )
    earlier = json.loads((folder / RUNTIME_FILE).read_text(encoding="utf-8"))["runtime_seconds"]
    return step, float(earlier)


def _replace_dir(staging: Path, target: Path) -> None:
    """Put ``staging`` at ``target``; the old folder is removed only once the new one is in place."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
        target.rename(old / target.name)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old)


# --------------------------------------------------------------------------- record
def _finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


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
) -> TrainingRecord:
    """The training section from the trainer's state; a run that did not really train is a StageFailed."""
    from pipeline.results import TrainingRecord

    t = config.training
    steps = int(state.global_step)
    log_history = [dict(entry) for entry in state.log_history]
    losses = [entry["loss"] for entry in log_history if "loss" in entry]
    train_loss = next((entry["train_loss"] for entry in reversed(log_history) if "train_loss" in entry), None)
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
    if not losses:
        raise StageFailed(
            f"training of '{config.name}' logged no loss in {steps} steps (training.logging_steps is "
            f"{t.logging_steps}); nothing was recorded. Log at least once: logging_steps <= the number of steps."
        )
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
    # A metric TRL could not compute for a batch (e.g. no undesirable rows in it) is logged as NaN: keep it as null.
    for entry in log_history:
        for key, value in entry.items():
            if not _finite(value):
                entry[key] = None
    dataset = data.record()
    dataset["rows_after_trainer_filtering"] = rows_trained
    return TrainingRecord(
        method=config.method.name,
        method_params=config.method.model_dump(mode="json", exclude={"name"}),
        datasets=[dataset],
        hyperparameters={
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
                "r": config.lora.r,
                "alpha": config.lora.alpha,
                "dropout": config.lora.dropout,
                "target_modules": config.lora.target_modules,
                "modules_to_save": list(config.lora.modules_to_save),
                "use_rslora": config.lora.use_rslora,
                "use_dora": config.lora.use_dora,
            },
        },
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
        log_history=log_history,
        hardware=hardware,
    )


# ---------------------------------------------------------------------- processes
def _in_worker() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch_command(config: ReleaseConfig, layout: Layout, *, resume: bool, on_gpu: bool) -> list[str]:
    """The command that runs the train worker as launcher.num_processes processes."""
    launcher = config.training.launcher
    port = str(launcher.main_process_port or _free_port())
    worker = [str(config.path), "--root", str(layout.root), "--resume" if resume else "--no-resume"]
    if on_gpu:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(launcher.num_processes)]
        command += ["--main_process_port", port]
        if launcher.config_file:
            config_file = Path(launcher.config_file).expanduser()
            config_file = config_file if config_file.is_absolute() else layout.root / config_file
            if not config_file.is_file():
                raise UsageError(f"training.launcher.config_file: no accelerate config at {config_file}.")
            command += ["--config_file", str(config_file)]
        return [*command, "-m", WORKER_MODULE, *worker]
    # accelerate launch --cpu runs a single process; torch's own launcher starts the N gloo ranks.
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc_per_node",
        str(launcher.num_processes),
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        port,
        "-m",
        WORKER_MODULE,
        *worker,
    ]


def _launch(config: ReleaseConfig, layout: Layout, *, resume: bool) -> TrainingRecord:
    """Run the stage as several processes; rank 0 writes the record, which is read back here."""
    import torch

    from pipeline.results import read_results

    if config.path is None:
        raise UsageError("multi-process training needs a config loaded from a file (the workers load it again).")
    command = launch_command(config, layout, resume=resume, on_gpu=torch.cuda.is_available())
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".train-status-", suffix=".json", dir=layout.run_dir)
    os.close(fd)
    status = Path(name)
    env = {**os.environ, STATUS_ENV: str(status), "PUBCTL_ROOT": str(layout.root)}
    written_before = layout.results.stat().st_mtime_ns if layout.results.is_file() else None
    try:
        completed = subprocess.run(command, env=env, check=False)
        reported = json.loads(status.read_text(encoding="utf-8")) if status.stat().st_size else None
    finally:
        status.unlink(missing_ok=True)
    if reported is not None:
        error = StageFailed if reported["exit_code"] == StageFailed.exit_code else UsageError
        raise error(reported["message"])
    if completed.returncode != 0:
        raise StageFailed(
            f"multi-process training of '{config.name}' failed (exit {completed.returncode} from "
            f"{' '.join(command[:4])} ...); see the worker output above. Nothing was recorded."
        )
    written_after = layout.results.stat().st_mtime_ns if layout.results.is_file() else None
    if written_after is None or written_after == written_before:
        raise StageFailed(f"the training workers of '{config.name}' exited without writing {layout.results}.")
    record = read_results(layout.results).training
    assert record is not None  # written by rank 0 just now
    return record


def report_worker_error(exc: PubctlError) -> bool:
    """Hand a user error to the launching stage, which prints it once; False when there is none to tell.

    Every rank raises the same error; rank 0 reports it and the others stay quiet.
    """
    path = os.environ.get(STATUS_ENV)
    if not path:
        return False
    if int(os.environ.get("RANK", "0")) == 0:
        from pipeline.results import atomic_write_text

        atomic_write_text(Path(path), json.dumps({"exit_code": exc.exit_code, "message": str(exc)}))
    return True


# ------------------------------------------------------------------------ per rank
def _make_rank_counter_class() -> type:
    from transformers import TrainerCallback

    class RankCounter(TrainerCallback):
        """Counts what this process did: optimizer steps and micro-batches (the proof every rank trained)."""

        def __init__(self) -> None:
            self.steps = 0
            self.micro_batches = 0

        def on_substep_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.micro_batches += 1

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.steps += 1
            self.micro_batches += 1  # the accumulation step that ends in the optimizer step

        def summary(self) -> dict[str, Any]:
            return {
                "rank": int(os.environ.get("RANK", "0")),
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "optimizer_steps": self.steps,
                "micro_batches": self.micro_batches,
            }

    return RankCounter


def rank_counter() -> Any:
    """A fresh per-rank counter callback (its class is built here so transformers is imported lazily)."""
    return _make_rank_counter_class()()


def _make_runtime_clock_class() -> type:
    from transformers import TrainerCallback

    class RuntimeClock(TrainerCallback):
        """Monotonic training time, written into every checkpoint so resumed runs add up their parts."""

        def __init__(self, earlier: float) -> None:
            self.earlier = earlier
            self.started: float | None = None

        def start(self) -> None:
            self.started = time.monotonic()

        def elapsed(self) -> float:
            if self.started is None:
                raise RuntimeError("RuntimeClock.start() was not called before training")
            return time.monotonic() - self.started

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if not state.is_world_process_zero:
                return
            from pipeline.results import atomic_write_text

            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                total = {"runtime_seconds": self.earlier + self.elapsed()}
                atomic_write_text(folder / RUNTIME_FILE, json.dumps(total) + "\n")

    return RuntimeClock


def runtime_clock(earlier: float) -> Any:
    """A training clock callback that starts from ``earlier`` seconds (a resumed run)."""
    return _make_runtime_clock_class()(earlier)


def _gather(summary: dict[str, Any], world_size: int) -> list[dict[str, Any]]:
    """Every rank's summary, on every rank (one collective)."""
    if world_size <= 1:
        return [summary]
    import torch.distributed as dist

    gathered: list[Any] = [None] * world_size
    dist.all_gather_object(gathered, summary)
    return sorted(gathered, key=lambda item: item["rank"])


def _hardware(torch: Any, world_size: int, ranks: list[dict[str, Any]], distributed_type: str) -> dict[str, Any]:
    from pipeline.provenance import hardware

    info = hardware()
    info["world_size"] = world_size
    info["distributed_type"] = distributed_type  # accelerate's: MULTI_CPU, MULTI_GPU, DEEPSPEED, FSDP or NO
    info["backend"] = torch.distributed.get_backend() if world_size > 1 and torch.distributed.is_initialized() else None
    info["ranks"] = ranks
    return info
