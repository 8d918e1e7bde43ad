"""What every config section shares: frozen, unknown keys refused, references checked against the project root."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationInfo

from pipeline.layout import project_root
from pipeline.refs import DataRef, ModelRef

BUILTIN_TASKS = "builtin"
"""evaluation.include_path value naming the bundled offline lm-eval tasks."""


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_reference(value: str, info: ValidationInfo, ref: type[ModelRef] | type[DataRef]) -> str:
    """A built-in name, an existing local path (relative to the project root), or a valid Hub id (pipeline.refs)."""
    problem = ref.parse(value, _root(info)).problem
    if problem:
        raise ValueError(problem)
    return value


def _root(info: ValidationInfo) -> Path:
    context = info.context or {}
    return Path(context.get("root") or project_root())
