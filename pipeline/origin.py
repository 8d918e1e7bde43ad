"""Where a record section's numbers came from: measured by pubctl's own stage, or imported from files made elsewhere.

``pubctl import NAME`` (pipeline.importing) builds sections from a TRL trainer_state.json, lm-eval output and a
model folder made outside pubctl. Each such section carries an :class:`Origin` naming the files it was read from
(with their sha256), the fields pubctl measured itself, the fields taken from the release config because no file
held them, and what the files lacked. A section without ``origin`` was written by pubctl's own stage (every record
written before origins existed): absent means measured.

Declared once here and mixed into the section models of pipeline.results (:class:`Traced`), so the record module
stays one model per section. Light: pydantic only, nothing of pipeline.results (which imports this).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_RECORD = ConfigDict(extra="allow", validate_assignment=True, validate_by_name=True, serialize_by_alias=True)
"""pipeline.results.Record's configuration (not imported: that module imports this one)."""


class SourceFile(BaseModel):
    model_config = _RECORD

    role: str = Field(description="What the file is: trainer_state, lm-eval results, lm-eval samples, adapter config.")
    path: str = Field(description="The file as the config's import section named it (or found inside that folder).")
    sha256: str = Field(description="Hex sha256 of its bytes when pubctl read it.")


class Origin(BaseModel):
    """How one section was obtained."""

    model_config = _RECORD

    kind: Literal["measured", "imported"] = Field(
        description="measured: pubctl computed it from files it could read; imported: read from a file made elsewhere."
    )
    file: str | None = Field(None, description="The main file or folder the section was read or measured from.")
    sha256: str | None = Field(None, description="Hex sha256 of that file (a folder: pipeline.hashing.tree_digest).")
    also_read: list[SourceFile] = Field(default_factory=list, description="Other files the section was read from.")
    measured: list[str] = Field(default_factory=list, description="Fields pubctl measured itself (dotted names).")
    declared: list[str] = Field(
        default_factory=list,
        description="Fields no file held, taken from the release config where the user wrote them (dotted names).",
    )
    gaps: list[str] = Field(
        default_factory=list,
        description="What the imported files lacked or qualified (a --limit run, no n-samples, no stderr): the "
        "imported_* gates fail on each.",
    )


class Traced(BaseModel):
    """Mixin of the sections an import can write: training, model, merge, evaluation."""

    origin: Origin | None = Field(
        None, description="Where the section came from (pubctl import); absent: measured by pubctl's own stage."
    )
