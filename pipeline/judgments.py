"""Judgments the card and the honesty gates share: chance, the evaluation limit, metric ranges, merge parity.

The card words them for readers ("within 2 standard errors of chance"); the gates
turn them into pass, warn or fail. Both import them from here, so the card and
``pubctl check`` can never disagree on what a number means, and neither imports
the other. Light: no torch, no record I/O.

Merge parity: float32 merges must reproduce adapter-on-base's logits to 1e-4. A
half-precision merge must round ``W + dW`` to bf16/fp16, which moves logits by an
amount that grows with the model's logit scale, so an absolute bound either
rejects correct bf16 merges or accepts wrong ones. Its error is judged instead
relative to what the adapter itself changes: a correct merge loses a few percent
of the adapter's effect to rounding (0.4% on the tiny model, 1.2% on a
174M-parameter one), a wrong one about 100% (alpha/r applied twice or not at all)
or its share (a module left out). The default bound, 25%
(merge.parity_max_relative), sits between. An adapter so small that bf16 cannot
represent its change fails too, and should: the merged model would not be the
model that was trained.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.results import BenchmarkResult, EvaluationRecord

# Ranges of bounded metrics as lm-eval computes them (fractions, not percentages); any other metric
# only has to be finite. MCC is a correlation (negative near chance); lm-eval's brier_score sums the
# squared error over all classes, so a confident wrong answer scores 2 (lm_eval/api/metrics.py).
METRIC_RANGES: tuple[tuple[re.Pattern[str], float, float], ...] = (
    (re.compile(r"^(acc|acc_norm|mc1|mc2|exact_match|em|f1|pass@\d+)(_.*)?$"), 0.0, 1.0),
    (re.compile(r"^mcc(_.*)?$"), -1.0, 1.0),
    (re.compile(r"^brier_score(_.*)?$"), 0.0, 2.0),
)


def metric_range(metric: str) -> tuple[float, float] | None:
    """The range lm-eval's ``metric`` lies in, or None for an unbounded one."""
    for pattern, low, high in METRIC_RANGES:
        if pattern.match(metric):
            return low, high
    return None


def is_near_chance(row: BenchmarkResult, k: float) -> bool:
    """Whether a score lies within ``k`` standard errors of chance (the card says so, the gate warns)."""
    return row.chance is not None and row.stderr is not None and abs(row.value - row.chance) <= k * row.stderr


def is_below_chance(row: BenchmarkResult, k: float) -> bool:
    """Whether an accuracy-like score (higher is better, in [0, 1]) lies more than ``k`` stderr below chance.

    Not a gate: the model may prefer wrong answers (TruthfulQA's imitative falsehoods) or chance may
    be mis-specified; the card says which scores, so "at chance" is not read into them.
    """
    if row.chance is None or row.stderr is None or metric_range(row.metric) != (0.0, 1.0):
        return False
    return row.value < row.chance - k * row.stderr


def evaluation_limit(evaluation: EvaluationRecord) -> int | float | None:
    """The lm-eval ``limit`` the benchmarks ran with (None: the full sets)."""
    return evaluation.settings.limit if evaluation.settings is not None else None


# --------------------------------------------------------------------------- parity
PARITY_OPTIONS = {"max_abs_diff": "merge.parity_tolerance", "relative_to_adapter_effect": "merge.parity_max_relative"}
"""Each parity measure and the config field that bounds it."""


def parity_value(measure: str, max_abs_diff: float, adapter_effect: float | None) -> float | None:
    """The number the gate compares with its bound; None when the record lacks the adapter effect."""
    if measure == "max_abs_diff":
        return max_abs_diff
    if adapter_effect is None:
        return None
    if adapter_effect == 0.0:
        # An adapter that changes nothing: any difference at all is the merge's fault.
        return 0.0 if max_abs_diff == 0.0 else float("inf")
    return max_abs_diff / adapter_effect


def describe_parity(measure: str, value: float) -> str:
    """Human wording of a parity value."""
    what = "max |logit difference|" if measure == "max_abs_diff" else "logit difference / adapter effect"
    return f"{what} {value:.3g}"
