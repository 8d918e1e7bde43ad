"""A trainer's log entry as one compact line: 'step 6/12 loss 0.94 margin 0.01 lr 2.50e-04'.

The record keeps every logged value (log_history); the terminal gets the few a person follows a run by.
"""

from __future__ import annotations

import math
from typing import Any

SHOWN = (("loss", "loss"), ("rewards/margins", "margin"), ("kl", "kl"), ("grad_norm", "grad"), ("learning_rate", "lr"))
"""Logged values shown on a metrics line, with their short names; the record keeps every one."""


def number(value: float) -> str:
    """Short and still exact enough to follow a run: 0.945, 2.50e-04, 1.2e+04."""
    if not math.isfinite(value):
        return str(value)
    if value != 0 and not 1e-3 <= abs(value) < 1e4:
        return f"{value:.2e}"
    return f"{value:.3g}"


def metrics_line(logs: dict[str, Any], step: int, total: int | None) -> str | None:
    """'step 6/12 loss 0.94 margin 0.01 lr 2.50e-04', 'eval at step 6/12: loss 0.945'; None for the end summary."""
    if "train_runtime" in logs:  # the trainer's closing totals: the stage's summary line says them
        return None
    evaluation = any(key.startswith("eval_") for key in logs)
    prefix = "eval_" if evaluation else ""
    parts = [
        f"{short} {number(float(logs[prefix + key]))}"
        for key, short in SHOWN
        if isinstance(logs.get(prefix + key), (int, float))
    ]
    if not parts:
        return None
    where = f"step {step}/{total}" if total else f"step {step}"
    return f"eval at {where}: {' '.join(parts)}" if evaluation else f"{where} {' '.join(parts)}"
