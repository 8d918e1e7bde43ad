"""Evaluation gates: each benchmark score is complete, in range, held out and not passed off near chance."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pipeline.checks.registry import check
from pipeline.judgments import evaluation_limit, is_near_chance, metric_range

if TYPE_CHECKING:
    from pipeline.checks.context import CheckContext
    from pipeline.checks.report import Outcome

GENERIC_DEVICES = frozenset(
    {"", "cpu", "cuda", "gpu", "mps", "xpu", "auto", "unknown", "unknown cpu", "device", "none", "null"}
)


@check("benchmark_fields", "every benchmark result has dataset, split, n, stderr and the harness version")
def benchmark_fields(ctx: CheckContext, out: Outcome) -> None:
    evaluation = ctx.results.evaluation
    if evaluation is None or not evaluation.results:
        out.fail("no benchmark results in results.json", "lm-eval results (pubctl evaluate)")
    if evaluation is None:
        return
    if not evaluation.harness_version:
        out.fail("no harness version", f"the {evaluation.harness} version that scored them")
    for row in evaluation.results:
        missing = [name for name in ("dataset_id", "split", "stderr") if getattr(row, name) is None]
        if row.n <= 0:
            missing.append("n")
        if missing:
            out.fail(f"{row.task}: no {', '.join(missing)}", "dataset, split, n and stderr")


@check("metric_range", "every score and stderr lies within its metric's range")
def metric_range_check(ctx: CheckContext, out: Outcome) -> None:
    evaluation = ctx.results.evaluation
    for row in evaluation.results if evaluation else []:
        bounds = metric_range(row.metric)
        for label, value in (("value", row.value), ("base_value", row.base_value), ("chance", row.chance)):
            if value is None:
                continue
            if not math.isfinite(value) or (bounds is not None and not bounds[0] <= value <= bounds[1]):
                out.fail(
                    f"{row.task} {row.metric} {label} {value!r}",
                    f"a value in [{bounds[0]:g}, {bounds[1]:g}]" if bounds is not None else "a finite number",
                )
        if row.stderr is not None and (not math.isfinite(row.stderr) or row.stderr < 0):
            out.fail(f"{row.task} stderr {row.stderr!r}", "a finite stderr >= 0")


@check("near_chance", "(warning) a score within checks.near_chance_stderr standard errors of chance", warning=True)
def near_chance(ctx: CheckContext, out: Outcome) -> None:
    evaluation = ctx.results.evaluation
    k = ctx.config.checks.near_chance_stderr
    for row in evaluation.results if evaluation else []:
        if is_near_chance(row, k):
            out.fail(
                f"{row.task} {row.metric} {row.value:g} ± {row.stderr:g}, chance {row.chance:g}",
                f"more than {k:g} stderr from chance",
            )


@check("eval_subset", "(warning) benchmarks scored on an lm-eval limit, not the full sets", warning=True)
def eval_subset(ctx: CheckContext, out: Outcome) -> None:
    evaluation = ctx.results.evaluation
    if evaluation is None:
        out.nothing_to_check()
        return
    limit = evaluation_limit(evaluation)
    if limit is not None:
        out.fail(f"lm-eval limit {limit} items per task", "full benchmark sets for published scores")


def _dataset_key(dataset: str) -> str:
    return dataset.strip().lower().removeprefix("datasets/")


@check("eval_not_train", "no benchmark dataset is also a training dataset")
def eval_not_train(ctx: CheckContext, out: Outcome) -> None:
    results = ctx.results
    trained = {_dataset_key(ds.id) for ds in results.training.datasets} if results.training else set()
    for row in results.evaluation.results if results.evaluation else []:
        if row.dataset_id is not None and _dataset_key(row.dataset_id) in trained:
            out.fail(
                f"{row.task} scored on {row.dataset_id}, also a training dataset", "benchmarks held out from training"
            )


@check("throughput_device", "throughput names the device it ran on and its median lies within min..max")
def throughput_device(ctx: CheckContext, out: Outcome) -> None:
    evaluation = ctx.results.evaluation
    throughput = evaluation.throughput if evaluation else None
    if throughput is None:
        # partly: an absent measurement also counts as passed (nothing recorded is nothing false), as it
        # always has in the report's counts.
        why = "no throughput measurement" if evaluation else "no evaluation section"
        out.skip(why, "a throughput measurement", partly=True)
        return
    if throughput.device.strip().lower() in GENERIC_DEVICES:
        out.fail(f"device {throughput.device!r}", "the device's name (e.g. NVIDIA H100, the CPU model)")
    if not throughput.tokens_per_second_min <= throughput.tokens_per_second_median <= throughput.tokens_per_second_max:
        out.fail(
            f"median {throughput.tokens_per_second_median:g} outside min {throughput.tokens_per_second_min:g}"
            f"..max {throughput.tokens_per_second_max:g}",
            "min <= median <= max",
        )
