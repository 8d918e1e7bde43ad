"""What every config section shares: frozen, unknown keys refused, values bounded, references checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from pipeline.layout import project_root, release_name_problem
from pipeline.methods.base import plain_value
from pipeline.refs import DataRef, ModelRef, excerpt, project_path, revision_problem

BUILTIN_TASKS = "builtin"
"""evaluation.include_path value naming the bundled offline lm-eval tasks."""

TEXT_MAX = 1000
"""Longest free-text value (a name, a tag, a column); fields that hold a paragraph set their own bound."""
LIST_MAX = 100
"""Most items in a list a user writes out (tags, limitations, tasks, target modules, waivers)."""
SEED_MAX = 2**32 - 1
"""numpy's and torch's seeds are unsigned 32-bit."""
BATCH_MAX = 65536
"""Largest batch, accumulation or process count: far above any real run, far below an allocation that crashes."""
LENGTH_MAX = 1 << 20
"""Longest sequence in tokens."""
STEPS_MAX = 10**9
"""Largest step, sample or item count."""


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable, strings and floats bounded.

    Every float is finite (nan or inf as a hyperparameter would reach the card and the trainer as it is).
    Numbers stay in pydantic's lax mode on purpose: PyYAML reads ``2e-4`` (no dot) as a string, and that is
    the commonest way to write a learning rate.
    """

    # serialize_by_alias: a dumped config (a rehearsal's derived YAML, `pubctl schema`) must load again, and
    # the YAML key is `import`, a Python keyword the field cannot be named.
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, str_max_length=TEXT_MAX, serialize_by_alias=True
    )

    @field_validator("*", mode="before")
    @classmethod
    def _plain(cls, value: Any, info: ValidationInfo) -> Any:
        return plain_value(value, cls.model_fields[info.field_name].annotation)


def check_reference(value: str, info: ValidationInfo, ref: type[ModelRef] | type[DataRef]) -> str:
    """A built-in name, an existing local path (relative to the project root), or a valid Hub id (pipeline.refs)."""
    problem = ref.parse(value, project_of(info)).problem
    if problem:
        raise ValueError(problem)
    return value


def check_revision(value: str | None) -> str | None:
    """A branch, tag or commit sha that git and the Hub accept (it goes into URLs), or None."""
    if value is None:
        return value
    problem = revision_problem(value)
    if problem:
        raise ValueError(f"{excerpt(value)} is not a branch, tag or commit name the Hub accepts: {problem}")
    return value


def check_release_names(names: list[str]) -> list[str]:
    """Names of other releases (cards/NAME), held to the rule a release's own name follows."""
    for name in names:
        problem = release_name_problem(name)
        if problem:
            raise ValueError(problem)
    return names


def check_inside_project(value: str, info: ValidationInfo, *, folder: bool, must_exist: bool) -> str:
    """A path (relative to the project root) that resolves inside the project, to a folder or a regular file.

    pubctl reads what these name (lm-eval reads every YAML in a task folder, the stage cache hashes them), so
    a path out of the project (/proc, a home directory, a link out) is refused before anything opens it.
    """
    root = project_of(info).resolve()
    kind = "folder" if folder else "file"
    try:
        path = project_path(value, root).resolve()
        exists = path.exists()
        right_kind = path.is_dir() if folder else path.is_file()
    except (OSError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{excerpt(value)} cannot be used as a {kind} ({exc})") from None
    if not path.is_relative_to(root):
        raise ValueError(f"{excerpt(value)} resolves to {path}, outside the project ({root})")
    if (exists or must_exist) and not right_kind:
        raise ValueError(f"{excerpt(value)} is not a {kind} ({path} {'is not one' if exists else 'does not exist'})")
    return value


def project_of(info: ValidationInfo) -> Path:
    """The project root the config is validated against."""
    context = info.context or {}
    return Path(context.get("root") or project_root())
