"""What a run prints: one progress display per stage, a summary line each, library output in runs/NAME/logs/.

The unit tests drive pipeline.console with a fake stage (a warning, a library log record, a tqdm bar, a
print, a subprocess writing to stderr). The slow test runs a shortened `pubctl release NAME --dry-run`
once, through CliRunner (not a terminal: the CI case), and reads what reached the terminal and the logs.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO_ROOT, deep_merge
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.console import StageOutput, captured, progress_begin, progress_update, say, set_verbose
from pipeline.console.log_file import LogFile
from pipeline.errors import Interrupted
from pipeline.layout import Layout

TQDM_MARKS = ("it/s]", "%|", "s/it]")


def _noisy_library_call() -> None:
    """What TRL, transformers, datasets and lm-eval do to a terminal, in small."""
    from tqdm import tqdm

    warnings.warn(
        "`gradient_checkpointing` is deprecated (a FutureWarning nobody can act on)", FutureWarning, stacklevel=2
    )
    logging.getLogger("trl.trainer").warning("[RANK 0] When using DPODataCollatorWithPadding, set ...")
    with captured():
        for _ in tqdm(range(50), desc="Map", mininterval=0):
            pass
        print({"loss": "1.046", "grad_norm": "0.1843"})
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('from a subprocess\\n')"], check=True)


@pytest.fixture
def terminal() -> Iterator[io.StringIO]:
    """sys.stderr as a CI log sees it: not a terminal, no file descriptor (set in the test: pytest's own capture
    puts its stream back between a fixture's setup and the test)."""
    stream = io.StringIO()
    yield stream
    set_verbose(False)


@contextlib.contextmanager
def stderr_to(stream: io.StringIO) -> Iterator[None]:
    saved, sys.stderr = sys.stderr, stream
    try:
        yield
    finally:
        sys.stderr = saved


def test_library_output_goes_to_the_log_and_pubctl_lines_to_the_terminal(tmp_path: Path, terminal: io.StringIO) -> None:
    log = tmp_path / "logs" / "fake.log"
    output = StageOutput("fake", log, header="pubctl fake demo")
    with stderr_to(terminal), output:
        progress_begin(12, "step")
        _noisy_library_call()
        progress_update(8, doing="loss 0.94")
        say("step 8/12 loss 0.94")
    shown = terminal.getvalue()
    assert shown == "step 8/12 loss 0.94\n"
    assert output.reached == "step 8 of 12 (loss 0.94)" and output.log_written
    kept = log.read_text(encoding="utf-8")
    assert kept.startswith("==== pubctl fake demo — ")
    assert "FutureWarning: `gradient_checkpointing` is deprecated (a FutureWarning nobody" in kept
    assert "WARNING trl.trainer: [RANK 0] When using DPODataCollatorWithPadding" in kept
    assert "{'loss': '1.046', 'grad_norm': '0.1843'}" in kept
    # the bar's fifty redraws are one line: its last state
    assert [line for line in kept.splitlines() if line.startswith("Map:")] == [
        next(line for line in kept.splitlines() if line.startswith("Map: 100%"))
    ]
    # everything is put back
    assert warnings.showwarning is warnings._showwarning_orig  # type: ignore[attr-defined]
    assert logging.getLogger("trl").handlers == [] and logging.getLogger("trl").propagate


def test_verbose_shows_the_library_output_live_and_still_logs_it(tmp_path: Path, terminal: io.StringIO) -> None:
    set_verbose(True)
    log = tmp_path / "logs" / "fake.log"
    with stderr_to(terminal), StageOutput("fake", log, header="pubctl fake demo"):
        _noisy_library_call()
    shown = terminal.getvalue()
    assert "FutureWarning" in shown and "DPODataCollatorWithPadding" in shown and "Map: 100%" in shown
    assert "FutureWarning" in log.read_text(encoding="utf-8")


def test_the_cli_verbose_flag_reaches_the_stage(terminal: io.StringIO) -> None:
    from pipeline.console import is_verbose

    CliRunner().invoke(app, ["--verbose", "list"])
    assert is_verbose()
    CliRunner().invoke(app, ["list"])
    assert not is_verbose()


def test_a_stage_that_captured_nothing_leaves_no_log(tmp_path: Path, terminal: io.StringIO) -> None:
    log = tmp_path / "logs" / "quiet.log"
    output = StageOutput("quiet", log, header="pubctl quiet demo")
    with stderr_to(terminal), output, captured():
        pass
    assert not output.log_written and not log.exists()


def test_without_a_terminal_progress_is_a_plain_line_at_most_every_interval(
    tmp_path: Path, terminal: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.console import display

    clock = iter(float(t) for t in range(0, 10_000, 10))
    monkeypatch.setattr(display.time, "monotonic", lambda: next(clock))
    with stderr_to(terminal), StageOutput("train", tmp_path / "train.log", header="h"):
        progress_begin(12, "step")
        for step in range(1, 13):
            progress_update(step)
    lines = terminal.getvalue().splitlines()
    assert lines and all(line.startswith("train: step ") and "elapsed" in line for line in lines)
    assert len(lines) < 12  # not one per update: one per 30 s of (fake) time
    assert not any("\r" in line or "\x1b" in line for line in lines)


def test_a_log_file_keeps_the_last_redraw_of_each_line(tmp_path: Path) -> None:
    log = LogFile(tmp_path / "x.log", "h")
    for text in ("\rMap:  10%", "\rMap:  50%", "\rMap: 100%", "\n", "plain line\n", "a\rb\rfinal\n"):
        log.write(text)
    log.close()
    assert log.path.read_text(encoding="utf-8").splitlines()[1:] == ["Map: 100%", "plain line", "final"]


def test_training_logs_become_compact_lines() -> None:
    from pipeline.stages.train.log_lines import metrics_line

    logs = {"loss": 0.9466, "grad_norm": 0.2676, "learning_rate": 0.0004583, "rewards/margins": -0.0007973}
    assert metrics_line(logs, 6, 12) == "step 6/12 loss 0.947 margin -7.97e-04 grad 0.268 lr 4.58e-04"
    assert metrics_line({"eval_loss": 0.9453, "epoch": 0.07}, 6, 12) == "eval at step 6/12: loss 0.945"
    assert metrics_line({"train_runtime": 54.7, "train_loss": 0.95}, 12, 12) is None


def test_ctrl_c_names_the_step_reached(
    make_config: Any, project: Path, monkeypatch: pytest.MonkeyPatch, terminal: io.StringIO
) -> None:
    from pipeline import release

    def interrupted_train(config: Any, layout: Layout, resume: bool = True) -> None:
        progress_begin(12, "step")
        progress_update(8)
        raise KeyboardInterrupt

    from pipeline.stage import load_entry

    fake = {"pipeline.stages.train:run": interrupted_train}
    monkeypatch.setattr("pipeline.stage.load_entry", lambda entry: fake.get(entry) or load_entry(entry))
    name = make_config("t")
    config = load_config(name)
    with stderr_to(terminal), pytest.raises(Interrupted) as caught:
        release.run_stage("train", config, Layout.for_release(config.name))
    assert str(caught.value).startswith("train interrupted: stopped at step 8 of 12; ")


# ------------------------------------------------------------------------- a whole release, once
SHORT = {
    "training": {"max_steps": 4, "save_steps": 2, "logging_steps": 1},
    "evaluation": {"limit": 4, "throughput": {"prompts": 2, "new_tokens": 4, "runs": 2}},
    "checks": {"min_samples": 16},
}


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> tuple[Any, Layout]:
    """`pubctl release short --dry-run` on a fresh project: the demo, shortened (4 steps, 4 items a task)."""
    root = tmp_path_factory.mktemp("progress") / "project"
    shutil.copytree(REPO_ROOT / "configs", root / "configs")
    shutil.copytree(REPO_ROOT / "templates", root / "templates")
    data = deep_merge(yaml.safe_load((root / "configs" / "demo.yaml").read_text(encoding="utf-8")), SHORT)
    (root / "configs" / "short.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PUBCTL_ROOT", str(root))
        patch.setenv("PUBCTL_CACHE", str(shared_cache))
        patch.chdir(root)
        result = CliRunner().invoke(app, ["release", "short", "--dry-run"])
    assert result.exit_code == 0, result.output
    return result, Layout.for_release("short", root)


@pytest.mark.slow  # trains 4 steps, merges and evaluates the tiny model
def test_a_release_prints_one_summary_per_stage_and_no_library_noise(dry_run: tuple[Any, Layout]) -> None:
    result, layout = dry_run
    out, err = result.stdout, result.stderr
    for mark in (*TQDM_MARKS, "FutureWarning", "UserWarning", "{'loss':", "[RANK 0]", "fatal:"):
        assert mark not in out and mark not in err, mark
    assert "\r" not in err and "\x1b[" not in err  # not a terminal: nothing redraws
    lines = err.splitlines()
    train = next(line for line in lines if line.startswith("train: trained 4 steps"))
    assert "final loss" in train and "adapter in runs/short/train/adapter" in train
    assert any(line.startswith("step 4/4 loss ") for line in lines)  # the last step's metrics, compact
    assert any(line.startswith("eval at step 2/4: loss ") for line in lines)
    assert any(line.startswith("merge: merged (streaming) into runs/short/merge/model") for line in lines)
    evaluate = next(line for line in lines if line.startswith("evaluate: evaluated 3 tasks"))
    assert " ± " in evaluate and "vs base)" in evaluate and "tokens/s" in evaluate
    assert any(line.startswith("card: rendered README.md and ") for line in lines)
    assert "short: " in out and "passed" in out and "push plan for short" in out  # check and push: their reports
    assert "  log: runs/short/logs/train.log" in lines
    train_log = (layout.logs_dir / "train.log").read_text(encoding="utf-8")
    assert "Warning" in train_log
    # the record keeps every logged value; the terminal showed a few
    training = json.loads(layout.results.read_text(encoding="utf-8"))["training"]
    assert any("rewards/chosen" in entry for entry in training["log_history"])
    assert "rewards/chosen" not in err
