"""The card's YAML front matter, built as data: huggingface_hub dumps it, so no value can break the YAML.

Measured facts (base model, benchmark results, training datasets) come from the
record; publication metadata (licence, language, tags, repo id) from the config
at card time, so editing it re-renders the card without re-running a stage.
Records written before kept ``model.license``/``language``/``repo_id``: never read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import __version__
from pipeline.layout import project_root
from pipeline.metric_names import metric_label
from pipeline.refs import DataRef, ModelRef

if TYPE_CHECKING:
    from huggingface_hub import EvalResult, ModelCardData

    from pipeline.config import ReleaseConfig
    from pipeline.results import BenchmarkResult, Results, TrainingRecord


def title(config: ReleaseConfig) -> str:
    """The model's display name: card.model_name, or the repository's name."""
    return config.card.model_name or config.hub.repo_id.split("/")[-1]


def base_model(config: ReleaseConfig, results: Results) -> str:
    """The base model as recorded by the merge (what was merged), or as configured before a merge."""
    return results.model.base_model if results.model else config.model.base_model


def document(data: ModelCardData, body: str) -> str:
    """A card file: the front matter between ``---`` lines, a blank line, the Markdown body."""
    return f"---\n{data.to_yaml().rstrip(chr(10))}\n---\n\n{body}"


def card_data(config: ReleaseConfig, results: Results, root: Path | None = None) -> ModelCardData:
    """The front matter of the model card.

    ``root`` is the checkout a relative local path is resolved against: the front matter and the
    body must agree on what is a Hub id (``data/prefs.jsonl`` is also a valid repo id).
    """
    from huggingface_hub import ModelCardData

    root = root or project_root()
    base = ModelRef.parse(base_model(config, results), root)
    hub_base = base.value if base.is_hub else None
    extra = {}
    if hub_base is not None and results.model is not None and results.merge is not None:
        # The LoRA was merged into full weights: a fine-tune of the base, not an adapter.
        extra["base_model_relation"] = "finetune"
    eval_results = _eval_results(config, results, root)
    method = results.training.method if results.training else config.method.name
    return ModelCardData(
        model_name=title(config),
        base_model=hub_base,
        license=config.card.license,
        language=list(config.card.language),
        datasets=hub_datasets(results.training, root) or None,
        tags=_unique(["pubctl", "trl", method_tag(method), "lora", *config.card.tags]),
        library_name="transformers",
        pipeline_tag="text-generation",
        eval_results=eval_results or None,
        **extra,
    )


def hub_datasets(training: TrainingRecord | None, root: Path) -> list[str]:
    """Training datasets on the Hub (a recorded local file is pinned by ``sha256:``, so it is never one)."""
    if training is None:
        return []
    return [ds.id for ds in training.datasets if DataRef.parse(ds.id, root, ds.revision).is_hub]


def _eval_results(config: ReleaseConfig, results: Results, root: Path) -> list[EvalResult]:
    """model-index: benchmark metrics only, never training loss or speeds."""
    evaluation = results.evaluation
    if evaluation is None:
        return []
    source = f"pubctl {__version__} with {evaluation.harness} {evaluation.harness_version}"
    url = f"https://huggingface.co/{config.hub.repo_id}/blob/{config.hub.revision}/results.json"
    return [_eval_result(row, source, url, root) for row in evaluation.results]


def _eval_result(row: BenchmarkResult, source: str, url: str, root: Path) -> EvalResult:
    from huggingface_hub import EvalResult

    return EvalResult(
        task_type="text-generation",
        task_name="Text Generation",
        dataset_type=benchmark_dataset_type(row, root),
        dataset_name=row.task,
        dataset_config=row.dataset_config,
        dataset_split=row.split,
        # The metric type stays lm-eval's key (the model_index_parses gate matches it to the record);
        # the name is the one leaderboards use (truthfulqa_mc2's "acc" is MC2).
        metric_type=row.metric,
        metric_value=row.value,
        metric_name=f"{metric_label(row.task, row.metric)} ({row.num_fewshot}-shot)",
        # lm-eval's spelling, once: the n-shot is a setting of the scoring, not of load_dataset().
        metric_args={"num_fewshot": row.num_fewshot, "n": row.n},
        source_name=source,
        source_url=url,
    )


def benchmark_dataset_type(row: BenchmarkResult, root: Path) -> str:
    """model-index ``dataset.type``: the benchmark's Hub dataset id, else the lm-eval task name.

    huggingface_hub requires the key (model_index_to_eval_results reads ``dataset["type"]``), so it
    cannot be left out; a local file path (a bundled look-alike, a user's JSONL) would name a file
    on the machine that ran the evaluation, which no reader of the Hub page can open.
    """
    if row.dataset_id is not None and DataRef.parse(row.dataset_id, root).is_hub:
        return row.dataset_id
    return row.task


def method_tag(method: str) -> str:
    """A method's Hub tag: enhanced_kto -> enhanced-kto (the model and adapter cards spell it alike)."""
    return method.replace("_", "-")


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
