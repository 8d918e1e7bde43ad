"""The ``import:`` section: results made outside pubctl that ``pubctl import NAME`` builds the record from.

Each path names something that already exists: a peft adapter folder, a merged model folder, TRL's
trainer_state.json (or the folder holding it), lm-eval's output for the tuned model and, optionally, for the base.
They may lie outside the project (a training run's output folder): pubctl only reads them; the model and adapter
are copied into runs/NAME/ before anything is published. Relative paths are taken from the project root.
"""

from __future__ import annotations

import stat
from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator, model_validator

from pipeline.config.base import Section, project_of
from pipeline.hashing import kind_of
from pipeline.refs import REFERENCE_MAX, excerpt, project_path

FOLDER, FILE, EITHER = "folder", "file", "file or folder"


def _existing(value: str, info: ValidationInfo, kind: str) -> str:
    """``value`` unless it names something of another kind than ``kind`` allows; nothing is opened.

    A FIFO, socket or device is refused here: importing reads what these name, and opening a FIFO would block.
    An absent path passes: CI checks a tagged commit's card bundle with its config, without the files it was
    imported from; ``pubctl import`` itself refuses it (ImportSection.existing).
    """
    path = project_path(value, project_of(info))
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return value
    except (OSError, RuntimeError) as exc:
        raise ValueError(f"{excerpt(value)}: {path} cannot be read ({exc})") from None
    folder, regular = stat.S_ISDIR(mode), stat.S_ISREG(mode)
    if (kind == FOLDER and not folder) or (kind == FILE and not regular) or not (folder or regular):
        raise ValueError(f"{excerpt(value)}: expected a {kind}, but {path} is {kind_of(mode)}")
    return value


class ImportSection(Section):
    """What ``pubctl import NAME`` reads; every path optional (none given: not an imported release)."""

    adapter: str | None = Field(
        None, max_length=REFERENCE_MAX, description="peft LoRA adapter folder (adapter_config.json, safetensors)."
    )
    merged_model: str | None = Field(
        None,
        max_length=REFERENCE_MAX,
        description="Merged model folder (config.json, *.safetensors, tokenizer): the model pushed.",
    )
    trainer_state: str | None = Field(
        None,
        max_length=REFERENCE_MAX,
        description="TRL/transformers trainer_state.json, or the output folder holding it (trainer.save_state()).",
    )
    lm_eval: str | None = Field(
        None,
        max_length=REFERENCE_MAX,
        description="lm-eval output for the tuned model: a results_*.json file or the --output_path folder.",
    )
    lm_eval_base: str | None = Field(
        None, max_length=REFERENCE_MAX, description="lm-eval output for the base model, scored the same way."
    )

    @field_validator("adapter", "merged_model")
    @classmethod
    def _folder(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _existing(value, info, FOLDER)

    @field_validator("trainer_state", "lm_eval", "lm_eval_base")
    @classmethod
    def _file_or_folder(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _existing(value, info, EITHER)

    @property
    def given(self) -> bool:
        """Whether the section names anything (an empty one: a release pubctl trains itself)."""
        return any(getattr(self, name) for name in type(self).model_fields)

    @model_validator(mode="after")
    def _paired(self) -> ImportSection:
        if self.lm_eval_base and not self.lm_eval:
            raise ValueError("lm_eval_base without lm_eval: the base's scores sit beside the tuned model's")
        return self

    def resolved(self, name: str, root: Path) -> Path | None:
        """The path ``name`` names, resolved against the project root (None when not given)."""
        value = getattr(self, name)
        return None if value is None else project_path(value, root)

    def missing(self, root: Path) -> list[str]:
        """'import.FIELD: PATH' for each given path that does not exist (now, when the import reads them)."""
        paths = {name: self.resolved(name, root) for name in type(self).model_fields}
        return [f"import.{name}: {path}" for name, path in paths.items() if path is not None and not path.exists()]
