"""The hardware a config's dtype needs: bf16 trains on a CPU, fp16 without CUDA is refused before any loading."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.layout import Layout

runner = CliRunner()

TINY_RUN = {
    "data": {"eval_fraction": None, "max_samples": 16},
    "training": {
        "max_steps": 2,
        "per_device_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "max_length": 64,
        "max_prompt_length": 32,
        "logging_steps": 1,
        "save_steps": 100,
    },
    "checks": {"min_samples": 1},
}


def _forbid_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any weight or tokenizer load fails the test: the refusal must come first."""
    import transformers

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model or tokenizer was loaded before the dtype was checked")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", refuse)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU path")
@pytest.mark.slow
def test_bfloat16_config_trains_and_merges_on_a_cpu(
    make_config: Callable[..., str], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.precision import computes_natively
    from pipeline.release import run_stage

    name = make_config("bf16", {**TINY_RUN, "model": {"dtype": "bfloat16"}})
    config, layout = load_config(name, project), Layout.for_release(name, project)
    record = run_stage("train", config, layout).sections["training"]
    warned = "this CPU has no native bfloat16" in " ".join(capsys.readouterr().err.split())
    assert warned == (not computes_natively("bfloat16"))
    assert record.steps == 2
    assert record.hyperparameters.dtype == "bfloat16"
    assert record.final_loss is not None
    run_stage("merge", config, layout)
    shards = sorted(layout.merged_model_dir.glob("*.safetensors"))
    with safe_open(str(shards[0]), "pt") as handle:
        dtypes = {handle.get_slice(key).get_dtype() for key in handle.keys()}  # noqa: SIM118 - not a dict
    assert dtypes == {"BF16"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU path")
def test_float16_without_cuda_is_refused_before_anything_loads(
    make_config: Callable[..., str], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forbid_loading(monkeypatch)
    name = make_config("fp16", {**TINY_RUN, "model": {"dtype": "float16"}})
    result = runner.invoke(app, ["train", name])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "model.dtype is float16, but this machine has no CUDA GPU" in message
    assert "Set model.dtype: bfloat16" in message
    assert "Traceback" not in result.output
    assert not Layout.for_release(name, project).train_dir.exists()


def test_a_target_module_missing_from_the_architecture_is_refused_before_training(
    make_config: Callable[..., str], project: Path
) -> None:
    name = make_config("lora", {**TINY_RUN, "lora": {"target_modules": ["q_proj", "qkv_proj"]}})
    result = runner.invoke(app, ["train", name])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "lora.target_modules: 'qkv_proj' not in Qwen3ForCausalLM" in message
    assert "down_proj, gate_proj, k_proj, lm_head, o_proj, q_proj, up_proj, v_proj" in message
    assert not Layout.for_release(name, project).train_dir.exists()
