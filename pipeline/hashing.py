"""Which files a folder holds, and their sha256 (read in 1 MiB blocks: model shards are gigabytes)."""

from __future__ import annotations

import hashlib
import os
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
