"""pubctl's column names: renaming the user's columns (data.columns), telling the format, suggesting a mapping.

When a dataset's columns have other names than pubctl's, the error says which
``data.columns`` mapping would fix it, guessed from names common on the Hub
(question → prompt, response_j → chosen, ...), so the user copies one line into
the config instead of reading the schema.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pipeline.errors import UsageError

if TYPE_CHECKING:
    from datasets import Dataset

    from pipeline.config import ReleaseConfig

PUBCTL_COLUMNS = ("prompt", "chosen", "rejected", "completion", "label", "text", "messages", "system")
"""The names data.columns maps to (the fields of config.Columns), in the order a suggestion lists them."""

GUESSES: dict[str, tuple[str, ...]] = {
    "prompt": ("question", "instruction", "input", "query"),
    "chosen": ("response_j", "chosen_response", "better", "preferred"),
    "rejected": ("response_k", "rejected_response", "worse"),
    "completion": ("response", "output", "answer"),
    "system": ("system", "system_prompt"),
}
"""Column names common on the Hub, most likely first, for each pubctl column a dataset may lack."""


def shown(name: str) -> str:
    return f"'{name}'"


def format_of(names: Iterable[str]) -> str | None:
    """paired, unpaired or text as the column names say, None when they say none of them."""
    present = set(names)
    if {"chosen", "rejected"} <= present:
        return "paired"
    if {"completion", "label"} <= present:
        return "unpaired"
    if "text" in present or "messages" in present or {"prompt", "completion"} <= present:
        return "text"
    return None


def map_columns(dataset: Dataset, config: ReleaseConfig) -> Dataset:
    """Rename the config's column names to the canonical ones TRL expects."""
    columns = config.data.columns
    if columns.system is not None and columns.system not in dataset.column_names:
        raise UsageError(
            f"data.columns.system: {config.data.train} has no column {shown(columns.system)} "
            f"(columns: {sorted(dataset.column_names)})."
        )
    renames = {}
    for canonical in PUBCTL_COLUMNS:
        source = getattr(columns, canonical)
        if source is not None and source != canonical and source in dataset.column_names:
            if canonical in dataset.column_names:
                raise UsageError(
                    f"data.columns.{canonical}: maps '{source}' to '{canonical}', but the dataset already has a "
                    f"'{canonical}' column; rename one of them."
                )
            renames[source] = canonical
    return dataset.rename_columns(renames) if renames else dataset


def kept_columns(names: Iterable[str], config: ReleaseConfig) -> list[str]:
    """The columns pubctl reads; a 'system' column only when data.columns.system asks for it."""
    system = config.data.columns.system is not None
    return [name for name in names if name in PUBCTL_COLUMNS and (name != "system" or system)]


def warn_unused_system(dataset: Dataset, config: ReleaseConfig) -> None:
    """Say, on stderr, when a column that looks like a system prompt holds messages that will not be trained on.

    A system column is only read when data.columns.system names it: it turns plain-text prompts into
    conversations (the system turn, then the user's), which changes what the model is trained on. Without
    the mapping its values are dropped, and a run that drops them says so instead of doing it silently.
    """
    if config.data.columns.system is not None:
        return
    for name in [name for name in GUESSES["system"] if name in dataset.column_names]:
        values = dataset[name]
        used = sum(isinstance(value, str) and bool(value.strip()) for value in values)
        if used:
            from rich.console import Console

            Console(stderr=True, highlight=False, soft_wrap=True).print(
                f"warning: data: column {shown(name)} of {config.data.train} holds a system message in {used} of "
                f"{len(values)} rows, and pubctl is not training on it. To put it in each prompt as the system "
                f"turn of a conversation (the chat template renders it), add data.columns: {{system: {name}}}; "
                "to train without it, drop the column from the file.",
                markup=False,
            )


def suggest_mapping(names: Iterable[str], config: ReleaseConfig) -> dict[str, str]:
    """data.columns for a dataset with (already renamed) columns ``names``: the config's working entries plus a
    guess for each pubctl column the dataset lacks."""
    present = set(names)
    columns = config.data.columns
    defaults = type(columns).model_fields
    mapping: dict[str, str] = {}
    for canonical in PUBCTL_COLUMNS:
        source = getattr(columns, canonical)
        # a 'system' column is the system prompt only when data.columns.system says so
        if canonical in present and (canonical != "system" or source is not None):
            if source != defaults[canonical].default:
                mapping[canonical] = source
        else:
            guess = next((name for name in GUESSES.get(canonical, ()) if name in present), None)
            if guess is not None:
                mapping[canonical] = guess
    return mapping


def mapping_text(mapping: dict[str, str]) -> str:
    return "data.columns: {" + ", ".join(f"{key}: {value}" for key, value in mapping.items()) + "}"


def _renamed(names: Iterable[str], mapping: dict[str, str]) -> set[str]:
    sources = set(mapping.values())
    return {name for name in names if name not in sources} | set(mapping)


def fix_hint(names: Iterable[str], config: ReleaseConfig) -> str:
    """One sentence: the data.columns mapping that gives ``names`` a format, or what the config must name."""
    names = list(names)
    mapping = suggest_mapping(names, config)
    guessed = {key: value for key, value in mapping.items() if key not in names}
    if guessed and format_of(_renamed(names, mapping)) is not None:
        return f"This mapping would fix it: {mapping_text(mapping)}."
    return (
        "Name your columns with data.columns, e.g. data.columns: {prompt: <prompt column>, "
        "chosen: <preferred answer column>, rejected: <other answer column>}."
    )


def refuse_unmapped(names: Iterable[str], config: ReleaseConfig) -> None:
    """Answers without a prompt column beside a column that looks like the prompt (e.g. Intel/orca_dpo_pairs'
    'question'): without the mapping TRL would guess the prompt from the answers' common prefix."""
    names = list(names)
    if "prompt" in names or format_of(names) not in ("paired", "unpaired"):
        return
    mapping = suggest_mapping(names, config)
    if "prompt" not in mapping:
        return
    answers = "/".join(
        shown(getattr(config.data.columns, name)) for name in ("chosen", "rejected", "completion") if name in names
    )
    raise UsageError(
        f"data: {config.data.train} has answers ({answers}) but no {shown(config.data.columns.prompt)} column, "
        f"and its column {shown(mapping['prompt'])} looks like the prompt (columns: {sorted(names)}). "
        f"This mapping would fix it: {mapping_text(mapping)}."
    )
