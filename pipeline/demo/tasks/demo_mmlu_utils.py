"""Per-subject document filters for the demo_mmlu tasks (lm-eval `process_docs` hooks).

Real MMLU ships one dataset configuration per subject; the bundled mini MMLU keeps all subjects in one
file with a `subject` column, so each subject task filters it, as lm-eval's own mmlu_pro tasks do.
lm-eval applies the same filter to the dev split, so few-shot examples come from the same subject.
"""

from __future__ import annotations

from functools import partial
from typing import Any


def process_docs(dataset: Any, subject: str) -> Any:
    """The rows of ``dataset`` (a datasets.Dataset) whose subject is ``subject``."""
    return dataset.filter(lambda row: row["subject"] == subject)


process_elementary_mathematics = partial(process_docs, subject="elementary_mathematics")
process_high_school_biology = partial(process_docs, subject="high_school_biology")
process_high_school_chemistry = partial(process_docs, subject="high_school_chemistry")
process_high_school_computer_science = partial(process_docs, subject="high_school_computer_science")
process_high_school_geography = partial(process_docs, subject="high_school_geography")
process_high_school_physics = partial(process_docs, subject="high_school_physics")
