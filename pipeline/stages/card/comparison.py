"""card.compare_with: recorded facts of this release and of other releases, one row each, never ranked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.errors import UsageError
from pipeline.layout import Layout
from pipeline.results import read_results

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig
    from pipeline.results import Results

Column = tuple[str, str, int]
"""(task, metric, n-shot): only scores taken the same way share a column."""


def comparison(config: ReleaseConfig, layout: Layout, results: Results) -> dict[str, Any] | None:
    """The comparison table's columns and rows, or None when card.compare_with is empty."""
    if not config.card.compare_with:
        return None
    records = [(layout.name, results, True)]
    records += [(other, _other_record(layout, other), False) for other in config.card.compare_with]
    columns: dict[Column, str] = {}
    for _, record, _ in records:
        for row in record.evaluation.results if record.evaluation else []:
            columns.setdefault(
                (row.task, row.metric, row.num_fewshot), f"{row.task} {row.metric} {row.num_fewshot}-shot"
            )
    return {
        "columns": [{"label": label} for label in columns.values()],
        "rows": [_row(name, record, current, list(columns)) for name, record, current in records],
    }


def _other_record(layout: Layout, other: str) -> Results:
    path = layout.card_dir_of(other) / "results.json"
    if not path.is_file():
        raise UsageError(
            f"card.compare_with names '{other}', but {path} does not exist: render or fetch that release's "
            "card bundle first, or remove it from card.compare_with."
        )
    return read_results(path)


def _row(name: str, record: Results, current: bool, columns: list[Column]) -> dict[str, Any]:
    rows = record.evaluation.results if record.evaluation else []
    scores = {(r.task, r.metric, r.num_fewshot): r.value for r in rows}
    training = record.training
    return {
        "release": name,
        "current": current,
        "method": training.method if training else "not trained",
        "samples": training.samples if training else None,
        "steps": training.steps if training else None,
        "runtime": training.runtime_seconds if training else None,
        "final_loss": training.final_loss if training else None,
        "scores": [scores.get(key) for key in columns],
    }
