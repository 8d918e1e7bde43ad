"""Benchmark results from lm-eval's output: the configured metric, its stderr and how it was computed, n, chance.

pubctl only reads numbers here; lm-eval did the scoring.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pipeline.config import TaskSpec
from pipeline.errors import StageFailed
from pipeline.evaluation.harness import HARNESS, HarnessSettings, harness_version
from pipeline.evaluation.tasks import CHANCE_BY_TASK, chance_from_samples, common, dataset_of
from pipeline.refs import excerpt
from pipeline.results import BenchmarkResult


def _metric_key(entry: dict[str, Any], metric: str, task: str) -> tuple[str, str]:
    """lm-eval's '<metric>,<filter>' key for ``metric`` and its filter name."""
    if "," in metric:
        if metric in entry:
            return metric, metric.split(",", 1)[1]
    else:
        if f"{metric},none" in entry:
            return f"{metric},none", "none"
        keys = [key for key in entry if key.startswith(f"{metric},") and "_stderr" not in key]
        if len(keys) == 1:
            return keys[0], keys[0].split(",", 1)[1]
    raise StageFailed(f"lm-eval reported no '{metric}' for task '{task}' (it reported: {sorted(entry)}).")


def _score(entry: dict[str, Any], key: str, task: str) -> float:
    """The score lm-eval reported, a finite number: '0.9' as text or a NaN is damaged output, not a score."""
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise StageFailed(f"results.{task}.{key} is {excerpt(value)}, not a finite number.")
    return float(value)


def _stderr(value: Any) -> float | None:
    """lm-eval's stderr: 'N/A' (or NaN, for one item) when it computed none."""
    finite = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if finite else None


def _leaves(results: dict[str, Any], name: str) -> list[str]:
    children = results.get("group_subtasks", {}).get(name)
    if not children:
        return [name]
    return [leaf for child in children for leaf in _leaves(results, child)]


def _stderr_method(configs: list[dict[str, Any]], metric: str, bootstrap_iters: int, group: bool) -> str:
    """How lm-eval computed the recorded stderr, decided by lm-eval's own ``stderr_for_metric``.

    lm-eval uses a closed form for ``mean`` (sample std / sqrt(n)) and ``acc_all``, bootstraps a fixed list of
    other aggregations with ``bootstrap_iters`` resamples, and has none for the rest. A group's stderr is not
    computed from items at all: lm-eval pools its subtasks' stderrs (size-weighted, or for an unweighted mean).
    """
    from lm_eval.api.metrics import acc_all_stderr, mean_stderr, stderr_for_metric
    from lm_eval.api.registry import get_aggregation

    methods = set()
    for config in configs:
        for item in config.get("metric_list") or []:
            if item.get("metric") != metric:
                continue
            name = item.get("aggregation")
            aggregation = get_aggregation(name) if isinstance(name, str) else None
            estimator = stderr_for_metric(aggregation, bootstrap_iters) if aggregation is not None else None
            if estimator is None:
                methods.add(f"none (lm-eval has no stderr for the aggregation {name!r})")
            elif estimator in (mean_stderr, acc_all_stderr):
                methods.add(f"closed-form ({name}: sample std / sqrt(n), no bootstrap)")
            else:
                methods.add(f"bootstrap ({bootstrap_iters} resamples of the {name} aggregation)")
    method = "; ".join(sorted(methods)) or "unknown (the task config lists no aggregation for this metric)"
    if group:
        return f"pooled by lm-eval's group aggregation from its {len(configs)} subtasks' stderrs, each {method}"
    return method


def _task_version(results: dict[str, Any], task: str) -> str | None:
    """lm-eval's version of ``task`` as text, or None when it reports none (never the string 'None')."""
    version = (results.get("versions") or {}).get(task)
    return None if version is None else str(version)


def attach_base(entries: list[BenchmarkResult], base: list[BenchmarkResult]) -> None:
    """Give each tuned result the base model's score and stderr on the same task."""
    by_task = {row.task: row for row in base}
    for entry in entries:
        entry.base_value, entry.base_stderr = by_task[entry.task].value, by_task[entry.task].stderr


def benchmark_results(
    results: dict[str, Any], specs: list[TaskSpec], root: Path, settings: HarnessSettings
) -> list[BenchmarkResult]:
    """One record entry per configured task, every number read from lm-eval's output."""
    version = results.get("lm_eval_version") or harness_version()
    samples = results.get("samples") or {}
    entries = []
    for spec in specs:
        entry = results["results"].get(spec.name)
        if entry is None:
            raise StageFailed(f"lm-eval returned no result for task '{spec.name}'.")
        key, filter_name = _metric_key(entry, spec.metric, spec.name)
        metric = key.split(",", 1)[0]
        stderr = entry.get(f"{metric}_stderr,{filter_name}")
        leaves = _leaves(results, spec.name)
        configs = [results["configs"][leaf] for leaf in leaves]
        datasets = [dataset_of(config, root) for config in configs]
        leaf_samples = [row for leaf in leaves for row in samples.get(leaf, [])]
        chance = chance_from_samples(leaf_samples, metric)
        if chance is None:
            chance = CHANCE_BY_TASK.get(spec.name.removeprefix("demo_"))
        entries.append(
            BenchmarkResult(
                task=spec.name,
                dataset_id=common(d[0] for d in datasets),
                dataset_config=common(d[1] for d in datasets),
                split=common(d[2] for d in datasets),
                num_fewshot=int(results.get("n-shot", {}).get(spec.name, spec.num_fewshot)),
                metric=metric,
                value=_score(entry, key, spec.name),
                stderr=_stderr(stderr),
                n=sum(int(results["n-samples"][leaf]["effective"]) for leaf in leaves),
                chance=chance,
                filter=filter_name,
                stderr_method=_stderr_method(configs, metric, settings.bootstrap_iters, group=leaves != [spec.name]),
                limit=settings.limit,
                task_version=_task_version(results, spec.name),
                harness=HARNESS,
                harness_version=version,
            )
        )
    return entries
