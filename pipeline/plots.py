"""The card's figures, drawn from the results record with matplotlib's Agg backend.

Every figure is built on a bare ``matplotlib.figure.Figure`` with an Agg canvas
(no pyplot: no global figure registry, no GUI backend probing, faster import)
inside ``rc_context(matplotlib defaults)``, so a user's matplotlibrc cannot
change the output. PNGs are written without the metadata that varies between
matplotlib versions (``Software``), at a fixed size and dpi: the same record
gives byte-identical files. Each PNG embeds the digest of its inputs, so a
re-render of an unchanged record reuses the files without drawing. Each figure carries alt text for the card that says
what it shows and the numbers it ends on.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.markdown import number
from pipeline.results import BenchmarkResult, Results

FIGSIZE = (6.4, 3.6)
DPI = 100
BASE_COLOR = "#9e9e9e"
TUNED_COLOR = "#1f77b4"

# log_history keys that are bookkeeping, not curves.
STANDARD_REWARDS = ("rewards/chosen", "rewards/rejected", "rewards/margins")


@dataclass(frozen=True)
class Plot:
    """One figure: its file name under plots/, its PNG bytes, a title and alt text for the card."""

    name: str
    title: str
    alt: str
    png: bytes


def build_plots(results: Results, method_metrics: tuple[str, ...] = (), reuse: Path | None = None) -> list[Plot]:
    """Every figure the record has data for, in card order; a figure without data is left out.

    With ``reuse`` (the card's plots/ folder), a PNG already there whose embedded input digest
    equals this figure's is returned as is instead of being drawn again (see :func:`_render`).
    """
    plots: list[Plot] = []
    history = results.training.log_history if results.training else []
    plots += _training_plots(history, method_metrics, reuse)
    if results.evaluation and results.evaluation.results:
        plots.append(_evaluation_plot(results.evaluation.results, reuse))
    return plots


# ----------------------------------------------------------------------- training
def _series(history: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of ``key`` in the Trainer log, keeping finite numbers only."""
    steps, values = [], []
    for entry in history:
        value, step = entry.get(key), entry.get("step")
        number_like = isinstance(value, (int, float)) and not isinstance(value, bool)
        if number_like and isinstance(step, (int, float)) and math.isfinite(value):
            steps.append(float(step))
            values.append(float(value))
    return steps, values


def _training_plots(history: list[dict[str, Any]], method_metrics: tuple[str, ...], reuse: Path | None) -> list[Plot]:
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
    plots = []
    for name, title, ylabel, keys in groups:
        curves = [(key, *_series(history, key)) for key in keys]
        curves = [curve for curve in curves if curve[1]]
        if name == "loss.png" and any(key == "eval_loss" for key, _, _ in curves):
            # The held-out loss is drawn beside the training loss: the title must not call both training loss.
            title = "Training and evaluation loss" if len(curves) > 1 else "Evaluation loss"
        if curves:
            # Method terms live on unrelated scales (a log-odds term near 4, a probability near 0.4,
            # a margin near 0): one shared axis would flatten all but the largest into a line.
            separate = name == "method_metrics.png" and len(curves) > 1
            plots.append(_line_plot(name, title, ylabel, curves, reuse, separate_axes=separate))
    return plots


def _line_plot(
    name: str,
    title: str,
    ylabel: str,
    curves: list[tuple[str, list[float], list[float]]],
    reuse: Path | None,
    separate_axes: bool = False,
) -> Plot:
    def draw(fig: Any) -> None:
        if separate_axes:
            _small_multiples(fig, title, curves)
            return
        ax = fig.add_subplot()
        for key, steps, values in curves:
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3, label=key)
        if ylabel == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        if len(curves) > 1 or curves[0][0] != "loss":
            ax.legend(loc="best", fontsize="small")

    points = len(curves[0][1])
    parts = [
        f"{key}: {number(values[0])} at step {steps[0]:.0f} to {number(values[-1])} at step {steps[-1]:.0f}"
        # A curve logged at other steps than the first (eval_loss every eval_steps) says how many it has.
        + (f" ({len(steps)} points)" if len(steps) != points else "")
        for key, steps, values in curves
    ]
    alt = f"{title} against optimizer step ({points} logged points). " + "; ".join(parts) + "."
    inputs = {"title": title, "ylabel": ylabel, "curves": curves, "separate_axes": separate_axes}
    return Plot(name=name, title=title, alt=alt, png=_render(name, inputs, draw, reuse))


def _small_multiples(fig: Any, title: str, curves: list[tuple[str, list[float], list[float]]]) -> None:
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


# --------------------------------------------------------------------- evaluation
def _evaluation_plot(rows: list[BenchmarkResult], reuse: Path | None) -> Plot:
    labels = [f"{row.task}\n{row.metric}, {row.num_fewshot}-shot" for row in rows]
    have_base = any(row.base_value is not None for row in rows)

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        width = 0.38 if have_base else 0.6
        positions = list(range(len(rows)))
        if have_base:
            base = [row.base_value if row.base_value is not None else 0.0 for row in rows]
            recorded = [_base_stderr(row) for row in rows]
            # No bar at all rather than a "±0" cap when the base's stderr was not recorded.
            base_err = [e if e is not None else 0.0 for e in recorded] if any(e is not None for e in recorded) else None
            ax.bar(
                [p - width / 2 for p in positions],
                base,
                width,
                yerr=base_err,
                capsize=3,
                color=BASE_COLOR,
                label="base model",
            )
        tuned_pos = [p + width / 2 for p in positions] if have_base else positions
        tuned_err = [row.stderr if row.stderr is not None else 0.0 for row in rows]
        ax.bar(
            tuned_pos,
            [row.value for row in rows],
            width,
            yerr=tuned_err,
            capsize=3,
            color=TUNED_COLOR,
            label="this model",
        )
        chance_drawn = False
        for position, row in zip(positions, rows, strict=True):
            if row.chance is not None:
                ax.hlines(
                    row.chance,
                    position - 0.45,
                    position + 0.45,
                    colors="#d62728",
                    linestyles="dashed",
                    label=None if chance_drawn else "chance",
                )
                chance_drawn = True
        ax.set_xticks(positions)
        ax.set_xticklabels(labels, fontsize="small")
        others = [row.base_value for row in rows if row.base_value is not None]
        others += [row.chance for row in rows if row.chance is not None]
        tops = [row.value + (row.stderr or 0.0) for row in rows] + others
        # A negative score (MCC) hangs below 0 with its error bar: the axis must reach its end.
        bottoms = [row.value - (row.stderr or 0.0) for row in rows] + others
        # Head room above the tallest bar for the legend, which then never hides a bar.
        ax.set_ylim(min(0.0, *bottoms), max(tops) * 1.3 if max(tops) > 0 else 1.0)
        ax.set_ylabel("score (error bars: ±1 stderr)")
        ax.set_title("Benchmarks: base vs fine-tuned")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(loc="upper center", ncols=3, fontsize="small")

    parts = []
    for row in rows:
        text = f"{row.task} {row.metric} {row.num_fewshot}-shot: {number(row.value)}"
        if row.stderr is not None:
            text += f" ± {number(row.stderr)}"
        if row.base_value is not None:
            text += f" (base {number(row.base_value)})"
        if row.chance is not None:
            text += f", chance {number(row.chance)}"
        parts.append(text)
    subject = "the base model and this model" if have_base else "this model"
    alt = f"Bar chart of benchmark scores of {subject} with ±1 stderr bars. " + "; ".join(parts) + "."
    inputs = {"rows": [row.model_dump(mode="json") for row in rows]}
    png = _render("evaluation.png", inputs, draw, reuse)
    return Plot(name="evaluation.png", title="Benchmarks: base vs fine-tuned", alt=alt, png=png)


def _base_stderr(row: BenchmarkResult) -> float | None:
    """The base model's stderr when the evaluate stage recorded one (an added key)."""
    value = getattr(row, "base_stderr", None)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


# ------------------------------------------------------------------------ output
DIGEST_KEY = "pubctl-inputs"


def _inputs_digest(name: str, inputs: dict[str, Any]) -> str:
    """What a figure depends on: its data, this module's code and matplotlib's version."""
    from importlib import metadata

    digest = hashlib.sha256()
    digest.update(json.dumps({"name": name, "inputs": inputs}, sort_keys=True, allow_nan=True).encode())
    digest.update(Path(__file__).read_bytes())
    digest.update(metadata.version("matplotlib").encode())
    return digest.hexdigest()


def png_text(png: bytes) -> dict[str, str]:
    """The tEXt chunks of a PNG (keyword -> text); {} for anything that is not a PNG."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        return {}
    texts, offset = {}, 8
    while offset + 8 <= len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        if kind == b"tEXt":
            keyword, _, text = png[offset + 8 : offset + 8 + length].partition(b"\0")
            texts[keyword.decode("latin-1")] = text.decode("latin-1")
        elif kind == b"IDAT":  # matplotlib writes text chunks before the image data
            break
        offset += 12 + length
    return texts


def _render(name: str, inputs: dict[str, Any], draw: Any, reuse: Path | None) -> bytes:
    """PNG bytes of a figure, reusing ``reuse/name`` when it was drawn from the same inputs.

    The PNG carries one text chunk, the digest of its inputs, and nothing that varies (no
    Software, no time): the file stays byte-identical for the same record, and a re-render
    that finds the same digest skips importing matplotlib and drawing, most of a card's cost.
    """
    digest = _inputs_digest(name, inputs)
    existing = reuse / name if reuse is not None else None
    if existing is not None and existing.is_file():
        data = existing.read_bytes()
        if png_text(data).get(DIGEST_KEY) == digest:
            return data

    return _draw(draw, digest)


def _draw(draw: Any, digest: str) -> bytes:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        # Record strings are text, never mathtext: a '$' in a task name must not be parsed.
        matplotlib.rcParams["text.parse_math"] = False
        fig = Figure(figsize=FIGSIZE, dpi=DPI)
        # Fixed margins instead of a layout engine: constrained layout draws every figure twice.
        fig.subplots_adjust(left=0.13, right=0.97, top=0.9, bottom=0.2)
        FigureCanvasAgg(fig)
        draw(fig)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None, DIGEST_KEY: digest})
    return buffer.getvalue()
