"""Enhanced KTO through pubctl's train stage (issue 4, property 6): the demo config end to end,
and a run with each component switched on alone."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.methods.enhanced_kto import COMPONENT_METRICS

COMPONENTS = ("value_function", "probability_weighting", "odds_ratio", "bco_shift")
COMPONENT_KEY = {
    "value_function": "ekto/value_margin",
    "probability_weighting": "ekto/weighted_p",
    "odds_ratio": "ekto/odds_ratio",
    "bco_shift": "ekto/delta",
}


def _train(name: str, project: Path) -> dict:
    from pipeline.config import load_config
    from pipeline.layout import Layout
    from pipeline.release import run_stage

    config = load_config(name)
    layout = Layout.for_release(config.name)
    run_stage("train", config, layout)
    assert (layout.adapter_dir / "adapter_model.safetensors").is_file()
    return json.loads(layout.results.read_text(encoding="utf-8"))["training"]


@pytest.mark.slow
def test_demo_config_trains_with_enhanced_kto(make_config: Callable[..., str], project: Path) -> None:
    # The demo as shipped, shortened to 8 steps (64 samples, above its min_samples of 50).
    name = make_config("ekto-demo", {"training": {"max_steps": 8, "save_steps": 8}})
    training = _train(name, project)
    assert training["method"] == "enhanced_kto"
    assert training["steps"] == 8
    assert training["method_params"]["value_function"] is True
    steps = [entry for entry in training["log_history"] if "loss" in entry]
    assert len(steps) == 8
    assert all(math.isfinite(entry["loss"]) for entry in steps)
    # The components on by default are logged at every step, δ is not (the BCO shift is off).
    for key in ("ekto/margin", "ekto/value_margin", "ekto/weighted_p", "ekto/odds_ratio"):
        assert all(math.isfinite(entry[key]) for entry in steps), key
    assert not any("ekto/delta" in entry for entry in steps)
    # Training moved the policy away from the reference: the implicit rewards are no longer all zero.
    assert any(abs(entry["rewards/chosen"]) > 0 for entry in steps[1:])


@pytest.mark.slow
@pytest.mark.parametrize("component", COMPONENTS)
def test_each_component_alone_trains(make_config: Callable[..., str], project: Path, component: str) -> None:
    alone = {flag: flag == component for flag in COMPONENTS}
    name = make_config(
        f"ekto-{component}",
        {
            "method": {"name": "enhanced_kto", **alone, "bco_shift_start_step": 1},
            "training": {"max_steps": 3, "save_steps": 3, "gradient_accumulation_steps": 1},
            "checks": {"min_samples": 12},
        },
    )
    training = _train(name, project)
    steps = [entry for entry in training["log_history"] if "loss" in entry]
    assert len(steps) == 3 and all(math.isfinite(entry["loss"]) for entry in steps)
    logged = {key for entry in steps for key in entry if key in COMPONENT_METRICS}
    assert logged == {"ekto/margin", COMPONENT_KEY[component]}
    if component == "bco_shift":
        assert [entry["ekto/bco_active"] for entry in steps] == [0.0, 1.0, 1.0]
