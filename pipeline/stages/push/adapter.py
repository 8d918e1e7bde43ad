"""The adapter repository's card: templates/adapter_card.md.j2 in the model card's environment.

The same sandbox, StrictUndefined and Markdown filters as the model card, so a
config value (the model name, the base model, repo ids) is escaped the same way
in both; the front matter is built as data with huggingface_hub's ModelCardData.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline import __version__
from pipeline.errors import UsageError
from pipeline.layout import Layout, templates_dir
from pipeline.refs import ModelRef
from pipeline.stages.card.environment import render_body, sandboxed
from pipeline.stages.card.front_matter import document, method_tag, title

if TYPE_CHECKING:
    from huggingface_hub import ModelCardData

    from pipeline.config import ReleaseConfig

ADAPTER_TEMPLATE = "adapter_card.md.j2"


def adapter_card(config: ReleaseConfig, layout: Layout) -> str:
    """The README.md of hub.adapter_repo_id (it replaces peft's placeholder card)."""
    folder = templates_dir(layout.root)
    if not (folder / ADAPTER_TEMPLATE).is_file():
        raise UsageError(
            f"hub.adapter_repo_id is set but {folder / ADAPTER_TEMPLATE} does not exist: copy it from pubctl's "
            "templates/ (it renders the adapter repository's card)."
        )
    base = ModelRef.parse(config.model.base_model, layout.root)
    hub_base = base.value if base.is_hub else None
    body = render_body(sandboxed(layout, [folder]), ADAPTER_TEMPLATE, _context(config, hub_base))
    return document(_card_data(config, hub_base), body)


def _context(config: ReleaseConfig, hub_base: str | None) -> dict[str, Any]:
    return {
        "title": title(config),
        "repo_id": config.hub.repo_id,
        "repo_url": f"https://huggingface.co/{config.hub.repo_id}",
        "adapter_repo_id": config.hub.adapter_repo_id,
        "method": config.method.name,
        "base_model": config.model.base_model,
        "hub_base": hub_base,
        "version": __version__,
    }


def _card_data(config: ReleaseConfig, hub_base: str | None) -> ModelCardData:
    from huggingface_hub import ModelCardData

    return ModelCardData(
        base_model=hub_base,
        # The Hub requires a Hub id for base_model; a builtin: or local base is named in the body instead.
        base_model_relation="adapter" if hub_base else None,
        library_name="peft",
        license=config.card.license,
        language=list(config.card.language),
        pipeline_tag="text-generation",
        tags=sorted({"lora", "peft", "pubctl", method_tag(config.method.name), *config.card.tags}),
    )
