"""Running the gates: every registered check in registry order, then the waivers applied."""

from __future__ import annotations

import dataclasses
import difflib
from typing import TYPE_CHECKING

from pipeline.checks.context import CheckContext
from pipeline.checks.registry import CHECKS, Check
from pipeline.checks.report import CheckReport, Outcome
from pipeline.errors import UsageError
from pipeline.results import read_results

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig
    from pipeline.layout import Layout


def run_checks(
    config: ReleaseConfig, layout: Layout, *, for_push: bool = False, card_only: bool = False
) -> CheckReport:
    """Every gate on the bundle; waivers from results.json and config.checks.allow are applied.

    ``for_push``: before a real push (the push-only gates run); ``card_only``: a push of the
    card alone, so the model's files need not be here.
    """
    results = read_results(layout.results)
    context = CheckContext(config, layout, results, for_push=for_push, card_only=card_only)
    waivers = {w.check: w.reason for w in results.waivers}
    waivers.update({k: v for k, v in config.checks.allow.items() if k not in waivers})
    report = CheckReport()
    for check in CHECKS.values():
        out = Outcome(check.id)
        if check.push_only and not for_push:
            out.skip("not a push", "checked before a real push")
        else:
            check.function(context, out)
        _add(report, check, out, waivers)
    return report


def _add(report: CheckReport, check: Check, out: Outcome, waivers: dict[str, str]) -> None:
    """File one check's outcome: a warning stays a warning, a waiver turns a waivable failure into a waived one."""
    report.skipped += out.skips
    for item in out.failures:
        if check.warning:
            report.warnings.append(item)
        elif check.id in waivers and check.waivable:
            report.waived.append(dataclasses.replace(item, waiver=waivers[check.id]))
        else:
            report.failures.append(item)
    if out.ran and not out.failures:
        report.passed.append(check.id)


def validate_waivers(waivers: dict[str, str], source: str) -> None:
    """A UsageError for a waiver of a check that does not exist or cannot be waived."""
    unknown = sorted(set(waivers) - set(CHECKS))
    if unknown:
        hints = []
        for check in unknown:
            close = difflib.get_close_matches(check, list(CHECKS), n=1)
            hints.append(f"'{check}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise UsageError(f"{source}: no check named {', '.join(hints)}. Check ids: {', '.join(CHECKS)}.")
    fixed = sorted(check for check in waivers if not CHECKS[check].waivable)
    if fixed:
        raise UsageError(f"{source}: {', '.join(fixed)} cannot be waived: {CHECKS[fixed[0]].description}.")


def how_to_go_on(failed: list[str]) -> str:
    """What a user can do about these failed gates; --allow is offered only for gates that can be waived
    (suggesting it for lineage or not_rehearsal would send the user into a second refusal)."""
    waivable = [check_id for check_id in dict.fromkeys(failed) if CHECKS[check_id].waivable]
    if not waivable:
        return "Fix the release: these gates cannot be waived."
    return (
        f"Fix the release, or waive {', '.join(waivable)} with pubctl check NAME --allow ID=REASON (the card will "
        "show the waiver)."
    )
