"""lm-eval's raw output, kept in runs/NAME/eval/ as its CLI writes it (results_*.json, samples_*.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.atomic import atomic_write_text
from pipeline.errors import StageFailed
from pipeline.evaluation.harness import merge_runs


def to_json(data: Any) -> str:
    from lm_eval.utils import handle_non_serializable

    return json.dumps(data, indent=2, ensure_ascii=False, default=handle_non_serializable)


def save_raw(results: dict[str, Any], folder: Path, label: str) -> None:
    """lm-eval's output as its CLI writes it: results_<label>.json and samples_<label>_<task>.jsonl."""
    from lm_eval.utils import handle_non_serializable

    samples = results.get("samples") or {}
    summary = {key: value for key, value in results.items() if key != "samples"}
    atomic_write_text(folder / f"results_{label}.json", to_json(summary) + "\n")
    for task, rows in samples.items():
        lines = (json.dumps(row, ensure_ascii=False, default=handle_non_serializable) for row in rows)
        atomic_write_text(folder / f"samples_{label}_{task}.jsonl", "".join(line + "\n" for line in lines))


def with_previous_raw(fresh: dict[str, Any], folder: Path, label: str, kept: list[str]) -> dict[str, Any]:
    """``fresh`` united with the previous raw output's entries of the ``kept`` tasks (and their subtasks).

    ``pubctl evaluate --tasks`` re-runs a subset and the record keeps the other tasks' results; their raw
    lm-eval output must stay beside them instead of being overwritten by the subset's.
    """
    path = folder / f"results_{label}.json"
    if not kept or not path.is_file():
        return fresh
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise StageFailed(
            f"{path}: the raw lm-eval output of the tasks kept from the last run is not valid JSON ({exc.msg}); "
            "re-run `pubctl evaluate` without --tasks to evaluate every task again."
        ) from None
    subtasks = previous.get("group_subtasks") or {}

    def with_leaves(name: str) -> list[str]:
        return [name, *(leaf for child in subtasks.get(name, []) for leaf in with_leaves(child))]

    names = {name for task in kept for name in with_leaves(task)}
    old = {
        key: {name: item for name, item in value.items() if name in names}
        for key, value in previous.items()
        if isinstance(value, dict) and key != "config"
    }
    return merge_runs([fresh, old])
