"""What the release config declares for an import: only values the user wrote in the YAML count.

A config field at its default was never said by anyone; passing it off as a fact of a run made elsewhere
(seed 42, method enhanced_kto, builtin:preferences) would be the kind of invented number pubctl exists to
refuse. pydantic's ``model_fields_set`` says which fields the YAML gave.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.errors import UsageError

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig


def written(config: ReleaseConfig, dotted: str) -> Any:
    """The value of ``dotted`` (e.g. ``training.seed``) when the YAML wrote it, else None."""
    node: Any = config
    for part in dotted.split("."):
        if part not in node.model_fields_set:
            return None
        node = getattr(node, part)
    return node


def require(config: ReleaseConfig, fields: list[str], why: str) -> None:
    """A UsageError naming every field of ``fields`` the YAML does not write."""
    absent = [name for name in fields if written(config, name) is None]
    if absent:
        where = config.path or f"configs/{config.name}.yaml"
        raise UsageError(
            f"import: {why}, so {where} must say it: set {', '.join(absent)} to what the run used "
            "(pubctl records a value only when a file holds it or the config states it, never a default)."
        )
