"""The errors pubctl reports to users, each with the exit code the CLI gives it.

Every error a user can cause is one of these: the CLI prints its message as one
paragraph (no traceback) and exits with its code. An error of the machine (disk
full, read-only file system) is one line naming the file (:func:`os_error_message`).
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import re


class PubctlError(Exception):
    """Base class: a message meant for the user and the exit code that goes with it."""

    exit_code: int = 2


class UsageError(PubctlError):
    """Bad usage, bad config or bad input (exit 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """A release config that cannot be loaded or validated (exit 2)."""


class ResultsError(UsageError):
    """A results record that cannot be read: corrupt, or written by a newer schema (exit 2)."""


class StageFailed(PubctlError):
    """A stage ran and its outcome is not acceptable (zero steps, non-finite loss, parity...) (exit 1)."""

    exit_code = 1


class CheckFailed(PubctlError):
    """One or more honesty gates failed, or a committed card is stale (exit 1)."""

    exit_code = 1


class Interrupted(PubctlError):
    """The user stopped a stage (Ctrl-C): the message says what was kept and how to go on (exit 130, as a shell)."""

    exit_code = 130


# Errors of the machine, not of pubctl: a full disk or quota, a read-only or failing file system, a file the user
# may not touch or cannot name. With the file they concern they are one line for the user, never a traceback.
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
_MACHINE_ERRNOS = _WRITE_ERRNOS | {
    errno.EIO,
    errno.EACCES,
    errno.EPERM,
    errno.ENAMETOOLONG,
    errno.ELOOP,
    errno.EMFILE,
    errno.ENFILE,
    errno.ETXTBSY,
}
# Libraries written in Rust (safetensors, tokenizers) wrap an I/O error in their own exception type.
_WRAPPED_OS_ERROR = re.compile(r"\(os error (\d+)\)")
_WRAPPED_PATH = re.compile(r'at path "([^"]*)"')
OS_ERROR_EXIT_CODE = 1


def os_error_message(exc: BaseException) -> str | None:
    """One line for an error of the machine (disk full, read-only file system...), or None for anything else.

    An OSError naming its file is reported with it; a disk-full error that names none (a failed write() of an
    open file) still is one line. Other OSErrors without a file, and the rest, are bugs and keep their traceback.
    """
    if isinstance(exc, OSError):
        code, reason, name, other = exc.errno, exc.strerror, exc.filename, exc.filename2
    else:
        wrapped = _WRAPPED_OS_ERROR.search(str(exc))
        if wrapped is None:
            return None
        where = _WRAPPED_PATH.search(str(exc))
        code, reason, name, other = int(wrapped.group(1)), None, where.group(1) if where else None, None
    if code not in _MACHINE_ERRNOS:
        return None
    reason = reason or os.strerror(code)
    writing = code in _WRITE_ERRNOS or getattr(exc, "pubctl_write", False)
    if name is None:
        return f"a write failed: {reason}." if code in _WRITE_ERRNOS | {errno.EIO} else None
    target = _shown(name) + (f" -> {_shown(other)}" if other is not None else "")
    return f"could not {'write' if writing else 'access'} {target}: {reason}."


def wrapped_os_error(exc: BaseException, path: os.PathLike[str] | str) -> OSError | None:
    """The OSError a library wrapped in its own exception (safetensors' "... (os error 28)"), naming ``path``.

    For a writer to re-raise (``raise named from exc``) so the message names the file it was writing.
    """
    if isinstance(exc, OSError):
        return type(exc)(exc.errno, exc.strerror, os.fspath(path)) if exc.errno is not None else None
    wrapped = _WRAPPED_OS_ERROR.search(str(exc))
    if wrapped is None:
        return None
    code = int(wrapped.group(1))
    return OSError(code, os.strerror(code), os.fspath(path))


def _shown(name: object) -> str:
    """A file name on one line: control characters escaped, an overlong name shortened in the middle."""
    text = os.fsdecode(name) if isinstance(name, (str, bytes, os.PathLike)) else str(name)
    text = re.sub(r"[\x00-\x1f\x7f]", lambda match: repr(match.group())[1:-1], text)
    return text if len(text) <= 240 else f"{text[:150]}...{text[-80:]}"
