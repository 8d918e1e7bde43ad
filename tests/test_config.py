"""The release config: shipped configs load, and every kind of bad input is one clear error with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import config_schema, load_config
from pipeline.errors import ConfigError

runner = CliRunner()


def write(project: Path, text: str, name: str = "bad") -> str:
    (project / "configs" / f"{name}.yaml").write_text(text, encoding="utf-8")
    return name


def config_error(name: str) -> str:
    """Load ``name`` expecting a ConfigError; also check the CLI gives exit 2 and no traceback."""
    with pytest.raises(ConfigError) as caught:
        load_config(name)
    result = runner.invoke(app, ["schema"])  # sanity: the app itself works
    assert result.exit_code == 0
    cli = runner.invoke(app, ["train", name])
    assert cli.exit_code == 2, cli.output
    assert "Traceback" not in cli.output
    return str(caught.value)


@pytest.mark.parametrize("name", ["demo", "qwen3-0.6b-kto", "qwen3-1.7b-arabic-cpo"])
def test_shipped_configs_load(project: Path, name: str) -> None:
    config = load_config(name)
    assert config.name == name
    assert config.path == project / "configs" / f"{name}.yaml"
    assert len(config.sha256) == 64


def test_published_kto_setup_is_reproduced(project: Path) -> None:
    config = load_config("qwen3-0.6b-kto")
    assert config.model.base_model == "Qwen/Qwen3-0.6B"
    assert config.data.train == "HuggingFaceH4/ultrafeedback_binarized"
    assert (config.lora.r, config.lora.alpha) == (16, 32)
    assert config.training.learning_rate == 2e-4
    assert (config.training.per_device_batch_size, config.training.gradient_accumulation_steps) == (2, 8)
    assert config.training.effective_batch_size == 16
    assert config.training.max_length == 512 and config.training.epochs == 1
    assert config.method.name == "enhanced_kto" and config.method.beta == 0.1
    tasks = {(t.name, t.num_fewshot, t.metric) for t in config.evaluation.tasks}
    assert tasks == {("hellaswag", 10, "acc_norm"), ("truthfulqa_mc2", 0, "acc"), ("mmlu", 5, "acc")}


def test_arabic_cpo_config(project: Path) -> None:
    config = load_config("qwen3-1.7b-arabic-cpo")
    assert config.model.base_model == "Qwen/Qwen3-1.7B" and config.model.dtype == "bfloat16"
    assert config.method.name == "cpo"
    assert config.card.language == ["ar", "en"]


def test_path_to_yaml_file(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text("hub: {repo_id: me/model}\n", encoding="utf-8")
    config = load_config(str(elsewhere))
    assert config.name == "elsewhere"
    assert config.method.name == "enhanced_kto"  # every section has a default


def test_unknown_key(project: Path) -> None:
    message = config_error(write(project, "hub: {repo_id: a/b}\nextras: 1\n"))
    assert "extras" in message and "unknown key" in message and "line 2" in message


def test_misspelt_key_suggests_closest(project: Path) -> None:
    message = config_error(write(project, "hub: {repo_id: a/b}\ntraining:\n  learning_rat: 0.1\n"))
    assert "training.learning_rat (line 3)" in message
    assert "did you mean 'learning_rate'" in message


def test_misspelt_method_parameter(project: Path) -> None:
    message = config_error(write(project, "hub: {repo_id: a/b}\nmethod:\n  name: dpo\n  betta: 0.2\n"))
    assert "method.betta" in message and "did you mean 'beta'" in message


def test_wrong_type(project: Path) -> None:
    message = config_error(write(project, "hub: {repo_id: a/b}\ntraining: {per_device_batch_size: two}\n"))
    assert "training.per_device_batch_size" in message and "'two'" in message


def test_negative_learning_rate(project: Path) -> None:
    message = config_error(write(project, "hub: {repo_id: a/b}\ntraining:\n  learning_rate: -2.0e-4\n"))
    assert "training.learning_rate (line 3)" in message and "greater than 0" in message


def test_missing_required_field(project: Path) -> None:
    message = config_error(write(project, "model: {base_model: builtin:tiny-qwen3}\n"))
    assert "hub" in message and "required field is missing" in message


def test_unknown_method(project: Path) -> None:
    message = config_error(write(project, "hub: {repo_id: a/b}\nmethod: {name: dpoo}\n"))
    assert "unknown method 'dpoo'" in message and "did you mean 'dpo'" in message
    # A method's paper spells it in capitals; the registry suggests its name whatever the case.
    message = config_error(write(project, "hub: {repo_id: a/b}\nmethod: {name: SimPO}\n"))
    assert "unknown method 'SimPO'" in message and "did you mean 'simpo'" in message


def test_empty_file(project: Path) -> None:
    assert "empty" in config_error(write(project, ""))


def test_invalid_yaml_names_line_and_column(project: Path) -> None:
    message = config_error(write(project, "hub:\n  repo_id: [a/b\ntraining: {}\n"))
    assert "invalid YAML at line" in message and "column" in message


def test_duplicate_key_is_an_error(project: Path) -> None:
    message = config_error(write(project, "hub: {repo_id: a/b}\nhub: {repo_id: c/d}\n"))
    assert "duplicate key 'hub'" in message


def test_config_that_is_a_list(project: Path) -> None:
    assert "top level must be a mapping" in config_error(write(project, "- hub\n- model\n"))


def test_path_that_does_not_exist(project: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(str(project / "nope" / "missing.yaml"))
    result = runner.invoke(app, ["train", "missing-release"])
    assert result.exit_code == 2
    assert "No release config named 'missing-release'" in result.output


def test_unknown_release_name_suggests(project: Path) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'demo'"):
        load_config("dem")


def test_base_model_neither_hub_id_nor_path(project: Path) -> None:
    message = config_error(write(project, "hub: {repo_id: a/b}\nmodel: {base_model: 'not a model!'}\n"))
    assert "model.base_model" in message and "neither a Hub model id nor an existing folder" in message
    message = config_error(write(project, "hub: {repo_id: a/b}\nmodel: {base_model: ./models/missing}\n"))
    assert "looks like a local path" in message


def test_local_base_model_folder(project: Path) -> None:
    (project / "models" / "mine").mkdir(parents=True)
    write(project, "hub: {repo_id: a/b}\nmodel: {base_model: models/mine}\n", name="local")
    assert load_config("local").model.base_model == "models/mine"


@pytest.mark.parametrize("repo_id", ["no-namespace", "bad--dashes/x", "org/" + "x" * 100, "org/with space"])
def test_repo_id_the_hub_would_refuse(project: Path, repo_id: str) -> None:
    message = config_error(write(project, yaml.safe_dump({"hub": {"repo_id": repo_id}})))
    assert "hub.repo_id" in message and "the Hub would refuse" in message


def test_unicode_free_text(project: Path) -> None:
    summary = "نموذج لغوي صغير مضبوط بالتفضيلات — with English too"
    write(
        project,
        yaml.safe_dump(
            {"hub": {"repo_id": "a/b"}, "card": {"summary": summary, "language": ["ar"]}}, allow_unicode=True
        ),
        name="arabic",
    )
    assert load_config("arabic").card.summary == summary


def test_pairwise_method_with_unpaired_data(project: Path) -> None:
    message = config_error(write(project, "hub: {repo_id: a/b}\nmethod: {name: dpo}\ndata: {format: unpaired}\n"))
    assert "method 'dpo' needs paired data" in message


def test_kto_needs_two_examples_per_batch(project: Path) -> None:
    text = "hub: {repo_id: a/b}\nmethod: {name: kto}\ntraining: {per_device_batch_size: 1}\n"
    assert "per_device_batch_size >= 2" in config_error(write(project, text))


def test_kto_weights_must_be_positive(project: Path) -> None:
    text = "hub: {repo_id: a/b}\nmethod: {name: kto, desirable_weight: 0}\n"
    assert "method.desirable_weight" in config_error(write(project, text))


def test_max_samples_smaller_than_effective_batch(project: Path) -> None:
    text = (
        "hub: {repo_id: a/b}\ndata: {max_samples: 4}\n"
        "training: {per_device_batch_size: 2, gradient_accumulation_steps: 8}\n"
    )
    message = config_error(write(project, text))
    assert "effective batch (16" in message


def test_eval_split_and_fraction_exclusive(project: Path) -> None:
    text = "hub: {repo_id: a/b}\ndata: {eval_split: test, eval_fraction: 0.1}\n"
    assert "eval_split or eval_fraction, not both" in config_error(write(project, text))


def test_several_problems_reported_together(project: Path) -> None:
    text = "hub: {repo_id: a/b}\ntraining: {learning_rate: -1, seed: x}\nlora: {rr: 2}\n"
    message = config_error(write(project, text))
    assert message.startswith(str(project / "configs" / "bad.yaml"))
    assert "3 problems" in message


def test_schema_command_prints_json_schema(project: Path) -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema == config_schema()
    assert schema["required"] == ["hub"]
    assert schema["additionalProperties"] is False
    assert "learning_rate" in schema["$defs"]["TrainingSection"]["properties"]
