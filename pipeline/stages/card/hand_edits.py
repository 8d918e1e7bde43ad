"""A README.md pubctl did not write is copied aside before a render replaces it.

People edit cards/NAME/README.md by hand (a sentence, a link) and lose the edit to
the next ``pubctl release``. The card stage records the sha256 of each README it
writes (runs/NAME/card/README.sha256, machine state like the stamps); before it
overwrites a README whose bytes are neither that nor the new render's, it copies
the old file to runs/NAME/card/README.<sha256 prefix>.md and says so. A fresh clone
has no record of what was written, so its first changed render keeps a copy too:
a copy too many costs a file, a copy too few costs the user's text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pipeline.atomic import atomic_write_bytes, atomic_write_text
from pipeline.hashing import small_regular_bytes
from pipeline.layout import Layout

MAX_README = 16 * 1024 * 1024
"""Larger is not a card someone edited: left alone rather than read into memory."""


def _card_state(layout: Layout) -> Path:
    return layout.inside(layout.run_dir / "card", "runs")


def _written(layout: Layout) -> Path:
    return _card_state(layout) / "README.sha256"


@dataclass(frozen=True)
class KeptReadme:
    """The copy of a replaced README, and whether this machine had recorded pubctl's last render."""

    path: Path
    render_recorded: bool
    """False in a fresh clone: nothing says whether the committed README held edits."""


def keep_hand_edit(layout: Layout, fresh: str) -> KeptReadme | None:
    """Copy a README that pubctl did not write and that ``fresh`` would replace."""
    # Only a regular file of card size: a link's target (maybe outside the project) is never read or copied.
    old = small_regular_bytes(layout.readme, MAX_README)
    if old is None:
        return None
    if old == fresh.encode("utf-8"):
        return None
    digest = hashlib.sha256(old).hexdigest()
    recorded = _recorded_digest(_written(layout))
    if recorded == digest:
        return None
    copy = _card_state(layout) / f"README.{digest[:12]}.md"
    copy.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(copy, old)  # a rename: a link planted at that name is replaced, never followed
    return KeptReadme(copy, recorded is not None)


def _recorded_digest(path: Path) -> str | None:
    """The digest pubctl recorded, read only from a small regular file (never a FIFO or a link)."""
    data = small_regular_bytes(path, 200)
    return data.decode("utf-8", errors="replace").strip() if data is not None else None


def remember_written(layout: Layout, text: str) -> None:
    """Record the sha256 of the README just written: the next render knows it as pubctl's own."""
    known = _written(layout)
    known.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(known, hashlib.sha256(text.encode("utf-8")).hexdigest() + "\n")
