"""Measured facts of a saved model folder: every file's size and sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline.results import FileEntry

CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def file_entries(folder: Path) -> list[FileEntry]:
    """Every file under ``folder`` (paths relative to it, POSIX separators, sorted)."""
    return [
        FileEntry(path=path.relative_to(folder).as_posix(), size=path.stat().st_size, sha256=sha256_of(path))
        for path in sorted(p for p in folder.rglob("*") if p.is_file())
    ]
