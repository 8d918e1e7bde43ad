"""The ``training`` section from TRL's trainer_state.json (and the adapter's adapter_config.json).

What the files hold is taken from them: steps, epochs, per-device batch, the log history, runtime and the
samples the Trainer counted (``train_samples_per_second`` x ``train_runtime``, as its speed metrics compute
them), the LoRA settings. What no file holds (gradient accumulation, max length, seed, the method) comes from
the config where the user wrote it, and the section's origin lists it. Nothing is judged here: a run of zero
steps or a loss of exactly 0 is recorded as the file says, and the training gates refuse it at ``pubctl check``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from pipeline.errors import UsageError
from pipeline.importing.declared import require, written
from pipeline.importing.files import ReadFile, read_json, shown
from pipeline.origin import Origin, SourceFile
from pipeline.record_validation import describe_errors
from pipeline.refs import excerpt
from pipeline.results import Lineage, TrainingRecord
from pipeline.stages.train.record import nulled_non_finite

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig
    from pipeline.layout import Layout

STATE_FILE = "trainer_state.json"
DECLARED_HYPERPARAMETERS = (
    "gradient_accumulation_steps",
    "max_length",
    "seed",
    "lr_scheduler_type",
    "warmup_ratio",
    "weight_decay",
    "max_grad_norm",
    "max_prompt_length",
    "gradient_checkpointing",
)
"""TrainingArguments no trainer_state.json or adapter_config.json records (the Trainer pickles them in
training_args.bin, which pubctl never unpickles: loading a pickle runs whatever code it holds)."""
REQUIRED = ("training.gradient_accumulation_steps", "training.max_length", "training.seed")


def state_file(path: Path) -> Path:
    """trainer_state.json itself, or the one in the folder named (an output or checkpoint folder)."""
    if not path.is_dir():
        return path
    inside = path / STATE_FILE
    if not inside.exists():
        raise UsageError(
            f"import.trainer_state: {path} holds no {STATE_FILE}; name the file, or the folder trainer.save_state() "
            "wrote it to (the Trainer's output_dir)."
        )
    return inside


NUMERIC_LOG_KEYS = (
    "loss", "eval_loss", "train_loss", "learning_rate", "grad_norm", "epoch", "step",
    "train_runtime", "train_samples_per_second",
)  # fmt: skip
"""Log entries' keys the Trainer always writes as numbers, and the record and the card read as numbers."""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _state_fields(state: dict[str, Any], path: Path) -> None:
    """A UsageError unless ``state`` has the fields a transformers TrainerState writes."""
    wrong = [
        key
        for key, ok in (
            ("global_step", isinstance(state.get("global_step"), int) and not isinstance(state["global_step"], bool)),
            ("log_history", isinstance(state.get("log_history"), list)),
            ("train_batch_size", isinstance(state.get("train_batch_size"), int)),
            ("num_train_epochs", _number(state.get("num_train_epochs"))),
        )
        if not ok
    ]
    if wrong:
        raise UsageError(
            f"import.trainer_state: {path} is not a transformers trainer_state.json (missing or wrong: "
            f"{', '.join(wrong)})."
        )
    if not all(isinstance(entry, dict) for entry in state["log_history"]):
        raise UsageError(f"import.trainer_state: {path}: log_history holds something other than log entries.")
    for number, entry in enumerate(state["log_history"]):
        nested = next((key for key, value in entry.items() if isinstance(value, (dict, list))), None)
        if nested is not None:  # the Trainer logs flat numbers and strings; the record bounds nesting
            raise UsageError(
                f"import.trainer_state: {path}: log_history[{number}].{nested} is not a number or text, as the "
                "Trainer logs them."
            )
        texts = [key for key in NUMERIC_LOG_KEYS if key in entry and not (entry[key] is None or _number(entry[key]))]
        if texts:  # "0.5" would become a loss on the card, read from text the Trainer never writes
            raise UsageError(
                f"import.trainer_state: {path}: log_history[{number}].{texts[0]} is {excerpt(entry[texts[0]])}, "
                "not a number as the Trainer logs it."
            )


def _summary(log: list[dict[str, Any]], path: Path) -> dict[str, Any]:
    """The Trainer's end-of-training entry (train_runtime, train_samples_per_second, train_loss)."""
    summary = next((entry for entry in reversed(log) if "train_runtime" in entry), None)
    if summary is None or not _number(summary["train_runtime"]):
        raise UsageError(
            f"import.trainer_state: {path} has no train_runtime: it is a checkpoint's state, saved before training "
            "ended, and says neither how long the run took nor that it finished. Import the state the Trainer "
            "saves after train() (trainer.save_state() writes output_dir/trainer_state.json)."
        )
    return summary


def _lora(adapter_config: dict[str, Any]) -> dict[str, Any]:
    """The record's lora settings as peft saved them in adapter_config.json."""
    targets = adapter_config.get("target_modules")
    return {
        "r": adapter_config.get("r"),
        "alpha": adapter_config.get("lora_alpha"),
        "dropout": adapter_config.get("lora_dropout"),
        "target_modules": sorted(targets) if isinstance(targets, list) else targets,
        "modules_to_save": adapter_config.get("modules_to_save") or [],
        "use_rslora": bool(adapter_config.get("use_rslora")),
        "use_dora": bool(adapter_config.get("use_dora")),
    }


def _declared_lora(config: ReleaseConfig) -> dict[str, Any]:
    require(config, ["lora.r", "lora.alpha", "lora.dropout", "lora.target_modules"], "no adapter was imported")
    lora = config.lora
    return {"r": lora.r, "alpha": lora.alpha, "dropout": lora.dropout, "target_modules": lora.target_modules}


def _samples(summary: dict[str, Any]) -> int | None:
    """Samples the Trainer counted: its train_samples_per_second is that count over train_runtime."""
    speed, runtime = summary.get("train_samples_per_second"), summary["train_runtime"]
    if not _number(speed) or not math.isfinite(speed) or not math.isfinite(runtime):
        return None
    product = speed * runtime
    return max(round(product), 0) if math.isfinite(product) else None  # 1e200 x 1e200: no count at all


def _check_batch(steps: int, max_steps: Any, samples: int | None, effective: int, path: Path) -> None:
    """With max_steps set, the Trainer counts max_steps x the effective batch: the declared batch must give it."""
    if samples is None or steps <= 0 or not isinstance(max_steps, int) or max_steps <= 0:
        return
    per_step = samples / max_steps
    if abs(per_step - effective) > 0.01 * effective + 0.5:
        raise UsageError(
            f"import.trainer_state: {path} counts {samples} samples in {max_steps} steps ({per_step:g} per step), "
            f"but the config's per-device batch x training.gradient_accumulation_steps x "
            f"training.launcher.num_processes is {effective}; set them to what the run used."
        )


def _datasets(config: ReleaseConfig, layout: Layout) -> tuple[list[dict[str, Any]], list[str]]:
    """The training data the config declares, its rows counted and its revision pinned by pubctl; none when the
    YAML names none (no file of the run says what it trained on)."""
    if written(config, "data.train") is None:
        return [], []
    from pipeline.training_data import load_source

    train, _, source = load_source(config, layout)
    entry = {"id": source.id, "split": source.split, "revision": source.revision, "rows": len(train)}
    return [entry], ["training.datasets (declared in data; rows and revision of that split measured by pubctl)"]


def _hyperparameters(config: ReleaseConfig, state: dict[str, Any], declared: list[str]) -> dict[str, Any]:
    """The run's settings: what trainer_state.json holds, then what the config writes (named in ``declared``)."""
    hp: dict[str, Any] = {
        "epochs": state["num_train_epochs"],
        "per_device_batch_size": state["train_batch_size"],
        "max_steps": state.get("max_steps"),
    }
    rates = [entry["learning_rate"] for entry in state["log_history"] if _number(entry.get("learning_rate"))]
    if rates:
        hp["learning_rate"] = max(rates)  # the peak as logged (a warm-up between two logs can peak higher)
    else:
        require(config, ["training.learning_rate"], "the trainer state logged no learning rate")
        hp["learning_rate"] = config.training.learning_rate
        declared.append("training.hyperparameters.learning_rate")
    for name in DECLARED_HYPERPARAMETERS:
        value = written(config, f"training.{name}")
        if value is not None:
            hp[name] = value
            declared.append(f"training.hyperparameters.{name}")
    processes = written(config, "training.launcher.num_processes")
    if processes is not None:
        hp["num_processes"] = processes
        declared.append("training.hyperparameters.num_processes")
    hp["effective_batch_size"] = hp["per_device_batch_size"] * hp["gradient_accumulation_steps"] * (processes or 1)
    return hp


def training_section(
    config: ReleaseConfig, layout: Layout, path: Path, adapter: tuple[dict[str, Any], ReadFile] | None
) -> TrainingRecord:
    """The training section from the trainer_state.json at ``path`` (and the adapter's config, when imported)."""
    state, read = read_json(path, "trainer_state")
    _state_fields(state, path)
    summary = _summary(state["log_history"], path)
    require(config, ["method.name", *REQUIRED], f"{path.name} records neither the method nor these arguments")
    declared = ["training.method", "training.method_params"]
    hp = _hyperparameters(config, state, declared)
    samples = _samples(summary)
    _check_batch(state["global_step"], state.get("max_steps"), samples, hp["effective_batch_size"], path)
    also_read = []
    if adapter is not None:
        adapter_config, adapter_file = adapter
        hp["lora"] = _lora(adapter_config)
        where = shown(adapter_file.path, layout.root, "adapter", adapter_file.path.parent)
        also_read.append(SourceFile(role="adapter_config.json", path=where, sha256=adapter_file.sha256))
    else:
        hp["lora"] = _declared_lora(config)
        declared.append("training.hyperparameters.lora")
    if samples is None:
        samples = state["global_step"] * hp["effective_batch_size"]
        declared.append("training.samples (optimizer steps x the declared effective batch)")
    datasets, measured = _datasets(config, layout)
    history = nulled_non_finite(state["log_history"])
    losses = [entry["loss"] for entry in history if "loss" in entry]
    given = config.import_.resolved("trainer_state", layout.root) or path
    record = {
        "method": config.method.name,
        "method_params": config.method.model_dump(mode="json", exclude={"name"}, exclude_unset=True),
        "datasets": datasets,
        "hyperparameters": hp,
        "steps": state["global_step"],
        "samples": samples,
        "runtime_seconds": summary["train_runtime"],
        "final_loss": losses[-1] if losses else None,
        "train_loss": summary.get("train_loss") if _number(summary.get("train_loss")) else None,
        "epochs_completed": state.get("epoch") if _number(state.get("epoch")) else None,
        "log_history": history,
        "lineage": Lineage(),
        "origin": Origin(
            kind="imported",
            file=shown(read.path, layout.root, "trainer_state", given),
            sha256=read.sha256,
            also_read=also_read,
            measured=measured,
            declared=declared,
        ),
    }
    try:
        return TrainingRecord.model_validate(record)
    except ValidationError as exc:
        raise UsageError(
            f"import.trainer_state: {path} (with the config's declarations) does not make a training record: "
            f"{describe_errors(exc.errors(include_url=False))}."
        ) from None
