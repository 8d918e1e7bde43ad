"""The Enhanced KTO loss as pure torch functions (no trainer, no model).

Per example, with r = log π(y|x) − log π_ref(y|x) summed over completion tokens:

- margin u = β(r − z₀) for a desirable completion, β(z₀ − r) for an undesirable one, where z₀ is
  KTO's batch KL estimate; with the BCO shift active, βz₀ is replaced by δ, the running mean of β·r
  (so u = βr − δ, resp. δ − βr; δ lives on the reward scale, as in BCO).
- value function v(u) = (|u|+ε)^α − ε^α for u ≥ 0 and −λ((|u|+ε)^α − ε^α) for u < 0.
- probability weighting w(p) = p^γ / (p^γ + (1−p)^γ)^(1/γ) applied to p = σ(v(u)).
- loss = weight_y · (1 − w(p)) + odds_ratio_weight · (−log σ(±log_odds)).

With every component off this is exactly TRL's KTO loss 1 − σ(u). Everything is computed in float32
whatever the input dtype: bfloat16 has 8 bits of mantissa, too few for the power and log-space terms.
No library provides these functions (TRL's KTOTrainer computes its loss inline), hence this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pipeline.methods.enhanced_kto_params import Params

P_MIN = 1e-6
"""w(p) is evaluated with p clamped to [P_MIN, 1 − P_MIN]: its slope is unbounded at 0 and 1 when γ < 1."""
_V_CLAMP = math.log((1.0 - P_MIN) / P_MIN)
"""Clamping p = σ(v) to [P_MIN, 1 − P_MIN] is clamping v to ±logit(1 − P_MIN), which stays in log space."""
MEAN_LOGP_MAX = -1e-6
"""log(1 − e^ℓ) diverges as the mean token log-prob ℓ → 0 (a certain completion); ℓ is capped just below."""


EnhancedKTOLossConfig = Params
"""The loss's parameters are the method's (pipeline.methods.enhanced_kto_params), declared once there."""


@dataclass(frozen=True)
class EnhancedKTOLossOutput:
    """Per-example tensors (shape [batch]) of the loss and of each component, for logging."""

    losses: torch.Tensor
    """weight_y · (1 − w(p)) + the weighted odds-ratio term; the training loss is its mean."""
    margins: torch.Tensor
    """u, before the value function."""
    value_margins: torch.Tensor
    """v(u) (equal to u when the value function is off)."""
    probabilities: torch.Tensor
    """p = σ(v(u)), unclamped."""
    weighted_probabilities: torch.Tensor
    """w(p) (equal to p when probability weighting is off)."""
    odds_ratio_terms: torch.Tensor
    """−log σ(±log_odds) before its weight (zeros when the term is off)."""


def value_function(u: torch.Tensor, alpha: float, loss_aversion: float, epsilon: float) -> torch.Tensor:
    """Prospect-theory value v(u), odd up to the loss-aversion factor: v(−x) = −λ·v(x).

    ε shifts the power so that v'(0) = α·ε^(α−1) is finite (x^α alone has an infinite slope at 0).
    """
    u = u.float()
    gain = u >= 0
    # Not |u|: autograd gives |u| a zero slope at u = 0, which would stall training exactly where it
    # starts (a fresh LoRA adapter makes π = π_ref, so u = 0). Each branch sees only its own side of 0,
    # so v'(0) is the gain side's α·ε^(α−1) and neither branch forms a NaN that could leak into the gradient.
    magnitude_gain = (torch.where(gain, u, 0.0) + epsilon).pow(alpha) - epsilon**alpha
    magnitude_loss = (torch.where(gain, 0.0, -u) + epsilon).pow(alpha) - epsilon**alpha
    return torch.where(gain, magnitude_gain, -loss_aversion * magnitude_loss)


def log_probability_weighting(log_p: torch.Tensor, log_1mp: torch.Tensor, gamma: torch.Tensor | float) -> torch.Tensor:
    """log w(p) from log p and log(1 − p): γ·log p − (1/γ)·log(p^γ + (1 − p)^γ).

    Taking both logs as inputs keeps p near 0 or 1 exact (1 − p is never formed by subtraction).
    """
    log_p, log_1mp = log_p.float(), log_1mp.float()
    gamma = torch.as_tensor(gamma, dtype=torch.float32, device=log_p.device)
    return gamma * log_p - torch.logaddexp(gamma * log_p, gamma * log_1mp) / gamma


def weighted_probability_from_logit(v: torch.Tensor, gamma: torch.Tensor | float) -> torch.Tensor:
    """w(σ(v)) in float32, with p = σ(v) clamped to [P_MIN, 1 − P_MIN]."""
    v = v.float().clamp(-_V_CLAMP, _V_CLAMP)
    return log_probability_weighting(F.logsigmoid(v), F.logsigmoid(-v), gamma).exp()


def probability_weighting(p: torch.Tensor, gamma: torch.Tensor | float) -> torch.Tensor:
    """w(p) for probabilities p (clamped to [P_MIN, 1 − P_MIN]); the loss itself goes through logits."""
    p = p.float().clamp(P_MIN, 1.0 - P_MIN)
    return log_probability_weighting(p.log(), torch.log1p(-p), gamma).exp()


def mean_token_logps(per_token_logps: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """ℓ: the mean log-prob per completion token (ORPO's length-normalised log-likelihood)."""
    mask = completion_mask.to(per_token_logps.dtype)
    # A completion truncated to nothing has no tokens: count 1 so ℓ = 0 (capped later) instead of 0/0.
    return (per_token_logps.float() * mask).sum(-1) / mask.sum(-1).clamp(min=1).float()


def log_odds(mean_logps: torch.Tensor) -> torch.Tensor:
    """ORPO's reference-free log-odds ℓ − log(1 − e^ℓ), with ℓ capped at MEAN_LOGP_MAX."""
    ell = mean_logps.float().clamp(max=MEAN_LOGP_MAX)
    return ell - torch.log(-torch.expm1(ell))


def odds_ratio_term(mean_logps: torch.Tensor, desirable: torch.Tensor) -> torch.Tensor:
    """−log σ(log_odds) for desirable completions, −log σ(−log_odds) for undesirable ones."""
    odds = log_odds(mean_logps)
    signed = torch.where(desirable.bool(), odds, -odds)
    return F.softplus(-signed)


def kl_estimate(
    kl_policy_logps: torch.Tensor,
    kl_reference_logps: torch.Tensor,
    mean_across_processes: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """KTO's z₀: mean log-ratio on mismatched (prompt, completion) pairs, detached and clamped at 0.

    Under data parallelism ``mean_across_processes`` averages each process's unclamped mean before the
    clamp, as TRL's KTOTrainer does (clamping first would bias z₀ upwards). The mean is taken in the
    log-probs' own dtype, as TRL takes it, so that with every component off the loss is TRL's.
    """
    kl = (kl_policy_logps - kl_reference_logps).mean().detach()
    if mean_across_processes is not None:
        kl = mean_across_processes(kl)
    return kl.clamp(min=0)


class _ClipGradNorm(torch.autograd.Function):
    """Identity forward; backward rescales the incoming gradient to an L2 norm of at most ``max_norm``."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, max_norm: float) -> torch.Tensor:
        ctx.max_norm = max_norm
        return x.view_as(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        norm = grad.float().norm()
        scale = (ctx.max_norm / (norm + 1e-12)).clamp(max=1.0)
        return grad * scale.to(grad.dtype), None


def clip_grad_norm(x: torch.Tensor, max_norm: float) -> torch.Tensor:
    """``x`` unchanged, but the gradient flowing back through it is clipped to norm ``max_norm``."""
    return _ClipGradNorm.apply(x, max_norm)


def enhanced_kto_losses(
    policy_logps: torch.Tensor,
    reference_logps: torch.Tensor,
    desirable: torch.Tensor,
    config: Params,
    *,
    kl: torch.Tensor | float,
    mean_logps: torch.Tensor | None = None,
    delta: torch.Tensor | float | None = None,
) -> EnhancedKTOLossOutput:
    """The per-example Enhanced KTO loss.

    policy_logps, reference_logps: summed completion log-probs, shape [batch] (any float dtype).
    desirable: bool labels, shape [batch]. kl: z₀ (a detached scalar). mean_logps: ℓ per example,
    needed when the odds-ratio term is on. delta: δ when the BCO shift is active, else None; the
    gradient through the shifted margin is then clipped to ``config.bco_shift_max_grad_norm``.
    """
    desirable = desirable.bool()
    logratios = policy_logps.float() - reference_logps.float()
    if delta is None:
        shifted = config.beta * (logratios - torch.as_tensor(kl, dtype=torch.float32, device=logratios.device))
    else:
        logratios = clip_grad_norm(logratios, config.bco_shift_max_grad_norm)
        shifted = config.beta * logratios - torch.as_tensor(delta, dtype=torch.float32, device=logratios.device)
    margins = torch.where(desirable, shifted, -shifted)

    if config.value_function:
        values = value_function(margins, config.value_alpha, config.loss_aversion, config.value_epsilon)
    else:
        values = margins
    probabilities = torch.sigmoid(values)
    if config.probability_weighting:
        gammas = torch.where(
            desirable,
            torch.tensor(config.gamma_desirable, device=values.device),
            torch.tensor(config.gamma_undesirable, device=values.device),
        )
        weighted = weighted_probability_from_logit(values, gammas)
    else:
        weighted = probabilities

    class_weights = torch.where(
        desirable,
        torch.tensor(config.desirable_weight, device=values.device),
        torch.tensor(config.undesirable_weight, device=values.device),
    )
    losses = class_weights * (1.0 - weighted)

    if config.odds_ratio:
        if mean_logps is None:
            raise ValueError("the odds-ratio term needs mean_logps (mean per-token log-probs of the completions)")
        odds_terms = odds_ratio_term(mean_logps, desirable)
        losses = losses + config.odds_ratio_weight * odds_terms
    else:
        odds_terms = torch.zeros_like(losses)

    return EnhancedKTOLossOutput(
        losses=losses,
        margins=margins,
        value_margins=values,
        probabilities=probabilities,
        weighted_probabilities=weighted,
        odds_ratio_terms=odds_terms,
    )
