"""From figure recipes to PNG bytes: what to draw, by input digest, and what to reuse.

Each PNG embeds the digest of its inputs (a tEXt chunk, and nothing that varies:
no Software, no time), so the same record gives byte-identical files and a
re-render that finds the same digest on disk skips matplotlib altogether. The
figures to draw go to the drawing process a command started while it loaded its
config (pipeline.plot_worker) when there is one; else pipeline.plot_png draws them
here, in forked processes unless every CPU is busy. The bytes are the same either way.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.hashing import small_regular_bytes
from pipeline.plot_png import DIGEST_KEY, PNG_MAX_BYTES, Job, draw_here

__all__ = ["DIGEST_KEY", "Drawing", "Recipe", "committed_png", "png_text", "render_all"]


@dataclass(frozen=True)
class Recipe:
    """A figure before drawing: its file name, its kind (a pipeline.plot_drawing.DRAWINGS key) and the plain
    data drawn, which is all the drawing sees and what the digest covers."""

    name: str
    kind: str
    inputs: dict[str, Any]


class Drawing:
    """One render's figures: the reused PNGs at once, the drawn ones when :meth:`pngs` first waits for them."""

    def __init__(self, order: list[str], ready: dict[str, bytes], wait: Callable[[], list[bytes]]) -> None:
        """``wait`` returns the PNGs of the figures of ``order`` not ``ready``, in that order."""
        self._order, self._ready, self._wait = order, ready, wait

    def pngs(self) -> dict[str, bytes]:
        """PNG bytes by figure name, in recipe order."""
        drawn = [name for name in self._order if name not in self._ready]
        if drawn:
            self._ready.update(zip(drawn, self._wait(), strict=True))
        return {name: self._ready[name] for name in self._order}


def render_all(recipes: list[Recipe], reuse: Path | None, code: list[Path]) -> Drawing:
    """Every figure's PNG: one in ``reuse`` whose embedded digest matches is taken as is, the rest drawn.

    ``code``: the modules whose source shapes the figures (a change to them redraws every figure). The
    figures to draw may still be drawing when this returns (in the command's drawing process): the
    caller renders the README meanwhile and waits in :meth:`Drawing.pngs`.
    """
    shaped_by = code_bytes(code)  # read once per render, not once per figure
    ready: dict[str, bytes] = {}
    pending: list[Job] = []
    for recipe in recipes:
        digest = inputs_digest(recipe, shaped_by)
        data = committed_png(reuse / recipe.name) if reuse is not None else None
        if data is not None and png_text(data).get(DIGEST_KEY) == digest:
            ready[recipe.name] = data
            continue
        pending.append((recipe.kind, recipe.inputs, digest))
    return Drawing([recipe.name for recipe in recipes], ready, draw_many(pending))


def committed_png(path: Path) -> bytes | None:
    """The bytes of the figure file at ``path``; None for anything a card must not keep as a figure.

    Not a regular file (a symbolic link, even to identical bytes: the bundle holds its own files, and
    a link may point out of the project), or larger than any figure pubctl draws (PNG_MAX_BYTES).
    """
    return small_regular_bytes(path, PNG_MAX_BYTES)


def code_bytes(code: list[Path]) -> bytes:
    """What shapes every figure alike: the plotting modules' source and matplotlib's version."""
    from importlib import metadata

    modules = [*code, Path(__file__), Path(__file__).with_name("plot_png.py")]
    return b"".join(module.read_bytes() for module in modules) + metadata.version("matplotlib").encode()


def inputs_digest(recipe: Recipe, shaped_by: bytes) -> str:
    """What a figure depends on: its name, kind and data, then :func:`code_bytes`."""
    digest = hashlib.sha256()
    document = {"name": recipe.name, "kind": recipe.kind, "inputs": recipe.inputs}
    digest.update(json.dumps(document, sort_keys=True, allow_nan=True).encode())
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
def draw_many(jobs: list[Job]) -> Callable[[], list[bytes]]:
    """Start drawing each job; the function returned waits for the PNG bytes, in order.

    The command's drawing process draws them when it started one (pipeline.plot_worker); else they are
    drawn here, in forked processes where that pays, before this returns.
    """
    if not jobs:
        return list
    from pipeline import plot_worker

    drawer = plot_worker.take_started()
    if drawer is not None:
        drawer.send(jobs)
        return lambda: plot_worker.received_or_drawn_here(drawer, jobs)
    pngs = draw_here(jobs)
    return lambda: pngs
