"""Gates of imported sections (``pubctl import``): what the imported files lacked, and which model was scored.

Every other gate judges an imported record exactly as a measured one (a trainer_state.json of zero steps and a
loss of 0.0 fails training_ran, loss_not_zero and runtime_consistent). These two judge what only an import can
get wrong: lm-eval output scored on a subset (--limit) or without n-samples or stderr, and scores whose model
pubctl could not tie to the weights the record publishes. A measured record has nothing for them to check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.checks.registry import check
from pipeline.lineage import files_digest

if TYPE_CHECKING:
    from pipeline.checks.context import CheckContext
    from pipeline.checks.report import Outcome
    from pipeline.origin import Origin

TRACED = ("training", "model", "merge", "evaluation")


def _imported(ctx: CheckContext) -> list[tuple[str, Origin]]:
    sections = [(name, getattr(ctx.results, name)) for name in TRACED]
    return [(name, s.origin) for name, s in sections if s is not None and s.origin and s.origin.kind == "imported"]


@check(
    "imported_complete",
    "imported results are complete: lm-eval scored whole tasks (no --limit) and reported n-samples and a stderr "
    "for every metric, for the tuned and the base model alike",
)
def imported_complete(ctx: CheckContext, out: Outcome) -> None:
    imported = _imported(ctx)
    if not imported:
        out.nothing_to_check()
        return
    for section, origin in imported:
        for gap in origin.gaps:
            out.fail(
                f"{section}: {gap} ({origin.file})",
                "lm-eval output of the whole tasks with n-samples and stderr (re-run lm-eval without --limit)",
            )


@check(
    "imported_scored_model",
    "imported benchmark scores were made on the model the record publishes (lm-eval's model_args.pretrained, "
    "hashed at import, is the model's files)",
)
def imported_scored_model(ctx: CheckContext, out: Outcome) -> None:
    evaluation, model = ctx.results.evaluation, ctx.results.model
    if evaluation is None or evaluation.origin is None or evaluation.origin.kind != "imported":
        out.nothing_to_check()
        return
    scored = evaluation.lineage.consumed.get("merged_model") if evaluation.lineage else None
    fix = f"scores of the published model (lm-eval on it, then pubctl import; or pubctl evaluate {ctx.layout.name})"
    if scored is None:
        out.fail(f"{evaluation.origin.file} names a model that was not on this machine at import", fix)
    elif model is None or not model.files:
        out.fail("no model files in the record to compare the scored model with", fix)
    elif scored != (published := files_digest(model.files)):
        out.fail(f"{evaluation.origin.file} scored model {scored[:12]}, the record's model is {published[:12]}", fix)
