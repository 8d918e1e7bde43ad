"""The card stage: cards/NAME/README.md and plots/*.png from cards/NAME/results.json and templates alone.

- ``stage``: render in memory, write the bundle atomically, compare with the committed one (``--check``).
- ``front_matter``: the YAML front matter, built as data with huggingface_hub's ModelCardData and
  EvalResult and dumped by the library, so no value can break it.
- ``context``: what the template sees, one small function per part of the card.
- ``comparison``: the card.compare_with table.
- ``environment``: the sandboxed Jinja environment and its Markdown filters, shared with the adapter
  repository's card (pipeline.stages.push).
- ``template_files``: which file card.template names (inside the project only) and the rule every
  template file, included ones too, must pass before it is opened.
- ``sandbox`` and ``limits``: jinja2's sandbox with bounded sizes and a time limit, and a loader
  that reads only checked files.

This package imports no torch, transformers, trl, peft, datasets or lm_eval, and not
pipeline.checks (the gates import the card, never the other way round): ``pubctl card``
runs on a laptop without the training stack.
"""

from __future__ import annotations

from pipeline.stages.card.context import build_context
from pipeline.stages.card.front_matter import card_data
from pipeline.stages.card.stage import RenderedCard, card_differences, check_card, render, render_card, run

__all__ = [
    "RenderedCard",
    "build_context",
    "card_data",
    "card_differences",
    "check_card",
    "render",
    "render_card",
    "run",
]
