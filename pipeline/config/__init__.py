"""The release config: one YAML file per release (configs/NAME.yaml), validated by pydantic.

Every section has defaults a user of TRL, peft and lm-eval would expect; every
field says what it is in its description (the JSON schema of ``pubctl schema``
carries them to editors). Misspelt keys are errors that suggest the closest
valid key; every error names the file, the field path and the YAML line.

The package holds one module per group of sections (sources, training, publishing),
the release that joins them, and loading (YAML, validation, error messages).
"""

from __future__ import annotations

from pipeline.config.base import BUILTIN_TASKS, Section
from pipeline.config.loading import config_schema, format_validation_error, load_config, resolve_config_path
from pipeline.config.publishing import (
    CardSection,
    ChecksSection,
    EvaluationSection,
    HubSection,
    TaskSpec,
    ThroughputSection,
)
from pipeline.config.release import ReleaseConfig
from pipeline.config.sources import Columns, DataSection, ModelSection
from pipeline.config.training import LauncherSection, LoraSection, MergeSection, MethodSection, TrainingSection

__all__ = [
    "BUILTIN_TASKS",
    "CardSection",
    "ChecksSection",
    "Columns",
    "DataSection",
    "EvaluationSection",
    "HubSection",
    "LauncherSection",
    "LoraSection",
    "MergeSection",
    "MethodSection",
    "ModelSection",
    "ReleaseConfig",
    "Section",
    "TaskSpec",
    "ThroughputSection",
    "TrainingSection",
    "config_schema",
    "format_validation_error",
    "load_config",
    "resolve_config_path",
]
