"""The release chain: train -> merge -> evaluate -> card -> check -> push, skipping what is unchanged.

Every stage, whether the chain runs it or its own command does (``pubctl
train``...), goes through :func:`run_stage`: it forgets the stage's stamp, runs
it, writes the record sections the stage returns (pipeline.stage.write_sections),
checks that it left its outputs and writes a new stamp (pipeline.stamps).
:func:`run_release` skips a stage whose inputs hash as in its stamp and whose
outputs are still there, so ``pubctl train demo`` followed by ``pubctl release
demo`` does not train twice, and a finished release re-run does nothing.
Deciding that reads only the stage declarations (pipeline.stages), stamps,
config and file stats: torch is imported only when a stage that needs it runs.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from pipeline.console import StageOutput
from pipeline.errors import Interrupted, PubctlError, StageFailed, UsageError
from pipeline.layout import Layout
from pipeline.stage import Stage, StageResult, stage_inputs, write_sections
from pipeline.stages import STAGE_NAMES, STAGES
from pipeline.stamps import (
    MISSING,
    FileHasher,
    changes,
    hasher_for,
    new_stamp,
    read_stamp,
    remove_stamp,
    write_stamp,
)

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig

console = Console(stderr=True, highlight=False, soft_wrap=True)

REPORTS_ITSELF = ("check", "push")
"""Stages that print their own report on stdout (the gates' lines and counts, the push plan or commit): the chain
does not repeat their summary."""


def _stage(name: str) -> Stage:
    return STAGES.get_or_fail(name)


def _is_plan(stage: Stage, options: dict[str, Any]) -> bool:
    """A push dry run changes nothing on the Hub: it neither needs nor forgets a stamp."""
    return stage.name == "push" and bool(options.get("dry_run"))


def _execute(stage: Stage, config: ReleaseConfig, layout: Layout, hasher: FileHasher, options: dict) -> StageResult:
    run = stage.load()  # a missing stage or package fails before the old stamp is forgotten
    if stage.name != "push":
        # Local outputs may be half-rewritten by a failed run. A push is atomic on the Hub: a failed one
        # leaves the last pushed commit, which the old stamp still describes.
        remove_stamp(layout.stamps_dir, stage.name)
    started = time.perf_counter()
    output = StageOutput(
        stage.name,
        layout.logs_dir / f"{stage.name}.log",
        header=f"pubctl {stage.name} {layout.name}",
        libraries=stage.packages,
        quiet_bars="torch" in stage.packages,  # not a push's upload bars: those are the user's to watch
    )
    try:
        with output:
            result = run(config, layout, **options)
    except KeyboardInterrupt:
        reached = f"stopped at {output.reached}; " if output.reached else ""
        raise Interrupted(f"{stage.name} interrupted: {reached}{stage.interrupted(config, layout)}.") from None
    except BaseException:
        if output.log_written:
            _say(f"{stage.name}: what its libraries printed is in {escape(_shown(output.log.path, layout))}")
        raise
    if not isinstance(result, StageResult):
        raise TypeError(f"stage {stage.name} returned {type(result).__name__}, not a StageResult")
    write_sections(layout, stage, config, result.sections)
    if not result.stamped:  # a push dry run: nothing on the Hub changed
        report_result(stage, result, output, layout)
        return result
    seconds = time.perf_counter() - started
    outputs = stage.outputs(config, layout, hasher)
    absent = [name for name in stage.required if outputs.get(name, MISSING) == MISSING]
    if absent:
        raise StageFailed(
            f"{stage.name} finished without writing {', '.join(absent)} (looked in {layout.run_dir} and "
            f"{layout.results}); it is not recorded as done."
        )
    inputs = stage_inputs(stage, config, layout, hasher, options)
    summary = result.summary.strip().splitlines()[0] if result.summary.strip() else "done"
    stamp = new_stamp(stage.name, inputs, outputs, seconds=seconds, summary=summary)
    stamp.record = result.details
    write_stamp(layout.stamps_dir, stamp)
    hasher.save()
    report_result(stage, result, output, layout)  # once it is recorded as done
    return result


def _shown(path: Path, layout: Layout) -> str:
    """``path`` as a person finds it from the project root (runs/NAME/logs/train.log)."""
    return path.relative_to(layout.root).as_posix() if path.is_relative_to(layout.root) else str(path)


def report_result(stage: Stage, result: StageResult, output: StageOutput, layout: Layout) -> None:
    """The stage's one-line summary, and where the library output it kept off the terminal went."""
    if stage.name not in REPORTS_ITSELF and result.summary.strip():
        _say(f"[bold]{stage.name}[/]: {escape(result.summary.strip().splitlines()[0])}")
    if output.log_written:
        _say(f"  log: {escape(_shown(output.log.path, layout))}")


def run_stage(
    name: str, config: ReleaseConfig, layout: Layout, *, unless_up_to_date: bool = False, **options: Any
) -> StageResult | None:
    """Run one stage as its own command does, and stamp it so the release chain can skip it next time.

    ``unless_up_to_date``: say so and return None (stamp kept) when the stage's stamp matches its inputs
    (``pubctl train NAME`` after a finished run, which would otherwise stop at its complete checkpoint).
    """
    stage = _stage(name)
    with one_release_at_a_time(layout, name):
        hasher = hasher_for(layout)
        if unless_up_to_date and not stage_status(name, config, layout, hasher, **options):
            stamp = read_stamp(layout.stamps_dir, name)
            done = f" since {stamp.finished_at} ({stamp.summary})" if stamp else ""
            _say(f"{name}: up to date{done}; nothing to do.")
            return None
        return _execute(stage, config, layout, hasher, options)


def stage_status(
    name: str, config: ReleaseConfig, layout: Layout, hasher: FileHasher | None = None, **options: Any
) -> list[str]:
    """Why stage ``name`` would run now ([] = up to date), computed from stamps and file stats only."""
    stage = _stage(name)
    hasher = hasher or hasher_for(layout)
    stamp = read_stamp(layout.stamps_dir, name)
    if stamp is None:
        return ["never ran (no stamp)"]
    inputs = stage_inputs(stage, config, layout, hasher, options)
    return changes(stamp, inputs, stage.outputs(config, layout, hasher))


def _selected(from_stage: str | None, to_stage: str | None) -> tuple[str, ...]:
    for option, value in (("--from", from_stage), ("--to", to_stage)):
        if value is not None and value not in STAGES:
            raise UsageError(f"{option} {value!r}: not a stage; stages are {', '.join(STAGE_NAMES)}.")
    first = STAGE_NAMES.index(from_stage) if from_stage else 0
    last = STAGE_NAMES.index(to_stage) if to_stage else len(STAGE_NAMES) - 1
    if first > last:
        raise UsageError(f"--from {from_stage} comes after --to {to_stage}: the chain runs {' -> '.join(STAGE_NAMES)}.")
    return STAGE_NAMES[first : last + 1]


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
    with one_release_at_a_time(layout):
        _run_chain(config, layout, selected, dry_run=dry_run, force=force, from_stage=from_stage)


@contextlib.contextmanager
def one_release_at_a_time(layout: Layout, command: str = "release") -> Iterator[None]:
    """Refuse a second pubctl command on the same release while one runs: both would write the same run folder,
    record and stamps. ``pubctl release`` and every stage command take it (flock, released by the kernel when
    the holder dies, so a killed run never leaves it held)."""
    try:
        import fcntl
    except ImportError:  # Windows: one command at a time is the documented use
        yield
        return
    layout.stamps_dir.mkdir(parents=True, exist_ok=True)
    path = layout.stamps_dir / ".release.lock"
    with path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another pubctl command"
            raise UsageError(
                f"{holder} is running on release '{layout.name}' on this machine (it holds {path}); wait for it "
                f"to finish, then run `pubctl {command} {layout.name}` again."
            ) from None
        try:
            lock.seek(0)
            lock.truncate()
            lock.write(f"`pubctl {command} {layout.name}` (pid {os.getpid()})\n")
            lock.flush()
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _chain_options(stage: Stage, layout: Layout, *, dry_run: bool, force: bool) -> dict[str, Any]:
    """What the chain decides for a stage; every other option keeps its 'as the config says' default."""
    options: dict[str, Any] = {}
    if stage.name == "push":
        options["dry_run"] = dry_run
    if stage.name == "train":
        # Resume only a run that did not finish (no stamp: interrupted or failed). After a finished run,
        # changed inputs or --force mean a new run: its checkpoints are complete or of other settings.
        options["resume"] = not force and read_stamp(layout.stamps_dir, "train") is None
    return options


def _run_chain(
    config: ReleaseConfig,
    layout: Layout,
    selected: tuple[str, ...],
    *,
    dry_run: bool,
    force: bool,
    from_stage: str | None,
) -> None:
    hasher = hasher_for(layout)
    ran: list[str] = []
    name = escape(config.name)
    for stage in STAGES.values():
        options = _chain_options(stage, layout, dry_run=dry_run, force=force)
        if stage.name not in selected:
            if from_stage and STAGE_NAMES.index(stage.name) < STAGE_NAMES.index(from_stage):
                stale = stage_status(stage.name, config, layout, hasher)
                if stale:
                    _say(
                        f"[yellow]{stage.name}: not up to date ({escape('; '.join(stale))}) but before --from "
                        f"{from_stage}: later stages use its current outputs.[/]"
                    )
            continue
        reasons = ["--force"] if force else stage_status(stage.name, config, layout, hasher, **options)
        if not reasons:
            stamp = read_stamp(layout.stamps_dir, stage.name)
            when = f" since {stamp.finished_at}" if stamp else ""
            _say(f"{stage.name}: up to date{when}, skipped")
            continue
        verb = "planning" if _is_plan(stage, options) else "running"
        _say(f"[bold]{stage.name}[/]: {verb} ({escape('; '.join(reasons))})")
        try:
            _execute(stage, config, layout, hasher, options)
        except PubctlError:
            done = f"; what {', '.join(ran)} wrote is kept" if ran else ""
            _say(f"[red]release {name}: stopped at {stage.name}{done}.[/]")
            raise
        ran.append(stage.name)
    hasher.save()
    if not ran:
        _say(f"release {name}: nothing to do, {', '.join(selected)} up to date (use --force to re-run).")
    else:
        _say(f"release {name}: ran {', '.join(ran)}.")
