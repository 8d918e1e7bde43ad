"""What every training method declares: its parameters, the data it consumes, how to build its trainer.

A method is one module in this package exposing ``SPEC``. The registry in
``__init__`` collects them; config validation, the train stage and the card all
look methods up there, so adding a method never means editing an if-chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from pipeline.methods.context import TrainContext

DataFormat = Literal["paired", "unpaired", "text"]
"""paired: prompt/chosen/rejected; unpaired: prompt/completion/label (KTO); text: prompt/completion or text."""


class MethodParams(BaseModel):
    """Base of every method's parameter model; ``name`` is the discriminator in the config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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
