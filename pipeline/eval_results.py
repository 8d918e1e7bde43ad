"""The Hub's evaluation results file (``.eval_results/pubctl.yaml``), built from the record by huggingface_hub.

The Hub shows a score on a model page and on a benchmark's leaderboard when the model repository holds
``.eval_results/*.yaml`` naming a *benchmark* dataset (a dataset repository with an allow-listed
``eval.yaml``) and a task id of that dataset. Only some benchmarks are registered: a task is published
there when the config names its benchmark (``evaluation.tasks[].hub_benchmark``) or when
:data:`BUILTIN_BENCHMARKS` maps its lm-eval name. model-index in the README stays as it is.

Every value comes from results.json; nothing is published for a run with an lm-eval ``limit`` (a smoke
test is not comparable with a leaderboard) or for a row whose data is not the benchmark's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.judgments import evaluation_limit

if TYPE_CHECKING:
    from huggingface_hub import EvalResultEntry

    from pipeline.config import ReleaseConfig
    from pipeline.results import BenchmarkResult, Results

EVAL_RESULTS_PATH = ".eval_results/pubctl.yaml"
"""One file for the release: pubctl owns it, rewrites it on each push and deletes it when nothing is left."""


@dataclass(frozen=True)
class Benchmark:
    """A Hub benchmark dataset and the id of one of its tasks (the ``dataset`` of an eval results entry)."""

    dataset_id: str
    task_id: str


# Keyed by the lm-eval 0.4 task name; each task's dataset_path is the benchmark's dataset itself. Kept to
# the benchmarks hub-docs names as registered (GPQA, MMLU-Pro, GSM8K; HLE has no lm-eval task) and task
# ids seen in results files the Hub accepted: "mmlu_pro", "diamond" (hub-docs' older example says
# "gpqa_diamond"; Hugging Face's own 2026 result files use "diamond"), "gsm8k". HellaSwag, TruthfulQA,
# MMLU, ARC and Winogrande have no benchmark dataset on the Hub: no entry, and model-index alone carries them.
_MMLU_PRO = Benchmark("TIGER-Lab/MMLU-Pro", "mmlu_pro")
_GPQA_DIAMOND = Benchmark("Idavidrein/gpqa", "diamond")
_GSM8K = Benchmark("openai/gsm8k", "gsm8k")
BUILTIN_BENCHMARKS: dict[str, Benchmark] = {
    "mmlu_pro": _MMLU_PRO,
    "leaderboard_mmlu_pro": _MMLU_PRO,
    "gpqa_diamond_zeroshot": _GPQA_DIAMOND,
    "gpqa_diamond_n_shot": _GPQA_DIAMOND,
    "gpqa_diamond_cot_zeroshot": _GPQA_DIAMOND,
    "gpqa_diamond_cot_n_shot": _GPQA_DIAMOND,
    "gpqa_diamond_generative_n_shot": _GPQA_DIAMOND,
    "leaderboard_gpqa_diamond": _GPQA_DIAMOND,
    "gsm8k": _GSM8K,
    "gsm8k_cot": _GSM8K,
    "gsm8k_cot_zeroshot": _GSM8K,
}


@dataclass(frozen=True)
class Published:
    """What the release publishes to the Hub's evaluation results, and why each other row is left out."""

    entries: list[EvalResultEntry]
    skipped: list[str]
    """One line per benchmark with a Hub benchmark that was not published, saying why."""


def benchmark_for(config: ReleaseConfig, row: BenchmarkResult) -> tuple[Benchmark | None, str | None]:
    """(the row's Hub benchmark, why it is not published) — (None, None) for a task no benchmark has."""
    spec = next((task for task in config.evaluation.tasks if task.name == row.task), None)
    configured = spec.hub_benchmark if spec is not None else None
    if configured is not None:  # the user's word: their task may read a mirror of the benchmark's data
        return Benchmark(configured.dataset_id, configured.task_id), None
    builtin = BUILTIN_BENCHMARKS.get(row.task)
    if builtin is None:
        return None, None
    if row.dataset_id is not None and row.dataset_id != builtin.dataset_id:
        return None, (
            f"{row.task}: scored on {row.dataset_id}, not {builtin.dataset_id} (set evaluation.tasks[].hub_benchmark "
            "to publish it anyway)"
        )
    return builtin, None


def published(config: ReleaseConfig, results: Results, source_url: str) -> Published:
    """The entries of :data:`EVAL_RESULTS_PATH` for this record; ``source_url`` is results.json on the Hub."""
    from huggingface_hub import EvalResultEntry

    evaluation = results.evaluation
    if evaluation is None or results.rehearsal is not None:
        return Published([], [])
    limit = evaluation_limit(evaluation)
    entries, skipped = [], []
    for row in evaluation.results:
        benchmark, why = benchmark_for(config, row)
        if why is not None:
            skipped.append(why)
        if benchmark is None:
            continue
        row_limit = row.limit if row.limit is not None else limit
        if row_limit is not None:
            skipped.append(f"{row.task}: scored with lm-eval limit {row_limit}, not comparable with a leaderboard")
            continue
        entries.append(
            EvalResultEntry(
                dataset_id=benchmark.dataset_id,
                task_id=benchmark.task_id,
                value=row.value,
                source_url=source_url,
                source_name="pubctl results.json",
                notes=notes(row, evaluation.harness, row.harness_version or evaluation.harness_version),
            )
        )
    return Published(entries, skipped)


def notes(row: BenchmarkResult, harness: str, version: str) -> str:
    """How the number was made, in the words the Hub shows beside it: '5-shot, acc, lm-eval 0.4.13 (task gsm8k)'."""
    metric = row.metric if row.filter in (None, "none") else f"{row.metric} ({row.filter})"
    return f"{row.num_fewshot}-shot, {metric}, {harness} {version} (task {row.task}, n={row.n})"


def to_yaml(entries: list[EvalResultEntry]) -> bytes:
    """The file's bytes: huggingface_hub's own serialisation, dumped by PyYAML in a stable order."""
    import yaml
    from huggingface_hub import eval_result_entries_to_yaml

    text = yaml.safe_dump(eval_result_entries_to_yaml(entries), sort_keys=False, allow_unicode=True)
    return text.encode("utf-8")


def parse(data: bytes) -> list[EvalResultEntry]:
    """The entries of a ``.eval_results`` file, read back by huggingface_hub; ValueError when it is not one."""
    import yaml
    from huggingface_hub import parse_eval_result_entries

    try:
        loaded: Any = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"not YAML ({type(exc).__name__})") from None
    if not isinstance(loaded, list) or not all(isinstance(item, dict) for item in loaded):
        raise ValueError("not a YAML list of entries")
    try:
        return parse_eval_result_entries(loaded)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"an entry lacks {exc}") from None
