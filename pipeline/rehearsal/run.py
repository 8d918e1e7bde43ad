"""Run a rehearsal: prepare the shrunk base, data sample and config, then the release chain as a dry run."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from rich.console import Console
from rich.markup import escape

from pipeline.errors import UsageError
from pipeline.layout import Layout
from pipeline.rehearsal.options import REHEARSAL_SUFFIX, RehearsalOptions

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig

console = Console(stderr=True, highlight=False, soft_wrap=True)


def rehearsal_layout(config: ReleaseConfig) -> Layout:
    return Layout.for_release(f"{config.name}{REHEARSAL_SUFFIX}")


def rehearse(config: ReleaseConfig, options: RehearsalOptions, *, force: bool = False) -> Layout:
    """Rehearse ``config`` into runs/NAME-rehearsal and cards/NAME-rehearsal; returns that layout."""
    import torch
    from huggingface_hub import constants

    from pipeline.config import load_config
    from pipeline.precision import check_precision, computes_natively
    from pipeline.rehearsal.data_sample import sample_data
    from pipeline.rehearsal.derive import derive_config
    from pipeline.rehearsal.model_files import build_random_base, fetch_model_files
    from pipeline.release import run_release
    from pipeline.results import RehearsalRecord, atomic_write_text, update_results

    if config.name.endswith(REHEARSAL_SUFFIX):
        raise UsageError(f"'{config.name}' is a rehearsal already; rehearse the release it was made from.")
    offline = options.offline or constants.HF_HUB_OFFLINE
    options = dataclasses.replace(options, offline=offline)
    layout = rehearsal_layout(config)
    root = layout.root
    release = Layout.for_release(config.name, root)  # read from (its base and data), never written to
    _refuse_overwriting_a_release(layout)
    # The cheap refusals first (a dtype this machine cannot train in, a Hub source offline without its local
    # stand-in), then the benchmark names (lm-eval indexes its task folder), then the heavy work.
    check_precision(config)
    _check_offline_sources(config, root, options)
    _check_tasks(config, layout)

    files = fetch_model_files(config, release, options)
    _say(f"rehearsal: base files of {config.model.base_model} from {files.source}")
    base = build_random_base(
        files,
        layout.run_dir / "base",
        layers=options.layers,
        dtype=config.model.dtype,
        trust_remote_code=config.model.trust_remote_code,
    )
    _say(
        f"rehearsal: random-weight {base.architecture}, {base.layers} of {base.real_layers} layers, "
        f"{base.parameters:,} parameters, in {base.folder}"
    )
    sample = sample_data(config, release, options, layout.run_dir / "data" / "train.parquet")
    _say(f"rehearsal: {sample.rows} rows of {config.data.train} from {sample.source}")
    data, changes, tasks = derive_config(
        config,
        options,
        base_model=_relative(base.folder, root),
        data_file=_relative(sample.path, root),
        rows=sample.rows,
        offline=offline,
        on_gpu=torch.cuda.is_available(),
        native_dtype=computes_natively(config.model.dtype),
    )
    config_file = layout.run_dir / "config" / f"{layout.name}.yaml"
    header = f"# Written by pubctl release {config.name} --rehearse: the rehearsal of {config.path}. Do not edit.\n"
    atomic_write_text(config_file, header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    rehearsal_config = load_config(str(config_file), root)
    record = RehearsalRecord(
        of=config.name,
        config_sha256=config.sha256,
        base_model=config.model.base_model,
        model_files=files.source,
        model_files_revision=files.revision,
        layers=base.layers,
        real_layers=base.real_layers,
        random_parameters=base.parameters,
        dataset=config.data.train,
        data_source=sample.source,
        data_revision=sample.revision,
        rows=sample.rows,
        eval_rows=sample.eval_rows,
        offline=offline,
        tasks=tasks,
        changes=changes,
    )
    update_results(layout.results, layout.name, rehearsal=record)
    skipped = [name for name, rehearsed in tasks.items() if rehearsed is None]
    if skipped:
        _say(f"[yellow]rehearsal: no offline look-alike for {', '.join(skipped)}; their names were checked only.[/]")
    run_release(rehearsal_config, layout, dry_run=True, force=force)
    _say(
        f"[bold green]rehearsal of {escape(config.name)} passed[/]: card {_relative(layout.readme, root)}, push "
        f"plan {_relative(layout.push_plan, root)}. Nothing was pushed; the real release is untouched."
    )
    return layout


def _refuse_overwriting_a_release(layout: Layout) -> None:
    """A real release may be named NAME-rehearsal: its record (one without a rehearsal section) is never touched."""
    from pipeline.results import read_results

    if layout.results.is_file() and read_results(layout.results).rehearsal is None:
        raise UsageError(
            f"{layout.results} is the record of a release named '{layout.name}', not of a rehearsal: rehearsing "
            f"would overwrite it. Rename that release (or move its cards/ and runs/ folders) first."
        )


def _check_offline_sources(config: ReleaseConfig, root: Path, options: RehearsalOptions) -> None:
    """Offline, a Hub model or dataset needs --model-files / --data: said before anything is built."""
    if not options.offline:
        return
    from pipeline.rehearsal.data_sample import offline_data_problem
    from pipeline.rehearsal.model_files import offline_model_problem

    for problem in (offline_model_problem(config, root, options), offline_data_problem(config, root, options)):
        if problem:
            raise UsageError(problem)


def _check_tasks(config: ReleaseConfig, layout: Layout) -> None:
    """The real benchmark names must exist in lm-eval (or the config's task folder), online or not."""
    from pipeline.evaluation.harness import check_task_names, task_manager
    from pipeline.evaluation.tasks import prepare_task_source

    source = prepare_task_source(config.evaluation.include_path, layout.root, layout.eval_dir)
    check_task_names(task_manager(source), list(config.evaluation.tasks), source)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def _say(message: str) -> None:
    console.print(message)
