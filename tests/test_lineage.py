"""A card can only describe the model it ships with: lineage, stage commands that never wedge, clean restarts.

The scenario of the issue, on the tiny model: a finished release, then a retrain by hand (resumed
to more steps), then card, check, list and push by hand. Before lineage was recorded, the card
said the new step count while the merged model and every score still came from the old adapter,
and check passed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.layout import Layout

FAST = {
    "data": {"eval_fraction": None, "max_samples": 16},
    "training": {
        "max_steps": 2,
        "per_device_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "max_length": 64,
        "max_prompt_length": 32,
        "logging_steps": 1,
        "save_steps": 2,
    },
    "evaluation": {"limit": 4, "throughput": {"enabled": False}},
    "checks": {"min_samples": 1},
}


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.slow  # two short trainings, merges and evaluations of the tiny model
def test_a_retrain_by_hand_cannot_reach_the_card_or_the_hub(make_config: Callable[..., str], project: Path) -> None:
    name = make_config("mine", FAST)
    layout = Layout.for_release(name, project)
    code, out = _run("release", name, "--dry-run")
    assert code == 0, out
    first = json.loads(layout.results.read_text())
    adapter_trained = first["training"]["lineage"]["produced"]["adapter"]
    assert first["merge"]["lineage"]["consumed"]["adapter"] == adapter_trained
    assert (
        first["evaluation"]["lineage"]["consumed"]["merged_model"]
        == (first["merge"]["lineage"]["produced"]["merged_model"])
    )
    # Written files keep the permissions a plain open() or mkdir() gives them, not mkstemp's 0600.
    umask = os.umask(0)
    os.umask(umask)
    assert layout.results.stat().st_mode & 0o777 == 0o666 & ~umask
    assert layout.readme.stat().st_mode & 0o777 == 0o666 & ~umask
    assert layout.merge_dir.stat().st_mode & 0o777 == 0o777 & ~umask
    for weights in (layout.merged_model_dir / "model.safetensors", layout.adapter_dir / "adapter_model.safetensors"):
        assert weights.stat().st_mode & 0o777 == 0o666 & ~umask, weights  # safetensors writes 0600

    # A finished run: `pubctl train` says so, keeps its stamp and exits 0 (no "already holds the whole run").
    code, out = _run("train", name)
    assert code == 0 and "train: up to date since" in out and "nothing to do" in out, out

    # Retrain by hand to more steps (resumed from checkpoint-2), then card and check without merging again.
    make_config(name, {**FAST, "training": {**FAST["training"], "max_steps": 4}})
    code, out = _run("train", name)
    assert code == 0 and "resuming from checkpoint-2 (step 2 of 4)" in out, out
    code, out = _run("card", name)
    assert code == 0, out
    code, out = _run("check", name)
    assert code == 1, out
    assert f"FAILED lineage: found merge used adapter {adapter_trained[:12]} but training produced" in out
    assert "pubctl merge mine" in out

    # pubctl list: every stage after the changed one is out of date, not "done".
    from pipeline.config import load_config
    from pipeline.status import release_state

    code, out = _run("list")
    assert code == 0, out
    state = release_state(layout, load_config(name))
    assert state["train"] == "done"
    for stage in ("merge", "evaluate", "card"):
        assert state[stage].endswith("(out of date)"), state

    # Neither a waiver nor a push gets it out.
    code, out = _run("check", name, "--allow", "lineage=the old scores are close enough")
    assert code == 2 and "lineage cannot be waived" in out, out
    code, out = _run("push", name)
    assert code == 1 and "lineage" in out and "nothing was pushed" in out, out

    # A killed merge's staging folder (the size of the model) is cleared by the next merge.
    leftover = layout.run_dir / ".merge-killed"
    (leftover / "model").mkdir(parents=True)
    code, out = _run("release", name, "--dry-run")
    assert code == 0, out
    assert "merge: running" in out and "evaluate: running" in out
    assert not leftover.exists()
    second = json.loads(layout.results.read_text())
    assert second["training"]["steps"] == 4
    assert second["merge"]["lineage"]["consumed"]["adapter"] == second["training"]["lineage"]["produced"]["adapter"]
    assert second["merge"]["lineage"]["consumed"]["adapter"] != adapter_trained
    code, out = _run("check", name)
    assert code == 0 and "FAILED" not in out, out


@pytest.mark.slow
def test_a_run_stopped_after_its_last_checkpoint_finishes_from_it(
    make_config: Callable[..., str], project: Path
) -> None:
    """Killed after the final checkpoint was saved but before the adapter and record were written: the next
    release finishes from that checkpoint instead of stopping at 'already holds the whole run' or retraining."""
    name = make_config("stopped", FAST)
    layout = Layout.for_release(name, project)
    code, out = _run("train", name)
    assert code == 0, out
    trained = json.loads(layout.results.read_text())["training"]
    # What a kill between the last save and the end leaves: the checkpoint, no stamp, no adapter, no record.
    (layout.stamps_dir / "train.json").unlink()
    layout.results.unlink()
    import shutil

    shutil.rmtree(layout.adapter_dir)
    code, out = _run("release", name, "--dry-run", "--to", "train")
    assert code == 0 and "checkpoint-2 (step 2 of 2) already holds the whole run; finishing from it" in out, out
    finished = json.loads(layout.results.read_text())["training"]
    assert (finished["steps"], finished["resumed_from_step"], finished["steps_this_run"]) == (2, 2, 0)
    assert finished["runtime_seconds"] == pytest.approx(trained["runtime_seconds"], abs=1.0)
    # The checkpoint's log: every step, without the end-of-training summary the trainer logs after its last save.
    assert finished["log_history"] == [entry for entry in trained["log_history"] if "train_loss" not in entry]
    assert finished["lineage"]["produced"]["adapter"] != "missing"
    # The adapter is the checkpoint's: the one the first run trained.
    assert (layout.adapter_dir / "adapter_model.safetensors").read_bytes() == (
        layout.train_dir / "checkpoint-2" / "adapter_model.safetensors"
    ).read_bytes()


# ------------------------------------------------------------------ no training
def _checkpoint(layout: Layout, step: int, *, epoch: float = 0.5) -> None:
    from pipeline.stages.train.checkpoints import RUNTIME_FILE

    folder = layout.train_dir / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "epoch": epoch, "max_steps": step}))
    (folder / RUNTIME_FILE).write_text(json.dumps({"runtime_seconds": 1.0}))


def test_checkpoints_of_other_data_contents_are_not_resumed(make_config: Callable[..., str], project: Path) -> None:
    # The config names the same file; its rows changed. Resuming (or finishing from a complete checkpoint)
    # would record the new data's digest beside an adapter trained on the old rows.
    from pipeline.config import load_config
    from pipeline.errors import UsageError
    from pipeline.stages.train.checkpoints import claim_train_dir

    data = project / "data.jsonl"
    data.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\n')
    name = make_config("data", {"data": {"train": "data.jsonl"}})
    config, layout = load_config(name), Layout.for_release(name, project)
    claim_train_dir(config, layout, resume=True)
    _checkpoint(layout, 2)
    claim_train_dir(config, layout, resume=True)  # same contents: resumable
    data.write_text('{"prompt": "x", "chosen": "y", "rejected": "z"}\n')
    with pytest.raises(UsageError, match=r"different training run.*the data or its contents"):
        claim_train_dir(load_config(name), layout, resume=True)
    # A weight-shaping setting outside the optimizer list (warm-up, clipping) counts too.
    data.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\n')
    make_config(name, {"data": {"train": "data.jsonl"}, "training": {"warmup_ratio": 0.5}})
    with pytest.raises(UsageError, match="different training run"):
        claim_train_dir(load_config(name), layout, resume=True)


def test_a_checkpoint_past_the_step_budget_is_refused(make_config: Callable[..., str], project: Path) -> None:
    from pipeline.config import load_config
    from pipeline.errors import UsageError
    from pipeline.stages.train.checkpoints import checkpoint_progress, last_checkpoint

    name = make_config("budget", {"training": {"max_steps": 1}})
    layout = Layout.for_release(name, project)
    _checkpoint(layout, 2)
    with pytest.raises(UsageError, match=r"at step 2, past training.max_steps \(1\)"):
        checkpoint_progress(load_config(name), last_checkpoint(layout))


def test_a_section_without_lineage_after_one_with_it_fails_and_a_push_needs_it_everywhere(
    make_config: Callable[..., str], project: Path
) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_card_records import realistic_record, write_record

    from pipeline.checks import run_checks
    from pipeline.config import load_config
    from pipeline.results import read_results, write_results
    from pipeline.stages.card import render_card

    name = make_config("old")
    layout = write_record(project, realistic_record(name))
    config = load_config(name)
    render_card(config, layout)
    assert "lineage" in run_checks(config, layout).passed

    record = read_results(layout.results)
    record.merge.lineage = None  # what a merge by an earlier pubctl left, after a retrain by this one
    write_results(layout.results, record)
    render_card(config, layout)
    found = {item.id: item.found for item in run_checks(config, layout).failures}
    assert found["lineage"] == "a merge section that records no lineage while training does"

    for section in (record.training, record.evaluation):
        section.lineage = None  # a record wholly from before lineage was recorded
    write_results(layout.results, record)
    render_card(config, layout)
    assert "lineage" not in {item.id for item in run_checks(config, layout).failures}
    pushed = [item.found for item in run_checks(config, layout, for_push=True).failures if item.id == "lineage"]
    assert "a training section that records no lineage" in pushed
