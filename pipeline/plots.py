"""The card's figures, drawn from the results record with matplotlib's Agg backend.

Every figure is built on a bare ``matplotlib.figure.Figure`` with an Agg canvas
(no pyplot: no global figure registry, no GUI backend probing, faster import)
inside ``rc_context(matplotlib defaults)``, so a user's matplotlibrc cannot
change the output; pipeline.plot_output draws them (in parallel when several
must be drawn), reuses unchanged ones and writes deterministic PNGs at twice the
pixels of 100 dpi. Curves longer than pipeline.plot_series.MAX_POINTS are thinned
before drawing, and the figure's note says so. Each figure carries alt text for
the card that says what it shows and the numbers it ends on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.markdown import number
from pipeline.metric_names import metric_label
from pipeline.plot_output import FIGSIZE, Recipe, png_text, render_all
from pipeline.plot_series import Curve, curve, thinning_note
from pipeline.results import BenchmarkResult, Results

__all__ = ["Plot", "build_plots", "png_text"]

BASE_COLOR = "#9e9e9e"
TUNED_COLOR = "#1f77b4"
CODE = [Path(__file__), Path(__file__).with_name("plot_series.py")]
"""Modules whose source shapes the figures: part of every figure's input digest."""

STANDARD_REWARDS = ("rewards/chosen", "rewards/rejected", "rewards/margins")
MARGINS = "rewards/margins"


@dataclass(frozen=True)
class Plot:
    """One figure: its file name under plots/, its PNG bytes, a title, alt text and a visible note for the card."""

    name: str
    title: str
    alt: str
    png: bytes
    note: str | None = None


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
    pngs = render_all([figure.recipe for figure in figures], reuse, CODE)
    return [Plot(name=f.recipe.name, title=f.title, alt=f.alt, png=pngs[f.recipe.name], note=f.note) for f in figures]


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
    def draw(fig: Any) -> None:
        if len(panels) == 1:
            _one_axis(fig.add_subplot(), title, ylabel, panels[0])
        elif name == "rewards.png":
            _stacked(fig, title, ylabel, panels)
        else:
            _small_multiples(fig, title, [panel[0] for panel in panels])

    logged = curves[0].logged
    parts = [
        f"{c.key}: {number(c.values[0])} at step {c.steps[0]:.0f} to {number(c.values[-1])} at step {c.steps[-1]:.0f}"
        # A curve logged at other steps than the first (eval_loss every eval_steps) says how many it has.
        + (f" ({c.logged:,} points)" if c.logged != logged else "")
        for c in curves
    ]
    alt = f"{title} against optimizer step ({logged:,} logged points). " + "; ".join(parts) + "."
    if len(panels) > 1 and name == "rewards.png":
        alt += " The margins are drawn on their own axis below the chosen and rejected rewards."
    note = thinning_note(curves)
    if note:
        alt += " " + note
    inputs = {
        "title": title,
        "ylabel": ylabel,
        "panels": [[[c.key, c.steps, c.values] for c in panel] for panel in panels],
    }
    return _Figure(title, alt, note, Recipe(name, inputs, draw))


def _one_axis(ax: Any, title: str, ylabel: str, curves: list[Curve], legend: bool | None = None) -> None:
    for c in curves:
        ax.plot(c.steps, c.values, marker="o" if len(c.steps) < 30 else None, markersize=3, label=c.key)
    if ylabel == "learning rate":
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if legend if legend is not None else (len(curves) > 1 or curves[0].key != "loss"):
        ax.legend(loc="best", fontsize="small")


def _stacked(fig: Any, title: str, ylabel: str, panels: list[list[Curve]]) -> None:
    """Panels above each other on one step axis, each with its own y scale."""
    fig.set_size_inches(FIGSIZE[0], 2.4 * len(panels) + 0.4)
    fig.subplots_adjust(left=0.15, right=0.97, top=1 - 0.45 / fig.get_figheight(), hspace=0.15)
    fig.subplots_adjust(bottom=0.6 / fig.get_figheight())
    first = None
    for index, panel in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, index + 1, sharex=first)
        first = first or ax
        _one_axis(ax, "", ylabel if index == 0 else "margin", panel, legend=True)
        if index < len(panels) - 1:
            ax.set_xlabel("")
            ax.tick_params(labelbottom=False)
    fig.suptitle(title)


def _small_multiples(fig: Any, title: str, curves: list[Curve]) -> None:
    """One axis per curve, each with its own y scale, two columns wide."""
    columns = 2
    rows = math.ceil(len(curves) / columns)
    fig.set_size_inches(FIGSIZE[0], 1.9 * rows + 0.6)
    fig.subplots_adjust(
        left=0.1,
        right=0.97,
        top=1 - 0.45 / fig.get_figheight(),
        bottom=0.55 / fig.get_figheight(),
        hspace=0.6,
        wspace=0.3,
    )
    for index, c in enumerate(curves):
        ax = fig.add_subplot(rows, columns, index + 1)
        ax.plot(c.steps, c.values, marker="o" if len(c.steps) < 30 else None, markersize=3)
        ax.set_title(c.key, fontsize="small")
        ax.tick_params(labelsize="x-small")
        ax.grid(True, alpha=0.3)
        if index >= len(curves) - columns:
            ax.set_xlabel("optimizer step", fontsize="small")
    fig.suptitle(title)


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

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        width = 0.38 if have_base else 0.6
        positions = list(range(len(rows)))
        if have_base:
            base = [row.base_value if row.base_value is not None else 0.0 for row in rows]
            # No bar at all rather than a "±0" cap when the base's stderr was not recorded.
            base_err = (
                [e if e is not None else 0.0 for e in base_errors] if any(e is not None for e in base_errors) else None
            )
            left = [p - width / 2 for p in positions]
            ax.bar(left, base, width, yerr=base_err, capsize=3, color=BASE_COLOR, label="base model")
        tuned_pos = [p + width / 2 for p in positions] if have_base else positions
        tuned_err = [row.stderr if row.stderr is not None else 0.0 for row in rows]
        values = [row.value for row in rows]
        ax.bar(tuned_pos, values, width, yerr=tuned_err, capsize=3, color=TUNED_COLOR, label="this model")
        chance_drawn = False
        for position, row in zip(positions, rows, strict=True):
            if row.chance is not None:
                label = None if chance_drawn else "chance"
                ax.hlines(
                    row.chance, position - 0.45, position + 0.45, colors="#d62728", linestyles="dashed", label=label
                )
                chance_drawn = True
        ax.set_xticks(positions)
        ax.set_xticklabels(labels, fontsize="small")
        # A negative score (MCC) hangs below 0 with its error bar: the axis must reach its end. Head room above
        # the tallest bar for the legend, which then never hides a bar.
        ax.set_ylim(min(0.0, low), high * 1.3 if high > 0 else 1.0)
        ax.set_ylabel("score (error bars: ±1 stderr)")
        ax.set_title("Benchmarks: base vs fine-tuned")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(loc="upper center", ncols=3, fontsize="small")

    alt, note = _evaluation_words(rows, base_errors, have_base)
    inputs = {"rows": [row.model_dump(mode="json") for row in rows], "labels": labels}
    title = "Benchmarks: base vs fine-tuned"
    return _Figure(title, alt, note, Recipe("evaluation.png", inputs, draw))


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
