"""Training data: load, map columns, validate and convert to the format a method's trainer consumes.

Sources: ``builtin:preferences`` (the bundled pairs), a local .json/.jsonl/.parquet
file (read by ``pipeline.data_files``), or a Hub dataset id (split, revision and
subset from the config). Every
problem a user can cause (an empty dataset, missing columns, labels that are not
booleans, empty values, prompts that leave no room for a completion) is a
UsageError raised here, before a model is loaded or a step is taken.

The schemas of the Hub datasets users name (text prompts beside whole
conversations, Human/Assistant transcripts, a system column...) are recognised
and normalised to TRL's standard formats by the adapters in
``pipeline.data_schemas``. Conversions use TRL's own helpers where TRL has one:
``maybe_extract_prompt`` for pairs whose prompt is implicit in the
conversations and ``maybe_unpair_preference_dataset`` for KTO-style methods.
Paired rows become prompt/completion rows (the chosen answer) for SFT.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.data_columns import fix_hint, format_of, map_columns
from pipeline.data_files import RowOrigin, line_note, load_local_file
from pipeline.data_schemas import normalise_schema
from pipeline.errors import UsageError
from pipeline.hashing import sha256_file
from pipeline.prompt_fit import fit_prompts
from pipeline.refs import DataRef
from pipeline.sources import download_error

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase

    from pipeline.config import ReleaseConfig
    from pipeline.layout import Layout

REQUIRED = {
    "paired": ("chosen", "rejected"),
    "unpaired": ("prompt", "completion", "label"),
    "text": (),  # text, messages, or prompt + completion: checked on its own
}


@dataclass
class SourceInfo:
    """Where the rows came from, as the results record names it."""

    id: str
    split: str | None
    revision: str | None
    """Hub commit sha, or sha256 of a local file."""
    origin: RowOrigin | None = None
    """Where each row sits in a local JSON file, for messages that name a row."""


@dataclass
class PreparedData:
    """Training (and evaluation) rows in the format the method consumes, and what was done to them."""

    train: Dataset
    eval: Dataset | None
    source: SourceInfo
    source_format: str
    """paired, unpaired or text: the format detected (or declared) in the source."""
    schema: str | None
    """The data_schemas adapter that normalised the source (None: none matched, the format was declared)."""
    consumed_format: str
    conversational: bool
    source_rows: int
    """Rows of the training split as loaded (after data.max_samples, before the eval hold-out)."""
    dropped_long_prompts: int = 0
    """Rows left out because their prompt alone fills max_length (no completion token would be trained)."""
    truncated_prompts: int = 0
    """Prompts shortened to training.max_prompt_length."""
    notes: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The results record's dataset entry."""
        return {
            "id": self.source.id,
            "split": self.source.split,
            "revision": self.source.revision,
            "rows": len(self.train),
            "source_rows": self.source_rows,
            "eval_rows": len(self.eval) if self.eval is not None else 0,
            "format": self.source_format,
            "schema": self.schema,
            "trained_as": self.consumed_format,
            "conversational": self.conversational,
            "dropped_long_prompts": self.dropped_long_prompts,
            "truncated_prompts": self.truncated_prompts,
        }


# ----------------------------------------------------------------------------- loading
def _hub_revision(repo_id: str, revision: str | None) -> str | None:
    """The commit sha ``revision`` points at; None offline (the cached copy is used and the config's pin recorded)."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    if constants.HF_HUB_OFFLINE:
        return None
    try:
        return HfApi().dataset_info(repo_id, revision=revision).sha
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as exc:
        raise download_error("dataset", repo_id, revision, exc) from None


def _load_hub(repo_id: str, subset: str | None, split: str, revision: str | None) -> Dataset:
    from datasets import load_dataset

    try:
        return load_dataset(repo_id, name=subset, split=split, revision=revision)
    except ValueError as exc:  # unknown split or config: the user's input
        raise UsageError(f"data: could not load split '{split}' of dataset '{repo_id}': {exc}") from None
    except (OSError, ConnectionError) as exc:
        raise download_error("dataset", repo_id, revision, exc) from None


def load_source(config: ReleaseConfig, layout: Layout) -> tuple[Dataset, Dataset | None, SourceInfo]:
    """The raw train split, the raw eval split (data.eval_split only) and where they came from."""
    data = config.data
    local = DataRef.parse(data.train, layout.root, subset=data.subset).local_file()
    if local is not None:
        if data.eval_split:
            raise UsageError(
                f"data.eval_split '{data.eval_split}': a local file ({data.train}) has a single split; "
                "hold out rows with data.eval_fraction instead."
            )
        loaded = load_local_file(local, data.train)
        digest = f"sha256:{sha256_file(local)}"
        # datasets loads a file as its single "train" split
        return loaded.dataset, None, SourceInfo(data.train, "train", digest, loaded.origin)
    sha = _hub_revision(data.train, data.revision)
    pinned = sha or data.revision
    train = _load_hub(data.train, data.subset, data.split, pinned)
    evaluation = _load_hub(data.train, data.subset, data.eval_split, pinned) if data.eval_split else None
    return train, evaluation, SourceInfo(id=data.train, split=data.split, revision=pinned)


# ------------------------------------------------------------------------ validation
def detect_format(dataset: Dataset, config: ReleaseConfig) -> str:
    """paired, unpaired or text: declared by data.format or read from the columns."""
    names = set(dataset.column_names)
    declared = config.data.format
    if declared == "auto":
        found = format_of(names)
        if found is not None:
            return found
        raise UsageError(
            f"data: cannot tell the format of {config.data.train} from its columns {sorted(names)}: paired data "
            f"needs {_named(config, 'chosen', 'rejected')} (and usually {_named(config, 'prompt')}), unpaired data "
            f"{_named(config, 'prompt', 'completion', 'label')}, text data {_named(config, 'text')}, "
            f"{_named(config, 'messages')} or {_named(config, 'prompt', 'completion')}. {fix_hint(names, config)}"
        )
    if declared == "text":
        if not ({"text", "messages"} & names or {"prompt", "completion"} <= names):
            raise UsageError(
                f"data.format is text but {config.data.train} has neither {_named(config, 'text')}, "
                f"{_named(config, 'messages')} nor {_named(config, 'prompt', 'completion')} (columns: "
                f"{sorted(names)}). {fix_hint(names, config)}"
            )
        return declared
    missing = [name for name in REQUIRED[declared] if name not in names]
    if missing:
        raise UsageError(
            f"data.format is {declared} but {config.data.train} lacks the column(s) "
            f"{_named(config, *missing)} (columns: {sorted(names)}). {fix_hint(names, config)}"
        )
    return declared


def _named(config: ReleaseConfig, *canonical: str) -> str:
    columns = config.data.columns
    return "/".join(f"'{getattr(columns, name)}'" for name in canonical)


def validate_rows(
    dataset: Dataset, fmt: str, config: ReleaseConfig, what: str, origin: RowOrigin | None = None
) -> None:
    """Empty data, null or empty values and non-boolean labels are the user's to fix."""
    if len(dataset) == 0:
        raise UsageError(f"data: the {what} split of {config.data.train} has no rows.")
    if fmt == "unpaired":
        from datasets import Value

        feature = dataset.features["label"]
        if not (isinstance(feature, Value) and feature.dtype == "bool"):
            found = getattr(feature, "dtype", type(feature).__name__)
            raise UsageError(
                f"data: column {_named(config, 'label')} of {config.data.train} must hold booleans "
                f"(true = desirable completion), found {found} values; convert it, e.g. label = score > threshold."
            )
    # answers first: a pair with an empty answer has no shared turns either, and the answer is what to fix
    names = ("chosen", "rejected", "completion", "text", "messages", "prompt")
    for name in [name for name in names if name in dataset.column_names]:
        for index, value in enumerate(dataset[name]):
            if value is None or (isinstance(value, (str, list)) and len(value) == 0):
                problem = f"{'a null' if value is None else 'an empty'} {_named(config, name)} value"
                if name == "prompt" and isinstance(value, list):
                    problem = "no prompt (its chosen and rejected conversations share no opening turn)"
                raise UsageError(
                    f"data: row {index} of the {what} split of {config.data.train} has {problem}"
                    f"{line_note(origin, index)}; remove or fix that row."
                )


# ------------------------------------------------------------------------ conversion
def _needs(consumes: str) -> str:
    if consumes == "paired":
        return (
            "paired rows: 'chosen' and 'rejected' (strings or conversations) with a 'prompt', or conversations "
            "whose shared opening turns are the prompt"
        )
    return "unpaired rows 'prompt'/'completion'/'label' (a boolean), or paired rows, which pubctl unpairs"


def _to_consumed(dataset: Dataset, fmt: str, consumes: str, config: ReleaseConfig) -> Dataset:
    from trl import maybe_unpair_preference_dataset

    names = dataset.column_names
    # Conversational pairs with an implicit prompt were split by their schema adapter (TRL's maybe_extract_prompt);
    # text pairs without a prompt have no reliable split (TRL would take their common character prefix).
    if fmt == "paired" and "prompt" not in names:
        raise UsageError(
            f"data: {config.data.train} has paired rows without a {_named(config, 'prompt')} column; "
            "add one (or use conversations whose shared turns TRL can extract as the prompt)."
        )
    keep = {"paired": ["prompt", "chosen", "rejected"], "unpaired": ["prompt", "completion", "label"]}
    if fmt == consumes:
        if fmt == "text":
            # text first, then prompt/completion (the loss can skip the prompt), then whole conversations
            columns = ["text"] if "text" in names else ["prompt", "completion"] if "completion" in names else None
            return dataset.select_columns(columns or ["messages"])
        return dataset.select_columns(keep[fmt])
    if fmt == "paired" and consumes == "unpaired":
        unpaired = maybe_unpair_preference_dataset(dataset.select_columns(keep["paired"]))
        # TRL's helper writes every desirable row, then every undesirable one; KTO samples in order, so mix them.
        return unpaired.shuffle(seed=config.training.seed).flatten_indices()
    if fmt == "paired" and consumes == "text":
        return dataset.select_columns(["prompt", "chosen"]).rename_column("chosen", "completion")
    if fmt == "text" and "messages" in names:
        raise UsageError(
            f"data: {config.data.train} holds conversations in a {_named(config, 'messages')} column, which only "
            f"method 'sft' trains on; method '{config.method.name}' needs {_needs(consumes)}."
        )
    raise UsageError(
        f"method '{config.method.name}' trains on {consumes} data and cannot use the {fmt} rows of "
        f"{config.data.train}; it accepts {' or '.join(config.method_spec.accepts)} data."
    )


def normalised(
    dataset: Dataset, config: ReleaseConfig, what: str, origin: RowOrigin | None = None
) -> tuple[Dataset, str, str | None]:
    """``dataset`` with pubctl's column names, in a TRL format, validated: (rows, format, schema).

    Needs no tokenizer: a rehearsal runs it on its data sample before anything heavy is built.
    """
    dataset, schema = normalise_schema(map_columns(dataset, config), config, what, origin)
    fmt = detect_format(dataset, config)
    validate_rows(dataset, fmt, config, what, origin)
    return dataset, fmt, schema


# ------------------------------------------------------------------------------ entry
def prepare_data(config: ReleaseConfig, layout: Layout, tokenizer: PreTrainedTokenizerBase) -> PreparedData:
    """Load, validate and convert the config's training data; every user error is raised before training."""
    from trl import is_conversational

    data = config.data
    train, evaluation, source = load_source(config, layout)
    if len(train) == 0:
        raise UsageError(f"data: the training split of {data.train} has no rows.")
    if data.max_samples is not None:
        train = train.select(range(min(data.max_samples, len(train))))
    source_rows = len(train)
    train, fmt, schema = normalised(train, config, "training", source.origin)
    if evaluation is not None:
        evaluation, eval_fmt, eval_schema = normalised(evaluation, config, "evaluation")
        if (eval_fmt, eval_schema) != (fmt, schema):
            raise UsageError(f"data.eval_split '{data.eval_split}' has other columns than the training split.")
    elif data.eval_fraction is not None:
        # Hold out before any conversion so both answers to one prompt stay on the same side.
        try:
            split = train.train_test_split(test_size=data.eval_fraction, seed=config.training.seed)
        except ValueError as exc:
            raise UsageError(f"data.eval_fraction {data.eval_fraction}: {exc}") from None
        train, evaluation = split["train"], split["test"]

    consumes = config.method_spec.consumes
    train = _to_consumed(train, fmt, consumes, config)
    train, dropped, truncated = fit_prompts(train, tokenizer, config, "training")
    if evaluation is not None:
        evaluation = _to_consumed(evaluation, fmt, consumes, config)
        evaluation, _, _ = fit_prompts(evaluation, tokenizer, config, "evaluation")
    return PreparedData(
        train=train,
        eval=evaluation,
        source=source,
        source_format=fmt,
        schema=schema,
        consumed_format=consumes,
        conversational=is_conversational(train[0]),
        source_rows=source_rows,
        dropped_long_prompts=dropped,
        truncated_prompts=truncated,
    )
