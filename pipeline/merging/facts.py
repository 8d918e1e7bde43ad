"""Measured facts of a saved model folder: every file's size and sha256."""

from __future__ import annotations

from pathlib import Path

from pipeline.hashing import sha256_file, visible_files
from pipeline.results import FileEntry


def file_entries(folder: Path) -> list[FileEntry]:
    """Every published file under ``folder`` (paths relative to it, POSIX separators, sorted; no hidden files)."""
    return [
        FileEntry(path=path.relative_to(folder).as_posix(), size=path.stat().st_size, sha256=sha256_file(path))
        for path in visible_files(folder)
    ]
