"""Card gates: the committed README.md is a current render whose model-index holds the recorded benchmarks only."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pipeline.checks.registry import check

if TYPE_CHECKING:
    from pipeline.checks.context import CheckContext
    from pipeline.checks.report import Outcome

# Names of non-benchmark quantities that must never appear in a model-index (seed 000 did this).
NOT_BENCHMARKS = re.compile(r"loss|runtime|time|throughput|speed|efficien|tokens_per|samples_per|flops", re.I)
# A printed Python None is a value on its own ("| None |", "loss None."); "None of the ..." in an
# author's summary is English, so a None followed by a lower-case word is not a leftover.
TEMPLATE_SYNTAX = re.compile(r"\{\{|\{%|\{#|\}\}|%\}|\bNone\b(?! [a-z])")


def _card(ctx: CheckContext, out: Outcome) -> str | None:
    """The committed card's text, or None after failing the check for its absence."""
    if ctx.readme is None:
        out.fail(f"no {ctx.layout.readme}", f"a rendered card (pubctl card {ctx.layout.name})")
    return ctx.readme


def _body(text: str) -> str:
    """README.md without its YAML front matter (the library dumps that as data, never a template)."""
    match = re.match(r"^---\r?\n.*?\r?\n---\r?\n", text, re.S)
    return text[match.end() :] if match else text


@check("model_index_parses", "the card's model-index parses with huggingface_hub and holds only recorded benchmarks")
def model_index_parses(ctx: CheckContext, out: Outcome) -> None:
    text = _card(ctx, out)
    if text is None:
        return
    import yaml
    from huggingface_hub import ModelCard

    try:
        data = ModelCard(text, ignore_metadata_errors=False).data
        eval_results = list(data.eval_results or [])
    except (ValueError, KeyError, TypeError, yaml.YAMLError) as exc:  # what the library raises on a bad header
        out.fail(
            f"front matter that does not parse ({type(exc).__name__}: {exc})",
            "YAML and a model-index huggingface_hub can read",
        )
        return
    # The n-shot is part of a result's identity: the same task may be recorded 0-shot and 5-shot.
    evaluation = ctx.results.evaluation
    recorded = {
        (row.task, row.metric, row.num_fewshot, row.split, row.value)
        for row in (evaluation.results if evaluation else [])
    }
    found = set()
    for result in eval_results:
        shots = (result.metric_args or {}).get("num_fewshot")
        key = (result.dataset_name, result.metric_type, shots, result.dataset_split, result.metric_value)
        found.add(key)
        if NOT_BENCHMARKS.search(f"{result.metric_type} {result.metric_name or ''}"):
            out.fail(f"non-benchmark metric {result.metric_type!r} in the model-index", "benchmark metrics only")
        elif key not in recorded:
            out.fail(f"model-index result {key} not in results.json", "only the recorded benchmark results")
    for key in sorted(recorded - found, key=str):
        out.fail(f"recorded result {key} missing from the model-index", "every recorded result")


@check("no_template_syntax", "the card body holds no leftover template syntax or None")
def no_template_syntax(ctx: CheckContext, out: Outcome) -> None:
    text = _card(ctx, out)
    if text is None:
        return
    leftovers = sorted(set(TEMPLATE_SYNTAX.findall(_body(text))))
    if leftovers:
        out.fail(f"{', '.join(repr(s) for s in leftovers)} in README.md", "rendered text only")


@check("card_current", "the committed card equals a fresh render of results.json")
def card_current(ctx: CheckContext, out: Outcome) -> None:
    if _card(ctx, out) is None:
        return
    # The card stage never imports the checks; importing it here, when the check runs, keeps it that way.
    from pipeline.stages.card import card_differences

    problems = card_differences(ctx.config, ctx.layout)
    if problems:
        first = problems[0].splitlines()[0]
        out.fail(
            f"{len(problems)} difference(s), first: {first}",
            f"the committed card to equal a fresh render (pubctl card {ctx.layout.name})",
        )
