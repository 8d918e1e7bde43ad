"""The release chain: train -> merge -> evaluate -> card -> check -> push, skipping what is unchanged.

Every stage, whether the chain runs it or its own command does (``pubctl
train``...), goes through :func:`run_stage`, which forgets the stage's stamp,
runs it, checks that it left its outputs and writes a new stamp
(pipeline/stamps.py). :func:`run_release` then skips a stage whose inputs hash
as in its stamp and whose outputs are still there, so ``pubctl train demo``
followed by ``pubctl release demo`` does not train twice, and a finished release
re-run does nothing. Deciding that reads only stamps, config and file stats:
torch is imported only when a stage that needs it actually runs.

What a stage depends on is declared here, next to the order of the chain, so the
whole cache policy can be read in one place:

- train: model, data, method, lora, training; the base model, the data file and the accelerate config file.
- merge: model, lora, merge, and the hub.repo_id, card.license and card.language it records; the adapter and
  the base model.
- evaluate: model, evaluation; the merged model and the task files.
- card: card, checks, hub, method, model; results.json, the templates, compared releases' results.
- check: every section; the card bundle and the merged model.
- push: hub; the card bundle, the merged model, the adapter (with hub.adapter_repo_id).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from pipeline import __version__
from pipeline.errors import PubctlError, StageFailed, UsageError
from pipeline.layout import Layout, templates_dir
from pipeline.stamps import (
    MISSING,
    FileHasher,
    StageInputs,
    canonical_hash,
    changes,
    new_stamp,
    read_stamp,
    remove_stamp,
    stamp_path,
    write_stamp,
)

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig

STAGES = ("train", "merge", "evaluate", "card", "check", "push")
HASH_CACHE = ".file-hashes.json"

console = Console(stderr=True, highlight=False, soft_wrap=True)

Files = Callable[["ReleaseConfig", Layout, FileHasher], dict[str, str]]


# ----------------------------------------------------------------- what each stage depends on
def _base_model(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> str:
    reference = config.model.base_model
    if reference.startswith("builtin:"):
        # The recipe hash names the built model exactly (seed, architecture, corpus) without building it.
        from pipeline.demo.tiny_model import recipe_hash

        return f"{reference}#{recipe_hash()}"
    local = Path(reference).expanduser()
    local = local if local.is_absolute() else layout.root / local
    if local.is_dir():
        return hasher.tree(local)
    # A Hub model is known by its id and revision; an unpinned 'main' that moves is not noticed offline.
    return f"hub:{reference}@{config.model.revision or 'main'}"


def _dataset(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> str:
    from pipeline.sources import resolve_dataset_file

    path = resolve_dataset_file(config.data.train, layout)
    if path is None:
        subset = f"/{config.data.subset}" if config.data.subset else ""
        return f"hub:{config.data.train}{subset}@{config.data.revision or 'main'}"
    return hasher.tree(path)


def _tasks(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> str:
    include = config.evaluation.include_path
    if include is None:
        return "lm-eval built-in tasks"  # versioned by lm_eval's version, which is stamped
    from pipeline.config import BUILTIN_TASKS

    if include == BUILTIN_TASKS:
        from pipeline.demo import TASKS_DIR

        return hasher.tree(TASKS_DIR)
    path = Path(include).expanduser()
    return hasher.tree(path if path.is_absolute() else layout.root / path)


def _results_sections(layout: Layout, names: tuple[str, ...]) -> dict[str, str]:
    """Hashes of some top-level sections of results.json (a stage's share of the shared record)."""
    try:
        data = json.loads(layout.results.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    return {f"results.{name}": canonical_hash(data[name]) if name in data else MISSING for name in names}


def _train_inputs(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    inputs = {"base model": _base_model(config, layout, hasher), "dataset": _dataset(config, layout, hasher)}
    config_file = config.training.launcher.config_file
    if config_file:
        # The accelerate config (mixed precision, DeepSpeed/FSDP) changes the run; the config holds only its path.
        path = Path(config_file).expanduser()
        inputs["accelerate config"] = hasher.file(path if path.is_absolute() else layout.root / path)
    return inputs


def _train_outputs(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    return {"adapter": hasher.tree(layout.adapter_dir), **_results_sections(layout, ("training",))}


def _merge_inputs(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    # The merge copies hub.repo_id, card.license and card.language into the record's model section, which the
    # card renders: those fields (not their whole sections, whose prose edits must not re-merge) are its inputs.
    recorded = {"hub.repo_id": config.hub.repo_id, "card.license": config.card.license}
    recorded["card.language"] = list(config.card.language)
    return {
        "base model": _base_model(config, layout, hasher),
        "adapter": hasher.tree(layout.adapter_dir),
        "recorded config fields": canonical_hash(recorded),
    }


def _merge_outputs(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    return {"merged model": hasher.tree(layout.merged_model_dir), **_results_sections(layout, ("merge", "model"))}


def _evaluate_inputs(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    return {
        "merged model": hasher.tree(layout.merged_model_dir),
        "base model": _base_model(config, layout, hasher),
        "tasks": _tasks(config, layout, hasher),
    }


def _evaluate_outputs(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    return _results_sections(layout, ("evaluation",))


def _card_inputs(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    inputs = {"results.json": hasher.file(layout.results), "templates": hasher.tree(templates_dir(layout.root))}
    template = Path(config.card.template).expanduser()
    template = template if template.is_absolute() else layout.root / template
    if template.is_file():  # a template outside templates/
        inputs["template"] = hasher.file(template)
    for other in config.card.compare_with:
        inputs[f"results.json of {other}"] = hasher.file(layout.card_dir_of(other) / "results.json")
    return inputs


def _card_outputs(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    return {"README.md": hasher.file(layout.readme), "plots": hasher.tree(layout.plots_dir)}


def _check_inputs(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    return {"card bundle": hasher.tree(layout.card_dir), "merged model": hasher.tree(layout.merged_model_dir)}


def _push_inputs(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    inputs = {"card bundle": hasher.tree(layout.card_dir), "merged model": hasher.tree(layout.merged_model_dir)}
    if config.hub.adapter_repo_id:
        inputs["adapter"] = hasher.tree(layout.merged_adapter_dir)
    return inputs


def _no_outputs(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class StageSpec:
    """One link of the chain: how to call it and what its result depends on."""

    name: str
    module: str
    function: str
    sections: tuple[str, ...]
    """Config sections it reads ('*' = all)."""
    packages: tuple[str, ...]
    """Libraries whose version changes its result."""
    inputs: Files
    outputs: Files
    required: tuple[str, ...] = ()
    """Outputs a successful run must leave (a run without them is a failed stage, not a finished one)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Options that change its result, with the value meaning 'as the config says'."""
    chain_options: dict[str, Any] = field(default_factory=dict)
    """What the release chain passes (besides push's dry_run)."""

    def call(self) -> Callable[..., Any]:
        return load_function(self.module, self.function)


SPECS: dict[str, StageSpec] = {
    spec.name: spec
    for spec in (
        StageSpec(
            "train",
            "pipeline.stages.train",
            "run",
            ("model", "data", "method", "lora", "training"),
            ("torch", "transformers", "trl", "peft", "accelerate", "datasets"),
            _train_inputs,
            _train_outputs,
            required=("adapter", "results.training"),
        ),
        StageSpec(
            "merge",
            "pipeline.stages.merge",
            "run",
            ("model", "lora", "merge"),
            ("torch", "transformers", "peft", "safetensors"),
            _merge_inputs,
            _merge_outputs,
            required=("merged model", "results.merge"),
        ),
        StageSpec(
            "evaluate",
            "pipeline.stages.evaluate",
            "run",
            ("model", "evaluation"),
            ("torch", "transformers", "lm_eval", "datasets"),
            _evaluate_inputs,
            _evaluate_outputs,
            required=("results.evaluation",),
            options={"limit": None, "tasks": None},
        ),
        StageSpec(
            "card",
            "pipeline.stages.card",
            "render_card",
            ("card", "checks", "hub", "method", "model"),
            ("jinja2", "matplotlib", "huggingface_hub"),
            _card_inputs,
            _card_outputs,
            required=("README.md",),
        ),
        StageSpec(
            "check",
            "pipeline.checks",
            "run_checks_command",
            ("*",),
            ("huggingface_hub",),
            _check_inputs,
            _no_outputs,
            options={"allow": {}},
            chain_options={"allow": {}},
        ),
        StageSpec(
            "push",
            "pipeline.stages.push",
            "run",
            ("hub",),
            ("huggingface_hub",),
            _push_inputs,
            _no_outputs,
            options={
                "card_only": False,
                "revision": None,
                "tag": None,
                "private": None,
                "create_pr": None,
                "message": None,
            },
        ),
    )
}


def load_function(module: str, attr: str) -> Callable[..., Any]:
    """Import a stage lazily: its heavy imports happen only when it runs."""
    try:
        return getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("pipeline"):
            raise UsageError(
                f"{module} cannot be imported: {exc.name} is missing from this pubctl installation; "
                "reinstall pubctl (pip install -e . in a checkout)."
            ) from None
        raise UsageError(
            f"{module} needs the package '{exc.name}', which is not installed. "
            "Install the training stack with: pip install 'pubctl[train]'."
        ) from None


@functools.cache
def _version(package: str) -> str | None:
    from pipeline.provenance import package_versions

    return package_versions((package,)).get(package)


def stage_inputs(
    spec: StageSpec, config: ReleaseConfig, layout: Layout, hasher: FileHasher, options: dict
) -> StageInputs:
    """Hashes of everything ``spec``'s result depends on, now."""
    names = tuple(type(config).model_fields) if spec.sections == ("*",) else spec.sections
    sections = {name: canonical_hash(getattr(config, name).model_dump(mode="json")) for name in names}
    versions = {"pubctl": __version__}
    versions.update({name: _version(name) or "not installed" for name in spec.packages})
    stamped = {name: options.get(name, default) for name, default in spec.options.items()}
    return StageInputs(config=sections, files=spec.inputs(config, layout, hasher), versions=versions, options=stamped)


def _hasher(layout: Layout) -> FileHasher:
    return FileHasher(layout.stamps_dir / HASH_CACHE)


def _is_plan(stage: str, options: dict[str, Any]) -> bool:
    """A push dry run changes nothing on the Hub: it neither needs nor leaves a stamp."""
    return stage == "push" and bool(options.get("dry_run"))


def _summary(stage: str, result: Any, config: ReleaseConfig, options: dict[str, Any]) -> str:
    text = result if isinstance(result, str) else getattr(result, "summary", None)  # push returns a PushPlan
    if isinstance(text, str) and text.strip():
        return text.strip().splitlines()[0]
    if stage == "push":
        revision = options.get("revision") or config.hub.revision
        return f"pushed to {config.hub.repo_id}@{revision}"
    return "done"


def _own_record(layout: Layout, stage: str) -> dict[str, Any] | None:
    """What a stage wrote at its stamp's path itself (push records its commit, url, bytes sent), kept in the stamp."""
    path = stamp_path(layout.stamps_dir, stage)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if "stamp_version" in data:  # a stamp of ours, from an earlier run: not new information
        return data.get("record")
    return data


def _execute(stage: str, config: ReleaseConfig, layout: Layout, hasher: FileHasher, options: dict[str, Any]) -> Any:
    spec = SPECS[stage]
    function = spec.call()  # a missing stage or package fails before the old stamp is forgotten
    plan = _is_plan(stage, options)
    if stage != "push":
        # Local outputs may be half-rewritten by a failed run. A push is atomic on the Hub: a failed one
        # leaves the last pushed commit, which the old stamp still describes.
        remove_stamp(layout.stamps_dir, stage)
    started = time.perf_counter()
    result = function(config, layout, **options)
    if plan:
        return result
    seconds = time.perf_counter() - started
    outputs = spec.outputs(config, layout, hasher)
    absent = [name for name in spec.required if outputs.get(name, MISSING) == MISSING]
    if absent:
        raise StageFailed(
            f"{stage} finished without writing {', '.join(absent)} (looked in {layout.run_dir} and "
            f"{layout.results}); it is not recorded as done."
        )
    inputs = stage_inputs(spec, config, layout, hasher, options)
    stamp = new_stamp(stage, inputs, outputs, seconds=seconds, summary=_summary(stage, result, config, options))
    stamp.record = _own_record(layout, stage)
    write_stamp(layout.stamps_dir, stamp)
    hasher.save()
    return result


def run_stage(stage: str, config: ReleaseConfig, layout: Layout, **options: Any) -> Any:
    """Run one stage as its own command does, and stamp it so the release chain can skip it next time."""
    if stage not in SPECS:
        raise UsageError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}.")
    return _execute(stage, config, layout, _hasher(layout), options)


def stage_status(
    stage: str, config: ReleaseConfig, layout: Layout, hasher: FileHasher | None = None, **options: Any
) -> list[str]:
    """Why ``stage`` would run now ([] = up to date), computed from stamps and file stats only."""
    spec = SPECS[stage]
    hasher = hasher or _hasher(layout)
    stamp = read_stamp(layout.stamps_dir, stage)
    if stamp is None:
        return ["never ran (no stamp)"]
    inputs = stage_inputs(spec, config, layout, hasher, options)
    return changes(stamp, inputs, spec.outputs(config, layout, hasher))


def _selected(from_stage: str | None, to_stage: str | None) -> tuple[str, ...]:
    for option, value in (("--from", from_stage), ("--to", to_stage)):
        if value is not None and value not in STAGES:
            raise UsageError(f"{option} {value!r}: not a stage; stages are {', '.join(STAGES)}.")
    first = STAGES.index(from_stage) if from_stage else 0
    last = STAGES.index(to_stage) if to_stage else len(STAGES) - 1
    if first > last:
        raise UsageError(f"--from {from_stage} comes after --to {to_stage}: the chain runs {' -> '.join(STAGES)}.")
    return STAGES[first : last + 1]


def _say(message: str) -> None:
    console.print(message)


def run_release(
    config: ReleaseConfig,
    layout: Layout,
    *,
    dry_run: bool = False,
    force: bool = False,
    from_stage: str | None = None,
    to_stage: str | None = None,
) -> None:
    """Run the chain; each selected stage runs when forced or not up to date, and a failure stops it.

    ``from_stage``/``to_stage`` bound the chain (inclusive); stages outside it are
    neither run nor changed, and an out-of-date stage before ``from_stage`` is
    reported, because later stages then build on its old outputs.
    """
    selected = _selected(from_stage, to_stage)
    with _one_release_at_a_time(layout):
        _run_chain(config, layout, selected, dry_run=dry_run, force=force, from_stage=from_stage)


@contextlib.contextmanager
def _one_release_at_a_time(layout: Layout) -> Iterator[None]:
    """Refuse a second concurrent release of the same name: both would write the same run folder and stamps."""
    try:
        import fcntl
    except ImportError:  # Windows: one release at a time is the documented use
        yield
        return
    layout.stamps_dir.mkdir(parents=True, exist_ok=True)
    with (layout.stamps_dir / ".release.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"another `pubctl release {layout.name}` is running on this machine (it holds "
                f"{layout.stamps_dir / '.release.lock'}); wait for it to finish, then run this one again."
            ) from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run_chain(
    config: ReleaseConfig,
    layout: Layout,
    selected: tuple[str, ...],
    *,
    dry_run: bool,
    force: bool,
    from_stage: str | None,
) -> None:
    hasher = _hasher(layout)
    ran: list[str] = []
    name = escape(config.name)
    for stage in STAGES:
        options: dict[str, Any] = dict(SPECS[stage].chain_options)
        if stage == "push":
            options["dry_run"] = dry_run
        if stage == "train":
            # Resume only a run that did not finish (no stamp: interrupted or failed). After a finished run,
            # changed inputs or --force mean a new run: its checkpoints are complete or of other settings.
            options["resume"] = not force and read_stamp(layout.stamps_dir, "train") is None
        if stage not in selected:
            if from_stage and STAGES.index(stage) < STAGES.index(from_stage):
                stale = stage_status(stage, config, layout, hasher)
                if stale:
                    _say(
                        f"[yellow]{stage}: not up to date ({escape('; '.join(stale))}) but before --from "
                        f"{from_stage}: later stages use its current outputs.[/]"
                    )
            continue
        reasons = ["--force"] if force else stage_status(stage, config, layout, hasher, **options)
        if not reasons:
            stamp = read_stamp(layout.stamps_dir, stage)
            when = f" since {stamp.finished_at}" if stamp else ""
            _say(f"{stage}: up to date{when}, skipped")
            continue
        verb = "planning" if _is_plan(stage, options) else "running"
        _say(f"[bold]{stage}[/]: {verb} ({escape('; '.join(reasons))})")
        try:
            _execute(stage, config, layout, hasher, options)
        except PubctlError:
            done = f"; what {', '.join(ran)} wrote is kept" if ran else ""
            _say(f"[red]release {name}: stopped at {stage}{done}.[/]")
            raise
        ran.append(stage)
    hasher.save()
    if not ran:
        _say(f"release {name}: nothing to do, {', '.join(selected)} up to date (use --force to re-run).")
    else:
        _say(f"release {name}: ran {', '.join(ran)}.")
