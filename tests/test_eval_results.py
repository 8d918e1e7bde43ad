"""The Hub's evaluation results file: which scores go there, its bytes, and huggingface_hub reading them back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.eval_results import BUILTIN_BENCHMARKS, parse, published, to_yaml
from pipeline.results import BenchmarkResult, EvaluationRecord, EvaluationSettings, Results

SOURCE = "https://huggingface.co/org/model/blob/main/results.json"
OWN_BENCHMARK = {"dataset_id": "pubctl-test/own-benchmark", "task_id": "default"}


def row(task: str, dataset_id: str | None, **extra: object) -> BenchmarkResult:
    fields: dict = {"split": "test", "num_fewshot": 5, "metric": "acc", "value": 0.5, "stderr": 0.01, "n": 1000}
    return BenchmarkResult(task=task, dataset_id=dataset_id, **{**fields, **extra})


def record(*rows: BenchmarkResult, limit: int | None = None) -> Results:
    settings = EvaluationSettings(limit=limit) if limit is not None else None
    evaluation = EvaluationRecord(harness_version="0.4.13", results=list(rows), settings=settings)
    return Results(release="t", evaluation=evaluation)


@pytest.fixture
def config(make_config: Callable[..., str]) -> object:
    tasks = [
        {"name": "mmlu_pro", "num_fewshot": 5, "metric": "exact_match"},
        {"name": "gsm8k", "num_fewshot": 5, "metric": "exact_match"},
        {"name": "hellaswag", "num_fewshot": 10, "metric": "acc_norm"},
        {"name": "own_task", "metric": "acc", "hub_benchmark": OWN_BENCHMARK},
        {"name": "gpqa_diamond_zeroshot", "metric": "acc_norm"},
    ]
    return load_config(make_config("t", {"evaluation": {"include_path": None, "tasks": tasks}}))


def test_entries_round_trip_through_huggingface_hub(config: object) -> None:
    from huggingface_hub import eval_result_entries_to_yaml, parse_eval_result_entries

    results = record(
        row("mmlu_pro", "TIGER-Lab/MMLU-Pro", metric="exact_match", filter="custom-extract", value=0.4123),
        row("gsm8k", "openai/gsm8k", metric="exact_match", filter="flexible-extract", value=0.3),
        row("hellaswag", "Rowan/hellaswag", num_fewshot=10, metric="acc_norm"),  # no Hub benchmark: left out
        row("own_task", "pubctl-test/local-copy.jsonl", num_fewshot=0, value=0.75),  # the config names one
        row("gpqa_diamond_zeroshot", "someone/gpqa-mirror", num_fewshot=0),  # not the benchmark's own data
    )
    chosen = published(config, results, SOURCE)
    assert [(e.dataset_id, e.task_id, e.value) for e in chosen.entries] == [
        ("TIGER-Lab/MMLU-Pro", "mmlu_pro", 0.4123),
        ("openai/gsm8k", "gsm8k", 0.3),
        ("pubctl-test/own-benchmark", "default", 0.75),
    ]
    assert chosen.skipped == [
        "gpqa_diamond_zeroshot: scored on someone/gpqa-mirror, not Idavidrein/gpqa (set "
        "evaluation.tasks[].hub_benchmark to publish it anyway)"
    ]
    first = chosen.entries[0]
    assert first.notes == "5-shot, exact_match (custom-extract), lm-eval 0.4.13 (task mmlu_pro, n=1000)"
    assert (first.source_url, first.source_name) == (SOURCE, "pubctl results.json")

    data = to_yaml(chosen.entries)
    loaded = yaml.safe_load(data)
    assert loaded[0] == {
        "dataset": {"id": "TIGER-Lab/MMLU-Pro", "task_id": "mmlu_pro"},
        "value": 0.4123,
        "source": {"url": SOURCE, "name": "pubctl results.json"},
        "notes": first.notes,
    }
    back = parse_eval_result_entries(loaded)
    assert back == chosen.entries
    assert eval_result_entries_to_yaml(parse(data)) == loaded
    assert to_yaml(chosen.entries) == data  # same record, same bytes: an unchanged push re-sends nothing


def test_a_limited_run_publishes_nothing(config: object) -> None:
    chosen = published(config, record(row("gsm8k", "openai/gsm8k"), limit=20), SOURCE)
    assert chosen.entries == []
    assert chosen.skipped == ["gsm8k: scored with lm-eval limit 20, not comparable with a leaderboard"]


def test_no_evaluation_publishes_nothing(config: object) -> None:
    assert published(config, Results(release="t"), SOURCE).entries == []


def test_builtin_mapping_holds_registered_benchmarks_only() -> None:
    assert {b.dataset_id for b in BUILTIN_BENCHMARKS.values()} == {
        "TIGER-Lab/MMLU-Pro",
        "Idavidrein/gpqa",
        "openai/gsm8k",
    }
    for task in ("hellaswag", "truthfulqa_mc2", "mmlu", "arc_challenge", "winogrande"):
        assert task not in BUILTIN_BENCHMARKS


@pytest.mark.parametrize("data", [b"key: value\n", b"- {value: 1}\n", b"[: bad", b"\xff\xfe"])
def test_parse_refuses_what_is_not_an_eval_results_file(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse(data)


def test_hub_benchmark_is_validated_and_never_reruns_lm_eval(make_config: Callable[..., str], project: Path) -> None:
    from pipeline.stage import config_hashes

    spaced = {"dataset_id": "no spaces/x y", "task_id": "a"}
    bad = {"evaluation": {"tasks": [{"name": "gsm8k", "hub_benchmark": spaced}]}}
    with pytest.raises(ConfigError, match=r"evaluation\.tasks\.0\.hub_benchmark\.dataset_id"):
        load_config(make_config("bad", bad))
    typo = {"evaluation": {"tasks": [{"name": "gsm8k", "hub_benchmark": {"dataset": "a/b", "task_id": "a"}}]}}
    with pytest.raises(ConfigError, match="did you mean 'dataset_id'"):
        load_config(make_config("typo", typo))

    plain = load_config(make_config("plain", {"evaluation": {"tasks": [{"name": "gsm8k"}]}}))
    mapped = load_config(
        make_config("mapped", {"evaluation": {"tasks": [{"name": "gsm8k", "hub_benchmark": OWN_BENCHMARK}]}})
    )
    assert mapped.evaluation.tasks[0].hub_benchmark is not None
    # Where a score is published is not what lm-eval computes: the evaluate stamp is the same.
    assert config_hashes(("model", "evaluation"), plain) == config_hashes(("model", "evaluation"), mapped)
