"""Files written so that readers see the old content or the new, never half of either.

Every file pubctl writes for a user (records, stamps, cards, plans, checkpoints' side files) goes
through here: a temp file in the same folder, fsync, then rename over the old one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def atomic_write_text(path: Path, text: str) -> None:
    """Write text so readers see the old content or the new, never a partial file."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _umask() -> int:
    """The process umask, read from /proc where Linux has it (setting it to read it races with other threads)."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere it can only be read by setting it; set it straight back
    os.umask(mask)
    return mask


def normal_mode(directory: bool = False) -> int:
    """The permissions open() or mkdir() would give a new file or folder (mkstemp/mkdtemp make them private)."""
    return (0o777 if directory else 0o666) & ~_umask()


def private_to_normal(path: Path) -> Path:
    """Give a folder made by tempfile.mkdtemp (0700) the permissions a plain mkdir would have: it becomes the
    published model folder when it is renamed into place."""
    path.chmod(normal_mode(directory=True))
    return path


def normalise_modes(folder: Path) -> None:
    """Give every file and folder under ``folder`` open()'s and mkdir()'s permissions.

    safetensors writes its files 0600 and tempfile.mkdtemp its folders 0700: a model or adapter folder
    renamed into place from staging would otherwise be readable by its owner alone.
    """
    folder.chmod(normal_mode(directory=True))
    for path in folder.rglob("*"):
        if not path.is_symlink():
            path.chmod(normal_mode(directory=path.is_dir()))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write bytes so readers see the old content or the new, never a partial file.

    An OSError (disk full, read-only or quota-bound file system) names ``path``, not the temp file beside
    it or nothing at all as a failed write() does: the message a user gets says which file was not written.
    """
    try:
        _replace_atomically(path, data)
    except OSError as exc:
        raise failed_write(exc, path) from exc


def failed_write(exc: OSError, path: Path) -> OSError:
    """``exc`` as the same kind of OSError, about ``path`` and marked as a failed write (see pipeline.errors)."""
    if exc.errno is None or (exc.filename == str(path) and exc.filename2 is None):
        named = exc  # not an error of the system (a test's OSError("...")): nothing to re-address
    else:
        named = type(exc)(exc.errno, exc.strerror or str(exc), str(path))
    named.pubctl_write = True  # type: ignore[attr-defined]
    return named


def _replace_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temp name is the target's plus a prefix and a suffix: a short stem keeps a long but valid target name
    # from failing as a too-long temp name.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:64]}.", suffix=".tmp")
    try:
        # mkstemp's file is 0600; the record, the card and the stamps are no secret, and a card bundle is
        # committed: they get what open() would give (which also mends files earlier versions left 0600).
        os.fchmod(fd, normal_mode())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        # Best effort: the error that stopped the write is the one to report, not a second one removing the rest.
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write cycles of one record between processes (POSIX)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: a single writer is the documented use
        yield
        return
    with (path.parent / f".{path.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
