"""What actually ran, in the card's words: the run's length, the data as the trainer saw it, how lm-eval scored.

The configured values alone mislead: with ``max_steps`` the Trainer ignores the epoch
count (12 steps of a 1-epoch config are 0.15 epochs), a KTO run on preference pairs
trains on twice as many single completions, SFT on pairs throws the rejected
answers away, and lm-eval's batch size moves scores in about the tenth digit
(padding changes the floating-point sums). Every number here is the record's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.markdown import number
from pipeline.metric_names import group_averaging, metric_label

if TYPE_CHECKING:
    from pipeline.results import DatasetRecord, EvaluationRecord, Hyperparameters, TrainingRecord


# ------------------------------------------------------------------------- training
def run_length(training: TrainingRecord | None) -> dict[str, Any]:
    """The epochs the run completed and what the configured epoch count meant."""
    if training is None:
        return {"epochs_completed": None, "epochs_setting": None}
    return {
        "epochs_completed": training.epochs_completed,
        "epochs_setting": epochs_setting(training.hyperparameters),
    }


def epochs_setting(hp: Hyperparameters) -> str:
    """``training.epochs`` as the Trainer used it: a positive max_steps overrides it."""
    if hp.max_steps is not None and hp.max_steps > 0:
        return f"{number(hp.epochs)} (not used: max_steps = {hp.max_steps:,} set the run's length)"
    return number(hp.epochs)


def data_notes(ds: DatasetRecord) -> list[str]:
    """What happened to a dataset's rows between the file and the trainer, as plain sentences."""
    notes = []
    held_out = ds.eval_rows or 0
    if ds.format == "paired" and ds.trained_as == "unpaired":
        pairs = f"{ds.source_rows:,} preference pairs" if ds.source_rows is not None else "The preference pairs"
        notes.append(
            f"{ds.id}: {pairs} were split into one desirable (chosen) and one undesirable (rejected) completion "
            f"each (TRL's maybe_unpair_preference_dataset); the {ds.rows:,} training rows"
            + (f" and {held_out:,} held-out rows" if held_out else "")
            + " are single completions, not pairs."
        )
    elif ds.format == "paired" and ds.trained_as == "text":
        notes.append(
            f"{ds.id}: supervised fine-tuning trained on the chosen answer of each pair; the rejected answers "
            f"({ds.rows + held_out:,}, one per row) were dropped."
        )
    if ds.dropped_long_prompts:
        notes.append(f"{ds.id}: {ds.dropped_long_prompts:,} rows dropped because their prompt alone filled max_length.")
    if ds.truncated_prompts:
        notes.append(f"{ds.id}: {ds.truncated_prompts:,} prompts truncated from the left to max_prompt_length.")
    kept = ds.rows_after_trainer_filtering
    if kept is not None and kept != ds.rows:
        notes.append(f"{ds.id}: the TRL trainer's own filtering kept {kept:,} of the {ds.rows:,} rows.")
    return notes


# ----------------------------------------------------------------------- evaluation
def evaluation_facts(evaluation: EvaluationRecord | None) -> dict[str, Any]:
    """Each row's metric name, how group tasks average, and the settings that move the scores."""
    rows = evaluation.results if evaluation is not None else []
    labels = []
    for row in rows:
        label = metric_label(row.task, row.metric)
        labels.append(label if label == row.metric else f"{label} (lm-eval key: {row.metric})")
    groups = [{"task": row.task, "averaging": averaging} for row in rows if (averaging := group_averaging(row))]
    return {"metric_labels": labels, "group_notes": groups, "eval_settings": _settings(evaluation)}


def _settings(evaluation: EvaluationRecord | None) -> str | None:
    settings = evaluation.settings if evaluation is not None else None
    if settings is None:
        return None
    parts = []
    if settings.batch_size is not None:
        parts.append(f"batch size {settings.batch_size}")
    if settings.device is not None:
        parts.append(f"device {settings.device}")
    if settings.dtype is not None:
        parts.append(f"dtype {settings.dtype}")
    if settings.seed is not None:
        parts.append(f"seed {settings.seed}")
    if not parts:
        return None
    text = "lm-eval ran with " + ", ".join(parts) + "."
    if settings.batch_size is not None:
        text += " Another batch size pads the inputs differently and moves scores in about the tenth digit."
    return text
