"""The release chain's logic: skipping unchanged stages, --force/--from/--to, failures, stage commands.

The stages here are small recording functions that write the same outputs as the
real ones (adapter, merged model, results sections, card files), so the chain's
decisions can be tested in milliseconds; test_release_e2e.py runs the real
stages against the test Hub.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pipeline import release
from pipeline.atomic import atomic_write_bytes, atomic_write_text
from pipeline.cli import app
from pipeline.config import ReleaseConfig, load_config
from pipeline.errors import CheckFailed, StageFailed, UsageError
from pipeline.layout import Layout
from pipeline.stage import StageResult, load_entry
from pipeline.stages import STAGE_NAMES
from pipeline.stamps import read_stamp


class Recorder:
    """Stage functions that write what the real stages write, and remember that they ran."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail: set[str] = set()
        self.skip_output: set[str] = set()

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def _section(self, layout: Layout, name: str, value: Any) -> None:
        data = json.loads(layout.results.read_text()) if layout.results.is_file() else {"schema_version": 1}
        data[name] = value
        atomic_write_text(layout.results, json.dumps(data, indent=2))

    def _enter(self, stage: str, options: dict[str, Any]) -> None:
        self.calls.append((stage, options))
        if stage in self.fail:
            raise CheckFailed(f"{stage}: failed on purpose")

    def train(self, config: ReleaseConfig, layout: Layout, resume: bool = True) -> StageResult:
        self._enter("train", {"resume": resume})
        if "train" not in self.skip_output:
            atomic_write_bytes(layout.adapter_dir / "adapter_model.safetensors", f"{config.training}".encode())
        self._section(layout, "training", {"steps": config.training.max_steps, "lr": config.training.learning_rate})
        return StageResult("trained")

    def merge(self, config: ReleaseConfig, layout: Layout) -> StageResult:
        self._enter("merge", {})
        adapter = (layout.adapter_dir / "adapter_model.safetensors").read_bytes()
        atomic_write_bytes(layout.merged_model_dir / "model.safetensors", b"merged " + adapter)
        self._section(layout, "merge", {"strategy": config.merge.strategy})
        return StageResult("merged")

    def evaluate(
        self, config: ReleaseConfig, layout: Layout, limit: int | None = None, tasks: list[str] | None = None
    ) -> StageResult:
        self._enter("evaluate", {"limit": limit, "tasks": tasks})
        model = (layout.merged_model_dir / "model.safetensors").read_bytes()
        self._section(layout, "evaluation", {"limit": limit, "model_bytes": len(model)})
        return StageResult("evaluated")

    def card(self, config: ReleaseConfig, layout: Layout) -> StageResult:
        self._enter("card", {})
        atomic_write_text(layout.readme, f"# {config.card.model_name}\n{layout.results.read_text()}")
        atomic_write_bytes(layout.plots_dir / "loss.png", b"png")
        return StageResult("rendered")

    def check(self, config: ReleaseConfig, layout: Layout, allow: dict[str, str] | None = None) -> StageResult:
        self._enter("check", {"allow": allow or {}})
        return StageResult("passed")

    def push(self, config: ReleaseConfig, layout: Layout, dry_run: bool = False, **options: Any) -> StageResult:
        self._enter("push", {"dry_run": dry_run, **options})
        return StageResult(f"committed to {config.hub.repo_id}", details={"commit": "abc"}, stamped=not dry_run)

    def load(self, entry: str) -> Callable[..., Any]:
        module = entry.partition(":")[0]
        return getattr(self, module.rsplit(".", 1)[-1])


@pytest.fixture
def stages(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr("pipeline.stage.load_entry", recorder.load)
    return recorder


@pytest.fixture
def release_of(make_config: Callable[..., str]) -> Callable[..., tuple[ReleaseConfig, Layout]]:
    def build(overrides: dict[str, Any] | None = None) -> tuple[ReleaseConfig, Layout]:
        name = make_config("t", overrides)
        config = load_config(name)
        return config, Layout.for_release(config.name)

    return build


def test_first_release_runs_every_stage_and_a_rerun_does_nothing(
    stages: Recorder, release_of: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    config, layout = release_of()
    release.run_release(config, layout)
    assert stages.names() == list(STAGE_NAMES)
    assert stages.calls[0] == ("train", {"resume": True})
    assert stages.calls[4] == ("check", {"allow": {}})
    assert stages.calls[5] == ("push", {"dry_run": False})
    for stage in STAGE_NAMES:
        assert read_stamp(layout.stamps_dir, stage) is not None
    assert read_stamp(layout.stamps_dir, "push").summary == "committed to pubctl-demo/tiny-qwen3-enhanced-kto"
    capsys.readouterr()

    release.run_release(config, layout)
    assert len(stages.calls) == 6
    err = capsys.readouterr().err
    assert "nothing to do" in err
    assert err.count("up to date since") == 6


def test_a_config_edit_reruns_the_stage_that_reads_it_and_what_depends_on_its_outputs(
    stages: Recorder, release_of: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    config, layout = release_of()
    release.run_release(config, layout)
    stages.calls.clear()
    capsys.readouterr()

    config, layout = release_of({"card": {"model_name": "renamed"}})
    release.run_release(config, layout)
    assert stages.names() == ["card", "check", "push"]
    assert "config section card changed" in capsys.readouterr().err
    stages.calls.clear()

    config, layout = release_of({"card": {"model_name": "renamed"}, "training": {"learning_rate": 1e-4}})
    release.run_release(config, layout)
    assert stages.names() == list(STAGE_NAMES)


def test_publication_metadata_rerenders_the_card_and_never_remerges(
    stages: Recorder, release_of: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Licence, language and repo id are the card's facts, read from the config at card time (facts flow
    # forward): the merged model does not depend on them, so a shard-by-shard merge must not re-run.
    config, layout = release_of()
    release.run_release(config, layout)
    stages.calls.clear()
    capsys.readouterr()

    config, layout = release_of({"card": {"license": "mit", "language": ["ar"]}, "hub": {"repo_id": "org/other"}})
    release.run_release(config, layout)
    assert stages.names() == ["card", "check", "push"]
    assert "config section card changed" in capsys.readouterr().err


def test_run_options_make_nothing_stale(stages: Recorder, release_of: Callable[..., Any]) -> None:
    # Where logs stream and where (or how many items at a time) lm-eval scores do not change a result.
    config, layout = release_of()
    release.run_release(config, layout)
    stages.calls.clear()
    config, layout = release_of(
        {"training": {"report_to": ["tensorboard"], "save_total_limit": 5}, "evaluation": {"batch_size": 4}}
    )
    release.run_release(config, layout)
    # Only the push: it publishes the config file's bytes as pubctl.yaml, and those changed.
    assert stages.names() == ["push"]
    # The push stamp keeps what the push reported, from the StageResult (push writes no stamp itself).
    assert read_stamp(layout.stamps_dir, "push").record == {"commit": "abc"}


def test_an_edit_of_the_accelerate_config_file_reruns_training(
    stages: Recorder, release_of: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # The config names the file; its content (mixed precision, ZeRO stage) is what changes the run.
    config, layout = release_of({"training": {"launcher": {"config_file": "accelerate.yaml"}}})
    (layout.root / "accelerate.yaml").write_text("mixed_precision: bf16\n")
    release.run_release(config, layout)
    stages.calls.clear()
    capsys.readouterr()

    (layout.root / "accelerate.yaml").write_text("mixed_precision: fp16\n")
    release.run_release(config, layout)
    assert stages.names()[:1] == ["train"]
    assert "input accelerate config changed" in capsys.readouterr().err


def test_content_not_timestamps_decides(stages: Recorder, release_of: Callable[..., Any]) -> None:
    config, layout = release_of()
    release.run_release(config, layout)
    stages.calls.clear()
    # The merged model is rebuilt byte-identical: merge re-runs (its output was gone), evaluate does not.
    (layout.merged_model_dir / "model.safetensors").unlink()
    release.run_release(config, layout)
    assert stages.names() == ["merge"]
    stages.calls.clear()
    # A hand edit of the card is an output that no longer matches: card re-renders it.
    layout.readme.write_text("edited by hand\n")
    release.run_release(config, layout)
    assert stages.names() == ["card"]


def test_force_from_and_to_bound_the_chain(stages: Recorder, release_of: Callable[..., Any]) -> None:
    config, layout = release_of()
    release.run_release(config, layout, to_stage="merge")
    assert stages.names() == ["train", "merge"]
    stages.calls.clear()
    release.run_release(config, layout, from_stage="evaluate", to_stage="card")
    assert stages.names() == ["evaluate", "card"]
    stages.calls.clear()
    release.run_release(config, layout, force=True, from_stage="card")
    assert stages.names() == ["card", "check", "push"]
    stages.calls.clear()
    release.run_release(config, layout, force=True)
    assert stages.names() == list(STAGE_NAMES)
    with pytest.raises(UsageError, match="comes after"):
        release.run_release(config, layout, from_stage="push", to_stage="train")
    with pytest.raises(UsageError, match="not a stage"):
        release.run_release(config, layout, from_stage="deploy")


def test_an_outdated_stage_before_from_is_reported(
    stages: Recorder, release_of: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    config, layout = release_of()
    release.run_release(config, layout)
    config, layout = release_of({"merge": {"parity_tolerance": 0.5}})
    capsys.readouterr()
    stages.calls.clear()
    release.run_release(config, layout, from_stage="evaluate")
    # The gates read every config section; the push publishes the config file (pubctl.yaml).
    assert stages.names() == ["check", "push"]
    err = capsys.readouterr().err
    assert "merge: not up to date (config section merge changed) but before --from evaluate" in err


def test_a_failed_stage_stops_the_chain_and_keeps_earlier_work(
    stages: Recorder, release_of: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    config, layout = release_of()
    stages.fail.add("check")
    with pytest.raises(CheckFailed, match="failed on purpose"):
        release.run_release(config, layout)
    assert stages.names() == ["train", "merge", "evaluate", "card", "check"]
    assert "stopped at check; what train, merge, evaluate, card wrote is kept" in capsys.readouterr().err
    assert read_stamp(layout.stamps_dir, "check") is None
    assert read_stamp(layout.stamps_dir, "push") is None
    assert layout.readme.is_file()

    stages.fail.clear()
    stages.calls.clear()
    release.run_release(config, layout)
    assert stages.names() == ["check", "push"]


def test_a_rerun_that_fails_forgets_the_old_stamp(stages: Recorder, release_of: Callable[..., Any]) -> None:
    config, layout = release_of()
    release.run_release(config, layout, to_stage="train")
    assert read_stamp(layout.stamps_dir, "train") is not None
    stages.fail.add("train")
    with pytest.raises(CheckFailed):
        release.run_release(config, layout, force=True, to_stage="train")
    # Whatever the failed run left half-written is not mistaken for a finished stage.
    assert read_stamp(layout.stamps_dir, "train") is None


def test_a_stage_that_leaves_no_output_is_a_failure(stages: Recorder, release_of: Callable[..., Any]) -> None:
    config, layout = release_of()
    stages.skip_output.add("train")
    with pytest.raises(StageFailed, match="train finished without writing adapter"):
        release.run_release(config, layout)
    assert read_stamp(layout.stamps_dir, "train") is None
    assert stages.names() == ["train"]


def test_dry_run_plans_the_push_without_stamping_it(stages: Recorder, release_of: Callable[..., Any]) -> None:
    config, layout = release_of()
    release.run_release(config, layout, dry_run=True)
    assert stages.calls[-1] == ("push", {"dry_run": True})
    assert read_stamp(layout.stamps_dir, "push") is None
    stages.calls.clear()
    release.run_release(config, layout, dry_run=True)
    assert stages.names() == ["push"]  # planned again: nothing was pushed yet
    stages.calls.clear()
    release.run_release(config, layout)
    assert stages.calls == [("push", {"dry_run": False})]
    stages.calls.clear()
    release.run_release(config, layout, dry_run=True)
    assert stages.names() == []  # already pushed from these inputs


def test_stage_commands_stamp_so_the_release_skips_them(stages: Recorder, project: Path, make_config: Any) -> None:
    make_config("t")
    runner = CliRunner()
    for args in (["train", "t", "--no-resume"], ["merge", "t"], ["evaluate", "t"], ["card", "t"], ["check", "t"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    assert stages.calls[0] == ("train", {"resume": False})
    stages.calls.clear()

    result = runner.invoke(app, ["release", "t"])
    assert result.exit_code == 0, result.output
    assert stages.names() == ["push"]

    # evaluate --limit is a different result from the release's full evaluation.
    stages.calls.clear()
    assert runner.invoke(app, ["evaluate", "t", "--limit", "5"]).exit_code == 0
    stages.calls.clear()
    result = runner.invoke(app, ["release", "t"])
    assert result.exit_code == 0, result.output
    # The full evaluation records what the card was rendered from: card, check and push stay done.
    assert stages.names() == ["evaluate"]
    assert "option limit changed 5 -> None" in result.output


def test_failed_stage_exit_code_and_message_through_the_cli(stages: Recorder, project: Path, make_config: Any) -> None:
    make_config("t")
    stages.fail.add("merge")
    result = CliRunner().invoke(app, ["release", "t"])
    assert result.exit_code == 1
    assert "merge: failed on purpose" in result.output
    assert "stopped at merge" in result.output
    assert "Traceback" not in result.output


def test_stage_status_explains_without_running(stages: Recorder, release_of: Callable[..., Any]) -> None:
    config, layout = release_of()
    assert release.stage_status("train", config, layout) == ["never ran (no stamp)"]
    release.run_release(config, layout, to_stage="train")
    assert release.stage_status("train", config, layout) == []
    assert stages.names() == ["train"]


def test_list_marks_stamped_stages_that_are_out_of_date(stages: Recorder, release_of: Callable[..., Any]) -> None:
    from pipeline.status import release_state

    config, layout = release_of()
    release.run_release(config, layout, to_stage="card")
    # `pubctl list` validates results.json, which the recorders write only in part: give it a valid
    # (empty) record and re-render from that.
    layout.results.write_text(json.dumps({"schema_version": 1, "release": "t"}))
    release.run_release(config, layout, from_stage="card", to_stage="card")
    assert release_state(layout, config)["card"] == "rendered"
    config, layout = release_of({"card": {"model_name": "renamed"}})
    assert release_state(layout, config)["card"] == "rendered (out of date)"
    assert release_state(layout)["card"] == "rendered"  # without a config, stamps are not consulted


def test_train_resumes_only_an_unfinished_run(stages: Recorder, release_of: Callable[..., Any]) -> None:
    config, layout = release_of()
    release.run_release(config, layout, to_stage="train")
    assert stages.calls == [("train", {"resume": True})]  # nothing finished yet: continue any checkpoint

    # A finished run whose inputs changed is a new run: its checkpoints belong to the old settings.
    stages.calls.clear()
    config, layout = release_of({"training": {"learning_rate": 1e-4}})
    release.run_release(config, layout, to_stage="train")
    assert stages.calls == [("train", {"resume": False})]

    stages.calls.clear()
    release.run_release(config, layout, to_stage="train", force=True)
    assert stages.calls == [("train", {"resume": False})]

    # An interrupted run (its stamp is forgotten when it starts) is resumed.
    stages.calls.clear()
    stages.fail.add("train")
    with pytest.raises(CheckFailed):
        release.run_release(config, layout, to_stage="train", force=True)
    stages.fail.clear()
    release.run_release(config, layout, to_stage="train")
    assert stages.calls == [("train", {"resume": False}), ("train", {"resume": True})]


def test_a_second_concurrent_release_is_refused(stages: Recorder, release_of: Callable[..., Any]) -> None:
    import fcntl

    config, layout = release_of()
    layout.stamps_dir.mkdir(parents=True)
    with (layout.stamps_dir / ".release.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # what a running release holds (flock locks are per open file)
        with pytest.raises(UsageError, match="another pubctl command is running on release 't'"):
            release.run_release(config, layout)
        fcntl.flock(held, fcntl.LOCK_UN)
    assert stages.calls == []
    release.run_release(config, layout)
    assert stages.names() == list(STAGE_NAMES)


def test_a_stage_command_waits_for_no_running_release_and_names_it(
    stages: Recorder, release_of: Callable[..., Any]
) -> None:
    # `pubctl train t --no-resume` beside a running release would write the same run folder and record.
    config, layout = release_of()

    def train_while_releasing(config: ReleaseConfig, layout: Layout, resume: bool = True) -> StageResult:
        with pytest.raises(UsageError, match=r"`pubctl release t` \(pid \d+\) is running on release 't'"):
            release.run_stage("merge", config, layout)
        stages.calls.append(("train", {"resume": resume}))
        return StageResult("trained")

    stages.train = train_while_releasing  # type: ignore[method-assign]
    with pytest.raises(StageFailed):  # the fake train leaves no adapter: the chain stops there
        release.run_release(config, layout)
    assert stages.names() == ["train"]
    with release.one_release_at_a_time(layout, "merge"):  # the lock went with the release
        pass


def test_a_missing_pipeline_module_is_named_as_an_incomplete_installation() -> None:
    with pytest.raises(UsageError, match=r"pipeline\.no_such_stage is missing from this pubctl installation"):
        load_entry("pipeline.no_such_stage:run")


def test_ctrl_c_in_a_stage_says_how_to_go_on_and_keeps_earlier_work(
    stages: Recorder, release_of: Callable[..., Any], project: Path
) -> None:
    config, layout = release_of()
    release.run_release(config, layout, to_stage="train")

    def interrupted(config: ReleaseConfig, layout: Layout) -> StageResult:
        raise KeyboardInterrupt

    stages.merge = interrupted  # type: ignore[method-assign]
    result = CliRunner().invoke(app, ["release", "t"])
    said = " ".join(result.output.split())
    assert result.exit_code == 130, result.output
    assert "interrupted: merge interrupted: nothing of it was recorded; `pubctl merge t` runs it again." in said
    assert "stopped at merge" in said and "Traceback" not in said
    assert read_stamp(layout.stamps_dir, "train") is not None and read_stamp(layout.stamps_dir, "merge") is None


def test_the_train_hint_names_the_checkpoint_a_resume_starts_from(release_of: Callable[..., Any]) -> None:
    from pipeline.stages.train.checkpoints import RUNTIME_FILE, resume_hint

    config, layout = release_of({"training": {"max_steps": 40, "save_steps": 10}})
    assert "no checkpoint was written yet (one every training.save_steps = 10 steps)" in resume_hint(config, layout)
    folder = layout.train_dir / "checkpoint-20"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 20, "epoch": 0.5, "max_steps": 40}))
    (folder / RUNTIME_FILE).write_text(json.dumps({"runtime_seconds": 12.5}))
    assert resume_hint(config, layout) == "`pubctl train t` resumes from checkpoint-20 (step 20 of 40)"
