"""Curves from the Trainer's log, and thinning long ones to what a figure can show.

A 200,000-step run logs 200,000 points per curve; a 6.4-inch figure is 1,280 pixels
wide, so drawing them all only costs time (27 s for such a log). A curve over
MAX_POINTS keeps its first and last point and, of each of ``MAX_POINTS // 2 - 1``
equal buckets in between, the lowest and the highest point: every spike and dip
survives, which a stride or an average would hide. Plain Python on purpose: the
figure's input digest is computed from the thinned curve before matplotlib (and
numpy) are imported, so an unchanged figure is reused without importing them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MAX_POINTS = 2000
"""Most points drawn per curve."""


@dataclass(frozen=True)
class Curve:
    """One logged series as drawn: its key, steps and values, and how many points the log held."""

    key: str
    steps: list[float]
    values: list[float]
    logged: int

    @property
    def thinned(self) -> bool:
        return len(self.steps) < self.logged


def series(history: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of ``key`` in the Trainer log, keeping finite numbers only."""
    steps, values = [], []
    for entry in history:
        value, step = entry.get(key), entry.get("step")
        number_like = isinstance(value, (int, float)) and not isinstance(value, bool)
        if number_like and isinstance(step, (int, float)) and math.isfinite(value):
            steps.append(float(step))
            values.append(float(value))
    return steps, values


def curve(history: list[dict[str, Any]], key: str, limit: int = MAX_POINTS) -> Curve:
    """The series of ``key``, thinned to at most ``limit`` points."""
    steps, values = series(history, key)
    kept = thin_indices(values, limit)
    return Curve(key, [steps[i] for i in kept], [values[i] for i in kept], len(steps))


def thin_indices(values: list[float], limit: int = MAX_POINTS) -> list[int]:
    """Indices of ``values`` to draw: all of them up to ``limit``; else first, last, and each bucket's min and max."""
    count = len(values)
    if count <= limit:
        return list(range(count))
    buckets = max(1, limit // 2 - 1)
    inner = count - 2
    kept = [0]
    for bucket in range(buckets):
        start = 1 + bucket * inner // buckets
        stop = 1 + (bucket + 1) * inner // buckets
        if start >= stop:
            continue
        chunk = range(start, stop)
        low = min(chunk, key=values.__getitem__)
        high = max(chunk, key=values.__getitem__)
        kept.extend(sorted({low, high}))  # in step order, so the line runs forward
    kept.append(count - 1)
    return kept


def thinning_note(curves: list[Curve]) -> str | None:
    """The sentence a figure's caption carries when it shows fewer points than were logged."""
    thinned = [c for c in curves if c.thinned]
    if not thinned:
        return None
    shapes = {(len(c.steps), c.logged) for c in thinned}
    if len(shapes) == 1 and len(thinned) == len(curves):
        kept, logged = shapes.pop()
        counts = f"each curve: {kept:,} of its {logged:,} logged points"
    else:
        counts = "; ".join(f"{c.key}: {len(c.steps):,} of {c.logged:,} logged points" for c in thinned)
    return (
        f"Thinned for drawing ({counts}): the first and last point and the lowest and highest of each of "
        f"{MAX_POINTS // 2 - 1:,} equal step ranges; results.json holds every point."
    )
