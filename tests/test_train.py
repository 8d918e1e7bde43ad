"""The train stage: each method trains the tiny model, the record is complete, resume continues, failures
write nothing, and two CPU processes share one run."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.errors import StageFailed, UsageError
from pipeline.layout import Layout
from pipeline.methods import METHODS
from pipeline.stage import StageResult

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig

runner = CliRunner()

# A few steps on a few rows: enough for the loss to move, small enough for two shared CPU cores.
SMALL = {
    "data": {"eval_fraction": None, "max_samples": 24},
    "training": {
        "max_steps": 3,
        "per_device_batch_size": 2,
        "gradient_accumulation_steps": 2,
        "learning_rate": 5.0e-3,
        "max_length": 64,
        "max_prompt_length": 32,
        "logging_steps": 1,
        "save_steps": 100,
    },
    "checks": {"min_samples": 4},
}

METHOD_METRICS = {
    "sft": ("entropy", "mean_token_accuracy"),
    "dpo": ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"),
    "ipo": ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"),
    "kto": ("rewards/chosen", "rewards/rejected", "kl"),
    "cpo": ("rewards/chosen", "rewards/rejected", "rewards/margins", "nll_loss"),
    "simpo": ("rewards/chosen", "rewards/rejected", "rewards/margins"),
    "orpo": ("nll_loss", "log_odds_ratio", "log_odds_chosen"),
}


def small(method: str, **sections: dict[str, Any]) -> dict[str, Any]:
    """SMALL with ``method`` (the demo's method section replaced, not merged) and extra overrides."""
    from conftest import deep_merge

    return deep_merge({**SMALL, "method": {"beta": None, "name": method}}, sections)


def run_train(config: ReleaseConfig, layout: Layout, **options: Any) -> StageResult:
    """The train stage run as the chain runs it, checking the contract on the way: the stage returns its
    sections and leaves results.json alone; only write_sections (what run_stage calls) writes them."""
    from pipeline.stage import write_sections
    from pipeline.stages import STAGES
    from pipeline.stages.train import run

    written_before = layout.results.read_bytes() if layout.results.is_file() else None
    result = run(config, layout, **options)
    after = layout.results.read_bytes() if layout.results.is_file() else None
    assert after == written_before, "the train stage wrote results.json itself; the chain writes its sections"
    write_sections(layout, STAGES["train"], config, result.sections)
    return result


@pytest.fixture
def train(make_config: Callable[..., str], project: Path) -> Callable[..., Any]:
    """Train a config written from overrides in-process, through the chain; returns (record, layout)."""

    def go(overrides: dict[str, Any], *, name: str = "t", resume: bool = True):
        make_config(name, overrides)
        config = load_config(name, project)
        layout = Layout.for_release(name, project)
        return run_train(config, layout, resume=resume).sections["training"], layout

    return go


def losses(record: Any) -> list[float]:
    return [entry["loss"] for entry in record.log_history if "loss" in entry]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sft", "dpo", "ipo", "kto", "cpo", "simpo", "orpo"])
def test_every_method_trains_and_the_loss_moves(train, method: str) -> None:
    record, layout = train(small(method))
    values = losses(record)
    assert record.method == method
    assert record.steps == 3 and len(values) == 3
    assert all(math.isfinite(v) for v in values)
    assert len(set(values)) > 1, f"{method}: the loss did not move: {values}"
    logged = {key for entry in record.log_history for key in entry}
    assert set(METHOD_METRICS[method]) <= logged, f"{method}: missing {set(METHOD_METRICS[method]) - logged}"
    assert (layout.adapter_dir / "adapter_config.json").is_file()
    assert (layout.adapter_dir / "adapter_model.safetensors").is_file()
    assert (layout.adapter_dir / "tokenizer_config.json").is_file()


@pytest.mark.slow
def test_sft_trains_on_plain_text_rows(train, project: Path) -> None:
    from pipeline.demo import DEMO_DIR

    corpus = (DEMO_DIR / "data" / "corpus.txt").read_text(encoding="utf-8")
    lines = [line for line in corpus.splitlines() if line.strip()]
    rows = "".join(json.dumps({"text": line}) + "\n" for line in lines[:24])
    (project / "text.jsonl").write_text(rows, encoding="utf-8")
    record, _ = train(small("sft", data={"train": "text.jsonl"}))
    assert record.datasets[0].format == "text" and record.steps == 3
    assert len(set(losses(record))) > 1


@pytest.mark.slow
def test_the_record_holds_every_field(make_config: Callable[..., str], project: Path) -> None:
    # save_steps (100) is past the run: transformers evaluates (and checkpoints) at the last step anyway
    name = make_config("record", small("kto", data={"eval_fraction": 0.25}))
    layout = Layout.for_release(name, project)
    result = run_train(load_config(name, project), layout)
    record = result.sections["training"]
    assert list(result.sections) == ["training"]
    assert re.fullmatch(
        r"trained 3 steps on 12 samples in \d+\.\d s, final loss \d+\.\d{4}; adapter in runs/record/train/adapter",
        result.summary,
    ), result.summary
    saved = json.loads(layout.results.read_text(encoding="utf-8"))
    training = saved["training"]
    assert training["method"] == "kto"
    assert training["method_params"] == {
        "beta": 0.1,
        "desirable_weight": 1.0,
        "undesirable_weight": 1.0,
        "loss_type": "kto",
    }
    [dataset] = training["datasets"]
    assert dataset["id"] == "builtin:preferences" and dataset["revision"].startswith("sha256:")
    assert dataset["source_rows"] == 24 and dataset["eval_rows"] == 12 and dataset["rows"] == 36
    hyper = training["hyperparameters"]
    assert hyper["effective_batch_size"] == 4 == hyper["per_device_batch_size"] * hyper["gradient_accumulation_steps"]
    assert hyper["lora"]["r"] == 8 and hyper["lora"]["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert hyper["learning_rate"] == 5.0e-3 and hyper["max_length"] == 64 and hyper["seed"] == 42
    assert training["steps"] == 3 and training["samples"] == 12
    assert training["runtime_seconds"] > 0 and training["resumed_from_step"] == 0
    assert training["final_loss"] == losses(record)[-1]
    history = training["log_history"]
    step_logs = [entry for entry in history if "loss" in entry]
    for key in ("loss", "learning_rate", "grad_norm", "rewards/chosen", "rewards/rejected", "rewards/margins", "kl"):
        assert all(key in entry for entry in step_logs), key
    assert [entry["step"] for entry in history if "eval_loss" in entry] == [3]
    [evaluation] = [entry for entry in history if "eval_loss" in entry]
    assert all(key in evaluation for key in ("eval_rewards/chosen", "eval_rewards/rejected", "eval_kl"))
    assert training["hardware"]["world_size"] == 1 and training["hardware"]["device"] == "cpu"
    assert training["hardware"]["distributed_type"] == "NO"
    assert saved["provenance"]["versions"]["trl"].startswith("1.16")
    assert "merge" not in saved and "evaluation" not in saved


@pytest.mark.slow
def test_samples_are_the_rows_the_trainer_consumed_across_epochs(train, monkeypatch: pytest.MonkeyPatch) -> None:
    """10 rows in batches of 2 with 2 accumulation steps: an epoch is 3 optimizer steps, the third one short.
    Step 4 is the first of epoch 2, so the trainer has consumed 10 + 4 rows (not 4 × 4)."""
    spec = METHODS["sft"]
    consumed: list[int] = []

    def build(ctx):
        trainer = spec.build_trainer(ctx)
        compute_loss = trainer.compute_loss

        def counting(model, inputs, *args, **kwargs):
            if model.training:
                consumed.append(int(inputs["input_ids"].shape[0]))
            return compute_loss(model, inputs, *args, **kwargs)

        trainer.compute_loss = counting
        return trainer

    monkeypatch.setitem(METHODS, "sft", dataclasses.replace(spec, build_trainer=build))
    record, _ = train(small("sft", data={"max_samples": 10}, training={"max_steps": 4}))
    assert record.steps == 4 and record.datasets[0].rows == 10
    assert consumed == [2, 2, 2, 2, 2, 2, 2] and record.samples == sum(consumed) == 14


def test_samples_seen_counts_each_epoch_once() -> None:
    from pipeline.stages.train import samples_seen

    def seen(steps: int, rows: int, batch: int, accumulation: int, processes: int) -> int:
        return samples_seen(
            steps,
            rows=rows,
            per_device_batch_size=batch,
            gradient_accumulation_steps=accumulation,
            num_processes=processes,
        )

    assert seen(3, 36, 2, 2, 1) == 12
    assert seen(3, 10, 2, 2, 1) == 10 and seen(4, 10, 2, 2, 1) == 14 and seen(6, 10, 2, 2, 1) == 20
    # two processes: 32 rows are 16 batches, 8 per process, one row of each process per step
    assert seen(8, 32, 2, 1, 2) == 32 and seen(9, 32, 2, 1, 2) == 36
    # 33 rows on 2 processes: 17 batches, 9 per process (the short one padded); the padding is not counted
    assert seen(9, 33, 2, 1, 2) == 33 and seen(10, 33, 2, 1, 2) == 37


@pytest.mark.slow
def test_resume_continues_from_the_saved_step(train) -> None:
    first, layout = train(small("dpo", training={"max_steps": 2, "save_steps": 2}))
    assert first.steps == 2 and (layout.train_dir / "checkpoint-2").is_dir()
    runtime_before = first.runtime_seconds

    resumed, _ = train(small("dpo", training={"max_steps": 4, "save_steps": 2}))
    assert resumed.resumed_from_step == 2 and resumed.steps == 4 and resumed.steps_this_run == 2
    assert [entry["step"] for entry in resumed.log_history if "loss" in entry] == [1, 2, 3, 4]
    # the steps before the checkpoint keep their logged losses; the time of both parts adds up
    assert losses(resumed)[:2] == losses(first)
    assert resumed.runtime_seconds > resumed.runtime_seconds_this_run
    assert resumed.runtime_seconds >= runtime_before

    again, _ = train(small("dpo", training={"max_steps": 4, "save_steps": 2}), resume=False)
    assert again.resumed_from_step == 0 and again.steps == 4
    assert [entry["step"] for entry in again.log_history if "loss" in entry] == [1, 2, 3, 4]


def test_resume_skips_a_checkpoint_left_half_written(project: Path) -> None:
    """A run killed while saving leaves checkpoint-N without trainer_state.json (written last) or pubctl's
    runtime file: resuming picks the newest complete checkpoint instead of failing on that folder."""
    from pipeline.stages.train import RUNTIME_FILE, checkpoint_progress, last_checkpoint

    layout = Layout.for_release("half", project)
    for step, files in ((2, ("trainer_state.json", RUNTIME_FILE)), (4, ("adapter_model.safetensors",))):
        folder = layout.train_dir / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        for name in files:
            (folder / name).write_text(
                json.dumps({"global_step": step, "epoch": 0.5, "runtime_seconds": 1.5}), encoding="utf-8"
            )
    (layout.train_dir / "checkpoint-6").mkdir()  # transformers had only created the folder
    assert last_checkpoint(layout) == str(layout.train_dir / "checkpoint-2")
    config = load_config("demo", project)
    progress = checkpoint_progress(config, last_checkpoint(layout))
    assert (progress.step, progress.runtime, progress.complete) == (2, 1.5, False)


@pytest.mark.slow
def test_resume_refuses_checkpoints_of_another_run_and_finishes_from_a_complete_one(train) -> None:
    first, _ = train(small("dpo", training={"max_steps": 2, "save_steps": 2}))
    # Its last checkpoint holds the whole run (a run stopped before it recorded itself): finished from it, no step.
    again, _ = train(small("dpo", training={"max_steps": 2, "save_steps": 2}))
    assert (again.steps, again.resumed_from_step, again.steps_this_run) == (2, 2, 0)
    # The checkpoint's log: every step, without the summary the trainer logs after its last save.
    assert again.log_history == [entry for entry in first.log_history if "train_loss" not in entry]
    with pytest.raises(UsageError, match="different training run"):
        train(small("ipo", training={"max_steps": 4, "save_steps": 2}))


# ---------------------------------------------------------------------------- failures
def assert_nothing_written(layout: Layout) -> None:
    assert not layout.results.exists(), layout.results.read_text(encoding="utf-8")
    assert not layout.adapter_dir.exists()


@pytest.mark.slow
def test_too_few_samples_fails_with_exit_1_and_writes_nothing(make_config: Callable[..., str], project: Path) -> None:
    name = make_config("few", small("dpo", training={"max_steps": 2}, checks={"min_samples": 1000}))
    result = runner.invoke(app, ["train", name])
    assert result.exit_code == 1, result.output
    assert "fewer than checks.min_samples (1000)" in result.output
    assert_nothing_written(Layout.for_release(name, project))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "no rows"),
        ([{"prompt": "Q?", "completion": "A.", "label": "yes"}] * 8, "must hold booleans"),
        ([{"prompt": "Q?", "good": "A."}] * 8, "cannot tell the format"),
        ([{"prompt": "long " * 200, "completion": "A.", "label": True}] * 8, "every prompt"),
    ],
    ids=["empty", "string-labels", "missing-columns", "prompts-too-long"],
)
def test_bad_data_fails_with_exit_2_before_training(
    make_config: Callable[..., str], project: Path, rows: list[dict[str, Any]], message: str
) -> None:
    (project / "bad.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    overrides = small("kto", data={"train": "bad.jsonl"})
    overrides["data"]["max_samples"] = None  # None removes the key from the demo config: no limit
    overrides["training"]["max_prompt_length"] = None
    name = make_config("bad", overrides)
    result = runner.invoke(app, ["train", name])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    layout = Layout.for_release(name, project)
    assert_nothing_written(layout)
    assert not layout.train_dir.exists() or not list(layout.train_dir.glob("checkpoint-*"))


@pytest.mark.slow
def test_a_non_finite_loss_fails_and_writes_nothing(
    make_config: Callable[..., str], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: a callback turns the second logged loss into NaN, as a diverging run would log it."""
    from transformers import TrainerCallback

    class Diverge(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.global_step == 2 and "loss" in state.log_history[-1]:
                state.log_history[-1]["loss"] = float("nan")

    spec = METHODS["dpo"]

    def build(ctx):
        ctx.callbacks.append(Diverge())
        return spec.build_trainer(ctx)

    monkeypatch.setitem(METHODS, "dpo", dataclasses.replace(spec, build_trainer=build))
    name = make_config("nan", small("dpo"))
    layout = Layout.for_release(name, project)
    with pytest.raises(StageFailed, match="non-finite loss"):
        run_train(load_config(name, project), layout)
    assert_nothing_written(layout)


@pytest.mark.slow
def test_a_nan_step_loss_reaches_the_record_check(
    make_config: Callable[..., str], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loss that really turns NaN in training is refused as such: transformers' default logging filter
    would log the mean of the earlier losses in its place."""
    spec = METHODS["dpo"]

    def build(ctx):
        trainer = spec.build_trainer(ctx)
        compute_loss = trainer.compute_loss

        def diverging(model, inputs, *args, **kwargs):
            loss = compute_loss(model, inputs, *args, **kwargs)
            return loss * float("nan") if trainer.state.global_step == 1 else loss

        trainer.compute_loss = diverging
        return trainer

    monkeypatch.setitem(METHODS, "dpo", dataclasses.replace(spec, build_trainer=build))
    name = make_config("nan-step", small("dpo"))
    layout = Layout.for_release(name, project)
    with pytest.raises(StageFailed, match=r"non-finite loss \(nan\) at step 2"):
        run_train(load_config(name, project), layout)
    assert_nothing_written(layout)


def test_zero_optimizer_steps_is_a_failed_stage(make_config: Callable[..., str], project: Path) -> None:
    from pipeline.stages.train import build_record

    config = load_config(make_config("zero", small("dpo")), project)
    state = SimpleNamespace(global_step=0, log_history=[], epoch=0.0)
    with pytest.raises(StageFailed, match="took no optimizer step"):
        build_record(
            config,
            data=SimpleNamespace(record=dict),
            state=state,
            resumed_from=0,
            runtime=0.1,
            runtime_this_run=0.1,
            rows_trained=24,
            hardware={},
            base_revision=None,
        )


def test_a_tracker_that_is_not_installed_is_a_usage_error(
    make_config: Callable[..., str], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    name = make_config("wandb", small("dpo", training={"report_to": ["wandb"]}))
    result = runner.invoke(app, ["train", name])
    assert result.exit_code == 2, result.output
    assert "pip install wandb" in result.output
    assert_nothing_written(Layout.for_release(name, project))


def test_trl_outside_the_tested_range_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    from pipeline.stages import train

    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "1.14.0" if name == "trl" else real(name))
    with pytest.raises(UsageError, match=r"TRL 1\.14\.0 is installed.*trl>=1\.16,<1\.17"):
        train.check_trl_version()


# -------------------------------------------------------------------------- two processes
@pytest.mark.slow
@pytest.mark.parametrize("method", ["kto", "enhanced_kto"])
def test_two_processes_on_cpu_share_the_steps_and_write_the_record_once(
    make_config: Callable[..., str], project: Path, method: str
) -> None:
    # enhanced_kto (the demo's method) with the BCO shift on: its own metrics and δ are gathered across ranks
    overrides = small(
        method,
        data={"max_samples": 16},
        training={
            "max_steps": -1,
            "epochs": 1,
            "gradient_accumulation_steps": 1,
            "launcher": {"num_processes": 2},
        },
    )
    if method == "enhanced_kto":
        overrides["method"]["bco_shift"] = True
    name = make_config("ddp", overrides)
    layout = Layout.for_release(name, project)
    # the workers write no results.json (run_train checks it): rank 0's record comes back through the status file
    record = run_train(load_config(name, project), layout).sections["training"]
    training = json.loads(layout.results.read_text(encoding="utf-8"))["training"]
    assert record.model_dump(mode="json", exclude_unset=True) == training
    hardware = training["hardware"]
    assert hardware["world_size"] == 2 and hardware["backend"] == "gloo"
    # a real data-parallel group (gradients all-reduced), not two processes each training its own shard
    assert hardware["distributed_type"] == "MULTI_CPU"
    rows = training["datasets"][0]["rows"]
    assert rows == 32  # 16 pairs, unpaired
    # one epoch of 32 rows at 2 rows per process per step: 8 steps, where one process would take 16
    assert training["steps"] == math.ceil(rows / (2 * 2)) == 8
    ranks = hardware["ranks"]
    assert [rank["rank"] for rank in ranks] == [0, 1]
    assert len({rank["pid"] for rank in ranks}) == 2
    assert all(rank["optimizer_steps"] == 8 and rank["micro_batches"] == 8 for rank in ranks)
    assert training["samples"] == 32
    if method == "enhanced_kto":
        # δ folded in the rewards of both ranks: 8 steps x 2 processes x 2 rows
        state = json.loads((layout.train_dir / "checkpoint-8" / "trainer_state.json").read_text(encoding="utf-8"))
        assert state["stateful_callbacks"]["BCOShiftState"]["attributes"]["count"] == 32
        assert all("ekto/delta" in entry for entry in training["log_history"] if "loss" in entry)
    # rank 0 alone wrote: one adapter, no staging folders or status files left behind
    assert (layout.adapter_dir / "adapter_model.safetensors").is_file()
    assert not list(layout.train_dir.glob(".adapter*")) and not list(layout.run_dir.glob(".train-status-*"))


@pytest.mark.slow
def test_a_failure_on_rank_0_of_two_processes_is_reported_once_and_writes_nothing(
    make_config: Callable[..., str], project: Path
) -> None:
    overrides = small(
        "dpo",
        data={"max_samples": 8},
        training={"max_steps": 2, "gradient_accumulation_steps": 1, "launcher": {"num_processes": 2}},
        checks={"min_samples": 1000},
    )
    name = make_config("ddp-fail", overrides)
    result = runner.invoke(app, ["train", name])
    assert result.exit_code == 1, result.output
    assert result.output.count("fewer than checks.min_samples (1000)") == 1
    layout = Layout.for_release(name, project)
    assert_nothing_written(layout)
    assert not list(layout.run_dir.glob(".train-status-*"))
