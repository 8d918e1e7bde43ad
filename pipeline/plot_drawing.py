"""How each kind of figure is drawn, from plain data only: lists, numbers and strings.

A figure is drawn from exactly the data its input digest is computed from
(pipeline.plot_output.Recipe): nothing else reaches the drawing, so an unchanged
digest means an unchanged figure. Plain data also travels to the process that
draws while the command is still loading its config (pipeline.plot_worker).
This module imports nothing heavy: matplotlib reaches it only as the ``fig`` drawn on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pipeline.registry import Registry

FIGSIZE = (6.4, 3.6)
BASE_COLOR = "#9e9e9e"
TUNED_COLOR = "#1f77b4"
CHANCE_COLOR = "#d62728"

Drawing = Callable[[Any, dict[str, Any]], None]
DRAWINGS: Registry[Drawing] = Registry("figure kind")
"""Figure kind -> draw(fig, inputs)."""


# ----------------------------------------------------------------------- curves
@DRAWINGS.register("curves")
def draw_curves(fig: Any, inputs: dict[str, Any]) -> None:
    """Logged series against the step: ``panels`` is a list of axes, each a list of [key, steps, values].

    ``layout``: "one" (every curve on one axis), "stacked" (axes above each other on one step axis, the
    reward margins below the rewards) or "small_multiples" (one axis per curve, two columns).
    """
    panels = inputs["panels"]
    if inputs["layout"] == "one":
        _one_axis(fig.add_subplot(), inputs["title"], inputs["ylabel"], panels[0])
    elif inputs["layout"] == "stacked":
        _stacked(fig, inputs["title"], inputs["ylabel"], panels)
    else:
        _small_multiples(fig, inputs["title"], [panel[0] for panel in panels])


def _one_axis(ax: Any, title: str, ylabel: str, curves: list[list[Any]], legend: bool | None = None) -> None:
    for key, steps, values in curves:
        ax.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3, label=key)
    if ylabel == "learning rate":
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if legend if legend is not None else (len(curves) > 1 or curves[0][0] != "loss"):
        ax.legend(loc="best", fontsize="small")


def _stacked(fig: Any, title: str, ylabel: str, panels: list[list[list[Any]]]) -> None:
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


def _small_multiples(fig: Any, title: str, curves: list[list[Any]]) -> None:
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
    for index, (key, steps, values) in enumerate(curves):
        ax = fig.add_subplot(rows, columns, index + 1)
        ax.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3)
        ax.set_title(key, fontsize="small")
        ax.tick_params(labelsize="x-small")
        ax.grid(True, alpha=0.3)
        if index >= len(curves) - columns:
            ax.set_xlabel("optimizer step", fontsize="small")
    fig.suptitle(title)


# ------------------------------------------------------------------- benchmarks
@DRAWINGS.register("benchmarks")
def draw_benchmarks(fig: Any, inputs: dict[str, Any]) -> None:
    """Tuned (and base) bars per benchmark with ±1 stderr bars and dashed chance lines.

    ``bars``: one dict per benchmark with ``label``, ``value``, ``stderr``, ``base``, ``base_stderr`` and
    ``chance`` (None where not recorded); ``ylim``: the axis range, which keeps every bar, error bar and
    chance line inside it.
    """
    bars = inputs["bars"]
    have_base = any(bar["base"] is not None for bar in bars)
    ax = fig.add_subplot()
    width = 0.38 if have_base else 0.6
    positions = list(range(len(bars)))
    if have_base:
        base = [bar["base"] if bar["base"] is not None else 0.0 for bar in bars]
        errors = [bar["base_stderr"] for bar in bars]
        # No bar at all rather than a "±0" cap when the base's stderr was not recorded.
        base_err = [e if e is not None else 0.0 for e in errors] if any(e is not None for e in errors) else None
        left = [p - width / 2 for p in positions]
        ax.bar(left, base, width, yerr=base_err, capsize=3, color=BASE_COLOR, label="base model")
    tuned_pos = [p + width / 2 for p in positions] if have_base else positions
    tuned_err = [bar["stderr"] if bar["stderr"] is not None else 0.0 for bar in bars]
    values = [bar["value"] for bar in bars]
    ax.bar(tuned_pos, values, width, yerr=tuned_err, capsize=3, color=TUNED_COLOR, label="this model")
    chance_drawn = False
    for position, bar in zip(positions, bars, strict=True):
        if bar["chance"] is not None:
            label = None if chance_drawn else "chance"
            ax.hlines(
                bar["chance"], position - 0.45, position + 0.45, colors=CHANCE_COLOR, linestyles="dashed", label=label
            )
            chance_drawn = True
    ax.set_xticks(positions)
    ax.set_xticklabels([bar["label"] for bar in bars], fontsize="small")
    ax.set_ylim(*inputs["ylim"])
    ax.set_ylabel("score (error bars: ±1 stderr)")
    ax.set_title(inputs["title"])
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper center", ncols=3, fontsize="small")
