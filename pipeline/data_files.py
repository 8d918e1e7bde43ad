"""Local training-data files: what may be opened, how large, and where a row sits in its file.

A local ``data.train`` (or a rehearsal's ``--data``) is the user's own file, so every way it can be wrong
ends in a message naming it: a folder, a FIFO (which would block the reader until a writer appears), a
device, a missing or empty file, one too large to load, a JSON line that does not parse or is not an
object. The stat comes before any open, so nothing but a regular file is ever read. Rows are named by
their line (JSON lines) or item (a JSON array) in the file, found only when a message needs one.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import UsageError
from pipeline.hashing import kind_of, open_regular
from pipeline.refs import excerpt

if TYPE_CHECKING:
    from datasets import Dataset

BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}
"""The datasets builder that reads each local suffix."""
MAX_DATA_FILE_BYTES = 2 << 30
"""A local file above 2 GiB is refused: datasets converts it whole to an Arrow cache before a row is trained on,
and a data set that large belongs on the Hub, where it is streamed and pinned to a commit."""
MAX_JSON_ARRAY_BYTES = 256 << 20
"""A JSON array (not JSON lines) is parsed whole in memory, at about ten times its size: 256 MiB at most."""
_JSON_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class LocalData:
    """A local file's rows and where each one sits in the file."""

    dataset: Dataset
    origin: RowOrigin | None
    """None for parquet (its rows have no line in a text file)."""


@dataclass(frozen=True)
class RowOrigin:
    """Finds row ``index`` of a JSON file: its line (JSON lines skip blank lines) or its item (a JSON array)."""

    path: Path
    array: bool

    def column(self, name: str, rows: int) -> Iterator[Any]:
        """Column ``name`` of the first ``rows`` rows as the file holds it (None where a row lacks it).

        datasets keeps a column whose rows disagree in type as Json, and on the way turns a string that looks like
        JSON ("4.", "[1]") into a number or a list: a message about such a column reads the file itself.
        """
        if self.array:
            with open_regular(self.path) as handle:
                items = json.loads(handle.read(MAX_JSON_ARRAY_BYTES + 1).removeprefix(_BOM).decode("utf-8"))
            for item in items[:rows]:
                yield item.get(name) if isinstance(item, dict) else None
            return
        with open_regular(self.path) as handle:
            seen = 0
            for raw in handle:
                if seen == rows:
                    return
                line = raw.removeprefix(_BOM)
                if line.strip(_JSON_WHITESPACE):
                    seen += 1
                    row = json.loads(line.decode("utf-8"))
                    yield row.get(name) if isinstance(row, dict) else None

    def place(self, index: int) -> str:
        """'line 7' or 'item 7 of the JSON array' (1-based), '' when the file no longer says."""
        if self.array:
            return f"item {index + 1} of the JSON array"
        line = _data_line(self.path, index)
        return f"line {line}" if line is not None else ""


def check_data_file(path: Path, label: str) -> str:
    """The datasets builder for ``path`` once it is a regular, non-empty file of a known suffix and bounded size.

    ``label`` starts each message ('data.train: train.jsonl', '--data d.jsonl'). Nothing is opened but a
    regular file, and that only to tell a JSON array (read whole) from JSON lines.
    """
    try:
        mode, size = _stat(path)
    except FileNotFoundError:
        raise UsageError(f"{label}: no such file ({path}).") from None
    except OSError as exc:
        raise UsageError(f"{label}: cannot read {path}: {exc.strerror or exc}.") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"{label}: {path} is a folder; point it at a .json, .jsonl or .parquet file.")
    if not stat.S_ISREG(mode):
        raise UsageError(
            f"{label}: {path} is {kind_of(mode)}, not a regular file; pubctl reads training data from regular "
            ".json, .jsonl or .parquet files only."
        )
    suffix = path.suffix.lower()
    builder = BUILDERS.get(suffix)
    if builder is None:
        raise UsageError(f"{label}: {path} is not a .json, .jsonl or .parquet file (found '{suffix or 'no suffix'}').")
    if size > MAX_DATA_FILE_BYTES:
        raise UsageError(
            f"{label}: {path} is {_gib(size)}; pubctl loads local data files of up to {_gib(MAX_DATA_FILE_BYTES)}. "
            "Upload a data set that large to the Hub (it is then streamed and pinned to a commit), or train on a "
            "smaller file."
        )
    if builder == "json":
        start = _first_bytes(path)
        if not start:
            raise UsageError(f"{label}: {path} is empty: the training split has no rows.")
        if _is_array(path) and size > MAX_JSON_ARRAY_BYTES:
            raise UsageError(
                f"{label}: {path} is a JSON array of {_gib(size)}, which is parsed whole in memory; pubctl reads "
                f"JSON arrays of up to {MAX_JSON_ARRAY_BYTES >> 20} MiB. Write it as JSON lines (one object per "
                "line, .jsonl), which are read in blocks."
            )
    elif size == 0:
        raise UsageError(f"{label}: {path} is empty: the training split has no rows.")
    return builder


def load_local_file(path: Path, reference: str, label: str = "data.train") -> LocalData:
    """A local .json/.jsonl/.parquet file as one Dataset; any problem with it is a UsageError naming the file."""
    from datasets import load_dataset
    from datasets.exceptions import DatasetsError
    from pyarrow.lib import ArrowException

    builder = check_data_file(path, f"{label}: {reference}" if reference != str(path) else label)
    named = f"{reference} ({path})" if reference != str(path) else str(path)
    array = builder == "json" and _is_array(path)
    try:
        dataset = load_dataset(builder, data_files=str(path), split="train")
    # What an unreadable file raises: datasets' own errors (malformed JSON lines), Arrow's (not a parquet file),
    # I/O errors. Anything else is a bug or an environment problem and keeps its traceback.
    except (DatasetsError, ArrowException, ValueError, OSError) as exc:
        problem = json_problem(path, array) if builder == "json" else None
        if problem is None:
            text = str(exc).strip()
            problem = excerpt(text.splitlines()[0], 200) if text else type(exc).__name__
        raise UsageError(f"{label}: could not read {named} as {builder}: {problem}") from None
    return LocalData(dataset, RowOrigin(path, array) if builder == "json" else None)


def json_problem(path: Path, array: bool) -> str | None:
    """The first line (or array item) of a JSON file that is not a JSON object, said in one sentence; None if none."""
    if array:
        with open_regular(path) as handle:
            raw = handle.read(MAX_JSON_ARRAY_BYTES + 1)
        try:
            items = json.loads(raw.removeprefix(_BOM).decode("utf-8"))
        except UnicodeDecodeError as exc:
            return f"it is not UTF-8 text (byte {exc.start})."
        except (json.JSONDecodeError, RecursionError) as exc:
            return f"it is not valid JSON ({_reason(exc)})."
        if not isinstance(items, list):
            return "it is not a JSON array of objects."
        for number, item in enumerate(items, 1):
            if not isinstance(item, dict):
                return f"item {number} of the JSON array is {_json_kind(item)}, not an object {{column: value}}."
        return None
    blank = None
    with open_regular(path) as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.removeprefix(_BOM) if number == 1 else raw
            if not line.strip(_JSON_WHITESPACE):
                blank = blank or number
                continue
            shown = excerpt(line.decode("utf-8", errors="replace").rstrip("\r\n"))
            try:
                row = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as exc:
                return f"line {number} is not UTF-8 text (byte {exc.start} of the line)."
            except (json.JSONDecodeError, RecursionError) as exc:
                return f"line {number} is not valid JSON ({_reason(exc)}): {shown}."
            if not isinstance(row, dict):
                return f"line {number} holds {_json_kind(row)}, not an object {{column: value}}: {shown}."
    if blank is not None:
        # datasets reads blank lines, except in a file whose columns mix value types: that one fails on them
        return (
            f"line {blank} is blank, and datasets cannot read a file with blank lines whose rows give one column "
            "values of different types (text on one line, a number on another); remove the blank lines."
        )
    return None


def _stat(path: Path) -> tuple[int, int]:
    info = path.stat()  # links are followed: what matters is what would be read
    return info.st_mode, info.st_size


def _first_bytes(path: Path) -> bytes:
    """The first non-blank bytes of a regular file (after a UTF-8 BOM), b'' for a blank one."""
    with open_regular(path) as handle:
        first = True
        while block := handle.read(1 << 16):
            block = block.removeprefix(_BOM) if first else block
            first = False
            if block.strip(_JSON_WHITESPACE):
                return block.lstrip(_JSON_WHITESPACE)[:16]
    return b""


def _is_array(path: Path) -> bool:
    """A JSON array rather than JSON lines, as datasets tells them: by the first byte after a BOM."""
    with open_regular(path) as handle:
        return handle.read(len(_BOM) + 1).removeprefix(_BOM).startswith(b"[")


def _data_line(path: Path, index: int) -> int | None:
    """The 1-based line of the ``index``-th non-blank line of a JSON lines file (as datasets counts rows)."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return None
        with open_regular(path) as handle:
            seen = -1
            for number, raw in enumerate(handle, 1):
                if raw.removeprefix(_BOM).strip(_JSON_WHITESPACE):
                    seen += 1
                    if seen == index:
                        return number
    except OSError:  # the file went away after loading: the row is still named by its index
        return None
    return None


def _reason(exc: json.JSONDecodeError | RecursionError) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deep"
    return f"{exc.msg} at column {exc.colno}"


def _json_kind(value: object) -> str:
    return {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


def _gib(size: int) -> str:
    return f"{size / (1 << 30):.1f} GiB"


def line_note(origin: RowOrigin | None, index: int) -> str:
    """' (line 7)' for row ``index`` of a local JSON file, '' where rows have no line (parquet, the Hub)."""
    place = origin.place(index) if origin is not None else ""
    return f" ({place})" if place else ""
