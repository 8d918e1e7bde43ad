"""What the card template sees: the record's sections and values prepared for Markdown, one part at a time.

Values stay plain text here; the template escapes them (pipeline.markdown's filters).
Publication metadata (title, summary, repo id, language, limitations) is the
config's; everything measured is the record's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.citations import citations_for, tool_citations
from pipeline.judgments import evaluation_limit, is_below_chance, is_near_chance
from pipeline.layout import Layout
from pipeline.markdown import number, show
from pipeline.provenance import PUBLISHED_CONFIG, describe_commit
from pipeline.refs import DataRef, ModelRef
from pipeline.results import SECTIONS
from pipeline.stages.card.comparison import comparison
from pipeline.stages.card.front_matter import base_model, title
from pipeline.stages.card.origins import origins
from pipeline.stages.card.what_ran import data_notes, evaluation_facts, run_length

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig
    from pipeline.methods.base import MethodSpec
    from pipeline.plots import Plot
    from pipeline.results import BenchmarkResult, EvaluationRecord, Hyperparameters, Results, TrainingRecord

USAGE_PROMPTS = {
    "en": "Give me three tips for writing a clear email.",
    "ar": "أعطني ثلاث نصائح لكتابة بريد إلكتروني واضح.",
}


def method_spec(results: Results, config: ReleaseConfig) -> MethodSpec:
    """The training method the record names (the config's before training ran)."""
    from pipeline.methods import get_method

    return get_method(results.training.method if results.training else config.method.name)


def build_context(config: ReleaseConfig, layout: Layout, results: Results, plots: list[Plot]) -> dict[str, Any]:
    """Everything the template sees."""
    k = config.checks.near_chance_stderr
    rows = results.evaluation.results if results.evaluation else []
    return {
        "release": layout.name,
        "title": title(config),
        "summary": config.card.summary,
        "repo_id": config.hub.repo_id,
        **record_sections(results),
        "missing": missing_sections(results, layout.name),
        "origins": origins(results),
        **method_facts(method_spec(results, config), results.training, results.evaluation),
        "datasets": datasets(results.training, layout.root),
        "data_notes": [
            note for ds in (results.training.datasets if results.training else []) for note in data_notes(ds)
        ],
        **run_length(results.training),
        **evaluation_facts(results.evaluation),
        **hyperparameters(results.training.hyperparameters if results.training else None),
        **usage(config, layout.root, results),
        "plots": [
            {"path": f"plots/{plot.name}", "alt": plot.alt, "title": plot.title, "note": plot.note} for plot in plots
        ],
        "near_chance": [row for row in rows if is_near_chance(row, k)],
        "eval_limit": evaluation_limit(results.evaluation) if results.evaluation is not None else None,
        "near_chance_stderr": k,
        "comparison": comparison(config, layout, results),
        "limitations": list(config.card.limitations),
        "found_limitations": found_limitations(results.evaluation, k),
        "waivers": waivers(config, results, layout.root),
        **provenance(results),
        "config_file": PUBLISHED_CONFIG if config.path is not None else None,
    }


def record_sections(results: Results) -> dict[str, Any]:
    """The record itself and each of its sections (None when absent)."""
    rehearsal = results.rehearsal
    # Benchmarks the rehearsal ran under another name (offline look-alikes) or not at all.
    renamed = sorted(rehearsal.tasks.items()) if rehearsal else []
    return {
        "record": results,
        "rehearsal": rehearsal,
        "rehearsal_tasks": [{"real": real, "rehearsed": rehearsed} for real, rehearsed in renamed if rehearsed != real],
        "model": results.model,
        "training": results.training,
        "merge": results.merge,
        "evaluation": results.evaluation,
        "provenance": results.provenance,
    }


def missing_sections(results: Results, release: str) -> list[dict[str, str]]:
    """Each stage whose record section is absent, with the command that writes it (one entry per command)."""
    from pipeline.stages import STAGES

    missing = []
    for stage in STAGES.values():
        absent = [section for section in stage.owns if section in SECTIONS and getattr(results, section) is None]
        if absent:  # merge writes both model and merge: name the first it lacks
            missing.append({"section": absent[0], "command": f"pubctl {stage.name} {release}"})
    return missing


def method_facts(
    spec: MethodSpec, training: TrainingRecord | None, evaluation: EvaluationRecord | None = None
) -> dict[str, Any]:
    params = training.method_params if training else {}
    return {
        "method_name": spec.name,
        "method_title": spec.title,
        "method_params": [(key, show(value)) for key, value in params.items() if key != "name"],
        # pubctl's train records every setting; an imported run only those its config writes (no file holds
        # them): a method partial that explains the settings of the run says so instead of guessing defaults.
        "method_params_complete": set(spec.params.model_fields) - {"name"} <= set(params),
        "citations": citations_for(
            (*spec.citations, *tool_citations(training is not None, evaluation.harness if evaluation else None))
        ),
        "preference_tuned": spec.consumes != "text",
    }


def datasets(training: TrainingRecord | None, root: Path) -> list[dict[str, Any]]:
    """The training datasets, each linked when it is on the Hub."""
    return [
        {
            "id": ds.id,
            "split": ds.split,
            "revision": ds.revision,
            "rows": ds.rows,
            "held_out": ds.eval_rows,
            "url": DataRef.parse(ds.id, root, ds.revision).hub_url,
        }
        for ds in (training.datasets if training else [])
    ]


def hyperparameters(hp: Hyperparameters | None) -> dict[str, Any]:
    if hp is None:
        return {"hp": None, "lora_targets": None, "extra_hyperparameters": []}
    targets = hp.lora.target_modules
    return {
        "hp": hp,
        "lora_targets": targets if isinstance(targets, str) else ", ".join(targets),
        "extra_hyperparameters": [(key, show(value)) for key, value in hp.listed()],
    }


def usage(config: ReleaseConfig, root: Path, results: Results) -> dict[str, Any]:
    """The base model's link and what the "How to use" example needs."""
    rows = results.evaluation.results if results.evaluation else []
    base = base_model(config, results)
    language = list(config.card.language)
    return {
        "base_model_url": ModelRef.parse(base, root).hub_url,
        "base_label": base if any(row.base_value is not None for row in rows) else None,
        "usage_dtype": results.model.dtype if results.model else "auto",
        "usage_prompt": USAGE_PROMPTS.get(language[0], USAGE_PROMPTS["en"]),
        "trained_on_chat": trained_on_chat(results.training),
    }


def trained_on_chat(training: TrainingRecord | None) -> bool | None:
    """Whether the model was trained on conversations: TRL applies the chat template only to those.

    None where the record does not say, or its datasets disagree.
    """
    formats = {ds.conversational for ds in (training.datasets if training else [])}
    return formats.pop() if len(formats) == 1 and formats <= {True, False} else None


def found_limitations(evaluation: EvaluationRecord | None, k: float) -> list[str]:
    """Limitations the record itself shows: plain text the template escapes (the config's own items are Markdown)."""
    if evaluation is None:
        return []
    found = []
    near = [row for row in evaluation.results if is_near_chance(row, k)]
    if near:
        found.append(f"Scores within {number(k)} standard errors of chance on: {_tasks(near)}.")
    below = [row for row in evaluation.results if is_below_chance(row, k)]
    if below:
        found.append(
            f"Scores more than {number(k)} standard errors below chance on: {_tasks(below)}: the model favours "
            "wrong answers there more than random guessing would."
        )
    limit = evaluation_limit(evaluation)
    if limit is not None:
        found.append(
            f"Benchmarks were scored on at most {limit} items per task (lm-eval limit): a smoke test, "
            "not a full benchmark run; compare them with nothing published."
        )
    if any(row.base_value is None for row in evaluation.results):
        found.append("Some benchmarks have no base-model score, so no improvement can be read from them.")
    return found


def _tasks(rows: list[BenchmarkResult]) -> str:
    return ", ".join(row.task for row in rows)


def waivers(config: ReleaseConfig, results: Results, root: Path) -> list[dict[str, str]]:
    """Every waiver: recorded in results.json (pubctl check --allow) and declared in the config."""
    found = [{"check": w.check, "reason": w.reason, "source": "results.json"} for w in results.waivers]
    recorded = {(w["check"], w["reason"]) for w in found}
    source = "the release config"
    if config.path is not None:
        path = config.path.resolve()
        source = str(path.relative_to(root)) if path.is_relative_to(root) else path.name
    for check, reason in config.checks.allow.items():
        if (check, reason) not in recorded:
            found.append({"check": check, "reason": reason, "source": source})
    return found


def provenance(results: Results) -> dict[str, Any]:
    recorded = results.provenance
    if recorded is None:
        return {"hardware": None, "versions": [], "git_source": None}
    return {
        "hardware": _hardware(recorded.hardware),
        "versions": sorted(recorded.versions.items()),
        "git_source": describe_commit(recorded.git_commit),
    }


def _hardware(hardware: dict[str, Any]) -> str | None:
    parts = [f"{key}: {show(value) if value not in ([], {}) else 'none'}" for key, value in sorted(hardware.items())]
    return "; ".join(parts) or None
