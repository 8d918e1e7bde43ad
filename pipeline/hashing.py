"""Which files a folder holds, their sha256 (read in 1 MiB blocks: model shards are gigabytes), a folder's digest.

Only regular files are ever opened. A FIFO blocks the process that opens it until a
writer appears, a device can be endless, and a symbolic link can lead anywhere on
the machine (a token, /etc/passwd): each is refused by its stat, before any open.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import UsageError

CHUNK = 1 << 20

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISLNK, "a symbolic link"),
)


class NotRegularFile(UsageError):
    """A path pubctl was about to hash, read or publish that is not a regular file it may open (exit 2)."""

    def __init__(self, path: Path, why: str, advice: str = "") -> None:
        self.path = path
        self.why = why
        """What the path is instead ('is a FIFO (named pipe)', 'is a symbolic link to ..., outside ...')."""
        tail = f" {advice}" if advice else " pubctl opens regular files only: remove it or replace it with one."
        super().__init__(f"{path} {why}, not a regular file.{tail}")


def kind_of(mode: int) -> str:
    """What a stat mode describes, as a phrase: 'a FIFO (named pipe)', 'a folder', ... or 'a regular file'."""
    return next((name for test, name in _KINDS if test(mode)), "a regular file" if stat.S_ISREG(mode) else "unknown")


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading, refusing (NotRegularFile) anything that is not a regular file.

    The stat comes first so a device or FIFO is never opened; the open is non-blocking and its fstat is
    checked again, so a file swapped for a FIFO between the two cannot block either. Links are followed:
    callers that must not follow them check with :func:`inside_regular_file` first.
    """
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFile(path, f"is {kind_of(mode)}")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path, f"is {kind_of(mode)}")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def small_regular_bytes(path: Path, limit: int) -> bytes | None:
    """The bytes of ``path`` when it is a regular file of at most ``limit`` bytes, else None (missing, a link,
    a FIFO or device, too large): for files pubctl wrote itself and reads back only if they are still that.

    Opened without following a link and non-blocking, and checked again on the open file, so neither a link
    planted at the name nor a FIFO swapped in after the first look is read.
    """
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode) or found.st_size > limit:
            return None
        data = handle.read(limit + 1)
    return data if len(data) <= limit else None


def sha256_file(path: Path) -> str:
    """Hex sha256 of the file's bytes; NotRegularFile for anything but a regular file (never opened)."""
    digest = hashlib.sha256()
    with open_regular(path) as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def inside_regular_file(path: Path, folder: Path) -> os.stat_result:
    """The stat of ``path`` when it is a regular file whose resolved path lies inside ``folder``; opens nothing.

    For what is published or checked against a record: a link that resolves inside the folder is its
    target; one that leads out of it, dangles or loops, and any special file, is NotRegularFile.
    """
    try:
        own = path.lstat()
    except FileNotFoundError:
        raise NotRegularFile(path, "does not exist") from None
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):  # RuntimeError: a link loop on Python < 3.13
        raise NotRegularFile(path, "is a symbolic link that leads nowhere (dangling or a loop)") from None
    root = folder.resolve()
    if resolved != root and root not in resolved.parents:
        what = f"is a symbolic link to {resolved}" if stat.S_ISLNK(own.st_mode) else f"resolves to {resolved}"
        raise NotRegularFile(
            path, f"{what}, outside {folder}", "pubctl never reads or publishes a file from outside the release."
        )
    target = resolved.stat()
    if not stat.S_ISREG(target.st_mode):
        link = f"is a symbolic link to {kind_of(target.st_mode)}" if stat.S_ISLNK(own.st_mode) else ""
        raise NotRegularFile(path, link or f"is {kind_of(target.st_mode)}")
    return target


def visible_files(root: Path) -> list[Path]:
    """Entries under ``root`` that are not folders, sorted, leaving out hidden ones (a dot-prefixed name anywhere).

    Hidden files are the lock and temp files of atomic writes, or tool metadata, never published
    content: the merge does not record them, stamps do not hash them and push never sends them.
    Special files and links are listed as they are (a link to a folder too: it is not walked into),
    so each caller decides; none of them is opened here.
    """
    files = []
    for folder, dirs, names in os.walk(root):
        linked = [name for name in dirs if not name.startswith(".") and (Path(folder) / name).is_symlink()]
        dirs[:] = [name for name in dirs if not name.startswith(".") and name not in linked]
        files.extend(Path(folder) / name for name in [*names, *linked] if not name.startswith("."))
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
    """:func:`tree_digest` of every visible file under ``folder``; None when it holds none (or is missing).

    The digest of a release folder a stage consumed or left (pipeline.lineage): every entry must be a
    regular file inside it; a special file, or a link to one, to a folder or out of ``folder``, is
    NotRegularFile naming it, and nothing is opened before all entries are checked.
    """
    if not folder.is_dir():
        return None
    files = visible_files(folder)
    for path in files:
        inside_regular_file(path, folder)
    return tree_digest((path.relative_to(folder).as_posix(), sha256_file(path)) for path in files)
