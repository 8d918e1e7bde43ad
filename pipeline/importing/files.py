"""Reading what ``pubctl import`` is given: JSON files, lm-eval output folders, model folders to copy.

Every file is opened only after its stat says it is a regular file (pipeline.hashing.open_regular: a FIFO
would block the import, a device could be endless) and read within a size bound; what is wrong with a file
is one UsageError naming it. The bytes read are the bytes hashed, so the sha256 a section records is that of
the content its numbers came from.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.checks.model import NOT_PUBLISHED_FROM_MODEL, taken_by_release
from pipeline.errors import UsageError
from pipeline.hashing import NotRegularFile, inside_regular_file, open_regular, sha256_file, visible_files
from pipeline.results import FileEntry

MAX_JSON_BYTES = 256 * 1024 * 1024
"""Largest trainer_state.json or lm-eval results file read (a long run's log history is megabytes, not this)."""
MAX_SAMPLES_BYTES = 2 * 1024 * 1024 * 1024
"""Largest samples_*.jsonl read (lm-eval logs every prompt: big, but bounded)."""
NOT_COPIED = NOT_PUBLISHED_FROM_MODEL
"""Never taken from an imported model folder (a Hub download has its README.md): the card bundle's own copies
are published. Other names the release publishes itself (plots/, pubctl.yaml, model.sig) are refused."""


@dataclass(frozen=True)
class ReadFile:
    """One file as read: where, its sha256, and its bytes."""

    path: Path
    sha256: str
    data: bytes


def shown(path: Path, root: Path, key: str, given: Path) -> str:
    """``path`` as the record and the card name it: relative to the project root when inside it, else by the
    import field that led to it (``import.lm_eval/model/results_x.json``): a published card names no folder of
    the author's machine (a home folder is a user name)."""
    resolved = path.resolve()
    if resolved.is_relative_to(root):
        return resolved.relative_to(root).as_posix()
    base = given.resolve()
    if resolved != base and resolved.is_relative_to(base):
        *folders, name = resolved.relative_to(base).parts
        return "/".join([f"import.{key}", *(_folder_shown(folder) for folder in folders), name])
    return f"import.{key}"


_HUB_ID_FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*__[A-Za-z0-9][A-Za-z0-9._-]*")


def _folder_shown(folder: str) -> str:
    """A folder inside an import path, or '…': lm-eval names its output subfolder after the model argument with
    each '/' made '__', so `/home/alice/run` becomes `__home__alice__run`. Only a Hub id's (`Qwen__Qwen3-0.6B`)
    and plain names are shown."""
    if folder.count("__") == 1 and _HUB_ID_FOLDER.fullmatch(folder):
        return folder
    return folder if "__" not in folder and not folder.startswith(".") else "…"


def read_file(path: Path, what: str, limit: int = MAX_JSON_BYTES) -> ReadFile:
    """The bytes of a regular file (never anything else opened), bounded, with their sha256."""
    try:
        with open_regular(path) as handle:
            data = handle.read(limit + 1)
    except NotRegularFile as exc:
        raise UsageError(f"import: the {what} {exc}") from None
    except FileNotFoundError:
        raise UsageError(f"import: the {what} {path} does not exist.") from None
    if len(data) > limit:
        raise UsageError(f"import: the {what} {path} is larger than {limit // 2**20} MiB; no real one is.")
    return ReadFile(path, hashlib.sha256(data).hexdigest(), data)


def read_json(path: Path, what: str) -> tuple[dict[str, Any], ReadFile]:
    """A JSON object from ``path`` and the file it came from; anything else is a UsageError naming the file."""
    read = read_file(path, what)
    try:
        # json reads NaN and Infinity (the Trainer writes them for a diverged loss) as floats: the gates judge them.
        data = json.loads(read.data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"import: the {what} {path} is not UTF-8 text (byte {exc.start}).") from None
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"import: the {what} {path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})."
        ) from None
    except RecursionError:
        raise UsageError(f"import: the {what} {path} is nested too deeply to be one.") from None
    if not isinstance(data, dict):
        raise UsageError(f"import: the {what} {path} holds a JSON {type(data).__name__}, not an object.")
    return data, read


def read_jsonl(path: Path, what: str) -> tuple[list[dict[str, Any]], ReadFile]:
    """The JSON objects of a JSON-lines file (lm-eval's samples), one per non-empty line."""
    read = read_file(path, what, MAX_SAMPLES_BYTES)
    try:
        text = read.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"import: the {what} {path} is not UTF-8 text (byte {exc.start}).") from None
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise UsageError(f"import: the {what} {path}: line {number} is not a JSON object.") from None
        if not isinstance(row, dict):
            raise UsageError(f"import: the {what} {path}: line {number} is not a JSON object.")
        rows.append(row)
    return rows, read


def model_files(folder: Path, what: str) -> list[Path]:
    """The files to take from an imported model or adapter folder: every visible regular file inside it but the
    card files; a link out of it, a FIFO or a device in it is refused by name before anything is copied."""
    files = []
    for path in visible_files(folder):
        relative = path.relative_to(folder).as_posix()
        if relative in NOT_COPIED:
            continue
        if taken_by_release(relative):
            raise UsageError(
                f"import: the {what} {folder} holds {relative}, a name the release publishes itself (its card's "
                "plots/, pubctl.yaml, model.sig); remove or rename it so the push does not send two files there."
            )
        try:
            inside_regular_file(path, folder)
        except NotRegularFile as exc:
            raise UsageError(f"import: in the {what} {folder}: {exc}") from None
        files.append(path)
    if not files:
        raise UsageError(f"import: the {what} {folder} holds no files.")
    return files


def copy_files(folder: Path, files: list[Path], dest: Path) -> list[FileEntry]:
    """Copy ``files`` of ``folder`` into ``dest`` (same relative paths); the copies' sizes and sha256, measured on
    the copies: what is recorded is what will be published, even if the source changes meanwhile."""
    entries = []
    for path in files:
        relative = path.relative_to(folder)
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        entries.append(FileEntry(path=relative.as_posix(), size=target.stat().st_size, sha256=sha256_file(target)))
    return sorted(entries, key=lambda entry: entry.path)
