"""StageOutput: what one stage shows on the terminal, and where the rest of what it prints goes.

While a stage runs, the libraries it drives write progress bars, FutureWarnings, log records and
dictionaries a pubctl user cannot act on. Inside :class:`StageOutput` they go into the stage's
log (runs/NAME/logs/STAGE.log) instead, through each library's own switch where it has one:

- Python warnings (``warnings.showwarning``) and the log records of the libraries' loggers (their
  own handlers are set aside for the stage, the root logger gets one for the rest);
- the progress bars of transformers, datasets and huggingface_hub, turned off with their APIs
  (``disable_progress_bar(s)``) in the stages that use them;
- for code that writes to the streams directly (lm-eval's tqdm bars, the git lm-eval runs to
  read a commit), :meth:`StageOutput.captured` around that call: sys.stdout/sys.stderr point at
  the log, and so does file descriptor 2 when it is a real one (a subprocess writes there).

pubctl's own messages and errors stay on the terminal: captured() is only around library calls,
and an exception leaves every stream restored before the CLI prints it. ``--verbose`` (or
PUBCTL_VERBOSE=1) shows all of it live as well, without the redrawn progress display.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console

from pipeline.console.display import Display, make_display
from pipeline.console.log_file import CaptureStream, LogFile, LogHandler

LIBRARY_LOGGERS = (
    "transformers",
    "datasets",
    "huggingface_hub",
    "trl",
    "peft",
    "accelerate",
    "lm_eval",
    "lm-eval",
    "torch",
    "evaluate",
    "sqlitedict",
)
"""Loggers whose records a pubctl user cannot act on: kept in the stage's log (their own handlers print to
the terminal, so they are set aside for the stage)."""

QUIETED = {
    "transformers": "transformers.utils.logging",
    "datasets": "datasets.utils.logging",
    "huggingface_hub": "huggingface_hub.utils.logging",
}
"""Libraries with their own log handler and progress-bar switch, and the module that sets them up."""

_state: dict[str, Any] = {"verbose": False, "active": None}


def set_verbose(verbose: bool) -> None:
    """``pubctl --verbose``: library output is shown live as well as logged (PUBCTL_VERBOSE=1 does the same)."""
    _state["verbose"] = verbose


def is_verbose() -> bool:
    return bool(_state["verbose"]) or os.environ.get("PUBCTL_VERBOSE", "") not in ("", "0")


def active() -> StageOutput | None:
    """The StageOutput of the stage running now, if any."""
    return _state["active"]


class StageOutput:
    """One stage's terminal display and log; a context manager around the stage's run."""

    def __init__(
        self, stage: str, log_path: Path, *, header: str, libraries: tuple[str, ...] = (), quiet_bars: bool = False
    ) -> None:
        """``libraries``: the packages the stage drives; the ones with their own log handler (transformers,
        datasets, huggingface_hub) are set up before their handler is set aside. ``quiet_bars``: turn their
        progress bars off (not for a push, whose upload bars are the user's to watch)."""
        self.stage = stage
        self.log = LogFile(log_path, header)
        self.verbose = is_verbose()
        self.libraries = tuple(name for name in QUIETED if name in libraries)
        self.quiet_bars = quiet_bars and not self.verbose
        self._exit = contextlib.ExitStack()
        self.terminal: TextIO = sys.stderr
        self.display: Display | None = None
        self._fd_redirect = False

    # --------------------------------------------------------------- entering and leaving
    def __enter__(self) -> StageOutput:
        self.terminal = self._terminal()
        console = Console(file=self.terminal, highlight=False, soft_wrap=True)
        self.display = make_display(console, self.stage, live=not self.verbose)
        try:
            self._route_loggers()
            self._route_warnings()
            if self.quiet_bars:
                self._quiet_progress_bars()
            self._exit.callback(self.display.stop)
        except BaseException:
            self._exit.close()
            raise
        _state["active"] = self
        return self

    def __exit__(self, *exc: object) -> None:
        _state["active"] = None
        try:
            self._exit.close()
        finally:
            self.log.close()

    def _terminal(self) -> TextIO:
        """Where the display writes. When stderr is file descriptor 2, captured() points descriptor 2 at the
        log for a while, so the display writes to its own duplicate of it."""
        stream = sys.stderr
        if self.verbose:
            return stream
        try:
            if stream.fileno() != 2:
                return stream
            stream.flush()
            duplicate = os.fdopen(os.dup(2), "w", encoding=stream.encoding or "utf-8", errors="replace")
        except (AttributeError, OSError, ValueError):  # a test runner's stream, a closed one
            return stream
        self._fd_redirect = True
        self._exit.callback(duplicate.close)
        return duplicate

    # --------------------------------------------------------------- what goes into the log
    def _echo(self, line: str) -> None:
        if self.display is not None:
            self.display.line(line)

    def _route_loggers(self) -> None:
        # A library adds its own handler when its logging module is first imported: importing them now, before
        # that handler is set aside, keeps one imported during the stage from printing past the log.
        for name in self.libraries:
            importlib.import_module(QUIETED[name])
        handler = LogHandler(self.log, echo=self._echo if self.verbose else None)
        for name in LIBRARY_LOGGERS:
            logger = logging.getLogger(name)
            saved = (logger.handlers[:], logger.propagate)
            logger.handlers[:] = [handler]
            logger.propagate = False
            self._exit.callback(self._restore_logger, logger, saved)
        root = logging.getLogger()
        root.addHandler(handler)  # records of other loggers reach the root; without a handler it prints them
        self._exit.callback(root.removeHandler, handler)

    @staticmethod
    def _restore_logger(logger: logging.Logger, saved: tuple[list[logging.Handler], bool]) -> None:
        logger.handlers[:] = saved[0]
        logger.propagate = saved[1]

    def _route_warnings(self) -> None:
        saved = warnings.showwarning

        def show(
            message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
        ) -> None:
            text = warnings.formatwarning(message, category, filename, lineno, line)
            self.log.write(text)
            if self.verbose:
                self._echo(text.rstrip("\n"))

        warnings.showwarning = show
        self._exit.callback(setattr, warnings, "showwarning", saved)

    def _quiet_progress_bars(self) -> None:
        """The libraries' own switches for their progress bars, restored afterwards."""
        if "transformers" in self.libraries:
            import transformers.utils.logging as transformers_logging

            if transformers_logging.is_progress_bar_enabled():
                transformers_logging.disable_progress_bar()
                self._exit.callback(transformers_logging.enable_progress_bar)
        if "datasets" in self.libraries:
            import datasets

            if datasets.is_progress_bar_enabled():
                datasets.disable_progress_bars()
                self._exit.callback(datasets.enable_progress_bars)
        if "huggingface_hub" in self.libraries:
            import huggingface_hub.utils as hub_utils

            if not hub_utils.are_progress_bars_disabled():
                hub_utils.disable_progress_bars()
                self._exit.callback(hub_utils.enable_progress_bars)

    # --------------------------------------------------------------- used by the stages
    @contextlib.contextmanager
    def captured(self) -> Iterator[None]:
        """Around a library call that writes to the streams itself: what it writes goes into the log."""
        echo = self.terminal if self.verbose else None
        saved = sys.stdout, sys.stderr
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout = CaptureStream(self.log, echo)  # type: ignore[assignment]
        sys.stderr = CaptureStream(self.log, echo)  # type: ignore[assignment]
        saved_fd = None
        if self._fd_redirect:
            saved_fd = os.dup(2)
            os.dup2(self.log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved
            if saved_fd is not None:
                self.log.flush()
                os.dup2(saved_fd, 2)
                os.close(saved_fd)

    def begin(self, total: int | None, unit: str, completed: int = 0) -> None:
        if self.display is not None:
            self.display.begin(total, unit, completed)

    def update(self, completed: int | None = None, *, doing: str | None = None) -> None:
        if self.display is not None:
            self.display.update(completed, doing=doing)

    def line(self, text: str) -> None:
        """A line that stays on the terminal (above the live display)."""
        if self.display is not None:
            self.display.line(text)

    @property
    def reached(self) -> str:
        """How far the stage got ('step 8 of 12'); '' when it reported no progress."""
        return self.display.position.describe() if self.display is not None else ""

    @property
    def log_written(self) -> bool:
        return self.log.written


# ------------------------------------------------------------------- for stage code
def captured() -> contextlib.AbstractContextManager[None]:
    """StageOutput.captured() of the running stage; nothing when none runs (a stage's code called directly)."""
    output = active()
    return output.captured() if output is not None else contextlib.nullcontext()


def progress_begin(total: int | None, unit: str, completed: int = 0) -> None:
    output = active()
    if output is not None:
        output.begin(total, unit, completed)


def progress_update(completed: int | None = None, *, doing: str | None = None) -> None:
    output = active()
    if output is not None:
        output.update(completed, doing=doing)


def say(text: str) -> None:
    """One of pubctl's own lines during a stage: above the live display, or plainly on stderr without one."""
    output = active()
    if output is not None:
        output.line(text)
    else:
        Console(stderr=True, highlight=False, soft_wrap=True).print(text, markup=False)
