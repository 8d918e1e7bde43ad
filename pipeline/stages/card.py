"""The card stage: cards/NAME/README.md and plots/*.png from cards/NAME/results.json and templates alone.

The body is rendered by jinja2 in a SandboxedEnvironment (a user's template
cannot reach Python internals) with StrictUndefined (a missing value is an
error, never a blank) and a finalize hook that refuses to print None (a
template must say what is missing instead). Autoescaping is off because the
output is Markdown, not HTML; every record value goes through a Markdown filter
from pipeline.markdown instead. The YAML front matter is not templated at all:
it is built as data with huggingface_hub's ModelCardData and EvalResult and
dumped by the library, so no value can break it.

This module imports no torch, transformers, trl, peft, datasets or lm_eval:
``pubctl card`` runs on a laptop without the training stack.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import __version__
from pipeline.citations import citations_for
from pipeline.errors import CheckFailed, UsageError
from pipeline.judgments import evaluation_limit, is_below_chance, is_near_chance
from pipeline.layout import Layout, templates_dir
from pipeline.markdown import (
    code_span,
    duration,
    escape_cell,
    escape_inline,
    escape_url,
    number,
    prose,
    py_string,
    signed,
    size,
)
from pipeline.results import Results, atomic_write_bytes, atomic_write_text, read_results

if TYPE_CHECKING:
    from huggingface_hub import ModelCardData

    from pipeline.config import ReleaseConfig
    from pipeline.plots import Plot

DEFAULT_TEMPLATE = "model_card.md.j2"
USAGE_PROMPTS = {
    "en": "Give me three tips for writing a clear email.",
    "ar": "أعطني ثلاث نصائح لكتابة بريد إلكتروني واضح.",
}
STAGE_OF_SECTION = {
    "training": "train",
    "model": "merge",
    "merge": "merge",
    "evaluation": "evaluate",
}


@dataclass(frozen=True)
class RenderedCard:
    """A card in memory: the README text and each plot's PNG bytes by file name."""

    readme: str
    plots: dict[str, bytes]


# --------------------------------------------------------------------- public API
def render_card(config: ReleaseConfig, layout: Layout) -> Path:
    """Write cards/NAME/README.md and cards/NAME/plots/*.png atomically; returns the README path."""
    card = render(config, layout, reuse_plots=True)
    layout.plots_dir.mkdir(parents=True, exist_ok=True)
    for name, png in card.plots.items():
        target = layout.plots_dir / name
        if not (target.is_file() and target.read_bytes() == png):
            atomic_write_bytes(target, png)
    # Figures an earlier render drew from data the record no longer holds would mislead.
    for stale in sorted(layout.plots_dir.glob("*.png")):
        if stale.name not in card.plots:
            stale.unlink()
    # The README last: it never names a plot that is not on disk yet.
    atomic_write_text(layout.readme, card.readme)
    return layout.readme


def check_card(config: ReleaseConfig, layout: Layout) -> None:
    """Raise CheckFailed with a unified diff when the committed card differs from a fresh render."""
    problems = card_differences(config, layout)
    if problems:
        raise CheckFailed(
            f"The committed card of '{layout.name}' is stale: it differs from a fresh render of "
            f"{layout.results}. Run `pubctl card {layout.name}` and commit the result.\n" + "\n".join(problems)
        )


def card_differences(config: ReleaseConfig, layout: Layout) -> list[str]:
    """What differs between the committed README/plots and a fresh in-memory render (empty: up to date).

    Every figure is drawn again (no reuse of committed PNGs), so a hand-edited plot is caught too.
    """
    fresh = render(config, layout, reuse_plots=False)
    problems: list[str] = []
    if not layout.readme.is_file():
        problems.append(f"{layout.readme}: missing (never rendered).")
    else:
        committed = layout.readme.read_text(encoding="utf-8")
        if committed != fresh.readme:
            diff = difflib.unified_diff(
                committed.splitlines(keepends=True),
                fresh.readme.splitlines(keepends=True),
                fromfile=f"committed/{layout.readme.name}",
                tofile=f"fresh/{layout.readme.name}",
            )
            problems.append("".join(diff).rstrip("\n"))
    on_disk = {path.name: path for path in layout.plots_dir.glob("*.png")} if layout.plots_dir.is_dir() else {}
    for name in sorted(set(on_disk) | set(fresh.plots)):
        if name not in on_disk:
            problems.append(f"plots/{name}: missing from the committed card.")
        elif name not in fresh.plots:
            problems.append(f"plots/{name}: committed but a fresh render does not draw it.")
        elif on_disk[name].read_bytes() != fresh.plots[name]:
            problems.append(f"plots/{name}: differs from a fresh render (binary).")
    return problems


def render(config: ReleaseConfig, layout: Layout, *, reuse_plots: bool = False) -> RenderedCard:
    """Render the card in memory from the record and the templates.

    ``reuse_plots``: keep a committed PNG whose embedded input digest matches instead of drawing it
    again (same bytes, without importing matplotlib); ``pubctl card`` uses it, ``--check`` does not.
    """
    from pipeline.plots import build_plots

    results = read_results(layout.results)
    method_metrics = _method_spec(results, config).metrics
    plots = build_plots(results, method_metrics, reuse=layout.plots_dir if reuse_plots else None)
    env, template_name = _environment(config, layout)
    context = build_context(config, layout, results, plots)
    context["method_partial"] = _method_partial(env, context["method_name"])
    body = _render_body(env, template_name, context)
    front = card_data(config, results, layout.root).to_yaml()
    readme = f"---\n{front}\n---\n\n{body}"
    return RenderedCard(readme=readme, plots={plot.name: plot.png for plot in plots})


# ------------------------------------------------------------------ front matter
def is_hub_id(value: str, root: Path | None = None) -> bool:
    """Whether ``value`` names a Hub repository (not builtin:, not a local path)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if value.startswith(("builtin:", "/", "./", "../", "~")) or "\\" in value:
        return False
    if root is not None and (root / value).exists():
        return False
    try:
        validate_repo_id(value)
    except HFValidationError:
        return False
    return True


def _is_hub_dataset(dataset_id: str, revision: str | None, root: Path | None) -> bool:
    # The train stage pins a local file by its digest ("sha256:<hex>"), a Hub dataset by a commit:
    # the record tells them apart even where the local file is not checked out (CI, another machine).
    return not (revision or "").startswith("sha256:") and is_hub_id(dataset_id, root)


def card_data(config: ReleaseConfig, results: Results, root: Path | None = None) -> ModelCardData:
    """The front matter as data: huggingface_hub dumps it, so no record value can break the YAML.

    ``root`` is the checkout a relative local path is resolved against: the front matter and the
    body must agree on what is a Hub id (``data/prefs.jsonl`` is also a valid repo id).
    """
    from huggingface_hub import EvalResult, ModelCardData

    model = results.model
    title = _title(config)
    base_model = model.base_model if model else config.model.base_model
    hub_base = base_model if is_hub_id(base_model, root) else None
    extra: dict[str, Any] = {}
    if hub_base is not None and model is not None and results.merge is not None:
        # The LoRA was merged into full weights: a fine-tune of the base, not an adapter.
        extra["base_model_relation"] = "finetune"
    eval_results = []
    if results.evaluation is not None:
        harness = f"{results.evaluation.harness} {results.evaluation.harness_version}"
        for row in results.evaluation.results:
            eval_results.append(
                EvalResult(
                    task_type="text-generation",
                    task_name="Text Generation",
                    dataset_type=row.dataset_id or row.task,
                    dataset_name=row.task,
                    dataset_config=row.dataset_config,
                    dataset_split=row.split,
                    dataset_args={"num_few_shot": row.num_fewshot},
                    metric_type=row.metric,
                    metric_value=row.value,
                    metric_name=f"{row.metric} ({row.num_fewshot}-shot)",
                    metric_args={"num_fewshot": row.num_fewshot, "n": row.n},
                    source_name=f"pubctl {__version__} with {harness}",
                    source_url=f"https://huggingface.co/{config.hub.repo_id}/blob/{config.hub.revision}/results.json",
                )
            )
    training = results.training
    datasets = [ds.id for ds in training.datasets if _is_hub_dataset(ds.id, ds.revision, root)] if training else []
    method = training.method if training else config.method.name
    tags = _unique(["pubctl", "trl", method.replace("_", "-"), "lora", *config.card.tags])
    return ModelCardData(
        model_name=title,
        base_model=hub_base,
        license=model.license if model else config.card.license,
        language=list(model.language if model else config.card.language),
        datasets=datasets or None,
        tags=tags,
        library_name="transformers",
        pipeline_tag="text-generation",
        eval_results=eval_results or None,
        **extra,
    )


# ----------------------------------------------------------------------- context
def build_context(config: ReleaseConfig, layout: Layout, results: Results, plots: list[Plot]) -> dict[str, Any]:
    """Everything the template sees: the record's sections and values prepared for Markdown."""
    spec = _method_spec(results, config)
    training = results.training
    model = results.model
    evaluation = results.evaluation
    base_model = model.base_model if model else config.model.base_model
    language = list(model.language) if model else list(config.card.language)
    k = config.checks.near_chance_stderr
    near_chance = [row for row in (evaluation.results if evaluation else []) if is_near_chance(row, k)]
    # Generated from the record: plain text that the template escapes (the config's own items are Markdown).
    found_limitations = []
    if near_chance:
        names = ", ".join(row.task for row in near_chance)
        found_limitations.append(f"Scores within {number(k)} standard errors of chance on: {names}.")
    below_chance = [row for row in (evaluation.results if evaluation else []) if is_below_chance(row, k)]
    if below_chance:
        names = ", ".join(row.task for row in below_chance)
        found_limitations.append(
            f"Scores more than {number(k)} standard errors below chance on: {names}. The model systematically "
            "prefers wrong answers there (or the recorded chance level does not fit the metric)."
        )
    eval_limit = evaluation_limit(evaluation) if evaluation is not None else None
    if eval_limit is not None:
        found_limitations.append(
            f"Benchmarks were scored on at most {eval_limit} items per task (lm-eval limit): a smoke test, "
            "not a full benchmark run; compare them with nothing published."
        )
    if evaluation is not None and any(row.base_value is None for row in evaluation.results):
        found_limitations.append("Some benchmarks have no base-model score, so no improvement can be read from them.")
    missing = [
        {"section": section, "command": f"pubctl {stage} {layout.name}"}
        for section, stage in STAGE_OF_SECTION.items()
        if getattr(results, section) is None
    ]
    # One entry per stage command: model and merge are both written by `pubctl merge`.
    missing = [item for i, item in enumerate(missing) if item["command"] not in {m["command"] for m in missing[:i]}]
    # The train stage records whether each dataset was conversational (TRL applies the chat template
    # only to conversations): None where the record does not say, or its datasets disagree.
    formats = {ds.conversational for ds in (training.datasets if training else [])}
    trained_on_chat = formats.pop() if len(formats) == 1 and formats <= {True, False} else None
    hp = training.hyperparameters if training else None
    return {
        "release": layout.name,
        "title": _title(config),
        "summary": config.card.summary,
        "repo_id": config.hub.repo_id,
        "record": results,
        "rehearsal": results.rehearsal,
        # Benchmarks the rehearsal ran under another name (offline look-alikes) or not at all.
        "rehearsal_tasks": [
            {"real": real, "rehearsed": rehearsed}
            for real, rehearsed in sorted(results.rehearsal.tasks.items())
            if rehearsed != real
        ]
        if results.rehearsal
        else [],
        "model": model,
        "training": training,
        "merge": results.merge,
        "evaluation": evaluation,
        "provenance": results.provenance,
        "missing": missing,
        "method_name": spec.name,
        "method_title": spec.title,
        "method_params": _method_params(training.method_params if training else {}),
        "citations": citations_for(spec.citations),
        "datasets": [
            {
                "id": ds.id,
                "split": ds.split,
                "revision": ds.revision,
                "rows": ds.rows,
                "url": f"https://huggingface.co/datasets/{ds.id}"
                if _is_hub_dataset(ds.id, ds.revision, layout.root)
                else None,
            }
            for ds in (training.datasets if training else [])
        ],
        "hp": hp,
        "lora_targets": _lora_targets(hp.lora.target_modules) if hp else None,
        "extra_hyperparameters": [(key, _show(value)) for key, value in hp.listed()] if hp else [],
        "base_model_url": f"https://huggingface.co/{base_model}" if is_hub_id(base_model, layout.root) else None,
        "base_label": base_model if evaluation and any(r.base_value is not None for r in evaluation.results) else None,
        "usage_dtype": model.dtype if model else "auto",
        "usage_prompt": USAGE_PROMPTS.get(language[0], USAGE_PROMPTS["en"]),
        "trained_on_chat": trained_on_chat,
        "preference_tuned": spec.consumes != "text",
        "plots": [{"path": f"plots/{plot.name}", "alt": plot.alt, "title": plot.title} for plot in plots],
        "near_chance": near_chance,
        "eval_limit": eval_limit,
        "near_chance_stderr": k,
        "comparison": _comparison(config, layout, results),
        "limitations": list(config.card.limitations),
        "found_limitations": found_limitations,
        "waivers": _waivers(config, results, layout.root),
        "hardware": _hardware(results.provenance.hardware) if results.provenance else None,
        "versions": sorted(results.provenance.versions.items()) if results.provenance else [],
    }


def _title(config: ReleaseConfig) -> str:
    return config.card.model_name or config.hub.repo_id.split("/")[-1]


def _method_spec(results: Results, config: ReleaseConfig):  # -> MethodSpec
    from pipeline.methods import get_method

    return get_method(results.training.method if results.training else config.method.name)


def _method_params(params: dict[str, Any]) -> list[tuple[str, str]]:
    return [(key, _show(value)) for key, value in params.items() if key != "name"]


def _show(value: Any) -> str:
    """A config or hyperparameter value as text (None, booleans and floats spelt as a user would)."""
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return number(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(_show(item) for item in value)
    return str(value)


def _lora_targets(targets: list[str] | str) -> str:
    return targets if isinstance(targets, str) else ", ".join(targets)


def _hardware(hardware: dict[str, Any]) -> str | None:
    parts = [f"{key}: {_show(value) if value not in ([], {}) else 'none'}" for key, value in sorted(hardware.items())]
    return "; ".join(parts) or None


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _waivers(config: ReleaseConfig, results: Results, root: Path) -> list[dict[str, str]]:
    """Every waiver: recorded in results.json (pubctl check --allow) and declared in the config."""
    waivers = [{"check": w.check, "reason": w.reason, "source": "results.json"} for w in results.waivers]
    recorded = {(w["check"], w["reason"]) for w in waivers}
    source = "the release config"
    if config.path is not None:
        path = config.path.resolve()
        source = str(path.relative_to(root)) if path.is_relative_to(root) else path.name
    for check, reason in config.checks.allow.items():
        if (check, reason) not in recorded:
            waivers.append({"check": check, "reason": reason, "source": source})
    return waivers


def _comparison(config: ReleaseConfig, layout: Layout, results: Results) -> dict[str, Any] | None:
    """Recorded facts of this release and of card.compare_with, one row each, no ranking."""
    if not config.card.compare_with:
        return None
    records = [(layout.name, results, True)]
    for other in config.card.compare_with:
        path = layout.card_dir_of(other) / "results.json"
        if not path.is_file():
            raise UsageError(
                f"card.compare_with names '{other}', but {path} does not exist: render or fetch that release's "
                "card bundle first, or remove it from card.compare_with."
            )
        records.append((other, read_results(path), False))
    columns: dict[tuple[str, str, int], str] = {}
    for _, record, _ in records:
        for row in record.evaluation.results if record.evaluation else []:
            columns.setdefault(
                (row.task, row.metric, row.num_fewshot), f"{row.task} {row.metric} {row.num_fewshot}-shot"
            )
    rows = []
    for name, record, current in records:
        scores = {
            (r.task, r.metric, r.num_fewshot): r.value for r in (record.evaluation.results if record.evaluation else [])
        }
        training = record.training
        rows.append(
            {
                "release": name,
                "current": current,
                "method": training.method if training else "not trained",
                "samples": training.samples if training else None,
                "steps": training.steps if training else None,
                "runtime": training.runtime_seconds if training else None,
                "final_loss": training.final_loss if training else None,
                "scores": [scores.get(key) for key in columns],
            }
        )
    return {"columns": [{"label": label} for label in columns.values()], "rows": rows}


# ---------------------------------------------------------------------- templates
def _finalize(value: Any) -> Any:
    # StrictUndefined catches missing names; this catches present-but-None values,
    # which would otherwise print as the word "None" on a published card.
    if value is None:
        import jinja2

        raise jinja2.TemplateError("a template printed None: test the value with 'is not none' and say what is missing")
    return value


def _environment(config: ReleaseConfig, layout: Layout):  # -> tuple[SandboxedEnvironment, str]
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    default_dir = templates_dir(layout.root)
    if not (default_dir / DEFAULT_TEMPLATE).is_file():
        raise UsageError(f"No card templates: {default_dir / DEFAULT_TEMPLATE} does not exist.")
    search = [default_dir]
    name = config.card.template
    if not (default_dir / name).is_file():
        user = Path(name).expanduser()
        user = user if user.is_absolute() else layout.root / user
        if not user.is_file():
            raise UsageError(
                f"card.template {name!r}: no template at {default_dir / name} or {user}. Name a file in "
                f"{default_dir} or a path to a Jinja template."
            )
        if user.name == DEFAULT_TEMPLATE and user.parent.resolve() != default_dir.resolve():
            raise UsageError(
                f"card.template {name!r}: a user template must not be called {DEFAULT_TEMPLATE}, the name it extends."
            )
        search.insert(0, user.parent)
        name = user.name
    options = {"autoescape": False, "trim_blocks": True, "lstrip_blocks": True, "keep_trailing_newline": True}
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader([str(path) for path in search]),
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        bytecode_cache=_bytecode_cache(layout, options),
        **options,  # autoescape off: Markdown, not HTML; the filters below escape instead
    )
    env.filters.update(
        md=escape_inline,
        prose=prose,
        code=code_span,
        cell=escape_cell,
        url=escape_url,
        py=py_string,
        num=number,
        signed=signed,
        duration=duration,
        filesize=size,
        show=_show,
    )
    return env, name


def _bytecode_cache(layout: Layout, options: dict[str, bool]):  # -> jinja2.FileSystemBytecodeCache | None
    """Compiled templates cached under runs/_cache: compiling them is a third of a re-render's time.

    Jinja keys the cache by template name and source checksum, not by environment options, so
    the folder name carries the options and the jinja version. Output never depends on the cache.
    """
    import jinja2
    from jinja2.bccache import FileSystemBytecodeCache

    signature = hashlib.sha256(f"{jinja2.__version__} {sorted(options.items())} finalize".encode()).hexdigest()[:12]
    folder = layout.cache_dir / "card-templates" / signature
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only checkout renders the same card, only without the cache
    return FileSystemBytecodeCache(str(folder))


def _method_partial(env: Any, method: str) -> str:
    import jinja2

    name = f"partials/method_{method}.md.j2"
    try:
        env.get_template(name)
    except jinja2.TemplateNotFound:
        raise UsageError(
            f"No card partial for method '{method}': templates/{name} is missing. Every training method needs "
            "one (what it optimises, its objective in words, its citations)."
        ) from None
    return name


def _render_body(env: Any, template_name: str, context: dict[str, Any]) -> str:
    import jinja2

    try:
        text = env.get_template(template_name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise UsageError(f"Card template {exc.filename or exc.name}, line {exc.lineno}: {exc.message}.") from None
    except jinja2.TemplateError as exc:
        raise UsageError(f"Rendering the card with template {template_name!r} failed: {exc}.") from None
    # Block tags leave runs of blank lines where optional sections are absent; Markdown ignores them,
    # a reviewer reading the diff does not.
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"
    return text
