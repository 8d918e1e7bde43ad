"""What a rehearsal shrinks, as the user chose it on the command line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REHEARSAL_SUFFIX = "-rehearsal"
"""A rehearsal of NAME writes runs/NAME-rehearsal/ and cards/NAME-rehearsal/."""


@dataclass(frozen=True)
class RehearsalOptions:
    layers: int = 2
    """Decoder layers of the random-weight base (the real width and vocabulary are kept)."""
    rows: int = 32
    """First rows of the training split to train on."""
    steps: int = 2
    """Optimizer steps (one micro-batch each)."""
    limit: int = 2
    """lm-eval items per task."""
    max_length: int = 256
    """Cap on training.max_length (prompts capped at half of it); a longer config value is lowered."""
    model_files: Path | None = None
    """Local folder with the base's config.json and tokenizer files (offline; weights are not needed)."""
    data: Path | None = None
    """Local .json/.jsonl/.parquet in the real dataset's schema, instead of streaming it from the Hub."""
    offline: bool = False
    """No Hub access: model files and data come from the options above, benchmarks from pubctl's look-alikes."""
