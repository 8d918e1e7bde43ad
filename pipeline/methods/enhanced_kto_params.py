"""Enhanced KTO's parameters, declared once.

The config validates them (``method`` section), the loss reads them
(``enhanced_kto_loss``) and the trainer's TRL config gets one dataclass field per
parameter generated from them (``enhanced_kto_trainer.EnhancedKTOConfig``), so a
default or a bound is stated here and nowhere else. Light: pydantic only, no
torch, so the method registry can import it with the config.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.methods.base import MethodParams

GAMMA_MIN = 0.28
"""Smallest γ accepted: Tversky & Kahneman's w is monotone on (0, 1) for γ above about 0.2792."""


class Params(MethodParams):
    """Enhanced KTO's parameters; defaults are the issue's (Tversky & Kahneman 1992 for α, λ, γ)."""

    name: Literal["enhanced_kto"] = "enhanced_kto"
    beta: float = Field(0.1, gt=0, description="Inverse temperature of the implicit reward (KTO's β).")
    desirable_weight: float = Field(1.0, gt=0, description="Loss weight of desirable completions.")
    undesirable_weight: float = Field(1.0, gt=0, description="Loss weight of undesirable completions.")
    value_function: bool = Field(True, description="Shape the margin with the prospect-theory value function.")
    value_alpha: float = Field(0.88, gt=0, le=1, description="Curvature α of v (Tversky & Kahneman 1992).")
    loss_aversion: float = Field(2.25, gt=0, description="Loss-aversion λ of v for negative margins.")
    value_epsilon: float = Field(1e-3, gt=0, description="ε keeping v's slope finite at 0.")
    probability_weighting: bool = Field(True, description="Replace σ(v(u)) by the weighting w(p).")
    # w(p) = p^γ / (p^γ + (1−p)^γ)^(1/γ) is increasing on (0, 1) only for γ ≳ 0.2792 (Ingersoll 2008); below that a
    # more likely completion could get a smaller weighted probability, so the loss would push the wrong way.
    gamma_desirable: float = Field(
        0.61, ge=GAMMA_MIN, le=1, description="γ of w for desirable completions (w is monotone for γ ≥ 0.28)."
    )
    gamma_undesirable: float = Field(
        0.69, ge=GAMMA_MIN, le=1, description="γ of w for undesirable completions (w is monotone for γ ≥ 0.28)."
    )
    odds_ratio: bool = Field(True, description="Add ORPO's reference-free log-odds term.")
    odds_ratio_weight: float = Field(0.1, ge=0, description="Weight of the odds-ratio term.")
    bco_shift: bool = Field(
        False, description="Replace the KL shift β·z₀ by BCO's running mean δ of the rewards β·r (kept in checkpoints)."
    )
    bco_shift_start_step: int = Field(
        0, ge=0, le=10**9, description="Optimizer step after which the BCO shift applies."
    )
    bco_shift_max_grad_norm: float = Field(
        1.0, gt=0, description="Clip on the gradient contribution of the BCO-shifted term."
    )
