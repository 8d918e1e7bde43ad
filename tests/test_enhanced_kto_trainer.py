"""EnhancedKTOTrainer on the tiny Qwen3: parity with TRL's KTOTrainer, logged components, δ across resume.

Issue 4, properties 1, 4 and 5. The trainers are built directly (no train stage) on a few bundled
preference pairs unpaired with TRL's helper.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from pipeline.demo.tiny_model import DATA_DIR

ALL_OFF = {"value_function": False, "probability_weighting": False, "odds_ratio": False}


def _dataset(rows: int = 8) -> Any:
    from datasets import Dataset
    from trl import maybe_unpair_preference_dataset

    lines = (DATA_DIR / "preferences.jsonl").read_text(encoding="utf-8").splitlines()[: rows // 2]
    pairs = [json.loads(line) for line in lines]
    paired = Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])
    # Unpairing puts all chosen rows first; interleave them so every batch holds both labels.
    unpaired = maybe_unpair_preference_dataset(paired)
    half = len(unpaired) // 2
    return unpaired.select([i for pair in zip(range(half), range(half, 2 * half), strict=True) for i in pair])


def _args(config_class: type, output_dir: Path, **kwargs: Any) -> Any:
    base = {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": 4,
        "max_length": 64,
        "learning_rate": 1e-2,
        "logging_steps": 1,
        "report_to": [],
        "save_strategy": "no",
        "use_cpu": True,
        "seed": 7,
        "dataset_num_proc": None,
        "disable_tqdm": True,
    }
    base.update(kwargs)
    return config_class(**base)


def _trainer(
    kind: str, tiny_model_path: Path, output_dir: Path, rows: int = 8, dtype: torch.dtype = torch.float32, **kwargs: Any
) -> Any:
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import KTOConfig, KTOTrainer

    from pipeline.methods.enhanced_kto_trainer import EnhancedKTOConfig, EnhancedKTOTrainer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    peft_config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer_class, config_class = (KTOTrainer, KTOConfig) if kind == "kto" else (EnhancedKTOTrainer, EnhancedKTOConfig)
    return trainer_class(
        model=model,
        args=_args(config_class, output_dir, **kwargs),
        train_dataset=_dataset(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )


def _perturb_adapter(trainer: Any) -> None:
    """Give LoRA B non-zero values (fresh adapters start at π = π_ref, where every loss is 1 − σ(0))."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in sorted(trainer.model.named_parameters()):
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)


def _first_batch_loss(trainer: Any) -> tuple[torch.Tensor, dict[str, float]]:
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, batch)
    metrics = {key: values[-1] for key, values in trainer._metrics["train"].items()}
    return loss, metrics


def _lora_grads(trainer: Any) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}


def test_all_components_off_equals_trl_kto(tiny_model_path: Path, tmp_path: Path) -> None:
    kwargs = {"beta": 0.3, "desirable_weight": 1.3, "undesirable_weight": 0.8}
    kto = _trainer("kto", tiny_model_path, tmp_path / "kto", **kwargs)
    ekto = _trainer("ekto", tiny_model_path, tmp_path / "ekto", **kwargs, **ALL_OFF)
    for trainer in (kto, ekto):
        _perturb_adapter(trainer)

    kto_loss, kto_metrics = _first_batch_loss(kto)
    ekto_loss, ekto_metrics = _first_batch_loss(ekto)
    assert kto_metrics["kl"] > 0  # the KL estimate is exercised, not clamped away
    assert abs(kto_metrics["rewards/chosen"]) > 1e-3
    assert torch.isfinite(kto_loss)
    assert abs(ekto_loss.item() - kto_loss.item()) <= 1e-6
    kto_loss.backward()
    ekto_loss.backward()
    kto_grads, ekto_grads = _lora_grads(kto), _lora_grads(ekto)
    assert kto_grads.keys() == ekto_grads.keys() and kto_grads
    for name, grad in kto_grads.items():
        torch.testing.assert_close(ekto_grads[name], grad, rtol=1e-5, atol=1e-7)
    # TRL's metrics are logged alike; Enhanced KTO only adds its own ekto/* keys.
    assert set(kto_metrics) <= set(ekto_metrics)
    for key, value in kto_metrics.items():
        assert ekto_metrics[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key


def test_default_components_change_the_loss_and_are_logged(tiny_model_path: Path, tmp_path: Path) -> None:
    kto = _trainer("kto", tiny_model_path, tmp_path / "kto")
    ekto = _trainer("ekto", tiny_model_path, tmp_path / "ekto")
    for trainer in (kto, ekto):
        _perturb_adapter(trainer)
    kto_loss, _ = _first_batch_loss(kto)
    ekto_loss, metrics = _first_batch_loss(ekto)
    assert torch.isfinite(ekto_loss)
    assert abs(ekto_loss.item() - kto_loss.item()) > 1e-4
    for key in ("ekto/margin", "ekto/value_margin", "ekto/weighted_p", "ekto/odds_ratio"):
        assert key in metrics and metrics[key] == metrics[key]  # present and not NaN
    assert 0 < metrics["ekto/weighted_p"] < 1
    assert metrics["ekto/odds_ratio"] > 0
    assert "ekto/delta" not in metrics  # the BCO shift is off by default


def test_bfloat16_model_trains_with_finite_gradients(tiny_model_path: Path, tmp_path: Path) -> None:
    trainer = _trainer("ekto", tiny_model_path, tmp_path / "bf16", dtype=torch.bfloat16, bf16=True)
    _perturb_adapter(trainer)
    loss, metrics = _first_batch_loss(trainer)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    grads = _lora_grads(trainer)
    assert grads and all(torch.isfinite(grad).all() for grad in grads.values())
    assert any(grad.abs().sum() > 0 for grad in grads.values())
    assert all(value == value for value in metrics.values())  # no NaN among the logged metrics


def test_trainer_rejects_a_plain_kto_config(tiny_model_path: Path, tmp_path: Path) -> None:
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import KTOConfig

    from pipeline.methods.enhanced_kto_trainer import EnhancedKTOConfig, EnhancedKTOTrainer

    with pytest.raises(TypeError, match="EnhancedKTOConfig"):
        EnhancedKTOTrainer(
            model=AutoModelForCausalLM.from_pretrained(tiny_model_path),
            args=_args(KTOConfig, tmp_path),
            train_dataset=_dataset(),
            processing_class=AutoTokenizer.from_pretrained(tiny_model_path),
            peft_config=LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"),
        )
    with pytest.raises(ValueError, match="loss_type='kto'"):
        _args(EnhancedKTOConfig, tmp_path, loss_type="apo_zero_unpaired")


@pytest.mark.slow
@pytest.mark.parametrize("restore_callbacks", [False, True])
def test_delta_is_logged_saved_and_restored_on_resume(
    tiny_model_path: Path, tmp_path: Path, restore_callbacks: bool
) -> None:
    # transformers restores stateful callbacks only when asked to; δ must come back either way.
    out = tmp_path / "run"
    common = {
        "restore_callback_states_from_checkpoint": restore_callbacks,
        "bco_shift": True,
        "bco_shift_start_step": 2,
        "max_steps": 4,
        "save_strategy": "steps",
        "save_steps": 2,
        "per_device_train_batch_size": 2,
    }
    first = _trainer("ekto", tiny_model_path, out, rows=8, **common)
    first.train()
    history = first.state.log_history
    steps = [entry for entry in history if "loss" in entry]
    assert len(steps) == 4
    assert all("ekto/delta" in entry and "ekto/value_margin" in entry for entry in steps)
    # The shift waits for its warm-up: inactive before bco_shift_start_step, active from it on.
    assert [entry["ekto/bco_active"] for entry in steps] == [0.0, 0.0, 1.0, 1.0]
    final_delta = first.bco_state.mean
    assert final_delta == pytest.approx(steps[-1]["ekto/delta"])

    checkpoint = out / "checkpoint-2"
    saved = json.loads((checkpoint / "trainer_state.json").read_text())["stateful_callbacks"]["BCOShiftState"]
    assert saved["attributes"]["count"] == 2 * 2  # two steps of two examples
    assert saved["attributes"]["mean"] == pytest.approx(steps[1]["ekto/delta"])
    assert saved["attributes"]["mean"] != 0.0

    # Resume from step 2 in a fresh trainer: δ continues from the checkpoint, not from zero.
    resumed = _trainer("ekto", tiny_model_path, out, rows=8, **common)
    assert resumed.bco_state.count == 0
    resumed.train(resume_from_checkpoint=str(checkpoint))
    resumed_steps = [entry for entry in resumed.state.log_history if "loss" in entry]
    assert resumed.bco_state.count == 4 * 2
    assert resumed.bco_state.mean == pytest.approx(final_delta, rel=1e-5, abs=1e-8)
    for original, again in zip(steps[2:], resumed_steps[2:], strict=True):
        assert again["ekto/delta"] == pytest.approx(original["ekto/delta"], rel=1e-5, abs=1e-8)
        assert again["loss"] == pytest.approx(original["loss"], rel=1e-4, abs=1e-6)


def test_every_config_parameter_reaches_the_trainer_with_the_same_default() -> None:
    import dataclasses

    from pipeline.methods.enhanced_kto import Params
    from pipeline.methods.enhanced_kto_trainer import EnhancedKTOConfig

    trainer_defaults = {f.name: f.default for f in dataclasses.fields(EnhancedKTOConfig)}
    params = Params().model_dump(exclude={"name"})
    assert params.keys() <= trainer_defaults.keys()
    assert {key: trainer_defaults[key] for key in params} == params
