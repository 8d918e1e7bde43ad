"""What every training method declares: its parameters, the data it consumes, how to build its trainer.

A method is one module in this package exposing ``SPEC``. The registry in
``__init__`` collects them; config validation, the train stage and the card all
look methods up there, so adding a method never means editing an if-chain.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

if TYPE_CHECKING:
    from pipeline.methods.context import TrainContext

DataFormat = Literal["paired", "unpaired", "text"]
"""paired: prompt/chosen/rejected; unpaired: prompt/completion/label (KTO); text: prompt/completion or text."""


def plain_value(value: Any, annotation: Any) -> Any:
    """``value`` unless it is a bool where a number goes, or a text with a NUL character; a ValueError then.

    YAML reads ``yes``, ``on`` and ``true`` as booleans, and pydantic's lax mode takes a bool for 1 or 0: ``beta: on``
    would train with β = 1 and say so on the card. A NUL is never meant, and breaks every path and C library.
    """
    if isinstance(value, bool) and _numeric(annotation):
        raise ValueError(f"expected a number, found {str(value).lower()}")
    if not _holds_model(annotation) and _holds_nul(value):  # a section's own fields report their NULs themselves
        raise ValueError("a NUL character (\\0) in a value")
    return value


def _numeric(annotation: Any) -> bool:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_numeric(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    return annotation in (int, float)


def _holds_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_model(arg) for arg in typing.get_args(annotation))


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    return False


class MethodParams(BaseModel):
    """Base of every method's parameter model; ``name`` is the discriminator in the config.

    Every float is finite: a nan or inf β would train to a non-finite loss and be printed on the card as it is.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, str_max_length=1000)

    @model_validator(mode="before")
    @classmethod
    def _plain(cls, data: Any) -> Any:
        # A model-level check: pydantic allows no before-validator on the discriminator, and "*" would include it.
        if isinstance(data, dict):
            for key, value in data.items():
                field_info = cls.model_fields.get(key) if isinstance(key, str) else None
                if field_info is not None:
                    try:
                        plain_value(value, field_info.annotation)
                    except ValueError as exc:
                        raise ValueError(f"{key}: {exc}") from None
        return data

    name: str


@dataclass(frozen=True)
class MethodSpec:
    """A training method as pubctl knows it."""

    name: str
    """The config's ``method.name``."""
    title: str
    """Human name shown on the card, e.g. "Direct Preference Optimization"."""
    params: type[MethodParams]
    """Pydantic model of the method's parameters (validated with the config)."""
    consumes: DataFormat
    """The format the TRL trainer is fed."""
    accepts: tuple[DataFormat, ...]
    """Input formats pubctl can convert to ``consumes`` (paired → unpaired with TRL's helper)."""
    citations: tuple[str, ...]
    """Keys into the card's BibTeX registry."""
    build_trainer: Callable[[TrainContext], Any] | None = None
    """Builds the TRL trainer (imports trl lazily); None until the train stage provides it."""
    min_batch_size: int = 1
    """Smallest per-device batch the loss is meaningful for (KTO's KL estimate needs two)."""
    metrics: tuple[str, ...] = field(default_factory=tuple)
    """Method-specific log_history keys the card plots when present."""
