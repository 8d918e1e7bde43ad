"""Hostile files in a release (issue #14): links out of it, FIFOs, files the merge did not record, a stalled commit.

Nothing outside the release is read or published, no special file is opened (a FIFO would block
the command for ever), and a Hub that never answers the commit ends the push with exit 1. The
commands that used to hang run under an alarm, so a regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hub_fixtures import build_demo_project
from hub_server import HubServer
from typer.testing import CliRunner, Result

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.layout import Layout

REPO = "pubctl-demo/tiny-qwen3-enhanced-kto"  # configs/demo.yaml's hub.repo_id
SECRET = "hf_SECRETtokenOUTSIDEtheRELEASE0123456789"
HANG_LIMIT_S = 30
"""A command that used to block on a FIFO must be done well within this (each takes a second or two)."""

runner = CliRunner()
pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs and symlinks: POSIX only")


@pytest.fixture(scope="module")
def built_demo(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> Path:
    """A demo-like release (merged model + card bundle, as merge and card leave them), built once per module."""
    return build_demo_project(tmp_path_factory, tiny_model_path)


@pytest.fixture
def layout(project: Path, built_demo: Path) -> Layout:
    for part in ("cards", "runs"):
        shutil.copytree(built_demo / part / "demo", project / part / "demo")
    return Layout.for_release("demo")


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A token file outside the project, as ~/.cache/huggingface/token would be."""
    path = tmp_path / "home" / ".cache" / "huggingface" / "token"
    path.parent.mkdir(parents=True)
    path.write_text(SECRET, encoding="utf-8")
    return path


@pytest.fixture
def session_timeout() -> Iterator[None]:
    """huggingface_hub's shared client outlives the test: give it back the timeout it had."""
    from huggingface_hub.utils import get_session

    before = get_session().timeout
    yield
    get_session().timeout = before


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (not hang) when the body blocks longer than ``seconds``: a FIFO opened for reading blocks for ever."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def invoke(*args: str) -> Result:
    """The CLI in this process, interrupted after HANG_LIMIT_S: a hang fails the test instead of the suite."""
    with deadline(HANG_LIMIT_S):
        result = runner.invoke(app, list(args), env={"COLUMNS": "250"})
    assert not isinstance(result.exception, TimeoutError), f"pubctl {' '.join(args)} blocked: it hangs"
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def record(layout: Layout, name: str, content: bytes) -> None:
    """Add ``name`` with ``content`` to the merge's record of the model, as a forged record would, with the
    lineage and the card made to agree: every other gate passes, so only the file itself can give it away."""
    import hashlib

    from pipeline.lineage import files_digest
    from pipeline.results import FileEntry, read_results, update_results
    from pipeline.stages.card import render_card

    results = read_results(layout.results)
    assert results.model and results.merge and results.merge.lineage and results.evaluation
    assert results.evaluation.lineage
    files = [*results.model.files, FileEntry(path=name, size=len(content), sha256=hashlib.sha256(content).hexdigest())]
    digest = files_digest(files)
    merge_lineage = results.merge.lineage.model_copy(update={"produced": {"merged_model": digest}})
    consumed = {**results.evaluation.lineage.consumed, "merged_model": digest}
    update_results(
        layout.results,
        "demo",
        model=results.model.model_copy(update={"files": files}),
        merge=results.merge.model_copy(update={"lineage": merge_lineage}),
        evaluation=results.evaluation.model_copy(
            update={"lineage": results.evaluation.lineage.model_copy(update={"consumed": consumed})}
        ),
    )
    render_card(load_config("demo"), layout)


# ---------------------------------------------------------------- links out of the release
def link_out(layout: Layout, secret: Path, *, recorded: bool) -> Path:
    """runs/demo/merge/model/notes.txt -> the token file; with ``recorded``, a forged record claims it too."""
    link = layout.merged_model_dir / "notes.txt"
    link.symlink_to(secret)
    if recorded:  # the record claiming the file changes nothing: what it points at is outside
        record(layout, "notes.txt", secret.read_bytes())
    return link


def assert_secret_stayed_out(layout: Layout, output: str) -> None:
    assert SECRET not in output
    written = [p for p in layout.root.rglob("*") if p.is_file() and not p.is_symlink()]
    assert not [p for p in written if SECRET.encode() in p.read_bytes()]


def test_a_link_to_a_file_outside_fails_the_model_files_gate(layout: Layout, secret: Path) -> None:
    link_out(layout, secret, recorded=True)
    checked = invoke("check", "demo")
    assert checked.exit_code == 1, checked.output
    assert "Failed: model_files." in checked.output  # the one gate that fails
    assert "model_files: found notes.txt is a symbolic link to" in checked.output and "outside" in checked.output
    assert_secret_stayed_out(layout, checked.output)


@pytest.mark.parametrize(
    ("args", "recorded"),
    [(("push", "demo", "--dry-run"), False), (("push", "demo"), False), (("push", "demo"), True)],
    ids=["dry-run", "push", "push-forged-record"],
)
def test_a_link_to_a_file_outside_is_never_pushed(
    layout: Layout, hub: HubServer, secret: Path, args: tuple[str, ...], recorded: bool
) -> None:
    link = link_out(layout, secret, recorded=recorded)
    pushed = invoke(*args)
    assert pushed.exit_code == 2, pushed.output
    assert f"refused {link}: it is a symbolic link to {secret}, outside" in pushed.output
    assert "Nothing was sent" in pushed.output
    assert hub.requests == [] and not hub.repos  # the Hub heard nothing, not even a read
    assert not layout.push_plan.exists()
    assert_secret_stayed_out(layout, pushed.output)


def test_the_target_of_a_link_out_is_never_opened(layout: Layout, tmp_path: Path) -> None:
    """A FIFO outside as the target: opening it would block, so returning at all proves it was not opened."""
    from pipeline.errors import UsageError
    from pipeline.stages.push.files import model_files

    outside = tmp_path / "outside.fifo"
    os.mkfifo(outside)
    (layout.merged_model_dir / "notes.txt").symlink_to(outside)
    with deadline(HANG_LIMIT_S), pytest.raises(UsageError, match=re.escape(f"symbolic link to {outside}, outside")):
        model_files(layout, card_only=False)


def test_a_link_inside_the_model_folder_is_published_as_its_target(layout: Layout, hub: HubServer) -> None:
    """Resolving links is the rule, not refusing every link: one that stays in the folder is that file."""
    from pipeline.stages.push.files import model_files

    original = layout.merged_model_dir / "generation_config.json"
    moved = layout.merged_model_dir / "sub" / "generation_config.json"
    moved.parent.mkdir()
    record(layout, "sub/generation_config.json", original.read_bytes())
    shutil.move(original, moved)
    original.symlink_to(moved)
    published = {f.path_in_repo: f for f in model_files(layout, card_only=False)}
    assert published["generation_config.json"].sha256 == published["sub/generation_config.json"].sha256


# ------------------------------------------------------------------------------- FIFOs
@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("check", "demo"), 1, "model_files: found tokenizer.model (is a FIFO (named pipe))"),
        (("release", "demo", "--from", "check", "--dry-run"), 1, "tokenizer.model (is a FIFO (named pipe))"),
        (("push", "demo", "--dry-run"), 2, "tokenizer.model: it is a FIFO (named pipe)"),
        (("push", "demo"), 2, "tokenizer.model: it is a FIFO (named pipe)"),
    ],
    ids=["check", "release", "push-dry-run", "push"],
)
def test_a_fifo_in_the_merged_model_is_refused_without_being_opened(
    layout: Layout, hub: HubServer, args: tuple[str, ...], code: int, message: str
) -> None:
    os.mkfifo(layout.merged_model_dir / "tokenizer.model")
    result = invoke(*args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert hub.requests == []


def test_a_fifo_named_like_weights_fails_the_gates_instead_of_blocking_them(layout: Layout) -> None:
    os.mkfifo(layout.merged_model_dir / "model-00002-of-00002.safetensors")
    checked = invoke("check", "demo")
    assert checked.exit_code == 1
    assert "model-00002-of-00002.safetensors is a FIFO" in checked.output


def test_a_fifo_in_the_task_folder_does_not_hang_list(layout: Layout, make_config: Callable[..., str]) -> None:
    from pipeline.stage import stage_inputs
    from pipeline.stages import STAGES
    from pipeline.stamps import hasher_for, new_stamp, write_stamp

    tasks = layout.root / "tasks"
    tasks.mkdir()
    (tasks / "task.yaml").write_text("task: mine\n", encoding="utf-8")
    make_config("demo", {"evaluation": {"include_path": "tasks"}})
    config, hasher = load_config("demo"), hasher_for(layout)
    # Stamps of the stages up to evaluate as they would be now: list then hashes evaluate's inputs, the tasks.
    for name in ("train", "merge", "evaluate"):
        stage = STAGES[name]
        inputs = stage_inputs(stage, config, layout, hasher, {})
        outputs = stage.outputs(config, layout, hasher)
        write_stamp(layout.stamps_dir, new_stamp(name, inputs, outputs, seconds=1.0, summary="done"))
    assert evaluate_state(invoke("list").output) == "done"
    os.mkfifo(tasks / "pipe.jsonl")

    listed = invoke("list")
    assert listed.exit_code == 0, listed.output
    assert evaluate_state(listed.output) == "done (out of date)"  # the task folder changed; nothing hung


def evaluate_state(table: str) -> str:
    """The evaluate column of the demo row of ``pubctl list`` (release, method, base model, train, merge, evaluate)."""
    row = next(line for line in table.splitlines() if line.strip("│ ").startswith("demo "))
    return row.split("│")[6].strip()


def test_stamps_hash_a_special_file_by_what_it_is(tmp_path: Path) -> None:
    from pipeline.stamps import FileHasher

    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "a.yaml").write_text("task: a\n", encoding="utf-8")
    os.mkfifo(folder / "pipe")
    (folder / "loop").symlink_to(folder / "loop")
    hasher = FileHasher(None)
    with deadline(20):
        first = hasher.tree(folder)
        assert first == hasher.tree(folder)
        (folder / "pipe").unlink()
        (folder / "pipe").write_text("now a file\n", encoding="utf-8")
        assert hasher.tree(folder) != first


def test_hashing_a_stage_input_names_a_special_file(tmp_path: Path) -> None:
    from pipeline.errors import UsageError
    from pipeline.hashing import folder_digest, sha256_file

    os.mkfifo(tmp_path / "pipe")
    with deadline(20):
        with pytest.raises(UsageError, match=r"pipe is a FIFO \(named pipe\), not a regular file"):
            sha256_file(tmp_path / "pipe")
        with pytest.raises(UsageError, match="pipe is a FIFO"):
            folder_digest(tmp_path)


# ---------------------------------------------------------------- files the merge did not leave
def test_a_file_the_merge_did_not_record_is_refused(layout: Layout, hub: HubServer) -> None:
    (layout.merged_model_dir / "extra.txt").write_text("not the merge's\n", encoding="utf-8")

    checked = invoke("check", "demo")
    assert checked.exit_code == 1 and "model_files" in checked.output and "extra.txt" in checked.output

    pushed = invoke("push", "demo")
    assert pushed.exit_code == 2, pushed.output
    assert "extra.txt is not among the files the merge recorded" in pushed.output
    assert "pubctl merge demo" in pushed.output and "Nothing was sent" in pushed.output
    assert hub.requests == []


def test_a_file_changed_after_the_merge_is_refused(layout: Layout, hub: HubServer) -> None:
    config_json = layout.merged_model_dir / "config.json"
    config_json.write_text(config_json.read_text(encoding="utf-8").replace("{", "{ ", 1), encoding="utf-8")

    pushed = invoke("push", "demo", "--dry-run")
    assert pushed.exit_code == 2, pushed.output
    assert "config.json changed since the merge recorded it" in pushed.output
    assert "re-run pubctl merge demo" in pushed.output
    assert hub.requests == [] and not layout.push_plan.exists()


# ------------------------------------------------------------------------ stalled commit
def test_a_stalled_commit_ends_with_nothing_committed(
    layout: Layout, hub: HubServer, monkeypatch: pytest.MonkeyPatch, session_timeout: None
) -> None:
    monkeypatch.setenv("PUBCTL_HUB_TIMEOUT", "2")
    hub.add_fault("stall", "commit", seconds=60)  # reads the commit, never answers, commits nothing
    started = time.monotonic()
    pushed = invoke("push", "demo")
    assert time.monotonic() - started < 30
    assert pushed.exit_code == 1, pushed.output
    assert "nothing was committed; run again" in pushed.output
    assert "did not answer the commit within 2 s (PUBCTL_HUB_TIMEOUT" in pushed.output
    assert len(hub.history(REPO)) == 1  # the repository's initial commit only
    kinds = [r.kind for r in hub.requests]  # the stalled commit is not among them: it never ended
    uploads = max(i for i, kind in enumerate(kinds) if kind in ("preupload", "lfs_batch", "lfs_upload"))
    assert "refs" in kinds[uploads:]  # the branch head was read again after the commit was sent


def test_a_commit_whose_answer_is_lost_is_recognised_as_committed(
    layout: Layout, hub: HubServer, monkeypatch: pytest.MonkeyPatch, session_timeout: None
) -> None:
    monkeypatch.setenv("PUBCTL_HUB_TIMEOUT", "2")
    hub.add_fault("stall_after", "commit", seconds=60)  # the commit lands, its answer never comes
    pushed = invoke("push", "demo", "--tag", "v1")
    assert pushed.exit_code == 0, pushed.output
    assert "it was committed" in pushed.output
    head = hub.history(REPO)[0].oid
    assert hub.repos[REPO].tags["v1"] == head
    stamp = json.loads((layout.stamps_dir / "push.json").read_text(encoding="utf-8"))
    assert stamp["record"]["commit"] == head


def test_a_hub_timeout_that_is_not_a_number_is_a_usage_error(layout: Layout, hub: HubServer) -> None:
    pushed = runner.invoke(app, ["push", "demo", "--dry-run"], env={"COLUMNS": "250", "PUBCTL_HUB_TIMEOUT": "soon"})
    assert pushed.exit_code == 2 and "PUBCTL_HUB_TIMEOUT='soon'" in pushed.output
    assert hub.requests == []


def test_links_out_of_the_card_bundle_or_the_adapter_are_refused(
    layout: Layout, secret: Path, make_config: Callable[..., str]
) -> None:
    from pipeline.errors import UsageError
    from pipeline.stages.push.files import adapter_files, model_files

    plot = layout.plots_dir / "stolen.png"
    plot.symlink_to(secret)
    with pytest.raises(UsageError, match=re.escape(f"refused {plot}: it is a symbolic link to {secret}, outside")):
        model_files(layout, card_only=True)

    adapter = layout.merged_adapter_dir
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    os.mkfifo(adapter / "adapter_model.safetensors")
    make_config("demo", {"hub": {"adapter_repo_id": "pubctl-demo/adapter"}})
    with deadline(HANG_LIMIT_S), pytest.raises(UsageError, match=r"adapter_model\.safetensors: it is a FIFO"):
        adapter_files(load_config("demo"), layout)


@pytest.mark.parametrize("option", ["--revision", "--tag"])
def test_push_refuses_a_revision_or_tag_git_would_refuse(option: str, project: Path) -> None:
    result = CliRunner().invoke(app, ["push", "demo", "--dry-run", option, "a..b"])
    assert result.exit_code == 2, result.output
    assert f"{option} 'a..b'" in result.output and "not a git ref name" in result.output
