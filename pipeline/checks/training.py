"""Training gates: the record shows a run that happened, on enough data, with a believable loss and runtime."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pipeline.checks.registry import check

if TYPE_CHECKING:
    from pipeline.checks.context import CheckContext
    from pipeline.checks.report import Outcome
    from pipeline.results import TrainingRecord


def _training(ctx: CheckContext, out: Outcome) -> TrainingRecord | None:
    """The training section, or None after failing the check for its absence."""
    if ctx.results.training is None:
        out.fail("no training section in results.json", "a recorded training run (pubctl train)")
    return ctx.results.training


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@check(
    "training_ran",
    "the training section exists, optimizer steps > 0, a loss is logged at a step > 0 and no logged "
    "loss lies past the recorded step count",
)
def training_ran(ctx: CheckContext, out: Outcome) -> None:
    training = _training(ctx, out)
    if training is None:
        return
    logged_steps = [e["step"] for e in training.log_history if _is_number(e.get("step")) and "loss" in e]
    if training.steps <= 0:
        out.fail(f"{training.steps} optimizer steps", "more than 0 optimizer steps")
    elif not logged_steps or max(logged_steps) <= 0:
        out.fail("no logged loss at a step > 0", "a Trainer log with the training loss")
    elif max(logged_steps) > training.steps:
        out.fail(
            f"a log reaching step {max(logged_steps)} but steps = {training.steps}",
            "the log and the step count to agree",
        )


@check("samples_min", "training saw at least checks.min_samples examples")
def samples_min(ctx: CheckContext, out: Outcome) -> None:
    training = _training(ctx, out)
    minimum = ctx.config.checks.min_samples
    if training is not None and training.samples < minimum:
        out.fail(f"{training.samples} training samples", f"at least {minimum} (checks.min_samples)")


@check("loss_finite", "every logged loss and the final loss are finite numbers")
def loss_finite(ctx: CheckContext, out: Outcome) -> None:
    training = _training(ctx, out)
    if training is None:
        return
    losses = [(e.get("step"), e["loss"]) for e in training.log_history if "loss" in e]
    bad = [(step, loss) for step, loss in losses if not _is_number(loss) or not math.isfinite(loss)]
    if bad:
        step, loss = bad[0]
        out.fail(f"loss {loss!r} at step {step} ({len(bad)} non-finite)", "finite losses")
    elif training.final_loss is None:
        out.fail("no final loss", "the loss of the last logged step")
    elif not math.isfinite(training.final_loss):
        out.fail(f"final loss {training.final_loss}", "a finite final loss")


@check("loss_not_zero", "the final training loss is not exactly 0 (the default of a loop that never ran)")
def loss_not_zero(ctx: CheckContext, out: Outcome) -> None:
    training = _training(ctx, out)
    if training is not None and training.final_loss is not None and training.final_loss == 0.0:
        out.fail("final loss exactly 0.0", "a non-zero loss (0.0 is what a loop that never ran reports)")


@check("runtime_consistent", "training runtime is at least checks.min_seconds_per_step per optimizer step")
def runtime_consistent(ctx: CheckContext, out: Outcome) -> None:
    training = _training(ctx, out)
    if training is None:
        return
    per_step = ctx.config.checks.min_seconds_per_step
    runtime = training.runtime_seconds
    if training.steps <= 0 or runtime <= 0 or runtime < training.steps * per_step:
        out.fail(
            f"{runtime:g} s for {training.steps} optimizer steps",
            f"more than 0 steps taking at least {per_step:g} s each (checks.min_seconds_per_step)",
        )
