"""The errors pubctl reports to users, each with the exit code the CLI gives it.

Every error a user can cause is one of these: the CLI prints its message as one
paragraph (no traceback) and exits with its code. Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


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
