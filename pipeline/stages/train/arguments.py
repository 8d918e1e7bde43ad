"""What the trainer is built from: the TRL version gate, TrainingArguments, the LoRA and the checks on them.

Each check here stops a run before a model is loaded or a process launched, so a
mistake in the config costs seconds, not a failed training run.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pipeline.errors import UsageError

if TYPE_CHECKING:
    from pathlib import Path

    from peft import LoraConfig

    from pipeline.config import ReleaseConfig
    from pipeline.layout import Layout

TRL_TESTED = (">=1.16", "<1.17")
"""TRL versions pubctl's trainers are tested with (TRL moves trainers between releases)."""

TRACKER_MODULES = {"trackio": ("trackio",), "wandb": ("wandb",), "tensorboard": ("tensorboard", "tensorboardX")}
"""The module transformers' integration for each ``training.report_to`` tracker needs."""


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


def check_trackers(trackers: list[str]) -> None:
    """A tracker that is not installed is the user's to fix, before the model is loaded (not mid-run)."""
    import importlib.util

    for tracker in trackers:
        if not any(importlib.util.find_spec(module) for module in TRACKER_MODULES[tracker]):
            raise UsageError(
                f"training.report_to lists '{tracker}', which is not installed: pip install {tracker} "
                "(or remove it from training.report_to)."
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
        # The stage shows the step and the logged metrics on its own display (progress.py), not as tqdm bars.
        "disable_tqdm": True,
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
    check_trackers(t.report_to)
    return args
