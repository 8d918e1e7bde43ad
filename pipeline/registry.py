"""One generic registry for everything pubctl looks up by name: methods, checks, citations, stages.

Like lm-eval's Registry: entries are registered once under a stable key, and
looking up a key that is not there is one clear error naming what is known and
the closest match, whatever kind of thing the registry holds.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from pipeline.errors import UsageError

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """An ordered, read-mostly mapping of names to entries of one kind (``what`` names the kind in errors)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name``; registering a name twice is a programming error."""
        if name in self._entries:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def decorate(entry: T) -> T:
            return self.add(name, entry)

        return decorate

    def get_or_fail(self, name: str, *, source: str = "") -> T:
        """The entry for ``name``, or a UsageError: 'unknown X 'n'; known: a, b. Did you mean ...?'."""
        try:
            return self._entries[name]
        except KeyError:
            raise UsageError(self.unknown(name, source=source)) from None

    def closest(self, name: str) -> str | None:
        """The registered name ``name`` was most likely meant to be, or None."""
        close = difflib.get_close_matches(name, list(self._entries), n=1)
        if not close:  # 'SimPO' for 'simpo': case is the commonest slip
            close = [key for key in self._entries if key.lower() == name.lower()][:1]
        return close[0] if close else None

    def unknown(self, name: str, *, source: str = "") -> str:
        """The message for a name that is not registered."""
        close = self.closest(name)
        hint = f" Did you mean '{close}'?" if close else ""
        where = f"{source}: " if source else ""
        return f"{where}unknown {self.what} '{name}'; known: {', '.join(self._entries)}.{hint}"

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __setitem__(self, name: str, entry: T) -> None:
        """Replace a registered entry (a test swapping a method's trainer); new names go through :meth:`add`."""
        if name not in self._entries:
            raise KeyError(f"{self.what} {name!r} is not registered; add it with add()")
        self._entries[name] = entry

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {list(self._entries)})"
