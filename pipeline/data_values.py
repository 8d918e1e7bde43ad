"""What each column pubctl reads must hold (text, conversations, booleans), checked row by row where needed.

Parquet files and Hub datasets carry one Arrow type per column: a string column holds a string or null in
every row, and pubctl's other checks name a null. JSON lines do not: when rows disagree (a string on one
line, a number on the next) datasets keeps the column as Json, and the odd value used to surface as a crash
deep inside TRL. Such columns, and any column whose Arrow type is not what pubctl needs there, are read row
by row; the first value that does not fit is named with its row, its line in the file and its column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pipeline.data_columns import shown
from pipeline.data_files import line_note
from pipeline.errors import UsageError
from pipeline.refs import excerpt

if TYPE_CHECKING:
    from datasets import Dataset

    from pipeline.data_files import RowOrigin

Kind = Literal["text", "messages", "bool", "other"]
"""What a column holds: plain strings, conversations (lists of {role, content}), booleans, anything else."""

NEEDS: dict[str, tuple[Kind, ...]] = {
    "prompt": ("text", "messages"),
    "chosen": ("text", "messages"),
    "rejected": ("text", "messages"),
    "completion": ("text", "messages"),
    "text": ("text",),
    "messages": ("messages",),
    "label": ("bool",),
    "system": ("text",),
}
"""pubctl's columns and the kinds of value each may hold."""
_NEEDED = {
    ("text", "messages"): "text or conversations (lists of {role, content} messages)",
    ("text",): "text",
    ("messages",): "conversations (lists of {role, content} messages)",
    ("bool",): "booleans (true = desirable completion)",
}
_FIX = {("bool",): "convert the column, e.g. label = score > threshold."}
_FOUND = {"text": "text", "messages": "a conversation", "bool": "a boolean"}


@dataclass(frozen=True)
class Where:
    """What error messages name: the dataset, the split, the user's column names and where rows sit in a file."""

    source: str
    what: str
    """training or evaluation."""
    names: dict[str, str]
    """pubctl column -> the user's name for it."""
    origin: RowOrigin | None = None
    """A local JSON file's rows: their lines."""

    def row(self, index: int) -> str:
        """'row 3 of the training split of d.jsonl (line 4)'."""
        return f"row {index} of the {self.what} split of {self.source}{line_note(self.origin, index)}"

    def line(self, index: int) -> str:
        """' (line 4)', or '' where rows have no line."""
        return line_note(self.origin, index)


def value_kind(value: Any) -> Kind:
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, list) and value and all(_is_message(item) for item in value):
        return "messages"
    return "other"


def _is_message(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("role"), str) and "content" in item


def _typed(feature: Any, needs: tuple[Kind, ...]) -> bool:
    """An Arrow type that already guarantees every non-null value fits (no need to read the rows)."""
    from datasets import LargeList, List, Value

    if isinstance(feature, Value):
        kind = "text" if feature.dtype in ("string", "large_string") else "bool" if feature.dtype == "bool" else None
        return kind in needs
    if isinstance(feature, (List, LargeList, list)) and "messages" in needs:
        inner = feature[0] if isinstance(feature, list) else feature.feature
        return isinstance(inner, dict) and {"role", "content"} <= inner.keys()
    return False


def check_values(dataset: Dataset, where: Where) -> None:
    """Every value of pubctl's columns is of a kind the column may hold, one kind per column; nulls and empty
    values are left to validate_rows, which names them."""
    for name in dataset.column_names:
        needs = NEEDS.get(name)
        if needs is None or _typed(dataset.features[name], needs):
            continue
        first: tuple[int, Kind] | None = None
        column = shown(where.names.get(name, name))
        # A local JSON file is read again for its own values: datasets alters some in a mixed-type column.
        values = where.origin.column(where.names.get(name, name), len(dataset)) if where.origin else dataset[name]
        for index, value in enumerate(values):
            if value is None or (isinstance(value, list) and not value):
                continue
            kind = value_kind(value)
            if kind not in needs:
                raise UsageError(
                    f"data: {where.row(index)}: column {column} must hold {_NEEDED[needs]}, found "
                    f"{_described(value)} {excerpt(value)}; "
                    + _FIX.get(needs, "fix that row, or map another column with data.columns.")
                )
            if first is None:
                first = (index, kind)
            elif kind != first[1]:
                raise UsageError(
                    f"data: {where.row(index)}: column {column} holds {_FOUND[kind]} where row {first[0]} holds "
                    f"{_FOUND[first[1]]}; TRL needs one kind of value in a column. Fix that row."
                )


def _described(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list that is not a conversation of {role, content} messages"
    return type(value).__name__
