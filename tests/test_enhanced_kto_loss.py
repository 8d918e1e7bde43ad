"""Enhanced KTO loss math: hand-computed values, monotonicity, symmetry, finite gradients (issue 4, 2-3)."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.methods.enhanced_kto_loss import (
    P_MIN,
    EnhancedKTOLossConfig,
    clip_grad_norm,
    enhanced_kto_losses,
    kl_estimate,
    log_odds,
    mean_token_logps,
    odds_ratio_term,
    probability_weighting,
    value_function,
    weighted_probability_from_logit,
)

ALL_OFF = EnhancedKTOLossConfig(value_function=False, probability_weighting=False, odds_ratio=False)


def tk_weight(p: float, gamma: float) -> float:
    """Tversky & Kahneman's w(p), straight from the formula in float64."""
    return p**gamma / (p**gamma + (1 - p) ** gamma) ** (1 / gamma)


@pytest.mark.parametrize(("p", "expected"), [(0.1, 0.186), (0.5, 0.421), (0.9, 0.712)])
def test_weighting_matches_published_values(p: float, expected: float) -> None:
    got = probability_weighting(torch.tensor([p]), 0.61).item()
    assert got == pytest.approx(expected, abs=5e-4)
    assert got == pytest.approx(tk_weight(p, 0.61), rel=1e-5)


@pytest.mark.parametrize("gamma", [0.61, 0.69, 1.0])
def test_weighting_matches_formula_and_is_monotone(gamma: float) -> None:
    p = torch.linspace(0.001, 0.999, 999, dtype=torch.float64)
    w = probability_weighting(p, gamma).double()
    expected = torch.tensor([tk_weight(x, gamma) for x in p.tolist()], dtype=torch.float64)
    torch.testing.assert_close(w, expected, rtol=1e-5, atol=1e-7)
    assert bool((w.diff() > 0).all())
    if gamma == 1.0:  # γ = 1 is the identity: no weighting
        torch.testing.assert_close(w, p, rtol=1e-5, atol=1e-7)


def test_config_accepts_only_gammas_whose_weighting_is_monotone() -> None:
    from pydantic import ValidationError

    from pipeline.methods.enhanced_kto import GAMMA_MIN, Params

    p = torch.linspace(1e-4, 1 - 1e-4, 99_999, dtype=torch.float64).tolist()
    w_min = torch.tensor([tk_weight(x, GAMMA_MIN) for x in p], dtype=torch.float64)
    assert bool((w_min.diff() > 0).all())
    # below the bound w already turns down near p = 0
    w_low = torch.tensor([tk_weight(x, 0.25) for x in p], dtype=torch.float64)
    assert not bool((w_low.diff() > 0).all())
    for field in ("gamma_desirable", "gamma_undesirable"):
        with pytest.raises(ValidationError, match=field):
            Params(**{field: 0.25})


def test_weighting_from_logit_equals_weighting_of_sigmoid() -> None:
    v = torch.linspace(-12, 12, 241)
    torch.testing.assert_close(
        weighted_probability_from_logit(v, 0.69), probability_weighting(torch.sigmoid(v.double()), 0.69).float()
    )


def test_weighting_clamps_extreme_probabilities() -> None:
    w = weighted_probability_from_logit(torch.tensor([-1000.0, 1000.0]), 0.61)
    assert w[0].item() == pytest.approx(tk_weight(P_MIN, 0.61), rel=1e-4)
    assert w[1].item() == pytest.approx(tk_weight(1 - P_MIN, 0.61), rel=1e-4)


def test_value_function_hand_values() -> None:
    alpha, lam, eps = 0.88, 2.25, 1e-3
    u = torch.tensor([0.0, 1.0, 2.5, -1.0, -2.5])
    v = value_function(u, alpha, lam, eps)
    gain = [(abs(x) + eps) ** alpha - eps**alpha for x in u.tolist()]
    expected = [g if x >= 0 else -lam * g for x, g in zip(u.tolist(), gain, strict=True)]
    torch.testing.assert_close(v, torch.tensor(expected))
    assert v[0].item() == 0.0
    # ε barely changes v away from 0: v(1) is close to the textbook 1^0.88 = 1.
    assert v[1].item() == pytest.approx(1.0, abs=2e-3)


def test_value_function_monotone_and_loss_averse() -> None:
    x = torch.linspace(0, 50, 1001)
    u = torch.cat([-x.flip(0), x[1:]])
    v = value_function(u, 0.88, 2.25, 1e-3)
    assert bool((v.diff() > 0).all())
    torch.testing.assert_close(value_function(-x, 0.88, 2.25, 1e-3), -2.25 * value_function(x, 0.88, 2.25, 1e-3))


def test_value_function_slope_is_finite_and_nonzero_at_zero() -> None:
    # A fresh LoRA adapter starts at π = π_ref, so u = 0 exactly: a zero slope there would stall training.
    u = torch.zeros(1, requires_grad=True)
    value_function(u, 0.88, 2.25, 1e-3).sum().backward()
    assert u.grad.item() == pytest.approx(0.88 * 1e-3 ** (0.88 - 1), rel=1e-4)
    left = torch.tensor([-1e-4], requires_grad=True)
    value_function(left, 0.88, 2.25, 1e-3).sum().backward()
    assert torch.isfinite(left.grad).all()
    assert left.grad.item() == pytest.approx(2.25 * 0.88 * (1e-4 + 1e-3) ** (0.88 - 1), rel=1e-4)


def test_odds_ratio_matches_orpo() -> None:
    ell = torch.tensor([-0.05, -0.7, -3.0])
    p = ell.double().exp()
    torch.testing.assert_close(log_odds(ell).double(), (p / (1 - p)).log(), rtol=1e-5, atol=1e-6)
    desirable = torch.tensor([True, False, True])
    odds = (p / (1 - p)).log()
    expected = torch.where(desirable, -torch.nn.functional.logsigmoid(odds), -torch.nn.functional.logsigmoid(-odds))
    torch.testing.assert_close(odds_ratio_term(ell, desirable).double(), expected, rtol=1e-5, atol=1e-6)


def test_mean_token_logps_ignores_padding() -> None:
    per_token = torch.tensor([[-1.0, -2.0, -9.0], [-4.0, -9.0, -9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    torch.testing.assert_close(mean_token_logps(per_token, mask), torch.tensor([-1.5, -4.0]))


def test_kl_estimate_is_clamped_and_detached() -> None:
    policy = torch.tensor([-1.0, -2.0], requires_grad=True)
    assert kl_estimate(policy, torch.tensor([0.0, 0.0])).item() == 0.0
    z0 = kl_estimate(policy, torch.tensor([-3.0, -3.0]))
    assert z0.item() == pytest.approx(1.5)
    assert not z0.requires_grad


def test_kl_estimate_averages_across_processes_before_clamping() -> None:
    # this process's mean is 1.5 and another's -2.5: TRL averages to -0.5 and then clamps to 0
    other = torch.tensor(-2.5)
    policy, reference = torch.tensor([-1.0, -2.0]), torch.tensor([-3.0, -3.0])
    assert kl_estimate(policy, reference, lambda kl: torch.stack([kl, other]).mean()).item() == 0.0
    other = torch.tensor(0.5)
    assert kl_estimate(policy, reference, lambda kl: torch.stack([kl, other]).mean()).item() == pytest.approx(1.0)


def test_all_components_off_is_kto() -> None:
    policy = torch.tensor([-10.0, -12.0, -9.0, -20.0])
    reference = torch.tensor([-11.0, -11.5, -9.5, -18.0])
    desirable = torch.tensor([True, False, True, False])
    kl = torch.tensor(0.3)
    config = EnhancedKTOLossConfig(
        beta=0.2,
        desirable_weight=1.5,
        undesirable_weight=0.7,
        value_function=False,
        probability_weighting=False,
        odds_ratio=False,
    )
    out = enhanced_kto_losses(policy, reference, desirable, config, kl=kl)
    r = policy - reference
    expected = torch.where(
        desirable, 1.5 * (1 - torch.sigmoid(0.2 * (r - kl))), 0.7 * (1 - torch.sigmoid(0.2 * (kl - r)))
    )
    torch.testing.assert_close(out.losses, expected)


def test_components_compose_as_documented() -> None:
    policy = torch.tensor([-10.0, -12.0])
    reference = torch.tensor([-11.0, -11.5])
    desirable = torch.tensor([True, False])
    mean_logps = torch.tensor([-1.2, -0.4])
    config = EnhancedKTOLossConfig()
    out = enhanced_kto_losses(policy, reference, desirable, config, kl=0.1, mean_logps=mean_logps)
    u = torch.tensor([0.1 * (1.0 - 0.1), 0.1 * (0.1 - (-0.5))])
    v = value_function(u, 0.88, 2.25, 1e-3)
    w = torch.stack([weighted_probability_from_logit(v[:1], 0.61)[0], weighted_probability_from_logit(v[1:], 0.69)[0]])
    expected = (1 - w) + 0.1 * odds_ratio_term(mean_logps, desirable)
    torch.testing.assert_close(out.margins, u)
    torch.testing.assert_close(out.value_margins, v)
    torch.testing.assert_close(out.weighted_probabilities, w)
    torch.testing.assert_close(out.losses, expected)


def test_odds_ratio_needs_mean_logps() -> None:
    with pytest.raises(ValueError, match="mean_logps"):
        enhanced_kto_losses(torch.zeros(2), torch.zeros(2), torch.tensor([True, False]), EnhancedKTOLossConfig(), kl=0)


def test_bco_shift_uses_delta_on_the_reward_scale() -> None:
    policy = torch.tensor([-10.0, -12.0])
    reference = torch.tensor([-11.0, -11.5])
    desirable = torch.tensor([True, False])
    config = EnhancedKTOLossConfig(value_function=False, probability_weighting=False, odds_ratio=False, bco_shift=True)
    out = enhanced_kto_losses(policy, reference, desirable, config, kl=5.0, delta=0.02)
    rewards = 0.1 * (policy - reference)
    torch.testing.assert_close(out.margins, torch.stack([rewards[0] - 0.02, 0.02 - rewards[1]]))


def test_clip_grad_norm_bounds_backward_only() -> None:
    x = torch.tensor([3.0, 4.0], requires_grad=True)
    y = clip_grad_norm(x, 1.0)
    torch.testing.assert_close(y, x.detach())
    (y * torch.tensor([30.0, 40.0])).sum().backward()
    assert x.grad.norm().item() == pytest.approx(1.0, rel=1e-5)
    torch.testing.assert_close(x.grad / x.grad.norm(), torch.tensor([0.6, 0.8]))
    small = torch.tensor([1.0], requires_grad=True)
    (clip_grad_norm(small, 1.0) * 0.5).sum().backward()
    assert small.grad.item() == pytest.approx(0.5)


def test_bco_shift_gradient_is_clipped() -> None:
    policy = torch.tensor([-10.0, -12.0, -30.0, -1.0], requires_grad=True)
    reference = torch.tensor([-11.0, -10.0, -30.5, -4.0])
    desirable = torch.tensor([True, False, True, False])
    # Only the shifted KTO part goes through the clip; the odds-ratio term is off here for a clean bound.
    unclipped = EnhancedKTOLossConfig(bco_shift=True, bco_shift_max_grad_norm=1e9, beta=1.0, odds_ratio=False)
    loss = enhanced_kto_losses(policy, reference, desirable, unclipped, kl=0.0, delta=0.5).losses.mean()
    (full_grad,) = torch.autograd.grad(loss, policy)
    assert full_grad.norm().item() > 1e-2
    clipped = EnhancedKTOLossConfig(bco_shift=True, bco_shift_max_grad_norm=1e-3, beta=1.0, odds_ratio=False)
    enhanced_kto_losses(policy, reference, desirable, clipped, kl=0.0, delta=0.5).losses.mean().backward()
    assert policy.grad.norm().item() == pytest.approx(1e-3, rel=1e-4)
    # Clipping rescales, it does not change the direction.
    torch.testing.assert_close(policy.grad / policy.grad.norm(), full_grad / full_grad.norm())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("bco", [False, True])
def test_gradients_finite_for_margins_minus_50_to_50(dtype: torch.dtype, bco: bool) -> None:
    # β = 1 and z₀ = 0 make the margin u = ±r, so r spans u ∈ [−50, 50] for both labels.
    r = torch.linspace(-50, 50, 201)
    policy = r.to(dtype).requires_grad_(True)
    reference = torch.zeros(201, dtype=dtype)
    desirable = torch.arange(201) % 2 == 0
    mean_logps = torch.linspace(-30, 0, 201).to(dtype).requires_grad_(True)
    config = EnhancedKTOLossConfig(beta=1.0, bco_shift=bco)
    out = enhanced_kto_losses(
        policy, reference, desirable, config, kl=0.0, mean_logps=mean_logps, delta=0.0 if bco else None
    )
    assert out.margins.abs().max().item() == pytest.approx(50.0)
    assert out.losses.dtype == torch.float32
    assert torch.isfinite(out.losses).all()
    out.losses.mean().backward()
    assert policy.grad.dtype == dtype
    assert torch.isfinite(policy.grad).all()
    assert torch.isfinite(mean_logps.grad).all()
    # Away from saturation the loss still teaches: small margins get a non-zero gradient.
    assert (policy.grad.float()[95:106].abs() > 0).all()


def test_loss_decreases_with_margin() -> None:
    u = torch.linspace(-20, 20, 401)
    config = EnhancedKTOLossConfig(beta=1.0, odds_ratio=False)
    for label in (True, False):
        desirable = torch.full((401,), label)
        policy = u if label else -u  # margin u for both labels
        out = enhanced_kto_losses(policy, torch.zeros(401), desirable, config, kl=0.0)
        assert bool((out.losses.diff() <= 0).all())
        assert math.isclose(out.margins[200].item(), 0.0, abs_tol=1e-6)
