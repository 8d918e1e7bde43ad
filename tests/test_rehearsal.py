"""`pubctl release NAME --rehearse`: the shipped real configs, end to end, on Qwen3-shaped files offline.

The model files are tests/qwen3_fixture.py's stand-in for Qwen3's config.json and tokenizer (real widths,
vocabulary, special-token ids and chat template); the data are files in the exact schemas of the Hub
datasets the configs name (tests/hub_schemas.py). The refusals run before anything heavy is built.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hub_schemas import aya_command_r_dpo_rows, h4_ultrafeedback_rows, write_parquet
from qwen3_fixture import write_qwen3_files
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.layout import Layout
from pipeline.precision import computes_natively
from pipeline.results import read_results

runner = CliRunner()

# The smallest rehearsal that still runs every stage on the real shapes: one layer, one benchmark item.
SMALL = ["--layers", "1", "--rows", "12", "--max-length", "96"]


def _said(result: object) -> str:
    return " ".join(result.output.split())  # type: ignore[attr-defined]


@pytest.fixture
def qwen06(tmp_path: Path) -> Path:
    return write_qwen3_files(tmp_path / "Qwen3-0.6B", "0.6B")


@pytest.fixture
def qwen17(tmp_path: Path) -> Path:
    return write_qwen3_files(tmp_path / "Qwen3-1.7B", "1.7B")


def _rehearse(name: str, model_files: Path, data: Path, *extra: str) -> object:
    args = ["release", name, "--rehearse", "--offline", "--model-files", str(model_files), "--data", str(data)]
    return runner.invoke(app, [*args, *SMALL, *extra])


def _assert_real_release_untouched(project: Path, name: str) -> None:
    assert not (project / "cards" / name).exists()
    assert not (project / "runs" / name).exists()


# ---------------------------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_qwen3_0_6b_kto_rehearses_offline_on_ultrafeedback_rows(
    project: Path, qwen06: Path, tmp_path: Path, hub: object
) -> None:
    data = write_parquet(h4_ultrafeedback_rows(24), tmp_path / "train_prefs.parquet")
    result = _rehearse("qwen3-0.6b-kto", qwen06, data)
    assert result.exit_code == 0, result.output
    assert "rehearsal of qwen3-0.6b-kto passed" in _said(result)
    _assert_real_release_untouched(project, "qwen3-0.6b-kto")

    layout = Layout.for_release("qwen3-0.6b-kto-rehearsal", project)
    results = read_results(layout.results)
    rehearsal = results.rehearsal
    assert rehearsal is not None and rehearsal.of == "qwen3-0.6b-kto" and rehearsal.offline
    assert (rehearsal.layers, rehearsal.real_layers) == (1, 28)
    assert rehearsal.tasks == {
        "hellaswag": "demo_hellaswag",
        "truthfulqa_mc2": "demo_truthfulqa_mc2",
        "mmlu": "demo_mmlu",
    }
    changed = {change.field: (change.real, change.rehearsal) for change in rehearsal.changes}
    assert "method.beta" not in changed and "lora.target_modules" not in changed
    # bfloat16 where this machine computes it natively; an emulating CPU rehearses in float32 and says so.
    dtype = "bfloat16" if computes_natively("bfloat16") else "float32"
    assert changed.get("model.dtype", ("bfloat16", "bfloat16")) == ("bfloat16", dtype)

    # The real width and vocabulary: 1 layer of Qwen3-0.6B is its tied 151936 x 1024 embedding plus a layer.
    assert results.model is not None and results.model.dtype == dtype
    assert results.model.architecture == "Qwen3ForCausalLM"
    assert results.model.parameters == rehearsal.random_parameters > 151936 * 1024
    # The ultrafeedback rows were trained as conversations: the prompt split off the whole-conversation columns.
    assert results.training is not None
    dataset = results.training.datasets[0]
    assert dataset.conversational is True
    assert results.training.steps == 2 and results.training.epochs_completed > 0
    # The merged model keeps Qwen3's stop list and its chat template.
    generation = json.loads((layout.merged_model_dir / "generation_config.json").read_text(encoding="utf-8"))
    assert generation["eos_token_id"] == [151645, 151643]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(layout.merged_model_dir)
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"

    readme = layout.readme.read_text(encoding="utf-8")
    body = readme.split("\n---\n", 1)[1]
    assert body.lstrip().startswith("# REHEARSAL of Qwen3\\-0.6B Enhanced KTO")
    assert "**REHEARSAL — not a release.**" in body and "pubctl refuses to push it" in body
    assert "`hellaswag` as `demo_hellaswag`" in body
    assert json.loads(layout.push_plan.read_text(encoding="utf-8"))["dry_run"] is True

    # A real push of the rehearsal is refused by a gate that no waiver lifts, before any request.
    from pipeline.errors import CheckFailed
    from pipeline.stages import push

    config_file = layout.run_dir / "config" / "qwen3-0.6b-kto-rehearsal.yaml"
    config = load_config(str(config_file), project)
    hub.reset()  # type: ignore[attr-defined]
    with pytest.raises(CheckFailed, match="not_rehearsal"):
        push.run(config, layout)
    assert hub.requests == []  # type: ignore[attr-defined]
    waived = runner.invoke(app, ["check", str(config_file), "--allow", "not_rehearsal=it is fine"])
    assert waived.exit_code == 2 and "not_rehearsal cannot be waived" in _said(waived)

    # Nothing changed: a second rehearsal trains, merges, evaluates and renders nothing again (the refused
    # `check --allow` above forgot the check stamp, as any failed stage command does; the plan is always made).
    again = _rehearse("qwen3-0.6b-kto", qwen06, data)
    assert again.exit_code == 0, again.output
    for stage in ("train", "merge", "evaluate", "card"):
        assert f"{stage}: up to date" in _said(again)


@pytest.mark.slow
def test_qwen3_1_7b_arabic_cpo_rehearses_offline_on_aya_rows(project: Path, qwen17: Path, tmp_path: Path) -> None:
    data = write_parquet(aya_command_r_dpo_rows(24), tmp_path / "aya.parquet")
    result = _rehearse("qwen3-1.7b-arabic-cpo", qwen17, data)
    assert result.exit_code == 0, result.output
    _assert_real_release_untouched(project, "qwen3-1.7b-arabic-cpo")
    layout = Layout.for_release("qwen3-1.7b-arabic-cpo-rehearsal", project)
    results = read_results(layout.results)
    assert results.model is not None
    assert results.model.dtype == ("bfloat16" if computes_natively("bfloat16") else "float32")
    assert results.rehearsal is not None and results.rehearsal.real_layers == 28
    assert results.training is not None and results.training.method == "cpo"
    assert "nll_loss" in {key for entry in results.training.log_history for key in entry}
    # All seven projections of the config exist in Qwen3 and were adapted.
    adapter = json.loads((layout.adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    assert sorted(adapter["target_modules"]) == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    assert "REHEARSAL" in layout.readme.read_text(encoding="utf-8")
    # Preparing the rehearsal keeps datasets' and transformers' bars in its log, as the stages do theirs.
    assert "Generating train split" not in result.output and "Writing model shards" not in result.output


# ------------------------------------------------------------------------------------------------ refusals
def test_offline_without_model_files_names_the_option(project: Path) -> None:
    result = runner.invoke(app, ["release", "qwen3-0.6b-kto", "--rehearse", "--offline"])
    assert result.exit_code == 2, result.output
    assert "give its config.json and tokenizer files with --model-files DIR" in _said(result)
    assert "hf download Qwen/Qwen3-0.6B" in _said(result)
    assert not (project / "runs" / "qwen3-0.6b-kto-rehearsal" / "base").exists()


def test_offline_without_data_names_the_option(project: Path, qwen06: Path) -> None:
    args = ["release", "qwen3-0.6b-kto", "--rehearse", "--offline", "--model-files", str(qwen06), "--layers", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "is a Hub dataset and the rehearsal is offline: give a local file in its schema with --data" in _said(result)


def test_rehearsal_options_need_rehearse(project: Path) -> None:
    result = runner.invoke(app, ["release", "qwen3-0.6b-kto", "--layers", "3", "--offline"])
    assert result.exit_code == 2
    assert "--layers, --offline: rehearsal options; add --rehearse" in _said(result)


def _variant(project: Path, name: str, base: str, edit: dict[str, dict[str, object]]) -> str:
    data = yaml.safe_load((project / "configs" / f"{base}.yaml").read_text(encoding="utf-8"))
    for section, values in edit.items():
        data[section].update(values)
    (project / "configs" / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return name


def test_float16_is_refused_before_the_base_is_built(project: Path, qwen06: Path, tmp_path: Path) -> None:
    name = _variant(project, "fp16", "qwen3-0.6b-kto", {"model": {"dtype": "float16"}})
    data = write_parquet(h4_ultrafeedback_rows(8), tmp_path / "d.parquet")
    result = _rehearse(name, qwen06, data)
    assert result.exit_code == 2, result.output
    assert "model.dtype is float16, but this machine has no CUDA GPU" in _said(result)
    assert not (project / "runs" / f"{name}-rehearsal" / "base").exists()


def test_an_unknown_benchmark_is_refused_before_the_base_is_built(project: Path, qwen06: Path, tmp_path: Path) -> None:
    tasks = [{"name": "hellaswagg", "num_fewshot": 10, "metric": "acc_norm"}]
    name = _variant(project, "typo", "qwen3-0.6b-kto", {"evaluation": {"tasks": tasks}})
    data = write_parquet(h4_ultrafeedback_rows(8), tmp_path / "d.parquet")
    result = _rehearse(name, qwen06, data)
    assert result.exit_code == 2, result.output
    assert "unknown lm-eval task 'hellaswagg'" in _said(result) and "Did you mean hellaswag" in _said(result)
    assert not (project / "runs" / f"{name}-rehearsal" / "base").exists()


def test_a_target_module_qwen3_lacks_is_refused_before_training(project: Path, qwen06: Path, tmp_path: Path) -> None:
    name = _variant(project, "lora", "qwen3-0.6b-kto", {"lora": {"target_modules": ["q_proj", "c_attn"]}})
    data = write_parquet(h4_ultrafeedback_rows(8), tmp_path / "d.parquet")
    result = _rehearse(name, qwen06, data)
    assert result.exit_code == 2, result.output
    assert "lora.target_modules: 'c_attn' not in Qwen3ForCausalLM" in _said(result)
    assert not list((project / "runs" / f"{name}-rehearsal").glob("train/checkpoint-*"))


def test_a_schema_pubctl_cannot_map_is_refused_before_training(project: Path, qwen06: Path, tmp_path: Path) -> None:
    rows = [{"question": f"Q{i}?", "response_j": "good", "response_k": "bad"} for i in range(8)]
    data = write_parquet(rows, tmp_path / "se.parquet")
    result = _rehearse("qwen3-0.6b-kto", qwen06, data)
    assert result.exit_code == 2, result.output
    said = _said(result)
    assert "question" in said and "response_j" in said and "data.columns" in said
    assert not list((project / "runs" / "qwen3-0.6b-kto-rehearsal").glob("train/checkpoint-*"))


# ----------------------------------------------------------------------------------------- from the Hub
def test_model_files_come_from_the_hub_without_weights_at_the_pinned_commit(
    project: Path, qwen06: Path, hub: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Online, only the small files are downloaded, at the config's revision, and the commit is recorded."""
    import huggingface_hub.constants

    from pipeline.rehearsal.model_files import fetch_model_files
    from pipeline.rehearsal.options import RehearsalOptions

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    files = {path.name: path.read_bytes() for path in qwen06.iterdir()}
    files["model.safetensors"] = b"\0" * 4096  # weights the rehearsal must not download
    from huggingface_hub import HfApi

    HfApi().create_repo("test-org/Qwen3-0.6B")
    commit = hub.commit_directly("test-org/Qwen3-0.6B", "main", files, "upload")  # type: ignore[attr-defined]
    hub.commit_directly("test-org/Qwen3-0.6B", "main", {"config.json": b"{}"}, "a later, broken config")  # type: ignore[attr-defined]
    name = _variant(project, "pinned", "qwen3-0.6b-kto", {"model": {"base_model": "test-org/Qwen3-0.6B"}})
    data = yaml.safe_load((project / "configs" / f"{name}.yaml").read_text(encoding="utf-8"))
    data["model"]["revision"] = commit
    (project / "configs" / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    config = load_config(name, project)

    fetched = fetch_model_files(config, Layout.for_release(name, project), RehearsalOptions())
    assert fetched.source == "hub" and fetched.revision == commit
    names = sorted(path.name for path in fetched.folder.iterdir())
    assert "model.safetensors" not in names and "tokenizer.json" in names
    assert json.loads((fetched.folder / "config.json").read_text(encoding="utf-8"))["hidden_size"] == 1024


def test_a_real_release_named_like_a_rehearsal_is_never_overwritten(project: Path) -> None:
    from pipeline.results import Results, write_results

    layout = Layout.for_release("demo-rehearsal", project)
    write_results(layout.results, Results(release="demo-rehearsal"))
    before = layout.results.read_bytes()
    result = runner.invoke(app, ["release", "demo", "--rehearse"])
    assert result.exit_code == 2, result.output
    assert "not of a rehearsal: rehearsing would overwrite it" in _said(result)
    assert layout.results.read_bytes() == before


def test_a_generated_rehearsal_config_is_refused_a_push_without_its_record_section(
    project: Path, tiny_model_path: Path
) -> None:
    """Deleting the record's rehearsal section does not make a rehearsal publishable: its config says what it is."""
    from hub_fixtures import build_release

    from pipeline.checks import run_checks

    layout = Layout.for_release("demo-rehearsal", project)
    generated = layout.run_dir / "config" / "demo-rehearsal.yaml"
    generated.parent.mkdir(parents=True)
    generated.write_bytes((project / "configs" / "demo.yaml").read_bytes())
    config = load_config(str(generated), project)
    build_release(config, layout, tiny_model_path)
    assert read_results(layout.results).rehearsal is None
    report = run_checks(config, layout, for_push=True)
    assert "not_rehearsal" in {item.id for item in report.failures}
