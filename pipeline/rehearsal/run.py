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
    from pipeline.rehearsal.data_sample import DataSample
    from pipeline.rehearsal.model_files import ModelFiles, RandomBase
    from pipeline.results import RehearsalRecord

console = Console(stderr=True, highlight=False, soft_wrap=True)


def rehearsal_layout(config: ReleaseConfig) -> Layout:
    return Layout.for_release(f"{config.name}{REHEARSAL_SUFFIX}")


def rehearse(config: ReleaseConfig, options: RehearsalOptions, *, force: bool = False) -> Layout:
    """Rehearse ``config`` into runs/NAME-rehearsal and cards/NAME-rehearsal; returns that layout."""
    from huggingface_hub import constants

    from pipeline.console import StageOutput
    from pipeline.precision import check_precision
    from pipeline.release import run_release
    from pipeline.results import update_results

    if config.name.endswith(REHEARSAL_SUFFIX):
        raise UsageError(f"'{config.name}' is a rehearsal already; rehearse the release it was made from.")
    options = dataclasses.replace(options, offline=options.offline or constants.HF_HUB_OFFLINE)
    layout = rehearsal_layout(config)
    _refuse_overwriting_a_release(layout)
    # The cheap refusals first (a dtype this machine cannot train in, a Hub source offline without its local
    # stand-in, local model files or data that cannot be read, --layers beyond the base's, rows the train stage
    # would refuse), then the benchmark names (lm-eval indexes its task folder), then the heavy work.
    check_precision(config)
    _check_offline_sources(config, layout.root, options)
    _check_local_inputs(config, layout.root, options)
    # Preparing reads data with datasets and writes a model with transformers: their bars and warnings go to
    # the rehearsal's log like any stage's, and pubctl's own lines stay on the terminal.
    preparing = StageOutput(
        "rehearse",
        layout.logs_dir / "rehearse.log",
        header=f"pubctl release {config.name} --rehearse",
        libraries=("datasets", "transformers", "huggingface_hub"),
        quiet_bars=True,
    )
    with preparing:
        sample = _sample(config, layout, options)
        _check_tasks(config, layout)
        inputs = _shrunk_inputs(config, layout, options, sample)
        rehearsal_config, record = _derived_config(config, layout, options, inputs)
    # The rehearse command owns this section: no stage writes it, and a real release never has it.
    update_results(layout.results, layout.name, rehearsal=record)
    skipped = [name for name, rehearsed in record.tasks.items() if rehearsed is None]
    if skipped:
        _say(f"[yellow]rehearsal: no offline look-alike for {', '.join(skipped)}; their names were checked only.[/]")
    run_release(rehearsal_config, layout, dry_run=True, force=force)
    _say(
        f"[bold green]rehearsal of {escape(config.name)} passed[/]: card {_relative(layout.readme, layout.root)}, "
        f"push plan {_relative(layout.push_plan, layout.root)}. Nothing was pushed; the real release is untouched."
    )
    return layout


@dataclasses.dataclass(frozen=True)
class _Inputs:
    files: ModelFiles
    """The real base's config and tokenizer files."""
    base: RandomBase
    """The random-weight base built from them."""
    sample: DataSample
    """The first rows of the real data."""


def _sample(config: ReleaseConfig, layout: Layout, options: RehearsalOptions) -> DataSample:
    """The first rows of the real data, checked as the train stage will check them (cheap: before anything else)."""
    from pipeline.rehearsal.data_sample import sample_data

    release = Layout.for_release(config.name, layout.root)  # read from (its data), never written to
    sample = sample_data(config, release, options, layout.run_dir / "data" / "train.parquet")
    _say(f"rehearsal: {sample.rows} rows of {config.data.train} from {sample.source}")
    return sample


def _shrunk_inputs(config: ReleaseConfig, layout: Layout, options: RehearsalOptions, sample: DataSample) -> _Inputs:
    """The real architecture and tokenizer with random weights and few layers, beside the sample of the real data."""
    from pipeline.rehearsal.model_files import build_random_base, fetch_model_files

    release = Layout.for_release(config.name, layout.root)  # read from (its base), never written to
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
    return _Inputs(files, base, sample)


def _derived_config(
    config: ReleaseConfig, layout: Layout, options: RehearsalOptions, inputs: _Inputs
) -> tuple[ReleaseConfig, RehearsalRecord]:
    """The rehearsal's config, written under runs/NAME-rehearsal/config/, and the record of what it shrank."""
    import torch

    from pipeline.atomic import atomic_write_text
    from pipeline.config import load_config
    from pipeline.precision import computes_natively
    from pipeline.rehearsal.derive import derive_config
    from pipeline.results import RehearsalRecord

    root = layout.root
    data, changes, tasks = derive_config(
        config,
        options,
        base_model=_relative(inputs.base.folder, root),
        data_file=_relative(inputs.sample.path, root),
        rows=inputs.sample.rows,
        offline=options.offline,
        on_gpu=torch.cuda.is_available(),
        native_dtype=computes_natively(config.model.dtype),
    )
    config_file = layout.run_dir / "config" / f"{layout.name}.yaml"
    header = f"# Written by pubctl release {config.name} --rehearse: the rehearsal of {config.path}. Do not edit.\n"
    atomic_write_text(config_file, header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    record = RehearsalRecord(
        of=config.name,
        config_sha256=config.sha256,
        base_model=config.model.base_model,
        model_files=inputs.files.source,
        model_files_revision=inputs.files.revision,
        layers=inputs.base.layers,
        real_layers=inputs.base.real_layers,
        random_parameters=inputs.base.parameters,
        dataset=config.data.train,
        data_source=inputs.sample.source,
        data_revision=inputs.sample.revision,
        rows=inputs.sample.rows,
        eval_rows=inputs.sample.eval_rows,
        offline=options.offline,
        tasks=tasks,
        changes=changes,
    )
    return load_config(str(config_file), root), record


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


def _check_local_inputs(config: ReleaseConfig, root: Path, options: RehearsalOptions) -> None:
    """--data and the base's local files (--model-files or a local base folder) are read before anything is built."""
    from pipeline.data_files import check_data_file
    from pipeline.refs import ModelRef
    from pipeline.rehearsal.model_files import fetch_model_files

    if options.data is not None:
        check_data_file(options.data.expanduser().resolve(), f"--data {options.data}")
    if options.model_files is not None or ModelRef.parse(config.model.base_model, root).is_local:
        fetch_model_files(config, Layout.for_release(config.name, root), options)


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
