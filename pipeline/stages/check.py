"""The check stage: ``pubctl check NAME [--allow ID=REASON ...]``, the honesty gates on the card bundle.

New waivers are recorded first (the stage owns the record's ``waivers`` section) and
the card is re-rendered, so the committed card says what was waived; then every gate
runs and the report is printed, one line per waived, warning, skipped or failed check.
A failure that is not waived fails the stage (exit 1).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from pipeline.checks import how_to_go_on, run_checks, validate_waivers
from pipeline.errors import CheckFailed
from pipeline.results import Waiver, read_results
from pipeline.stage import StageResult, write_sections
from pipeline.stages import STAGES

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig
    from pipeline.layout import Layout


def run(config: ReleaseConfig, layout: Layout, *, allow: dict[str, str] | None = None) -> StageResult:
    """Record the waivers in ``allow``, run every gate, print the report; CheckFailed on an unwaived failure."""
    allow = dict(allow or {})
    validate_waivers({**config.checks.allow, **allow}, source="--allow / checks.allow")
    if allow:
        _record_waivers(config, layout, allow)
    report = run_checks(config, layout)
    for item in report.waived:
        _say(f"waived   {item.line()} (reason: {item.waiver})")
    for item in report.warnings:
        _say(f"warning  {item.line()}")
    for item in report.skipped:
        _say(f"skipped  {item.id}: {item.found}")
    for item in report.failures:
        _say(f"FAILED   {item.line()}")
    summary = (
        f"{len(report.passed)} passed, {len(report.failures)} failed, {len(report.waived)} waived, "
        f"{len(report.warnings)} warnings, {len(report.skipped)} skipped"
    )
    if report.failures:
        failed = list(dict.fromkeys(item.id for item in report.failures))
        raise CheckFailed(f"{layout.name}: {summary}. Failed: {', '.join(failed)}. {how_to_go_on(failed)}")
    _say(f"{layout.name}: {summary}")
    return StageResult(summary=summary)


def _record_waivers(config: ReleaseConfig, layout: Layout, allow: dict[str, str]) -> None:
    results = read_results(layout.results)
    merged = {w.check: w.reason for w in results.waivers}
    merged.update(allow)
    waivers = [Waiver(check=check, reason=reason) for check, reason in merged.items()]
    if waivers == results.waivers:
        return
    write_sections(layout, STAGES["check"], config, {"waivers": waivers})
    if layout.readme.is_file():
        # The card shows every waiver: re-render so the committed card says what was waived.
        from pipeline.stages.card import render_card

        render_card(config, layout)
        _say(f"recorded {len(allow)} waiver(s) in {layout.results} and re-rendered {layout.readme}")
    else:
        _say(f"recorded {len(allow)} waiver(s) in {layout.results}")


def _say(line: str) -> None:
    # The report's output channel: plain stdout, so CI logs keep it verbatim.
    sys.stdout.write(line + "\n")
