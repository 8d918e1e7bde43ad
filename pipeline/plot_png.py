"""Drawing figures into PNG bytes: a bare Agg canvas, deterministic light encoding, forked processes where they pay.

The lowest layer of the figures: pipeline.plot_output decides what to draw (digests, reuse)
and hands the jobs here, or to the drawing process (pipeline.plot_worker), which draws them
with this same code, so the bytes are the same wherever a figure is drawn.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from typing import Any

from pipeline.plot_drawing import DRAWINGS, FIGSIZE

Job = tuple[str, dict[str, Any], str]
"""One figure to draw: (kind, inputs, digest), plain data that pickles and travels as JSON."""

DPI = 200
"""Twice the pixels of matplotlib's 100 dpi: 1280x720, sharp on high-resolution screens at 640x360 points."""
DIGEST_KEY = "pubctl-inputs"
PNG_MAX_BYTES = 64 * 1024 * 1024
"""Largest figure file pubctl reads back (a 1280-pixel-wide figure is well under a megabyte)."""
MAX_PROCESSES = 8
"""More processes than figures or CPUs would only add start-up cost."""


def spare_cpus() -> int:
    """CPUs to draw on: all of this process's when the last minute's load leaves one idle, else 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 1
    return 1 if load >= cpus else cpus  # every CPU already busy: another process would only queue


def processes_for(jobs: int) -> int:
    """How many processes draw ``jobs`` figures (1: this one).

    fork only where it is safe and pays. Safe: Linux, and no other Python thread in this process (a
    fork copies one thread, and any lock another held). Pays: a CPU that is not already busy.
    Measured on a 2-CPU machine, a cold ``pubctl card demo`` (six figures) took 2.28 s wall with two
    processes against 2.59 s in one when the machine was idle (load 1), but 8.1 s against 6.7 s under
    load 5: each child's reference-count writes copy the parent's pages (+0.3 CPU seconds), which
    only idle CPUs absorb.
    """
    if jobs < 2 or not sys.platform.startswith("linux") or threading.active_count() > 1:
        return 1
    if sys.version_info < (3, 11):  # before 3.11, a fork executor could fork after its thread started
        return 1
    return max(1, min(spare_cpus(), jobs, MAX_PROCESSES))


def draw_here(jobs: list[Job]) -> list[bytes]:
    """PNG bytes of each job, drawn by this process or by children forked from it."""
    processes = processes_for(len(jobs))
    if processes == 1:
        return [draw_png(*job) for job in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # Imported once here, before the fork: every child inherits them instead of importing them again.
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401

    # ProcessPoolExecutor, not multiprocessing.Pool: a child killed mid-figure (out of memory, kill -9) breaks
    # the executor at once, where a Pool waits forever for the lost task. With fork it forks every child
    # before its own manager thread starts (Python 3.11), so no child inherits a held lock.
    try:
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_draw_job, *zip(*jobs, strict=True)))
    except BrokenProcessPool as exc:
        log_note(f"pubctl: a figure-drawing child process ended early ({exc}); drawing the figures in this process")
        return [draw_png(*job) for job in jobs]


def log_note(text: str) -> None:
    """A line about how the figures were drawn, into the running stage's log (stderr when no stage runs)."""
    from pipeline.console import captured

    with captured():
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _draw_job(kind: str, inputs: dict[str, Any], digest: str) -> bytes:
    return draw_png(kind, inputs, digest)  # looked up when called: the pool pickles this function by name


def draw_png(kind: str, inputs: dict[str, Any], digest: str) -> bytes:
    """One figure drawn on a bare Agg canvas with matplotlib's defaults, whatever the user's matplotlibrc says."""
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
        canvas = FigureCanvasAgg(fig)
        DRAWINGS[kind](fig, inputs)
        canvas.draw()
        return encode_png(canvas.buffer_rgba(), canvas.get_width_height(), digest)


def encode_png(rgba: Any, size: tuple[int, int], digest: str) -> bytes:
    """PNG bytes of an opaque Agg buffer: RGB at zlib level 3, with the digest as the only text chunk.

    Pillow (matplotlib's own PNG writer) is called directly rather than through ``savefig``: the
    figures are opaque (white face), so the alpha channel only costs encoding time, and level 3
    compresses within 10% of matplotlib's level 6 in 40% of the time (a 1280x720 figure: 0.06 s
    against 0.16 s). No Software, no time: the same figure gives the same bytes.
    """
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(DIGEST_KEY, digest)
    image = Image.frombuffer("RGBA", size, rgba, "raw", "RGBA", 0, 1).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="png", pnginfo=info, compress_level=3, dpi=(DPI, DPI))
    return buffer.getvalue()
