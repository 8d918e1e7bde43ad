"""The rehearsal's config: the real one with the model, data, step budget and benchmark sizes shrunk.

Everything a GPU run could fail on is kept as the real config has it: the dtype, the method and
its parameters, the LoRA targets, the batch size, the data's schema and column mapping, the chat
template, the benchmark task names and shots, the card and hub settings. What is shrunk is
listed field by field in the record, and the card shows that list.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from pipeline.config import BUILTIN_TASKS
from pipeline.results import RehearsalChange

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig
    from pipeline.rehearsal.options import RehearsalOptions

LOOKALIKES = {"hellaswag": "demo_hellaswag", "truthfulqa_mc2": "demo_truthfulqa_mc2", "mmlu": "demo_mmlu"}
"""Offline, each benchmark runs as pubctl's bundled look-alike: lm-eval's own task config on a few local items."""
HALF_PRECISION_PARITY = 0.9
"""merge.parity_max_relative of a half-precision rehearsal. A few optimizer steps leave LoRA deltas below bfloat16's
resolution next to the base weights, so rounding W + dW loses a third of the adapter's tiny effect where a real run's
adapter survives it; 0.9 still fails a merge that dropped the adapter (ratio 1) or applied it twice (ratio 1)."""
MAX_EVAL_BATCH = 4
"""lm-eval batch on a rehearsal: full-vocabulary logits of long few-shot prompts take GBs per item on a CPU."""


def _real(config: ReleaseConfig, dotted: str) -> Any:
    """The config's value at ``dotted`` as JSON data (read from the model: dumps leave some defaults out)."""
    from pydantic_core import to_jsonable_python

    node: Any = config
    for part in dotted.split("."):
        node = getattr(node, part)
    return to_jsonable_python(node)


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[last] = value


def derive_config(
    config: ReleaseConfig,
    options: RehearsalOptions,
    *,
    base_model: str,
    data_file: str,
    rows: int,
    offline: bool,
    on_gpu: bool,
    native_dtype: bool,
) -> tuple[dict[str, Any], list[RehearsalChange], dict[str, str | None]]:
    """The rehearsal config as data, the changes from the real one, and each real task's rehearsed name."""
    real = config.model_dump(mode="json")
    data = copy.deepcopy(real)
    t = config.training
    max_length = min(t.max_length, options.max_length)
    max_prompt = min(t.max_prompt_length or max_length // 2, max_length // 2)
    # The held-out loss is evaluated as the real run does, on one row: each eval row costs as much as a step.
    evaluates_loss = bool(config.data.eval_split or config.data.eval_fraction) and rows > 1
    settings: dict[str, Any] = {
        "model.base_model": base_model,
        "model.revision": None,
        "data.train": data_file,
        "data.subset": None,
        "data.split": "train",
        "data.revision": None,
        "data.eval_split": None,
        "data.eval_fraction": 1 / rows if evaluates_loss else None,
        "data.max_samples": None,
        "training.max_steps": options.steps,
        "training.gradient_accumulation_steps": 1,
        "training.max_length": max_length,
        "training.max_prompt_length": max_prompt,
        "training.logging_steps": 1,
        "training.save_steps": options.steps,  # one checkpoint: the resume path is exercised
        "training.save_total_limit": 1,
        "training.report_to": [],
        "training.launcher.num_processes": 1,
        "training.launcher.config_file": None,
        "evaluation.limit": options.limit,
        # The base of a rehearsal is random weights: its scores say nothing the tuned run's do not.
        "evaluation.evaluate_base": False,
        "evaluation.batch_size": min(config.evaluation.batch_size, MAX_EVAL_BATCH),
        "evaluation.bootstrap_iters": min(config.evaluation.bootstrap_iters, 100),
        "evaluation.throughput.prompts": 1,
        "evaluation.throughput.new_tokens": 8,
        "evaluation.throughput.runs": 1,
        "evaluation.throughput.warmup_runs": 0,
        "card.model_name": f"REHEARSAL of {config.card.model_name or config.hub.repo_id.split('/')[-1]}",
        # Other releases' cards hold real scores: beside a random model they would only mislead.
        "card.compare_with": [],
        # A rehearsal proves the steps run, on as few rows as --rows gave: the release keeps its own minimum.
        "checks.min_samples": 1,
    }
    if not native_dtype:
        # check_precision has passed: the dtype trains here, but emulated (pipeline/precision.py), hundreds of times
        # slower than float32 in the head's backward pass over the real vocabulary. Minutes, not hours: float32.
        settings["model.dtype"] = "float32"
    elif config.model.dtype in ("bfloat16", "float16") and config.merge.parity_tolerance is None:
        settings["merge.parity_max_relative"] = max(config.merge.parity_max_relative, HALF_PRECISION_PARITY)
    if not on_gpu and config.evaluation.device not in ("auto", "cpu"):
        settings["evaluation.device"] = "cpu"
    tasks: dict[str, str | None] = {task.name: task.name for task in config.evaluation.tasks}
    if offline and config.evaluation.include_path is None:
        tasks = {name: LOOKALIKES.get(name) for name in tasks}
        kept = [dict(task, name=tasks[task["name"]]) for task in real["evaluation"]["tasks"] if tasks[task["name"]]]
        # No look-alike for any task: the evaluate stage still runs, on one, so its plumbing is rehearsed.
        settings["evaluation.tasks"] = kept or [{"name": "demo_hellaswag", "num_fewshot": 0, "metric": "acc_norm"}]
        settings["evaluation.include_path"] = BUILTIN_TASKS
    changes = []
    for dotted, value in settings.items():
        before = _real(config, dotted)
        if before != value:
            _set(data, dotted, value)
            changes.append(RehearsalChange(field=dotted, real=before, rehearsal=value))
    return data, changes, tasks
