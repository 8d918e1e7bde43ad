"""A stage's log file (runs/NAME/logs/STAGE.log) and the writers that fill it.

What the libraries print while a stage runs (progress bars, warnings, log records) is kept here
rather than on the terminal. A progress bar redraws its line with carriage returns hundreds of
times; only the last state of each line is kept, so the log reads as one line per bar.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO


class LogFile:
    """Appends to ``path``, opened on the first write (a stage that captured nothing leaves no file)."""

    def __init__(self, path: Path, header: str) -> None:
        self.path = path
        self.header = header
        self._file: TextIO | None = None
        self._pending = ""  # the line being written: a carriage return starts it again
        self._lock = threading.RLock()  # lm-eval and torch write from threads too
        self._closed = False
        self._size_before = path.stat().st_size if path.is_file() else 0
        self._header_end = self._size_before

    def _open(self) -> TextIO:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8", errors="replace")
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            self._file.write(f"==== {self.header} — {stamp} ====\n")
            self._file.flush()
            self._header_end = self._file.tell()
        return self._file

    def fileno(self) -> int:
        """The open file's descriptor, for output written below Python (a subprocess, C code)."""
        if self._closed:
            raise OSError(f"{self.path}: the stage that wrote this log has ended")
        with self._lock:
            self.flush()
            return self._open().fileno()

    def write(self, text: str) -> None:
        """Write ``text``, keeping only what is left of a line after its last carriage return."""
        if not text or self._closed:  # a progress bar closed after its stage ended: nothing to keep
            return
        with self._lock:
            lines = (self._pending + text).split("\n")
            self._pending = lines.pop()
            if "\r" in self._pending:
                self._pending = self._last_redraw(self._pending)
            done = [self._last_redraw(line) for line in lines]
            if done:
                file = self._open()
                file.write("\n".join(done) + "\n")
                file.flush()  # a subprocess may write to the same file next: keep the order

    @staticmethod
    def _last_redraw(line: str) -> str:
        parts = [part for part in line.split("\r") if part.strip()]
        return parts[-1].rstrip() if parts else ""

    def flush(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._pending.strip():
                self.write("\n")
            self._pending = ""
            self._closed = True
            if self._file is None:
                return
            self._file.close()
            self._file = None
            if not self.written:  # opened for a subprocess that printed nothing: no header without a log
                if self._size_before:
                    with self.path.open("r+b") as file:
                        file.truncate(self._size_before)
                else:
                    self.path.unlink(missing_ok=True)

    @property
    def written(self) -> bool:
        """Whether anything besides the header reached the file since this run began (this process, a subprocess
        or another rank of the run)."""
        self.flush()
        size = self.path.stat().st_size if self.path.is_file() else 0
        return size > self._header_end


class CaptureStream(io.TextIOBase):
    """A stand-in for sys.stdout/sys.stderr that writes into the log (and to ``echo`` too, with --verbose)."""

    def __init__(self, log: LogFile, echo: TextIO | None = None) -> None:
        super().__init__()
        self.log = log
        self.echo = echo

    def write(self, text: str) -> int:
        self.log.write(text)
        if self.echo is not None:
            self.echo.write(text)
        return len(text)

    def flush(self) -> None:
        self.log.flush()
        if self.echo is not None:
            self.echo.flush()

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        # A subprocess handed sys.stderr writes into the log as well.
        return self.log.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


class LogHandler(logging.Handler):
    """Log records of the libraries into the log file (and on to ``echo``, a callable printing a line)."""

    def __init__(self, log: LogFile, echo: Callable[[str], None] | None = None) -> None:
        super().__init__(level=logging.NOTSET)
        self.log = log
        self.echo = echo
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # logging's own contract: a bad record never stops the stage
            self.handleError(record)
            return
        self.log.write(line + "\n")
        if self.echo is not None:
            self.echo(line)
