"""Which files a folder holds, their sha256 (read in 1 MiB blocks: model shards are gigabytes), a folder's digest."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of the file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def visible_files(root: Path) -> list[Path]:
    """Files under ``root``, sorted, leaving out hidden ones (a dot-prefixed name anywhere below ``root``).

    Hidden files are the lock and temp files of atomic writes, or tool metadata, never published
    content: the merge does not record them, stamps do not hash them and push never sends them.
    """
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        files.extend(Path(folder) / name for name in names if not name.startswith("."))
    return sorted(files)


def tree_digest(entries: Iterable[tuple[str, str]]) -> str | None:
    """One sha256 for a folder from its (relative POSIX path, file sha256) pairs; None for no files.

    The same bytes as pipeline.stamps.FileHasher.tree hashes, so a stage's recorded digest and a stamp's
    hash of the same folder agree, and a merge can compute its model's digest from the file list it records.
    """
    digest = hashlib.sha256()
    count = 0
    for relative, sha in sorted(entries):
        digest.update(f"{relative}\0{sha}\n".encode())
        count += 1
    return digest.hexdigest() if count else None


def folder_digest(folder: Path) -> str | None:
    """:func:`tree_digest` of every visible file under ``folder``; None when it holds none (or is missing)."""
    if not folder.is_dir():
        return None
    return tree_digest((path.relative_to(folder).as_posix(), sha256_file(path)) for path in visible_files(folder))
