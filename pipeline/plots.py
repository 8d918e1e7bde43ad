"""The card's figures: what each shows, taken from the results record as plain data.

Each figure is a recipe: a kind of drawing (pipeline.plot_drawing) and the plain
data it is drawn from, which is also what its input digest covers.
pipeline.plot_output reuses unchanged ones and has the rest drawn with
matplotlib's Agg backend (pipeline.plot_png: in parallel when several must be
drawn, or in a process started while the command loaded its config) as
deterministic PNGs at twice the pixels of 100 dpi. Curves longer than pipeline.plot_series.MAX_POINTS are thinned
before drawing, and the figure's note says so. Each figure carries alt text for
the card that says what it shows and the numbers it ends on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.markdown import number
from pipeline.metric_names import metric_label
from pipeline.plot_output import Drawing, Recipe, png_text, render_all
from pipeline.plot_series import Curve, curve, thinning_note
from pipeline.results import BenchmarkResult, Results

__all__ = ["Plot", "build_plots", "png_text"]

CODE = [Path(__file__), Path(__file__).with_name("plot_series.py"), Path(__file__).with_name("plot_drawing.py")]
"""Modules whose source shapes the figures: part of every figure's input digest."""

STANDARD_REWARDS = ("rewards/chosen", "rewards/rejected", "rewards/margins")
MARGINS = "rewards/margins"


@dataclass(frozen=True)
class Plot:
    """One figure: its file name under plots/, a title, alt text, a visible note for the card, and its PNG."""

    name: str
    title: str
    alt: str
    note: str | None
    drawing: Drawing = field(repr=False, compare=False)

    @property
    def png(self) -> bytes:
        """The PNG bytes (waits for the figure if it is still being drawn)."""
        return self.drawing.pngs()[self.name]


@dataclass(frozen=True)
class _Figure:
    """A figure before drawing: what the card says about it and how to draw it."""

    title: str
    alt: str
    note: str | None
    recipe: Recipe


def build_plots(results: Results, method_metrics: tuple[str, ...] = (), reuse: Path | None = None) -> list[Plot]:
    """Every figure the record has data for, in card order; a figure without data is left out.

    With ``reuse`` (the card's plots/ folder), a PNG already there whose embedded input digest
    equals this figure's is returned as is instead of being drawn again.
    """
    history = results.training.log_history if results.training else []
    figures = _training_figures(history, method_metrics)
    if results.evaluation and results.evaluation.results:
        figures.append(evaluation_figure(results.evaluation.results))
    drawing = render_all([figure.recipe for figure in figures], reuse, CODE)
    return [Plot(name=f.recipe.name, title=f.title, alt=f.alt, note=f.note, drawing=drawing) for f in figures]


# ----------------------------------------------------------------------- training
def _training_figures(history: list[dict[str, Any]], method_metrics: tuple[str, ...]) -> list[_Figure]:
    groups: list[tuple[str, str, str, tuple[str, ...]]] = [
        ("loss.png", "Training loss", "loss", ("loss", "eval_loss")),
        ("rewards.png", "Implicit rewards", "reward", STANDARD_REWARDS),
        ("kl.png", "KL estimate", "KL", ("kl",)),
        ("learning_rate.png", "Learning rate", "learning rate", ("learning_rate",)),
    ]
    shown = {key for group in groups for key in group[3]}
    extra = tuple(key for key in method_metrics if key not in shown)
    if extra:
        groups.append(("method_metrics.png", "Method-specific terms", "value", extra))
    figures = []
    for name, title, ylabel, keys in groups:
        curves = [c for c in (curve(history, key) for key in keys) if c.steps]
        if not curves:
            continue
        if name == "loss.png" and any(c.key == "eval_loss" for c in curves):
            # The held-out loss is drawn beside the training loss: the title must not call both training loss.
            title = "Training and evaluation loss" if len(curves) > 1 else "Evaluation loss"
        figures.append(_line_figure(name, title, ylabel, curves, _panels(name, curves)))
    return figures


def _panels(name: str, curves: list[Curve]) -> list[list[Curve]]:
    """Curves per axis. Method terms live on unrelated scales (a log-odds term near 4, a probability near
    0.4): one axis each. A reward margin of 0.1 between chosen and rejected rewards near -15 is a flat
    line on their axis: the margins get an axis of their own."""
    if name == "method_metrics.png":
        return [[c] for c in curves]
    if name == "rewards.png" and len(curves) > 1 and any(c.key == MARGINS for c in curves):
        return [[c for c in curves if c.key != MARGINS], [c for c in curves if c.key == MARGINS]]
    return [curves]


def _line_figure(name: str, title: str, ylabel: str, curves: list[Curve], panels: list[list[Curve]]) -> _Figure:
    logged = curves[0].logged
    parts = [
        f"{c.key}: {number(c.values[0])} at step {c.steps[0]:.0f} to {number(c.values[-1])} at step {c.steps[-1]:.0f}"
        # A curve logged at other steps than the first (eval_loss every eval_steps) says how many it has.
        + (f" ({c.logged:,} points)" if c.logged != logged else "")
        for c in curves
    ]
    alt = f"{title} against optimizer step ({logged:,} logged points). " + "; ".join(parts) + "."
    layout = "one" if len(panels) == 1 else "stacked" if name == "rewards.png" else "small_multiples"
    if layout == "stacked":
        alt += " The margins are drawn on their own axis below the chosen and rejected rewards."
    note = thinning_note(curves)
    if note:
        alt += " " + note
    inputs = {
        "title": title,
        "ylabel": ylabel,
        "layout": layout,
        "panels": [[[c.key, c.steps, c.values] for c in panel] for panel in panels],
    }
    return _Figure(title, alt, note, Recipe(name, "curves", inputs))


# --------------------------------------------------------------------- evaluation
def evaluation_figure(rows: list[BenchmarkResult]) -> _Figure:
    """Base and tuned scores per benchmark, each bar with its ±1 stderr where the record holds one."""
    labels = [f"{row.task}\n{metric_label(row.task, row.metric)}, {row.num_fewshot}-shot" for row in rows]
    have_base = any(row.base_value is not None for row in rows)
    base_errors = [base_stderr(row) for row in rows]

    spans = [(row.value - (row.stderr or 0.0), row.value + (row.stderr or 0.0)) for row in rows]
    for row, error in zip(rows, base_errors, strict=True):
        if row.base_value is not None:
            spans.append((row.base_value - (error or 0.0), row.base_value + (error or 0.0)))
    spans += [(row.chance, row.chance) for row in rows if row.chance is not None]
    low, high = min(span[0] for span in spans), max(span[1] for span in spans)

    alt, note = _evaluation_words(rows, base_errors, have_base)
    title = "Benchmarks: base vs fine-tuned"
    bars = [
        {
            "label": label,
            "value": row.value,
            "stderr": row.stderr,
            "base": row.base_value,
            "base_stderr": error,
            "chance": row.chance,
        }
        for label, row, error in zip(labels, rows, base_errors, strict=True)
    ]
    # A negative score (MCC) hangs below 0 with its error bar: the axis must reach its end. Head room above
    # the tallest bar for the legend, which then never hides a bar.
    inputs = {"title": title, "bars": bars, "ylim": [min(0.0, low), high * 1.3 if high > 0 else 1.0]}
    return _Figure(title, alt, note, Recipe("evaluation.png", "benchmarks", inputs))


def _evaluation_words(
    rows: list[BenchmarkResult], base_errors: list[float | None], have_base: bool
) -> tuple[str, str | None]:
    """The figure's alt text, and its note when a base bar has no error bar."""
    parts = []
    for row, base_err in zip(rows, base_errors, strict=True):
        text = f"{row.task} {metric_label(row.task, row.metric)} {row.num_fewshot}-shot: {number(row.value)}"
        if row.stderr is not None:
            text += f" ± {number(row.stderr)}"
        if row.base_value is not None:
            text += f" (base {number(row.base_value)}" + (f" ± {number(base_err)})" if base_err is not None else ")")
        if row.chance is not None:
            text += f", chance {number(row.chance)}"
        parts.append(text)
    subject = "the base model and this model" if have_base else "this model"
    alt = f"Bar chart of benchmark scores of {subject} with ±1 stderr bars. " + "; ".join(parts) + "."
    note = None
    if have_base and not all(
        e is not None for row, e in zip(rows, base_errors, strict=True) if row.base_value is not None
    ):
        note = "Base-model bars without an error bar: the record holds no standard error for that base score."
        alt += " " + note
    return alt, note


def base_stderr(row: BenchmarkResult) -> float | None:
    """The base model's stderr, when recorded (records made before pubctl kept it have none)."""
    value = row.base_stderr
    return float(value) if value is not None and math.isfinite(value) else None
