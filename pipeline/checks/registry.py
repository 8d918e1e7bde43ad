"""The registry of honesty gates: each check's id, description and logic declared together.

A check is a function of the run's facts (:class:`~pipeline.checks.context.CheckContext`)
that reports into its :class:`~pipeline.checks.report.Outcome`. ``@check`` registers it
under its stable id (waivers, CI logs and the card refer to it). The registry's order
(the family modules' import order in pipeline/checks/__init__.py, then definition
order inside each) is the order the checks run, are reported and are listed in errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.registry import Registry

if TYPE_CHECKING:
    from pipeline.checks.context import CheckContext
    from pipeline.checks.report import Outcome

CheckFunction = Callable[["CheckContext", "Outcome"], None]


@dataclass(frozen=True)
class Check:
    id: str
    description: str
    family: str
    """The module that holds it: training, model, tokenizer, evaluation, card or publish."""
    function: CheckFunction
    warning: bool = False
    """Its failures are warnings: shown (and on the card), never a reason to stop a release."""
    waivable: bool = True
    push_only: bool = False
    """It judges what a real push would publish: skipped otherwise."""


CHECKS: Registry[Check] = Registry("check")


def check(
    check_id: str, description: str, *, warning: bool = False, waivable: bool = True, push_only: bool = False
) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function as the check ``check_id``."""

    def register(function: CheckFunction) -> CheckFunction:
        family = function.__module__.rpartition(".")[2]
        CHECKS.add(check_id, Check(check_id, description, family, function, warning, waivable, push_only))
        return function

    return register
