"""From figure recipes to PNG bytes: reuse by input digest, deterministic output, light encoding, parallel drawing.

Each PNG embeds the digest of its inputs (a tEXt chunk, and nothing that varies:
no Software, no time), so the same record gives byte-identical files and a
re-render that finds the same digest on disk skips matplotlib altogether. Several
figures to draw are drawn in forked processes unless every CPU is busy (processes_for);
the bytes are the same either way.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIGSIZE = (6.4, 3.6)
DPI = 200
"""Twice the pixels of matplotlib's 100 dpi: 1280x720, sharp on high-resolution screens at 640x360 points."""
DIGEST_KEY = "pubctl-inputs"
MAX_PROCESSES = 8
"""More processes than figures or CPUs would only add start-up cost."""

Draw = Callable[[Any], None]


@dataclass(frozen=True)
class Recipe:
    """What a figure is drawn from (its digest) and how (``draw(fig)``)."""

    name: str
    inputs: dict[str, Any]
    draw: Draw


def render_all(recipes: list[Recipe], reuse: Path | None, code: list[Path]) -> dict[str, bytes]:
    """PNG bytes by figure name; a PNG in ``reuse`` whose embedded digest matches is returned as is.

    ``code``: the modules whose source shapes the figures (a change to them redraws every figure).
    """
    shaped_by = code_bytes(code)  # read once per render, not once per figure
    digests = {recipe.name: inputs_digest(recipe.name, recipe.inputs, shaped_by) for recipe in recipes}
    pngs: dict[str, bytes] = {}
    pending = []
    for recipe in recipes:
        existing = reuse / recipe.name if reuse is not None else None
        if existing is not None and existing.is_file():
            data = existing.read_bytes()
            if png_text(data).get(DIGEST_KEY) == digests[recipe.name]:
                pngs[recipe.name] = data
                continue
        pending.append((recipe.draw, digests[recipe.name]))
    names = [recipe.name for recipe in recipes if recipe.name not in pngs]
    pngs.update(zip(names, draw_many(pending), strict=True))
    return {recipe.name: pngs[recipe.name] for recipe in recipes}


def code_bytes(code: list[Path]) -> bytes:
    """What shapes every figure alike: the plotting modules' source and matplotlib's version."""
    from importlib import metadata

    return b"".join(module.read_bytes() for module in [*code, Path(__file__)]) + metadata.version("matplotlib").encode()


def inputs_digest(name: str, inputs: dict[str, Any], shaped_by: bytes) -> str:
    """What a figure depends on: its data, then :func:`code_bytes`."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"name": name, "inputs": inputs}, sort_keys=True, allow_nan=True).encode())
    digest.update(shaped_by)
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


# ----------------------------------------------------------------------- drawing
_PENDING: list[tuple[Draw, str]] = []
"""The jobs of the current parallel draw: forked children read them by index (closures do not pickle)."""


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
    try:
        cpus = len(os.sched_getaffinity(0))
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 1
    if load >= cpus:  # every CPU already busy (over the last minute): a child would only queue
        return 1
    return max(1, min(cpus, jobs, MAX_PROCESSES))


def draw_many(jobs: list[tuple[Draw, str]]) -> list[bytes]:
    """PNG bytes of each (draw, digest), in order: in forked processes where that pays, else here."""
    processes = processes_for(len(jobs))
    if processes == 1:
        return [draw_png(draw, digest) for draw, digest in jobs]
    import multiprocessing

    # Imported once here, before the fork: every child inherits them instead of importing them again.
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401

    global _PENDING
    _PENDING = jobs
    try:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            return pool.map(_draw_pending, range(len(jobs)), chunksize=1)
    finally:
        _PENDING = []


def _draw_pending(index: int) -> bytes:
    draw, digest = _PENDING[index]
    return draw_png(draw, digest)


def draw_png(draw: Draw, digest: str) -> bytes:
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
        draw(fig)
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
