"""The Enhanced KTO card partial: the loss's formulas, the components of the run, citations, plots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from test_card_records import realistic_record, write_record

from pipeline.citations import CITATIONS
from pipeline.config import load_config
from pipeline.methods.enhanced_kto import SPEC, Params
from pipeline.stages.card import render_card

FORMULAS = (
    "r = log π(y|x) − log π_ref(y|x)",
    "u = β(r − z₀)",
    "u = β(z₀ − r)",
    "v(u) = (|u| + ε)^α − ε^α for u ≥ 0",
    "v(u) = −λ·((|u| + ε)^α − ε^α) for u < 0",
    "w(p) = p^γ / (p^γ + (1 − p)^γ)^(1/γ)",
    "log_odds = ℓ − log(1 − e^ℓ)",
    "weight_y · (1 − w(p))",
)


def _render(make_config: Callable[..., str], project: Path, release: str, params: Params) -> str:
    record = realistic_record(release, method="enhanced_kto", method_params=params.model_dump())
    for i, entry in enumerate(record.training.log_history):
        entry.update({"ekto/margin": 0.01 * i, "ekto/value_margin": 0.02 * i, "ekto/weighted_p": 0.4 + 0.001 * i})
    # The config's method section must describe the same run as the record.
    name = make_config(release, {"method": None})
    path = project / "configs" / f"{name}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["method"] = params.model_dump()
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    layout = write_record(project, record)
    return render_card(load_config(name), layout).read_text(encoding="utf-8")


def test_card_documents_the_loss_and_default_components(make_config: Callable[..., str], project: Path) -> None:
    text = _render(make_config, project, "ekto-card", Params())
    assert "### Method: Enhanced KTO" in text
    for formula in FORMULAS:
        assert formula in text, formula
    assert "Value function: on (α = 0.88, λ = 2.25, ε = 0.001)" in text
    assert "Probability weighting: on (γ = 0.61 desirable, 0.69 undesirable)" in text
    assert "Odds-ratio term: on (weight 0.1)" in text
    assert "BCO shift: off" in text
    for key in SPEC.citations:
        assert CITATIONS[key].bibtex in text
    cited = ("(Ethayarajh et al., 2024)", "Tversky & Kahneman (1992)", "(Hong et al., 2024)", "(Jung et al., 2024)")
    assert all(citation in text for citation in cited)
    assert "plots/method_metrics.png" in text
    assert (project / "cards" / "ekto-card" / "plots" / "method_metrics.png").is_file()
    assert "{{" not in text and "{%" not in text


@pytest.mark.parametrize("bco_start", [0, 25])
def test_card_reflects_components_that_are_off_or_staged(
    make_config: Callable[..., str], project: Path, bco_start: int
) -> None:
    params = Params(
        value_function=False,
        probability_weighting=False,
        odds_ratio=False,
        bco_shift=True,
        bco_shift_start_step=bco_start,
        bco_shift_max_grad_norm=0.5,
    )
    text = _render(make_config, project, f"ekto-off-{bco_start}", params)
    assert "Value function: off (v(u) = u)." in text
    assert "Probability weighting: off (w(p) = p)." in text
    assert "Odds-ratio term: off." in text
    # the trainer applies delta from step N + 1 (tests/test_enhanced_kto_trainer.py); the card must say so
    expected = f"BCO shift: on after {bco_start} warm-up optimizer steps (from step {bco_start + 1} in the log), with"
    assert expected + " the gradient through the shifted margin " in text
    assert "clipped to norm 0.5" in text
