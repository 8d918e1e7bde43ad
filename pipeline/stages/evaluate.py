"""The evaluate stage: lm-eval on the merged model and its base, and generation throughput.

Input: the merged model in runs/NAME/merge/model. Output: the ``evaluation`` section of
cards/NAME/results.json (one entry per configured task, with the base model's score beside the tuned
one) and lm-eval's raw output in runs/NAME/eval/. The base model's results are cached under
runs/_cache/eval/, keyed by everything that changes them, so a release evaluates its base once.
Everything that can be checked is checked before the first model is loaded, and nothing is written
until every measurement has succeeded: a failed evaluation leaves the record as it was.
"""

from __future__ import annotations

import gc
import hashlib
import json
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline import lineage as lineage_of
from pipeline.atomic import atomic_write_text
from pipeline.config import ReleaseConfig, TaskSpec
from pipeline.console import progress_begin, progress_update
from pipeline.errors import UsageError
from pipeline.evaluation.harness import HARNESS, HarnessSettings, harness_version, run_lm_eval
from pipeline.evaluation.raw_output import save_raw, to_json, with_previous_raw
from pipeline.evaluation.scores import attach_base, benchmark_results
from pipeline.evaluation.tasks import TaskSource, prepare_task_source
from pipeline.layout import Layout
from pipeline.metric_names import metric_label
from pipeline.results import (
    BenchmarkResult,
    EvaluatedBase,
    EvaluationRecord,
    EvaluationSettings,
    read_or_new,
)
from pipeline.sources import ResolvedModel, resolve_model
from pipeline.stage import StageResult

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
TOKENIZER_PATTERNS = ("tokenizer*", "special_tokens_map.json", "added_tokens.json", "vocab.*", "merges.txt")
BASE_CACHE_VERSION = 2  # 2: one simple_evaluate call per task (bit-identical to per-task lm_eval runs)


def select_tasks(configured: list[TaskSpec], names: list[str] | None) -> list[TaskSpec]:
    """The config's tasks, or the subset named by --tasks (each must be in the config)."""
    if not names:
        return list(configured)
    by_name = {spec.name: spec for spec in configured}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise UsageError(
            f"--tasks: {', '.join(unknown)} not in this release's evaluation.tasks "
            f"({', '.join(by_name)}); add it to the config with its num_fewshot and metric first."
        )
    return [by_name[name] for name in dict.fromkeys(names)]


def check_model_dir(folder: Path, what: str, fix: str) -> Path:
    """``folder`` when it holds a loadable transformers model (config and weights), else a UsageError."""
    if not (folder / "config.json").is_file():
        raise UsageError(f"No {what} at {folder} (config.json is missing): {fix}")
    if not any(path.stat().st_size > 0 for pattern in WEIGHT_PATTERNS for path in folder.glob(pattern)):
        raise UsageError(
            f"The {what} at {folder} has no weights (no non-empty *.safetensors or pytorch_model*.bin): {fix}"
        )
    return folder


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# ----------------------------------------------------------------- base-model cache
def _model_fingerprint(model: ResolvedModel) -> dict[str, Any]:
    """What identifies the base model: the Hub commit, or its local files' names, sizes and mtimes.

    The tokenizer files count as much as the weights: lm-eval tokenizes every request with the model's own.
    """
    if model.revision:
        return {"revision": model.revision}
    patterns = (*WEIGHT_PATTERNS, "config.json", *TOKENIZER_PATTERNS)
    files = sorted({path for pattern in patterns for path in model.path.glob(pattern)})
    return {
        "path": str(model.path),
        "files": [[path.name, path.stat().st_size, path.stat().st_mtime_ns] for path in files],
    }


def base_cache_key(
    model: ResolvedModel, dtype: str, specs: list[TaskSpec], source: TaskSource, settings: HarnessSettings
) -> str:
    key = {
        "version": BASE_CACHE_VERSION,
        "base_model": model.reference,
        "model": _model_fingerprint(model),
        "dtype": dtype,
        "tasks": [[spec.name, spec.num_fewshot] for spec in specs],
        "task_source": [str(source.include_path) if not source.offline else "builtin", source.digest],
        "harness": [HARNESS, harness_version()],
        # The libraries that compute the log-likelihoods: an upgrade changes the scores in their last digits.
        "libraries": {name: metadata.version(name) for name in ("torch", "transformers")},
        **settings.as_dict(),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


def base_results(
    model: ResolvedModel,
    dtype: str,
    specs: list[TaskSpec],
    source: TaskSource,
    settings: HarnessSettings,
    layout: Layout,
    on_task: Callable[[int, TaskSpec], None] | None = None,
    on_cached: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """lm-eval's output for the base model, from the cache when this exact evaluation ran before (then
    ``on_cached`` is called: only a cache entry actually read counts, not a damaged one recomputed)."""
    path = base_cache_file(model, dtype, specs, source, settings, layout)
    if path.is_file():
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            path.unlink()  # a damaged cache entry is recomputed, never trusted
        else:
            if on_cached is not None:
                on_cached()
            return results
    results = run_lm_eval(model.path, dtype, specs, source, settings, on_task=on_task).results
    atomic_write_text(path, to_json(results) + "\n")
    return results


def base_cache_file(
    model: ResolvedModel,
    dtype: str,
    specs: list[TaskSpec],
    source: TaskSource,
    settings: HarnessSettings,
    layout: Layout,
) -> Path:
    """Where the base model's lm-eval output for this exact evaluation is cached."""
    return layout.cache_dir / "eval" / f"base-{base_cache_key(model, dtype, specs, source, settings)}.json"


def _free_memory() -> None:
    """Release the previous model before loading the next (GPU memory is not returned on its own)."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------- stage
def run(
    config: ReleaseConfig, layout: Layout, *, limit: int | None = None, tasks: list[str] | None = None
) -> StageResult:
    """Evaluate the merged model (and its base), measure throughput; returns the evaluation section."""
    evaluation = config.evaluation
    specs = select_tasks(evaluation.tasks, tasks)
    model_dir = check_model_dir(layout.merged_model_dir, "merged model", f"run `pubctl merge {config.name}` first.")
    base = None
    if evaluation.evaluate_base:
        base = resolve_model(config.model.base_model, config.model.revision, layout)
        check_model_dir(base.path, f"base model '{config.model.base_model}'", "check model.base_model.")
    device = resolve_device(evaluation.device)
    settings = HarnessSettings(
        device=device,
        batch_size=evaluation.batch_size,
        limit=limit if limit is not None else evaluation.limit,
        bootstrap_iters=evaluation.bootstrap_iters,
        seed=evaluation.seed,
        trust_remote_code=config.model.trust_remote_code,
    )
    dtype = config.model.dtype
    previous = read_or_new(layout.results, config.name).evaluation  # a corrupt record fails now, not after hours
    consumed = {"merged_model": lineage_of.folder(model_dir)}
    if base is not None:  # the base scored for base_value
        consumed["base_model"] = lineage_of.base_model_key(config, layout, base.revision)

    with tempfile.TemporaryDirectory(prefix="pubctl-eval-") as workdir:
        source = prepare_task_source(evaluation.include_path, layout.root, Path(workdir))
        steps = _Steps(len(specs), throughput=evaluation.throughput.enabled, base=base is not None)
        tuned_run = run_lm_eval(model_dir, dtype, specs, source, settings, on_task=steps.task("tuned"))
        tuned = tuned_run.results
        throughput = None
        if evaluation.throughput.enabled:
            from pipeline.evaluation.throughput import measure_throughput

            steps.throughput()
            # The model lm-eval loaded, on the same device and dtype: no second load of the weights.
            throughput = measure_throughput(
                model_dir,
                dtype,
                device,
                evaluation.throughput,
                model=tuned_run.lm.model,
                trust_remote_code=config.model.trust_remote_code,
            )
        del tuned_run
        _free_memory()
        base_raw = None
        if base is not None:
            base_raw = base_results(
                base, dtype, specs, source, settings, layout, on_task=steps.task("base"), on_cached=steps.cached_base
            )
        _free_memory()

    entries = benchmark_results(tuned, specs, layout.root, settings)
    if base_raw is not None:
        attach_base(entries, benchmark_results(base_raw, specs, layout.root, settings))

    # Everything measured: only now is anything written.
    evaluated = {spec.name for spec in specs}
    kept = [spec.name for spec in evaluation.tasks if spec.name not in evaluated]  # --tasks: the others stay
    save_raw(with_previous_raw(tuned, layout.eval_dir, "tuned", kept), layout.eval_dir, "tuned")
    if base_raw is not None:
        save_raw(with_previous_raw(base_raw, layout.eval_dir, "base", kept), layout.eval_dir, "base")
    if throughput is not None:
        atomic_write_text(layout.eval_dir / "throughput.json", throughput.model_dump_json(indent=2) + "\n")

    record = EvaluationRecord(
        harness=HARNESS,
        harness_version=harness_version(),
        results=_merge_with_previous(entries, specs, evaluation.tasks, previous),
        throughput=throughput,
        settings=EvaluationSettings(**settings.as_dict(), dtype=dtype, include_path=evaluation.include_path),
        base_model=EvaluatedBase(reference=base.reference, revision=base.revision) if base is not None else None,
        lineage=lineage_of.lineage(consumed),
    )
    return StageResult(summary=summary(record, base_cached=steps.base_cached), sections={"evaluation": record})


class _Steps:
    """The stage's progress: each task on the tuned model, the throughput run, each task on the base."""

    def __init__(self, tasks: int, *, throughput: bool, base: bool) -> None:
        self.tasks = tasks
        self.throughput_at = tasks if throughput else None
        self.base_at = tasks + int(throughput)
        self.base_cached = False
        """Whether the base's scores were read from the cache (the summary says so)."""
        progress_begin(self.base_at + (tasks if base else 0), "step")

    def task(self, model: str) -> Callable[[int, TaskSpec], None]:
        offset = 0 if model == "tuned" else self.base_at

        def report(index: int, spec: TaskSpec) -> None:
            progress_update(offset + index, doing=f"{model} · {spec.name} ({index + 1}/{self.tasks})")

        return report

    def throughput(self) -> None:
        progress_update(self.throughput_at, doing="tuned · generation throughput")

    def cached_base(self) -> None:
        self.base_cached = True
        progress_update(self.base_at + self.tasks, doing="base · cached")


def summary(record: EvaluationRecord, *, base_cached: bool = False) -> str:
    """One line: each task's score ± stderr and its difference from the base, and the throughput."""
    parts = []
    for row in record.results:
        stderr = f" ± {row.stderr:.2g}" if row.stderr is not None else ""
        delta = f" (Δ {row.value - row.base_value:+.2g} vs base)" if row.base_value is not None else ""
        parts.append(f"{row.task} {metric_label(row.task, row.metric)} {row.value:.3g}{stderr}{delta}")
    speed = f"; {record.throughput.tokens_per_second_median:.4g} tokens/s" if record.throughput else ""
    base = " (base scores from the cache)" if base_cached else ""
    return f"evaluated {len(record.results)} tasks{base}: {', '.join(parts)}{speed}"


def _merge_with_previous(
    entries: list[BenchmarkResult],
    evaluated: list[TaskSpec],
    configured: list[TaskSpec],
    previous: EvaluationRecord | None,
) -> list[BenchmarkResult]:
    """With --tasks, keep the recorded results of the config's other tasks; order follows the config."""
    done = {spec.name for spec in evaluated}
    kept = {
        entry.task: entry
        for entry in (previous.results if previous is not None else [])
        if entry.task not in done and entry.task in {spec.name for spec in configured}
    }
    fresh = {entry.task: entry for entry in entries}
    return [fresh.get(spec.name) or kept[spec.name] for spec in configured if spec.name in fresh or spec.name in kept]
