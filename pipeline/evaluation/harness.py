"""Running lm-evaluation-harness in-process and turning its output into benchmark results.

lm-eval does all the scoring: pubctl builds a TaskManager, loads the config's tasks, sets each task's
num_fewshot (lm-eval's own ``num_fewshot`` argument is one value for all tasks; the config has one per
task) and calls ``lm_eval.simple_evaluate``. From its output pubctl only reads numbers: the metric, its
stderr, the item count and the task config that says which data was scored.
"""

from __future__ import annotations

import contextlib
import difflib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import TaskSpec
from pipeline.console import captured
from pipeline.errors import StageFailed, UsageError
from pipeline.evaluation.tasks import TaskSource

HARNESS = "lm-eval"
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def harness_version() -> str:
    from importlib import metadata

    return metadata.version("lm_eval")


@contextlib.contextmanager
def hf_offline(enabled: bool) -> Iterator[None]:
    """Run the Hub client and datasets offline while the bundled tasks load (their data is local).

    Only for the bundled tasks: real benchmarks download from the Hub. huggingface_hub and datasets read
    these variables once, at import, so when they are already imported (e.g. by the train stage of a
    chained release) their module-level flags are set too, and everything is restored afterwards.
    """
    if not enabled:
        yield
        return
    # Imported before the environment changes: a first import inside this block would read the offline values,
    # the saved flags would be those, and restoring them would leave the whole process offline afterwards.
    import datasets.config
    import huggingface_hub.constants

    saved_env = {name: os.environ.get(name) for name in OFFLINE_VARIABLES}
    os.environ.update(dict.fromkeys(OFFLINE_VARIABLES, "1"))
    flags = [
        (huggingface_hub.constants, "HF_HUB_OFFLINE"),
        (datasets.config, "HF_HUB_OFFLINE"),
        (datasets.config, "HF_DATASETS_OFFLINE"),
    ]
    saved_flags = [(module, name, getattr(module, name)) for module, name in flags]
    for module, name in flags:
        setattr(module, name, True)
    try:
        yield
    finally:
        for module, name, value in saved_flags:
            setattr(module, name, value)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def task_manager(source: TaskSource) -> Any:
    from lm_eval.tasks import TaskManager

    include = str(source.include_path) if source.include_path else None
    return TaskManager(include_path=include, include_defaults=source.include_defaults)


def check_task_names(manager: Any, specs: list[TaskSpec], source: TaskSource) -> None:
    """Unknown task names are a usage error, found before any model is loaded."""
    known = set(manager.all_tasks)
    for spec in specs:
        if spec.name in known:
            if spec.name in manager.all_tags and spec.name not in manager.all_groups:
                raise UsageError(
                    f"evaluation.tasks: '{spec.name}' is an lm-eval tag of several tasks with no aggregate score; "
                    "list the tasks you want one by one (or use a group such as mmlu)."
                )
            continue
        close = difflib.get_close_matches(spec.name, sorted(known), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        where = f"the task folder {source.include_path}" if source.include_path else "lm-eval's task registry"
        if source.include_path and source.include_defaults:
            where += " or lm-eval's own tasks"
        raise UsageError(f"evaluation.tasks: unknown lm-eval task '{spec.name}' (not in {where}).{hint}")


def _leaf_metrics(task: Any) -> set[str]:
    return {item["metric"] for item in (task.config.metric_list or []) if isinstance(item.get("metric"), str)}


def load_tasks(manager: Any, specs: list[TaskSpec]) -> list[Any]:
    """lm-eval Task/Group objects for ``specs`` with each spec's num_fewshot set; data problems are UsageErrors."""
    loaded = []
    for spec in specs:
        try:
            built = manager.load([spec.name])
        except (FileNotFoundError, ConnectionError, OSError, ValueError) as exc:
            raise UsageError(
                f"evaluation.tasks: could not load task '{spec.name}' or its data "
                f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}). "
                "Check the task's dataset_path/data_files, and that Hub datasets are reachable from this machine."
            ) from None
        leaves = list(built["tasks"].values())
        metric = spec.metric.split(",")[0]
        missing = [task.task_name for task in leaves if metric not in _leaf_metrics(task)]
        if missing:
            available = sorted(set().union(*(_leaf_metrics(task) for task in leaves)))
            raise UsageError(
                f"evaluation.tasks: task '{spec.name}' does not report metric '{spec.metric}' "
                f"(it reports: {', '.join(available) or 'nothing'})."
            )
        for task in leaves:
            task.set_config(key="num_fewshot", value=spec.num_fewshot)
        loaded.append(built["groups"][spec.name] if spec.name in built.get("groups", {}) else leaves[0])
    return loaded


@dataclass(frozen=True)
class HarnessSettings:
    """Everything besides the model and tasks that changes what lm-eval computes."""

    device: str
    batch_size: int
    limit: int | None
    bootstrap_iters: int
    seed: int
    trust_remote_code: bool = False
    """model.trust_remote_code: lm-eval's HFLM refuses a model with its own modelling code without it."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "batch_size": self.batch_size,
            "limit": self.limit,
            "bootstrap_iters": self.bootstrap_iters,
            "seed": self.seed,
            "trust_remote_code": self.trust_remote_code,
        }

    def model_args(self, model_path: Path, dtype: str) -> dict[str, Any]:
        """simple_evaluate's model_args for the HF model at ``model_path``."""
        return {"pretrained": str(model_path), "dtype": dtype, "trust_remote_code": self.trust_remote_code}


def load_model(model_path: Path, dtype: str, settings: HarnessSettings) -> Any:
    """lm-eval's HF model wrapper, built exactly as simple_evaluate(model="hf", model_args=...) builds it."""
    from lm_eval.api.registry import get_model

    return get_model("hf").create_from_arg_obj(
        settings.model_args(model_path, dtype),
        {"batch_size": settings.batch_size, "max_batch_size": None, "device": settings.device},
    )


def merge_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One lm-eval result dictionary from several per-task ones.

    lm-eval has no merge of its own; its per-task maps (results, configs, n-shot, n-samples, samples, ...)
    are dictionaries keyed by task name, so they are united; the rest (model config, versions, environment)
    is the same for every run and taken from the first.
    """
    merged: dict[str, Any] = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, dict) and key != "config":
            merged[key] = {name: item for run in runs for name, item in (run.get(key) or {}).items()}
    times = [run.get("total_evaluation_time_seconds") for run in runs]
    if all(isinstance(t, (int, float, str)) for t in times):
        merged["total_evaluation_time_seconds"] = str(sum(float(t) for t in times))
    return merged


@dataclass
class ModelRun:
    """lm-eval's output for one model, and the model it loaded (kept for the throughput measurement)."""

    results: dict[str, Any]
    lm: Any


def run_lm_eval(
    model_path: Path,
    dtype: str,
    specs: list[TaskSpec],
    source: TaskSource,
    settings: HarnessSettings,
    on_task: Callable[[int, TaskSpec], None] | None = None,
) -> ModelRun:
    """lm-eval's result dictionary (with ``samples``) for one model on ``specs``.

    One simple_evaluate call per task, the way lm-eval is run when tasks need different few-shot counts
    (its num_fewshot is global): lm-eval batches the requests of all tasks of one call together, and a
    different batch composition changes the last bits of the log-likelihoods. Per-task calls give the same
    numbers as ``lm_eval --tasks T --num_fewshot K``; the model is loaded once and shared by the calls.
    ``on_task(i, spec)`` is told before the i-th task (from 0) runs.

    lm-eval's progress bars and the git it runs to read a commit print past the loggers: captured() keeps them
    in the stage's log.
    """
    with hf_offline(source.offline), captured():
        import lm_eval

        manager = task_manager(source)
        check_task_names(manager, specs, source)
        tasks = load_tasks(manager, specs)
        lm = load_model(model_path, dtype, settings)
        runs = []
        for index, (spec, task) in enumerate(zip(specs, tasks, strict=True)):
            if on_task is not None:
                on_task(index, spec)
            results = lm_eval.simple_evaluate(
                model=lm,
                model_args=settings.model_args(model_path, dtype),
                tasks=[task],
                task_manager=manager,
                device=settings.device,
                batch_size=settings.batch_size,
                limit=settings.limit,
                bootstrap_iters=settings.bootstrap_iters,
                log_samples=True,
                random_seed=settings.seed,
                numpy_random_seed=settings.seed,
                torch_random_seed=settings.seed,
                fewshot_random_seed=settings.seed,
            )
            if results is None:  # only non-zero ranks get None; pubctl evaluates in one process
                raise StageFailed("lm-eval returned no results (was this process not rank 0?).")
            runs.append(results)
    return ModelRun(merge_runs(runs), lm)
