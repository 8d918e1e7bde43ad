"""What a running stage shows a person: one progress display, its pubctl lines, and a log for the rest.

- ``output``: :class:`StageOutput` (one per stage run by the chain), ``captured()`` around library
  calls that print, ``say``/``progress_begin``/``progress_update`` for stage code;
- ``display``: the live rich Progress on a terminal, plain periodic lines elsewhere;
- ``log_file``: runs/NAME/logs/STAGE.log and the writers that fill it.

Light: rich only. A stage's libraries are imported only by the stages that use them.
"""

from __future__ import annotations

from pipeline.console.output import (
    StageOutput,
    active,
    captured,
    is_verbose,
    progress_begin,
    progress_update,
    say,
    set_verbose,
)

__all__ = [
    "StageOutput",
    "active",
    "captured",
    "is_verbose",
    "progress_begin",
    "progress_update",
    "say",
    "set_verbose",
]
