"""The dataset schemas pubctl recognises, and how each becomes one of TRL's standard formats.

The Hub datasets users name for preference training rarely hold TRL's standard
columns as they are: HuggingFaceH4/ultrafeedback_binarized puts a text prompt
next to whole conversations, Anthropic/hh-rlhf writes dialogues as plain text.
Fed to TRL unchanged they fail deep inside a trainer. Each schema pubctl knows
is one ``SchemaAdapter`` in ``SCHEMAS`` (the Hub datasets it was written for, a
``matches`` test and a ``normalise`` step); the first adapter that matches a
dataset normalises it.

Adapters see the dataset after ``data.columns`` renamed the user's columns to
pubctl's names (and ``pipeline.data_values`` checked every value pubctl reads),
and recognise a schema from column names and value types (the datasets Features;
the first value where a feature does not say) and a sample of the rows, never
from the dataset id: copies and local exports keep a dataset's schema, not its name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.data_columns import PUBCTL_COLUMNS, kept_columns, refuse_unmapped, shown, warn_unused_system
from pipeline.data_values import Kind, Where, check_values, value_kind
from pipeline.errors import UsageError
from pipeline.refs import excerpt

if TYPE_CHECKING:
    from datasets import Dataset

    from pipeline.config import ReleaseConfig
    from pipeline.data_files import RowOrigin

SAMPLE_ROWS = 1000
"""Rows a schema is recognised from: every row of a small dataset, and enough of a large one that an odd first
row cannot hide (or fake) the schema. The adapter that matches then reads every row and names any that does
not fit."""


@dataclass(frozen=True)
class Shape:
    """What ``matches`` sees of a dataset: the kind of value in each column, the first row and a sample of rows."""

    kinds: dict[str, Kind]
    first: dict[str, Any]
    sample: dict[str, list[Any]]
    """Each column's first SAMPLE_ROWS values (every value of a small dataset)."""

    def all(self, kind: Kind, *columns: str) -> bool:
        return all(self.kinds.get(column) == kind for column in columns)

    def uniform(self, *columns: str) -> bool:
        """Every one of ``columns`` present, all strings or all conversations (TRL rejects a mix)."""
        return self.all("text", *columns) or self.all("messages", *columns)


@dataclass(frozen=True)
class SchemaAdapter:
    """One dataset schema pubctl recognises and normalises to a TRL standard format."""

    name: str
    written_for: tuple[str, ...]
    """Hub datasets in this schema (documentation and tests; detection never reads the id)."""
    matches: Callable[[Shape], bool]
    normalise: Callable[[Dataset, Where], Dataset]
    """Returns only pubctl's columns, in the TRL format."""


# ------------------------------------------------------------------------------- kinds
def _kind(feature: Any, value: Any) -> Kind:
    from datasets import LargeList, List, Value

    if isinstance(feature, Value):
        if feature.dtype in ("string", "large_string"):
            return "text"
        return "bool" if feature.dtype == "bool" else "other"
    if isinstance(feature, (List, LargeList, list)):
        inner = feature[0] if isinstance(feature, list) else feature.feature
        return "messages" if isinstance(inner, dict) and {"role", "content"} <= inner.keys() else "other"
    # a feature type that does not describe its values (e.g. Json): its first value decides (check_values has
    # made sure every row of such a column holds one kind)
    return value_kind(value)


def describe(dataset: Dataset) -> Shape:
    sample = dataset[:SAMPLE_ROWS]
    kinds = {
        name: _kind(feature, next((value for value in sample[name] if value not in (None, [])), None))
        for name, feature in dataset.features.items()
    }
    return Shape(kinds, dataset[0], sample)


# ---------------------------------------------------------------------- normalisation
def _extract_prompt(row: dict[str, Any], extract: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """TRL's maybe_extract_prompt (``extract``), except on an empty answer, where TRL's helper fails with an
    UnboundLocalError: that row is left for validate_rows to name."""
    if not row["chosen"] or not row["rejected"]:
        return {"prompt": [], "chosen": row["chosen"], "rejected": row["rejected"]}
    return extract(row)


def _split_off_shared_turns(dataset: Dataset, where: Where) -> Dataset:
    """Conversational pairs: the turns chosen and rejected share become the prompt (TRL's maybe_extract_prompt)."""
    from trl import maybe_extract_prompt

    return dataset.select_columns(["chosen", "rejected"]).map(
        _extract_prompt, fn_kwargs={"extract": maybe_extract_prompt}, desc="Splitting the shared turns off as prompt"
    )


def _text_prompt_with_conversations(row: dict[str, Any], extract: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    if row["chosen"] and row["chosen"][0].get("role") == "assistant":
        # The conversations hold the answers only, so the text prompt is the user's turn. TRL has no helper for
        # this mix: its maybe_extract_prompt would take the (empty) shared prefix as the prompt.
        return {**row, "prompt": [{"role": "user", "content": row["prompt"]}]}
    # The conversations repeat the prompt as their opening turns: TRL takes those (a text prompt beside
    # conversational answers is what crashes its trainers) and the text column is dropped.
    return _extract_prompt(row, extract)


def _h4_ultrafeedback(dataset: Dataset, where: Where) -> Dataset:
    from trl import maybe_extract_prompt

    return dataset.select_columns(["prompt", "chosen", "rejected"]).map(
        _text_prompt_with_conversations,
        fn_kwargs={"extract": maybe_extract_prompt},
        desc="Splitting the shared turns off as prompt",
    )


_HH_MARKER = re.compile(r"(?:^|\n\n)(Human|Assistant):")
_HH_ROLES = {"Human": "user", "Assistant": "assistant"}


def parse_hh_dialogue(text: str) -> list[dict[str, str]] | None:
    """Anthropic/hh-rlhf's "\\n\\nHuman: ...\\n\\nAssistant: ..." text as messages; None when it is not one."""
    parts = _HH_MARKER.split(text)
    roles = parts[1::2]
    if parts[0].strip() or "Human" not in roles or "Assistant" not in roles:
        return None
    return [
        {"role": _HH_ROLES[role], "content": content.strip()} for role, content in zip(roles, parts[2::2], strict=True)
    ]


def _hh_batch(batch: dict[str, list[Any]], indices: list[int], where: Where) -> dict[str, list[Any]]:
    from trl import extract_prompt

    out: dict[str, list[Any]] = {"prompt": [], "chosen": [], "rejected": []}
    for index, chosen, rejected in zip(indices, batch["chosen"], batch["rejected"], strict=True):
        pair = {}
        for name, text in (("chosen", chosen), ("rejected", rejected)):
            turns = parse_hh_dialogue(text or "")
            if turns is None:
                raise UsageError(
                    f"data: row {index} of the {where.what} split of {where.source} is not a Human/Assistant "
                    f"dialogue{where.line(index)}: its {shown(where.names[name])} text has no '\\n\\nHuman:' and "
                    f"'\\n\\nAssistant:' turns like the other rows (it starts {(text or '')[:60]!r}); remove or fix "
                    "that row."
                )
            pair[name] = turns
        # TRL splits off the turns both conversations share as the prompt; what pubctl adds is the parsing,
        # for which TRL has no helper (its trainers would take the whole text as one completion).
        split = extract_prompt(pair)
        for name in out:
            out[name].append(split[name])
    return out


def _hh_rlhf(dataset: Dataset, where: Where) -> Dataset:
    return dataset.select_columns(["chosen", "rejected"]).map(
        _hh_batch,
        batched=True,
        with_indices=True,
        fn_kwargs={"where": where},
        desc="Parsing Human/Assistant dialogues",
    )


def _as_answer(value: Any) -> list[dict[str, Any]] | None:
    # None stays None for validate_rows to name the row
    return value if value is None or isinstance(value, list) else [{"role": "assistant", "content": value}]


def _system_batch(batch: dict[str, list[Any]], indices: list[int], where: Where) -> dict[str, list[Any]]:
    # TRL has no notion of a system column: pubctl builds the conversation it stands for.
    key = "prompt" if "prompt" in batch else "messages"
    out: dict[str, list[Any]] = {key: []}
    for index, system, value in zip(indices, batch["system"], batch[key], strict=True):
        if value is None:
            out[key].append(None)
            continue
        turns = list(value) if isinstance(value, list) else [{"role": "user", "content": value}]
        own = turns[0].get("content") if turns and turns[0].get("role") == "system" else None
        if system and system.strip():
            if own is None:
                turns.insert(0, {"role": "system", "content": system})
            elif str(own).strip() != system.strip():
                # one of the two would be dropped without a word: the data must say which it means
                raise UsageError(
                    f"data: {where.row(index)}: column {shown(where.names['system'])} holds the system message "
                    f"{excerpt(system)}, but its {shown(where.names[key])} conversation opens with another one, "
                    f"{excerpt(own)}; keep one of them in that row."
                )
        out[key].append(turns)
    for name in ("chosen", "rejected", "completion"):
        if name in batch:
            out[name] = [_as_answer(value) for value in batch[name]]
    return out


def _system_column(dataset: Dataset, where: Where) -> Dataset:
    if "prompt" not in dataset.column_names and "messages" not in dataset.column_names:
        raise UsageError(
            f"data.columns.system is {shown(where.names['system'])}, but {where.source} has no "
            f"{shown(where.names['prompt'])} or {shown(where.names['messages'])} column for the system message "
            "to go before; map the prompt column with data.columns.prompt."
        )
    return dataset.map(
        _system_batch,
        batched=True,
        with_indices=True,
        fn_kwargs={"where": where},
        remove_columns=["system"],
        desc="Adding the system messages",
    )


def _unchanged(dataset: Dataset, where: Where) -> Dataset:
    return dataset


# --------------------------------------------------------------------------- registry
def _is_hh(shape: Shape) -> bool:
    if "prompt" in shape.kinds or not shape.all("text", "chosen", "rejected"):
        return False
    # Most of the sample, not row 0 alone: one odd first row must neither hide the schema nor fake it.
    texts = [text for text in shape.sample["chosen"] if isinstance(text, str)]
    dialogues = sum(parse_hh_dialogue(text) is not None for text in texts)
    return dialogues * 2 > len(texts)


def _is_trl_standard(shape: Shape) -> bool:
    kinds = shape.kinds
    if "completion" in kinds and "prompt" in kinds:
        return shape.uniform("prompt", "completion")  # unpaired (with label) or SFT prompt/completion
    if "prompt" in kinds:
        return shape.uniform("prompt", "chosen", "rejected")
    return shape.kinds.get("text") == "text"


SCHEMAS: tuple[SchemaAdapter, ...] = (
    SchemaAdapter(
        name="system_column",
        written_for=("Intel/orca_dpo_pairs",),  # with data.columns: {prompt: question, system: system}
        # only present when data.columns.system names a column
        matches=lambda shape: "system" in shape.kinds,
        normalise=_system_column,
    ),
    SchemaAdapter(
        name="hh_rlhf",
        written_for=("Anthropic/hh-rlhf",),
        matches=_is_hh,
        normalise=_hh_rlhf,
    ),
    SchemaAdapter(
        name="text_prompt_with_conversations",
        written_for=("HuggingFaceH4/ultrafeedback_binarized",),
        matches=lambda shape: shape.all("text", "prompt") and shape.all("messages", "chosen", "rejected"),
        normalise=_h4_ultrafeedback,
    ),
    SchemaAdapter(
        name="conversations_with_implicit_prompt",
        written_for=("trl-lib/ultrafeedback_binarized", "argilla/dpo-mix-7k"),
        matches=lambda shape: "prompt" not in shape.kinds and shape.all("messages", "chosen", "rejected"),
        normalise=_split_off_shared_turns,
    ),
    SchemaAdapter(
        name="trl_standard",
        written_for=("2A2I/Aya-Command.R-DPO", "trl-lib/kto-mix-14k"),
        matches=_is_trl_standard,
        normalise=_unchanged,
    ),
    SchemaAdapter(
        name="messages",
        written_for=("HuggingFaceH4/no_robots", "trl-lib/Capybara"),
        matches=lambda shape: shape.all("messages", "messages"),
        normalise=_unchanged,
    ),
)


def _refuse_mixed(shape: Shape, where: Where) -> None:
    """Strings beside conversations (or other values) in the columns TRL reads: it would fail deep inside."""
    used = [name for name in ("prompt", "chosen", "rejected", "completion") if name in shape.kinds]
    if len({shape.kinds[name] for name in used}) <= 1 and all(shape.kinds[name] != "other" for name in used):
        return
    words = {
        "text": "strings",
        "messages": "conversations",
        "bool": "booleans",
        "other": "neither strings nor conversations",
    }
    found = ", ".join(f"{shown(where.names[name])} holds {words[shape.kinds[name]]}" for name in used)
    raise UsageError(
        f"data: pubctl does not know the schema of {where.source} ({found}): TRL needs these columns to hold "
        "all plain strings or all conversations (lists of {role, content} messages). Convert the data, or map "
        "other columns with data.columns."
    )


def normalise_schema(
    dataset: Dataset, config: ReleaseConfig, what: str, origin: RowOrigin | None = None
) -> tuple[Dataset, str | None]:
    """``dataset`` (pubctl's column names) in a TRL standard format, and the name of the schema it was in.

    Columns pubctl does not read are dropped. None as the schema: no adapter matched; the dataset is returned
    whole, and the format check that follows says which columns are missing and which mapping would fix it.
    """
    if len(dataset) == 0:
        return dataset, None
    names = {name: getattr(config.data.columns, name) or name for name in PUBCTL_COLUMNS}
    where = Where(source=config.data.train, what=what, names=names, origin=origin)
    refuse_unmapped(dataset.column_names, config)
    columns = kept_columns(dataset.column_names, config)
    if not columns:
        return dataset, None
    kept = dataset.select_columns(columns)
    check_values(kept, where)
    warn_unused_system(dataset, config)
    shape = describe(kept)
    for adapter in SCHEMAS:
        if adapter.matches(shape):
            return adapter.normalise(kept, where), adapter.name
    _refuse_mixed(shape, where)
    # every column stays, for the format check to name them and suggest a mapping
    return dataset, None
