"""What a recorded benchmark score is called where people read it, and how a group task averaged its subtasks.

lm-eval reports some scores under another metric's key: ``truthfulqa_mc2`` puts its MC2 score
under ``acc`` (lm_eval/tasks/truthfulqa/truthfulqa_mc2.yaml). The record keeps lm-eval's key,
which is what ``pubctl evaluate`` read and what the gates compare; the card and the
model-index's metric *name* show the name leaderboards and papers use.

lm-eval's ``mmlu`` group averages its 57 subjects weighted by their number of questions
(``weight_by_size: True``), unlike the Open LLM Leaderboard v1's unweighted mean of subjects;
the two differ in the second decimal, so the card says which one it shows. pubctl's
offline look-alikes (``demo_*``) use the same task configs and are named alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.results import BenchmarkResult

RENAMED: dict[tuple[str, str], str] = {("truthfulqa_mc2", "acc"): "mc2"}
"""(lm-eval task, metric key) -> the metric's usual name."""

SIZE_WEIGHTED_GROUPS = frozenset({"mmlu"})
"""lm-eval groups whose aggregate is the subtasks' mean weighted by size (their YAML's ``weight_by_size: True``)."""

GROUP_MARK = "pooled by lm-eval's group aggregation"
"""How the evaluate stage's ``stderr_method`` starts for a group task (pipeline.evaluation.scores)."""


def _known_task(task: str) -> str:
    return task.removeprefix("demo_")


def metric_label(task: str, metric: str) -> str:
    """The metric's usual name: ``mc2`` for truthfulqa_mc2's ``acc``; lm-eval's key otherwise."""
    return RENAMED.get((_known_task(task), metric), metric)


def is_group(row: BenchmarkResult) -> bool:
    """Whether lm-eval scored ``row`` as a group of subtasks (MMLU's subjects)."""
    return (row.stderr_method or "").startswith(GROUP_MARK) or _known_task(row.task) in SIZE_WEIGHTED_GROUPS


def group_averaging(row: BenchmarkResult) -> str | None:
    """How a group's score averages its subtasks, in words; None for a single task."""
    if not is_group(row):
        return None
    if _known_task(row.task) in SIZE_WEIGHTED_GROUPS:
        return (
            "the mean over its subtasks weighted by their number of items (lm-eval's weight_by_size), "
            "not the unweighted mean of subject scores the Open LLM Leaderboard v1 reported"
        )
    return "lm-eval's aggregate of its subtasks as the group's task config defines it"
