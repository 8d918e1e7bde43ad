"""A drawing process started before a command loads its config, so importing matplotlib overlaps that work.

Cold, ``pubctl card`` spends about half a second loading the config and the record
(pydantic, Jinja, huggingface_hub) before it knows which figures to draw, and
importing matplotlib and numpy takes as long again. Done one after the other, that
is most of the render. ``pubctl card`` and ``pubctl check`` therefore start this
process first (:func:`drawing_ahead`): it imports matplotlib on another CPU while
the command loads, then draws the jobs it is sent with the same code as
:func:`pipeline.plot_png.draw_here`, so the bytes are identical. A command that
needs no figure stops it unused.

Protocol, one exchange: the command writes the jobs to the child's stdin as one
JSON document (a list of [kind, inputs, digest]: plain data, no pickle in either
direction) and closes it; the child answers with each PNG as an 8-byte big-endian
length and the bytes, in order, and exits 0. An empty stdin (no figure needed, or
the command died) ends the child. The child ignores Ctrl-C: the command stops it.
The command renders the README while the child draws, and waits for the PNGs last.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.plot_png import PNG_MAX_BYTES, draw_here, log_note, spare_cpus

DRAW_TIMEOUT_S = 600
"""Longest a drawing exchange may take: six figures take about a second; a hung child must not hang the command."""
_BOOT = "import json, sys; sys.path[:] = json.loads(sys.argv[1]); from pipeline.plot_worker import serve; serve()"
"""Run with -I: nothing of the working directory (a json.py in the user's project) is imported before the
command's own sys.path replaces the child's."""

_STARTED: Drawer | None = None


class DrawingFailed(RuntimeError):
    """The drawing process failed or answered something that is not the PNGs asked for (a bug, not bad input)."""


class Drawer:
    """A started drawing process, good for one exchange: :meth:`send` the jobs, then :meth:`receive` the PNGs."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.used = False

    def send(self, jobs: list[Any]) -> None:
        """Hand the child its (kind, inputs, digest) jobs; it draws them while this process goes on."""
        stdin = self.process.stdin
        assert stdin is not None
        # communicate() in receive() must not flush the pipe closed here (the end of input starts the drawing).
        self.process.stdin = None
        try:
            # The child reads its stdin from its first moment (serve), so this does not wait for its imports.
            stdin.write(json.dumps([list(job) for job in jobs], allow_nan=True).encode())
            stdin.close()
        except BrokenPipeError:
            pass  # the child is gone: receive() reports how it ended

    def receive(self, count: int) -> list[bytes]:
        """The ``count`` PNGs the child drew, in the order sent."""
        try:
            answer, errors = self.process.communicate(timeout=DRAW_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise DrawingFailed(f"the drawing process took over {DRAW_TIMEOUT_S} s for {count} figures") from None
        finally:
            if self.process.returncode is None:
                self.close()  # timed out, or Ctrl-C while waiting: the child ignores it, so it is stopped here
        if errors:
            # What matplotlib warned about goes where it would have gone had this process drawn (a stage's log).
            log_note(errors.decode("utf-8", "replace").rstrip("\n"))
        if self.process.returncode != 0:
            raise DrawingFailed(f"the drawing process exited with {self.process.returncode} drawing {count} figures")
        return _frames(answer, count)

    def close(self) -> None:
        """Stop the child if it still runs (unused, or interrupted) and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def _frames(answer: bytes, count: int) -> list[bytes]:
    pngs, offset = [], 0
    for _ in range(count):
        if offset + 8 > len(answer):
            raise DrawingFailed(f"the drawing process answered {len(pngs)} of {count} figures")
        (length,) = struct.unpack(">Q", answer[offset : offset + 8])
        if length > PNG_MAX_BYTES or offset + 8 + length > len(answer):
            raise DrawingFailed(f"the drawing process answered a damaged frame for figure {len(pngs) + 1}")
        pngs.append(answer[offset + 8 : offset + 8 + length])
        offset += 8 + length
    if offset != len(answer):
        raise DrawingFailed(f"the drawing process answered more than the {count} figures asked for")
    return pngs


def start() -> Drawer | None:
    """A drawing process importing matplotlib now, or None where one would not pay (drawing then stays here).

    It pays only with a CPU to spare: on a busy machine the child would queue behind the command it is
    meant to overlap.
    """
    if spare_cpus() < 2 or not sys.executable:
        return None
    try:
        process = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT, json.dumps(sys.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError:
        return None  # no process to start (a sandbox without fork/exec): the figures are drawn here as before
    return Drawer(process)


def received_or_drawn_here(drawer: Drawer, jobs: list[Any]) -> list[bytes]:
    """The child's PNGs; when it failed (killed, crashed, a damaged answer), the same jobs drawn here.

    The child runs the same drawing code, so a figure that cannot be drawn fails here again, with its own
    traceback. What went wrong with the child is said in the stage's log either way.
    """
    try:
        return drawer.receive(len(jobs))
    except DrawingFailed as exc:
        log_note(f"pubctl: {exc}; drawing the figures in this process instead")
    return draw_here(jobs)


def take_started() -> Drawer | None:
    """The drawing process this command started, the first time only: later figures are drawn here."""
    if _STARTED is None or _STARTED.used:
        return None
    _STARTED.used = True
    return _STARTED


@contextmanager
def drawing_ahead(likely: bool = True) -> Iterator[None]:
    """Within the block, figures are drawn by a process started now (when ``likely`` and a CPU is idle).

    The process is stopped at the end of the block whether it drew or not.
    """
    global _STARTED
    _STARTED = start() if likely else None
    try:
        yield
    finally:
        drawer, _STARTED = _STARTED, None
        if drawer is not None:
            drawer.close()


def stale_figures(name: str, root: Path | None = None) -> bool:
    """Whether ``pubctl card NAME`` is likely to draw: no figures on disk, or a record newer than the last render.

    The last render is the card stage's stamp (runs/NAME/stamps/card.json); where there is none (a fresh
    clone), the oldest figure stands in for it. A guess from file times only, made before the config is
    loaded (NAME is taken as the release name): it decides whether to start a drawing process, never
    what is drawn, so anything it cannot read counts as likely.
    """
    from pipeline.errors import UsageError
    from pipeline.layout import Layout
    from pipeline.stamps import stamp_path

    try:
        layout = Layout.for_release(Path(name).stem, root)
        record = layout.results.stat().st_mtime
        figures = [path.stat().st_mtime for path in layout.plots_dir.glob("*.png")]
        if not figures:
            return True
        stamp = stamp_path(layout.stamps_dir, "card")
        rendered = stamp.stat().st_mtime if stamp.is_file() else min(figures)
    except (OSError, UsageError):
        return True
    return rendered < record


# ------------------------------------------------------------------------- child
def serve() -> None:
    """The child: read the jobs while importing matplotlib, draw them, answer, exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    request: list[bytes] = []
    # Read from the first moment, so the command's write never waits for this process's imports.
    reader = threading.Thread(target=lambda: request.append(sys.stdin.buffer.read()))
    reader.start()
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401

    reader.join()  # before drawing: draw_here forks only from a process with one thread
    if not request[0]:
        return
    jobs = [tuple(job) for job in json.loads(request[0])]
    out = sys.stdout.buffer
    for png in draw_here(jobs):
        out.write(struct.pack(">Q", len(png)))
        out.write(png)
    out.flush()
    sys.stderr.flush()
    os._exit(0)  # skips tearing down matplotlib's modules: the answer is sent, and nothing else is pending
