"""What a running stage shows on the terminal: one progress line, live or as plain lines.

On a terminal it is a rich Progress (stage, step/total, elapsed, time left, and what is being
done now) that redraws in place and vanishes when the stage ends, leaving its summary line.
Anywhere else (CI logs, a pipe, a test runner) nothing redraws: a plain line says how far the
stage got at most every ``PLAIN_INTERVAL_S`` seconds, so a log holds a readable trail, not
thousands of redraws.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from rich.progress import TaskID

PLAIN_INTERVAL_S = 30.0
"""Without a terminal: the longest silence before a plain progress line says how far the stage got."""


@dataclass
class Position:
    """How far a stage got, in its own unit (train: optimizer steps; evaluate: models × tasks)."""

    unit: str = ""
    completed: int = 0
    total: int | None = None
    doing: str = ""
    """What runs now, in words ('tuned · demo_mmlu (2/3)')."""
    started_at: int = 0
    """``completed`` when counting began (a resumed run starts at its checkpoint's step)."""

    def describe(self) -> str:
        """'step 8 of 12', 'task 2 of 6 (tuned · demo_mmlu (2/3))'; '' before anything was counted."""
        if not self.unit:
            return self.doing
        of = f" of {self.total}" if self.total else ""
        doing = f" ({self.doing})" if self.doing else ""
        return f"{self.unit} {self.completed}{of}{doing}"


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class Display:
    """The plain display: lines only, never a redraw (also the base of the live one)."""

    def __init__(self, console: Console, stage: str) -> None:
        self.console = console
        self.stage = stage
        self.position = Position()
        self.started = time.monotonic()
        self._counting_since = self.started
        self._last_line = self.started

    def begin(self, total: int | None, unit: str, completed: int = 0) -> None:
        """Counting starts: ``total`` units of ``unit``, ``completed`` of them already done (a resumed run)."""
        self.position = Position(unit=unit, completed=completed, total=total, started_at=completed)
        self._counting_since = time.monotonic()

    def _move(self, completed: int | None, doing: str | None) -> None:
        if completed is not None:
            self.position.completed = completed
        if doing is not None:
            self.position.doing = doing

    def update(self, completed: int | None = None, *, doing: str | None = None) -> None:
        self._move(completed, doing)
        if time.monotonic() - self._last_line >= PLAIN_INTERVAL_S:
            self.line(self._progress_line())

    def line(self, text: str) -> None:
        """A line that stays (a training metrics line, a note of pubctl's): printed as it is, not as markup."""
        self._last_line = time.monotonic()
        self.console.print(text, markup=False, highlight=False)

    def stop(self) -> None:
        """The stage is over: the display goes (its summary line is the chain's to print)."""

    def eta(self) -> float | None:
        """Seconds left at the pace of this run so far; None before a unit was done."""
        p = self.position
        done = p.completed - p.started_at
        if not p.total or done <= 0 or p.completed >= p.total:
            return None
        return (time.monotonic() - self._counting_since) / done * (p.total - p.completed)

    def _progress_line(self) -> str:
        elapsed = _clock(time.monotonic() - self.started)
        eta = self.eta()
        left = f", about {_clock(eta)} left" if eta is not None else ""
        where = self.position.describe() or "running"
        return f"{self.stage}: {where}, {elapsed} elapsed{left}"


class LiveDisplay(Display):
    """A rich Progress redrawn in place on a terminal; transient, so the stage's summary replaces it."""

    def __init__(self, console: Console, stage: str) -> None:
        super().__init__(console, stage)
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}[/]"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[doing]}"),
            console=console,
            transient=True,
            # pubctl redirects the streams itself (into the stage's log); rich must not wrap them again.
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.task: TaskID | None = None
        self.live = False

    def begin(self, total: int | None, unit: str, completed: int = 0) -> None:
        # Shown from the stage's first report on: stages that print their own report (check, push) never start
        # it, and nothing else writes to the terminal while it redraws.
        super().begin(total, unit, completed)
        fields = {"unit": f"{unit}s" if unit else "", "doing": ""}
        if self.task is None:
            self.task = self.progress.add_task(escape(self.stage), total=total, completed=completed, **fields)
        else:
            self.progress.reset(self.task, total=total, completed=completed, **fields)
        if not self.live:
            self.progress.start()
            self.live = True

    def update(self, completed: int | None = None, *, doing: str | None = None) -> None:
        self._move(completed, doing)
        if self.task is not None:
            self.progress.update(self.task, completed=self.position.completed, doing=escape(self.position.doing))

    def stop(self) -> None:
        if self.live:
            self.progress.stop()
            self.live = False


def make_display(console: Console, stage: str, *, live: bool) -> Display:
    """The live display on a terminal (unless ``live`` is off: --verbose prints the libraries' own output)."""
    if live and console.is_terminal and not console.is_dumb_terminal:
        return LiveDisplay(console, stage)
    return Display(console, stage)
