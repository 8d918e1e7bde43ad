"""The evaluate stage end to end on the tiny model: same numbers as lm-eval run directly, failures exit 2."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.errors import UsageError
from pipeline.layout import Layout

LIMIT = 6
FAST = {
    "evaluation": {
        "limit": LIMIT,
        "throughput": {"prompts": 2, "new_tokens": 4, "warmup_runs": 1, "runs": 2},
    }
}


def _release(make_config: Callable[..., str], tiny_model_path: Path, overrides: dict[str, Any] | None = None):
    overrides = overrides or {}
    name = make_config("ev", {**overrides, "evaluation": {**FAST["evaluation"], **overrides.get("evaluation", {})}})
    config = load_config(name)
    layout = Layout.for_release(config.name)
    shutil.copytree(tiny_model_path, layout.merged_model_dir)
    return config, layout


def _direct_lm_eval(model: Path, name: str, num_fewshot: int, include: Path, limit: int | None) -> dict[str, Any]:
    """lm-eval's own entry point, as a user would call it for one task with its few-shot count."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from pipeline.evaluation.harness import hf_offline

    with hf_offline(True):
        return lm_eval.simple_evaluate(
            model="hf",
            model_args={"pretrained": str(model), "dtype": "float32"},
            tasks=[name],
            num_fewshot=num_fewshot,
            task_manager=TaskManager(include_path=str(include), include_defaults=False),
            device="cpu",
            batch_size=8,
            limit=limit,
            bootstrap_iters=200,
            random_seed=1234,
            numpy_random_seed=1234,
            torch_random_seed=1234,
            fewshot_random_seed=1234,
        )


@pytest.mark.slow
def test_recorded_numbers_equal_direct_lm_eval(
    make_config: Callable[..., str], tiny_model_path: Path, tmp_path: Path
) -> None:
    """The whole demo: every recorded number is the one `lm_eval --tasks T --num_fewshot K` gives."""
    from pipeline.evaluation.tasks import builtin_tasks_dir, materialize_tasks
    from pipeline.release import run_stage

    overrides = {"evaluation": {"limit": None, "evaluate_base": False, "throughput": {"enabled": False}}}
    config, layout = _release(make_config, tiny_model_path, overrides)
    record = run_stage("evaluate", config, layout).sections["evaluation"]

    include = materialize_tasks(builtin_tasks_dir(), tmp_path / "direct-tasks")
    assert [entry.task for entry in record.results] == ["demo_hellaswag", "demo_truthfulqa_mc2", "demo_mmlu"]
    for entry, spec in zip(record.results, config.evaluation.tasks, strict=True):
        direct = _direct_lm_eval(layout.merged_model_dir, spec.name, spec.num_fewshot, include, None)
        numbers = direct["results"][spec.name]
        assert entry.value == numbers[f"{spec.metric},none"]
        assert entry.stderr == numbers[f"{spec.metric}_stderr,none"]
        leaves = direct["group_subtasks"].get(spec.name, [spec.name])
        assert entry.n == sum(direct["n-samples"][leaf]["effective"] for leaf in leaves)
        assert entry.num_fewshot == direct["n-shot"][spec.name] == spec.num_fewshot
        assert entry.limit is None and entry.base_value is None
    assert [entry.n for entry in record.results] == [60, 65, 60]  # every bundled item scored
    assert record.throughput is None


def test_record_base_cache_and_raw_output(
    make_config: Callable[..., str], tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.evaluation.harness import HarnessSettings
    from pipeline.evaluation.tasks import prepare_task_source
    from pipeline.release import run_stage
    from pipeline.results import read_results
    from pipeline.sources import resolve_model
    from pipeline.stages import evaluate

    config, layout = _release(make_config, tiny_model_path)
    record = run_stage("evaluate", config, layout).sections["evaluation"]

    # The record on disk is the one returned, and holds only what this stage writes.
    saved = read_results(layout.results)
    assert saved.evaluation == record
    assert saved.training is None and saved.model is None and saved.provenance is not None
    assert record.harness == "lm-eval" and record.harness_version == "0.4.13"
    assert record.settings.seed == 1234 and record.settings.device == "cpu"
    for entry, spec in zip(record.results, config.evaluation.tasks, strict=True):
        assert (entry.task, entry.metric, entry.num_fewshot, entry.limit) == (
            spec.name,
            spec.metric,
            spec.num_fewshot,
            LIMIT,
        )
        # The base is the same tiny model here: its score must be the same number.
        assert entry.base_value == entry.value
        assert entry.dataset_id is not None and entry.dataset_id.startswith("pipeline/demo/tasks/")
        assert entry.stderr is not None and entry.stderr >= 0
    hellaswag, truthfulqa, mmlu = record.results
    assert (hellaswag.split, truthfulqa.split, mmlu.split) == ("validation", "validation", "test")
    assert hellaswag.chance == pytest.approx(0.25) and mmlu.chance == pytest.approx(0.25)
    assert 0 < truthfulqa.chance < 1
    assert mmlu.n == 6 * LIMIT  # six subjects, `limit` items each

    # Raw lm-eval output is kept beside the run.
    raw = json.loads((layout.eval_dir / "results_tuned.json").read_text())
    assert raw["results"]["demo_mmlu"]["acc,none"] == mmlu.value
    assert (layout.eval_dir / "results_base.json").is_file()
    assert (layout.eval_dir / "samples_tuned_demo_hellaswag.jsonl").read_text().count("\n") == LIMIT

    throughput = record.throughput
    assert throughput is not None
    assert (throughput.prompts, throughput.new_tokens, throughput.runs, throughput.batch_size) == (2, 4, 2, 1)
    assert throughput.dtype == "float32" and throughput.device
    assert throughput.tokens_per_second_min <= throughput.tokens_per_second_median <= throughput.tokens_per_second_max

    # The base model's results come from the cache on the next run with the same settings.
    def must_not_run(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the base model was evaluated again instead of read from the cache")

    monkeypatch.setattr(evaluate, "run_lm_eval", must_not_run)
    base = resolve_model(config.model.base_model, config.model.revision, layout)
    source = prepare_task_source("builtin", layout.root, tmp_path / "again")
    settings = HarnessSettings(device="cpu", batch_size=8, limit=LIMIT, bootstrap_iters=200, seed=1234)
    cached = evaluate.base_results(base, "float32", list(config.evaluation.tasks), source, settings, layout)
    assert cached["results"]["demo_mmlu"]["acc,none"] == mmlu.base_value
    monkeypatch.undo()

    # --tasks re-evaluates a subset and keeps the recorded results of the other tasks.
    again = run_stage("evaluate", config, layout, tasks=["demo_truthfulqa_mc2"], limit=2).sections["evaluation"]
    assert [entry.task for entry in again.results] == ["demo_hellaswag", "demo_truthfulqa_mc2", "demo_mmlu"]
    assert again.results[0] == hellaswag and again.results[2] == mmlu
    assert (again.results[1].n, again.results[1].limit) == (2, 2)
    # ... and their raw lm-eval output: the subset's run does not overwrite it.
    for label in ("tuned", "base"):
        raw = json.loads((layout.eval_dir / f"results_{label}.json").read_text())
        assert raw["n-samples"]["demo_truthfulqa_mc2"]["effective"] == 2
        assert raw["results"]["demo_hellaswag"][f"{hellaswag.metric},none"] == getattr(
            hellaswag, "value" if label == "tuned" else "base_value"
        )
        assert raw["results"]["demo_mmlu"]["acc,none"] == (mmlu.value if label == "tuned" else mmlu.base_value)
        assert set(raw["group_subtasks"]["demo_mmlu"]) <= set(raw["n-samples"])


def _invoke(name: str) -> Any:
    return CliRunner().invoke(app, ["evaluate", name])


def _nothing_written(layout: Layout) -> bool:
    return not layout.results.exists() and not layout.eval_dir.exists()


def test_unknown_task_exits_2_and_writes_nothing(make_config: Callable[..., str], tiny_model_path: Path) -> None:
    _, layout = _release(
        make_config, tiny_model_path, {"evaluation": {"tasks": [{"name": "demo_hellaswg", "num_fewshot": 10}]}}
    )
    result = _invoke("ev")
    assert result.exit_code == 2, result.output
    assert "unknown lm-eval task 'demo_hellaswg'" in result.output and "demo_hellaswag" in result.output
    assert _nothing_written(layout)


def test_task_not_in_config_exits_2(make_config: Callable[..., str], tiny_model_path: Path) -> None:
    _, layout = _release(make_config, tiny_model_path)
    result = CliRunner().invoke(app, ["evaluate", "ev", "--tasks", "demo_arc"])
    assert result.exit_code == 2
    assert "demo_arc not in this release's evaluation.tasks" in result.output
    assert _nothing_written(layout)


def test_model_without_weights_exits_2(make_config: Callable[..., str], tiny_model_path: Path) -> None:
    _, layout = _release(make_config, tiny_model_path)
    for weights in layout.merged_model_dir.glob("*.safetensors"):
        weights.unlink()
    result = _invoke("ev")
    assert result.exit_code == 2
    assert "has no weights" in result.output and str(layout.merged_model_dir) in result.output
    assert _nothing_written(layout)


def test_missing_merged_model_points_to_merge(make_config: Callable[..., str]) -> None:
    name = make_config("ev", FAST)
    result = _invoke(name)
    assert result.exit_code == 2
    assert "pubctl merge ev" in result.output


def test_missing_bundled_data_exits_2(
    make_config: Callable[..., str], tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.evaluation import tasks

    damaged = tmp_path / "tasks"
    shutil.copytree(tasks.builtin_tasks_dir(), damaged, ignore=shutil.ignore_patterns("__pycache__"))
    (damaged / "mmlu_mini_dev.jsonl").unlink()
    monkeypatch.setattr(tasks, "builtin_tasks_dir", lambda: damaged)
    _, layout = _release(make_config, tiny_model_path)
    result = _invoke("ev")
    assert result.exit_code == 2
    assert "mmlu_mini_dev.jsonl, which does not exist" in result.output
    assert _nothing_written(layout)


def test_missing_data_of_a_user_task_exits_2(
    make_config: Callable[..., str], tiny_model_path: Path, project: Path
) -> None:
    folder = project / "my_tasks"
    folder.mkdir()
    (folder / "my_task.yaml").write_text(
        "task: my_task\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {project / 'absent.jsonl'}\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: '{{q}}'\ndoc_to_choice: ['a', 'b']\n"
        "doc_to_target: 0\nmetric_list:\n  - metric: acc\n",
        encoding="utf-8",
    )
    _, layout = _release(
        make_config,
        tiny_model_path,
        {"evaluation": {"include_path": "my_tasks", "tasks": [{"name": "my_task"}]}},
    )
    result = _invoke("ev")
    assert result.exit_code == 2, result.output
    assert "could not load task 'my_task' or its data" in result.output
    assert _nothing_written(layout)


def test_metric_the_task_does_not_report_is_a_usage_error(
    make_config: Callable[..., str], tiny_model_path: Path
) -> None:
    from pipeline.release import run_stage

    config, layout = _release(
        make_config,
        tiny_model_path,
        {"evaluation": {"tasks": [{"name": "demo_mmlu", "num_fewshot": 5, "metric": "acc_norm"}]}},
    )
    with pytest.raises(UsageError, match="does not report metric 'acc_norm' \\(it reports: acc\\)"):
        run_stage("evaluate", config, layout)
    assert _nothing_written(layout)
