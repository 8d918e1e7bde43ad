"""The push stage against a Hub-compatible server on 127.0.0.1, through the real huggingface_hub client.

Every test pushes a demo-like release (the built-in tiny Qwen3 as the merged model,
a card bundle rendered by the card stage from a hand-written record) and checks
what reached the server: commits, bytes, files downloaded back with
hf_hub_download and compared by sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hub_fixtures import TEST_TOKEN, build_demo_project
from hub_server import HubServer

from pipeline.config import ReleaseConfig, load_config
from pipeline.errors import CheckFailed, StageFailed, UsageError
from pipeline.layout import Layout
from pipeline.stages import push

REPO = "pubctl-demo/tiny-qwen3-enhanced-kto"  # configs/demo.yaml's hub.repo_id


@pytest.fixture(scope="module")
def built_demo(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> Path:
    """One demo-like release built per module (the card render is the slow part), copied into each test."""
    return build_demo_project(tmp_path_factory, tiny_model_path)


@pytest.fixture
def release(project: Path, built_demo: Path) -> tuple[ReleaseConfig, Layout]:
    for part in ("cards", "runs"):
        shutil.copytree(built_demo / part / "demo", project / part / "demo")
    return load_config("demo"), Layout.for_release("demo")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def local_files(layout: Layout, *, card_only: bool = False) -> dict[str, bytes]:
    """What the release publishes, by repo path."""
    files = {"README.md": layout.readme.read_bytes(), "results.json": layout.results.read_bytes()}
    files["pubctl.yaml"] = (layout.root / "configs" / f"{layout.name}.yaml").read_bytes()  # the release's config
    files.update({f"plots/{p.name}": p.read_bytes() for p in layout.plots_dir.glob("*.png")})
    if not card_only:
        files.update({p.name: p.read_bytes() for p in layout.merged_model_dir.iterdir() if p.is_file()})
    return files


def assert_downloads_match(repo_id: str, expected: dict[str, bytes], cache: Path, revision: str = "main") -> None:
    """Download every expected file with the real client and compare hashes."""
    from huggingface_hub import hf_hub_download

    for path, content in expected.items():
        downloaded = Path(hf_hub_download(repo_id, path, revision=revision, cache_dir=cache))
        assert sha256(downloaded.read_bytes()) == sha256(content), path


def rerender(config_overrides: dict, make_config: Callable[..., str]) -> tuple[ReleaseConfig, Layout]:
    """Change configs/demo.yaml and re-render the card (what a user does before a card-only push)."""
    from pipeline.stages.card import render_card

    make_config("demo", config_overrides)
    config, layout = load_config("demo"), Layout.for_release("demo")
    render_card(config, layout)
    return config, layout


def change_model(files: dict[str, bytes | None], make_config: Callable[..., str]) -> tuple[ReleaseConfig, Layout]:
    """Write (or, for None, delete) merged-model files, record them as the merge stage would, re-render the card."""
    from pipeline.results import FileEntry, read_results, update_results

    layout = Layout.for_release("demo")
    for name, content in files.items():
        if content is None:
            (layout.merged_model_dir / name).unlink()
        else:
            (layout.merged_model_dir / name).write_bytes(content)
    model = read_results(layout.results).model
    assert model is not None
    entries = [
        FileEntry(path=p.name, size=p.stat().st_size, sha256=sha256(p.read_bytes()))
        for p in sorted(layout.merged_model_dir.iterdir())
    ]
    from pipeline.lineage import files_digest

    record = read_results(layout.results)
    merged = files_digest(entries)
    assert record.merge is not None and record.merge.lineage is not None and record.evaluation is not None
    merge = record.merge.model_copy(
        update={"lineage": record.merge.lineage.model_copy(update={"produced": {"merged_model": merged}})}
    )
    scored = {**record.evaluation.lineage.consumed, "merged_model": merged} if record.evaluation.lineage else {}
    evaluation = record.evaluation.model_copy(
        update={"lineage": record.evaluation.lineage.model_copy(update={"consumed": scored})}
    )
    # What merge and evaluate would record after such a merge: the files and their digest, the scored model.
    update_results(
        layout.results, "demo", model=model.model_copy(update={"files": entries}), merge=merge, evaluation=evaluation
    )
    return rerender({}, make_config)


# ------------------------------------------------------------------------- dry run
def test_dry_run_needs_no_token_and_says_when_the_hub_is_unreachable(
    release: tuple[ReleaseConfig, Layout], hub: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    _, layout = release
    monkeypatch.delenv("HF_TOKEN")
    hub.add_fault("down", "*")  # every connection is closed: the Hub cannot be read
    result = CliRunner().invoke(app, ["push", "demo", "--dry-run", "--tag", "v0.1.0"])
    assert result.exit_code == 0, result.output
    assert "could not read the Hub" in result.output
    assert "model.safetensors" in result.output and "LFS" in result.output

    plan = json.loads(layout.push_plan.read_text(encoding="utf-8"))
    assert plan["dry_run"] is True
    assert (plan["repo_id"], plan["revision"], plan["tag"], plan["create_pr"]) == (REPO, "main", "v0.1.0", False)
    assert plan["visibility"].startswith("public") and "the Hub was not read" in plan["visibility"]
    assert plan["remote"]["readable"] is False
    expected = local_files(layout)
    assert {f["path"] for f in plan["files"]} == set(expected)
    for entry in plan["files"]:
        content = expected[entry["path"]]
        assert entry["action"] == "add"
        assert (entry["size"], entry["sha256"]) == (len(content), sha256(content))
    by_path = {f["path"]: f for f in plan["files"]}
    assert by_path["model.safetensors"]["lfs"] is True and by_path["config.json"]["lfs"] is False
    assert plan["summary"]["bytes_to_send"] == sum(len(c) for c in expected.values())
    assert plan["checks"]["ran"] is True and plan["checks"]["failures"] == []
    assert not (layout.stamps_dir / "push.json").exists()
    assert all(r.status is None for r in hub.requests)  # nothing reached a handler
    assert not hub.repos


def test_offline_dry_run_reads_nothing(release: tuple[ReleaseConfig, Layout], hub: HubServer) -> None:
    """HF_HUB_OFFLINE is read when huggingface_hub is imported: a child process gets it from the start."""
    _, layout = release
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("HF_TOKEN")
    pubctl = [sys.executable, "-c", "from pipeline.cli import app; app()"]
    done = subprocess.run([*pubctl, "push", "demo", "--dry-run"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "HF_HUB_OFFLINE" in done.stdout and "nothing was sent" in done.stdout
    plan = json.loads(layout.push_plan.read_text(encoding="utf-8"))
    assert plan["remote"]["readable"] is False and {f["action"] for f in plan["files"]} == {"add"}
    assert hub.requests == []


def test_dry_run_diffs_against_the_hub_when_reachable(
    release: tuple[ReleaseConfig, Layout], hub: HubServer, make_config: Callable[..., str]
) -> None:
    config, layout = release
    push.publish(config, layout)
    config, layout = change_model({"added_tokens.json": b"{}\n"}, make_config)
    mark = hub.mark()
    plan = push.publish(config, layout, dry_run=True)
    assert plan.model.remote.readable and plan.model.remote.exists
    actions = {f.path: f.action for f in plan.model.files}
    assert actions.pop("added_tokens.json") == "add"
    assert actions.pop("results.json") == "update"  # it records the new file
    assert actions["model.safetensors"] == "unchanged" and actions["tokenizer.json"] == "unchanged"
    assert hub.body_bytes_since(mark) == 0
    assert set(hub.kinds_since(mark)) <= {"info", "refs", "tree", "download"}  # reads only


def test_a_hub_failing_part_way_through_the_reads_is_reported_not_a_crash(
    release: tuple[ReleaseConfig, Layout], hub: HubServer
) -> None:
    config, layout = release
    push.publish(config, layout)
    head = hub.history(REPO)[0].oid
    hub.add_fault("status", "refs", status=500)  # model_info answers, the refs listing (not retried) fails
    plan = push.publish(config, layout, dry_run=True)
    assert not plan.model.remote.readable and "HTTP 500" in plan.model.remote.reason
    assert any("could not read the Hub" in note for note in plan.model.notes)

    # The tree lists the published results.json, and its download fails (huggingface_hub wraps that in an
    # OSError of its own, LocalEntryNotFoundError): reported as for any other read.
    hub.add_fault("status", "download", status=404, times=2)
    plan = push.publish(config, layout, dry_run=True)
    assert not plan.model.remote.readable and "HTTP 404 for the published results.json" in plan.model.remote.reason
    hub.clear_faults()

    hub.add_fault("status", "refs", status=503)
    mark = hub.mark()
    with pytest.raises(StageFailed, match=r"HTTP 503.*nothing was sent"):
        push.publish(config, layout)
    assert hub.history(REPO)[0].oid == head
    assert not {"preupload", "lfs_batch", "commit"} & set(hub.kinds_since(mark))


# ---------------------------------------------------------------------- real pushes
def test_first_push_is_one_commit_and_every_file_downloads_back(
    release: tuple[ReleaseConfig, Layout], hub: HubServer, tmp_path: Path
) -> None:
    config, layout = release
    plan = push.publish(config, layout, private=True)
    assert hub.repos[REPO].private is True and plan.model.visibility == "private (created by this push)"

    history = hub.history(REPO)
    assert len(history) == 2  # the repo's initial commit, then exactly one commit with every file
    assert plan.model.result is not None and plan.model.result["commit"] == history[0].oid
    assert history[0].parent == history[1].oid
    assert hub.kinds_since(0).count("commit") == 1
    assert "demo" in history[0].title and "pubctl" in history[0].title
    expected = local_files(layout)
    assert set(hub.files(REPO)) == set(expected) | {".gitattributes"}
    assert_downloads_match(REPO, expected, tmp_path / "hf-cache")

    saved = json.loads(layout.push_plan.read_text(encoding="utf-8"))
    assert saved["dry_run"] is False and saved["result"]["files_sent"] == len(expected)
    assert not (layout.stamps_dir / "push.json").exists()  # the chain writes the stamp, not the stage


def test_the_stage_entry_returns_what_the_chain_stamps(release: tuple[ReleaseConfig, Layout], hub: HubServer) -> None:
    from pipeline.stage import StageResult

    config, layout = release
    planned = push.run(config, layout, dry_run=True)
    assert isinstance(planned, StageResult) and planned.stamped is False and planned.details is None
    assert planned.summary == f"planned: {REPO}@main" and planned.sections == {}

    pushed = push.run(config, layout, tag="v0.1.0")
    head = hub.history(REPO)[0].oid
    assert pushed.stamped is True and pushed.sections == {} and pushed.summary == f"{head[:8]} on main"
    details = pushed.details
    assert details is not None and "summary" not in details
    where = (details["commit"], details["repo_id"], details["revision"], details["tag"])
    assert where == (head, REPO, "main", "v0.1.0")
    assert details["url"].endswith(head) and details["pr_url"] is None and details["card_only"] is False
    assert details["files_sent"] == len(local_files(layout)) and details["adapter"] is None and details["pushed_at"]
    assert details["bytes_sent"] == sum(len(content) for content in local_files(layout).values())
    assert not (layout.stamps_dir / "push.json").exists()


def test_unchanged_repush_makes_no_commit_and_sends_nothing(
    release: tuple[ReleaseConfig, Layout], hub: HubServer
) -> None:
    config, layout = release
    push.publish(config, layout)
    head = hub.history(REPO)[0].oid
    mark = hub.mark()
    plan = push.publish(config, layout)
    assert hub.history(REPO)[0].oid == head
    assert hub.body_bytes_since(mark) == 0
    assert not {"preupload", "lfs_batch", "lfs_upload", "commit", "create_repo"} & set(hub.kinds_since(mark))
    assert plan.model.result is not None and plan.model.result["files_sent"] == 0
    assert plan.summary == f"{head[:8]} on main (unchanged)"


def test_card_only_change_sends_only_the_changed_card_files(
    release: tuple[ReleaseConfig, Layout], hub: HubServer, make_config: Callable[..., str], tmp_path: Path
) -> None:
    config, layout = release
    push.publish(config, layout)
    before = hub.files(REPO)
    config, layout = rerender({"card": {"summary": "A re-worded summary of the demo release."}}, make_config)
    changed = {path for path, content in local_files(layout, card_only=True).items() if before[path] != content}
    assert changed == {"README.md", "pubctl.yaml"}  # the card, and the config it was rendered from

    bytes_before, mark = hub.file_bytes, hub.mark()
    plan = push.publish(config, layout, card_only=True)
    assert [f.path for f in plan.model.files if f.action != "unchanged"] == ["README.md", "pubctl.yaml"]
    config_size = len(local_files(layout)["pubctl.yaml"])
    assert hub.file_bytes - bytes_before == layout.readme.stat().st_size + config_size  # the changed files only
    assert hub.kinds_since(mark).count("commit") == 1
    after = hub.files(REPO)
    assert {p for p in after if after[p] != before.get(p)} == {"README.md", "pubctl.yaml"}
    assert_downloads_match(REPO, local_files(layout), tmp_path / "hf-cache")


def test_card_only_needs_the_model_on_the_hub(release: tuple[ReleaseConfig, Layout], hub: HubServer) -> None:
    config, layout = release
    plan = push.publish(config, layout, dry_run=True, card_only=True)
    assert [f.path for f in plan.model.files if f.path.endswith(".safetensors")] == []
    assert any("card-only" in blocker for blocker in plan.model.blockers)
    with pytest.raises(UsageError, match="card-only"):
        push.publish(config, layout, card_only=True)
    assert not hub.repos


def test_only_files_pubctl_published_are_deleted(
    release: tuple[ReleaseConfig, Layout], hub: HubServer, make_config: Callable[..., str]
) -> None:
    config, layout = change_model({"added_tokens.json": b"{}\n"}, make_config)
    push.publish(config, layout)
    hub.commit_directly(REPO, "main", {"LICENSE": b"Apache-2.0\n", "onnx/model.onnx": b"\x00onnx"}, "hand-added")

    config, layout = change_model({"added_tokens.json": None}, make_config)  # the next release lacks this file
    plan = push.publish(config, layout)
    assert [f.path for f in plan.model.files if f.action == "delete"] == ["added_tokens.json"]
    remote = hub.files(REPO)
    assert "added_tokens.json" not in remote
    assert {"LICENSE", "onnx/model.onnx", ".gitattributes"} <= set(remote)


def test_a_commit_of_deletions_alone_is_not_reported_unchanged(
    release: tuple[ReleaseConfig, Layout], hub: HubServer
) -> None:
    config, layout = release
    push.publish(config, layout)
    hub.commit_directly(
        REPO, "main", {"plots/dropped.png": b"\x89PNG\r\n\x1a\n\x00"}, "a figure the card no longer draws"
    )
    plan = push.publish(config, layout, card_only=True)
    assert plan.model.result is not None and plan.model.result["files_sent"] == 0
    assert plan.model.result["deleted"] == 1 and "plots/dropped.png" not in hub.files(REPO)
    assert plan.summary == f"{hub.history(REPO)[0].oid[:8]} on main"


def test_hidden_files_the_merge_recorded_are_never_deleted(
    release: tuple[ReleaseConfig, Layout], hub: HubServer, make_config: Callable[..., str]
) -> None:
    # The merge records every file of its folder, hidden ones too; pubctl publishes only visible ones, so a
    # recorded .gitattributes must not make the next push delete the Hub's own .gitattributes.
    config, layout = change_model({".gitattributes": b"*.bin filter=lfs diff=lfs merge=lfs -text\n"}, make_config)
    push.publish(config, layout)
    recorded = json.loads(hub.files(REPO)["results.json"])["model"]["files"]
    assert ".gitattributes" in {f["path"] for f in recorded}
    plan = push.publish(config, layout)
    assert [f.path for f in plan.model.files if f.action == "delete"] == []
    assert ".gitattributes" in hub.files(REPO)


def test_branch_tag_and_pull_request(
    release: tuple[ReleaseConfig, Layout], hub: HubServer, make_config: Callable[..., str], tmp_path: Path
) -> None:
    config, layout = release
    push.publish(config, layout, card_only=False, revision="main")
    main_head = hub.history(REPO)[0].oid

    config, layout = rerender({"card": {"summary": "Release candidate."}}, make_config)
    plan = push.publish(config, layout, revision="rc", tag="v0.2.0", message="Release candidate 0.2.0")
    commit = hub.history(REPO, "rc")[0]
    assert commit.title == "Release candidate 0.2.0" and commit.parent == main_head
    assert hub.history(REPO)[0].oid == main_head  # main is untouched
    assert hub.repos[REPO].tags == {"v0.2.0": commit.oid}
    assert plan.model.result is not None and plan.model.result["commit"] == commit.oid
    assert_downloads_match(REPO, {"README.md": layout.readme.read_bytes()}, tmp_path / "c1", revision="v0.2.0")

    with pytest.raises(UsageError, match="tag"):
        push.publish(config, layout, tag="v0.3.0", create_pr=True)
    plan = push.publish(config, layout, create_pr=True)
    assert plan.model.result is not None and plan.model.result["pr_url"].endswith("/discussions/1")
    assert hub.history(REPO)[0].oid == main_head
    pr_head = hub.repos[REPO].pull_requests[1]
    assert hub.repos[REPO].commits[pr_head].parent == main_head
    assert hub.files(REPO, "refs/pr/1")["README.md"] == layout.readme.read_bytes()


def test_a_pull_request_to_a_missing_branch_is_refused_before_anything_is_sent(
    release: tuple[ReleaseConfig, Layout], hub: HubServer
) -> None:
    config, layout = release
    plan = push.publish(config, layout, dry_run=True, revision="rc", create_pr=True)
    assert any("existing branch" in blocker for blocker in plan.model.blockers)
    with pytest.raises(UsageError, match="existing branch"):
        push.publish(config, layout, revision="rc", create_pr=True)
    assert not hub.repos  # refused before the repository was created

    push.publish(config, layout)
    head = hub.history(REPO)[0].oid
    mark = hub.mark()
    with pytest.raises(UsageError, match="existing branch"):
        push.publish(config, layout, revision="rc", create_pr=True)
    assert hub.history(REPO)[0].oid == head and not hub.repos[REPO].pull_requests
    assert not {"preupload", "lfs_batch", "commit", "branch"} & set(hub.kinds_since(mark))


def test_an_existing_tag_on_another_commit_is_refused(
    release: tuple[ReleaseConfig, Layout], hub: HubServer, make_config: Callable[..., str]
) -> None:
    config, layout = release
    push.publish(config, layout, tag="v1.0.0")
    head = hub.history(REPO)[0].oid
    push.publish(config, layout, tag="v1.0.0")  # same content, same tag: nothing to do, not an error
    config, layout = change_model({"added_tokens.json": b"{}\n"}, make_config)
    with pytest.raises(UsageError, match=r"v1\.0\.0 already exists"):
        push.publish(config, layout, tag="v1.0.0")
    assert hub.history(REPO)[0].oid == head and hub.repos[REPO].tags == {"v1.0.0": head}


def test_a_tag_that_fails_after_the_commit_says_the_commit_landed(
    release: tuple[ReleaseConfig, Layout], hub: HubServer
) -> None:
    config, layout = release
    hub.add_fault("status", "tag", status=500)
    with pytest.raises(StageFailed, match=r"committed [0-9a-f]{12}, but the tag v1\.0\.0 was not created") as failed:
        push.publish(config, layout, tag="v1.0.0")
    head = hub.history(REPO)[0].oid
    assert head[:12] in str(failed.value) and "nothing was committed" not in str(failed.value)
    assert len(hub.history(REPO)) == 2 and hub.repos[REPO].tags == {}
    mark = hub.mark()
    push.publish(config, layout, tag="v1.0.0")  # the rerun sends nothing and creates the tag
    assert hub.repos[REPO].tags == {"v1.0.0": head} and hub.body_bytes_since(mark, ("lfs_upload", "commit")) == 0


# ----------------------------------------------------------------------- reliability
@pytest.mark.slow  # huggingface_hub's backoff sleeps about 4 s in all
def test_transient_errors_are_retried(release: tuple[ReleaseConfig, Layout], hub: HubServer, tmp_path: Path) -> None:
    config, layout = release
    hub.add_fault("status", "preupload", status=500)
    hub.add_fault("status", "lfs_batch", status=429, retry_after=1)
    hub.add_fault("drop", "lfs_upload")
    push.publish(config, layout)
    statuses = [(r.kind, r.status) for r in hub.requests]
    assert ("preupload", 500) in statuses and ("lfs_batch", 429) in statuses and ("lfs_upload", None) in statuses
    assert len(hub.history(REPO)) == 2
    assert_downloads_match(REPO, local_files(layout), tmp_path / "hf-cache")


def test_an_interrupted_push_leaves_the_hub_unchanged_and_a_rerun_completes_it(
    release: tuple[ReleaseConfig, Layout], hub: HubServer, tmp_path: Path
) -> None:
    config, layout = release
    hub.add_fault("drop", "commit")  # the connection dies while the commit is being sent
    with pytest.raises(StageFailed, match="unchanged") as failure:
        push.publish(config, layout)
    assert "pubctl push again" in str(failure.value)
    assert len(hub.history(REPO)) == 1  # only the repo's initial commit
    assert not (layout.stamps_dir / "push.json").exists()

    mark = hub.mark()
    push.publish(config, layout)
    assert len(hub.history(REPO)) == 2
    assert "lfs_upload" not in hub.kinds_since(mark)  # LFS objects that arrived are not sent again
    assert_downloads_match(REPO, local_files(layout), tmp_path / "hf-cache")


def test_a_concurrent_writer_makes_the_push_fail_cleanly(
    release: tuple[ReleaseConfig, Layout], hub: HubServer, make_config: Callable[..., str]
) -> None:
    config, layout = release
    push.publish(config, layout)
    config, layout = change_model({"added_tokens.json": b"{}\n"}, make_config)
    hub.add_fault("concurrent_commit", "commit")
    with pytest.raises(StageFailed, match="moved"):
        push.publish(config, layout)
    remote = hub.files(REPO)
    assert "CONCURRENT.md" in remote and "added_tokens.json" not in remote

    push.publish(config, layout)  # plans against the new head; the other writer's file is not pubctl's to delete
    remote = hub.files(REPO)
    assert remote["added_tokens.json"] == b"{}\n" and "CONCURRENT.md" in remote


def test_a_failed_gate_stops_a_real_push_before_any_request(
    release: tuple[ReleaseConfig, Layout], hub: HubServer
) -> None:
    from pipeline.results import read_results, update_results

    config, layout = release
    training = read_results(layout.results).training
    assert training is not None
    update_results(layout.results, "demo", training=training.model_copy(update={"final_loss": 0.0}))
    plan = push.publish(config, layout, dry_run=True)
    assert "loss_not_zero" in {f["id"] for f in plan.checks["failures"]}
    hub.reset()
    with pytest.raises(CheckFailed, match="loss_not_zero"):
        push.publish(config, layout)
    assert hub.requests == [] and not hub.repos


def test_a_real_push_without_a_token_is_a_clear_error(
    release: tuple[ReleaseConfig, Layout], hub: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import get_token

    config, layout = release
    monkeypatch.delenv("HF_TOKEN")
    if get_token() is not None:
        pytest.skip("a huggingface_hub login is stored on this machine")
    with pytest.raises(UsageError, match="HF_TOKEN"):
        push.publish(config, layout)
    assert not hub.repos


def test_a_token_the_hub_refuses_is_a_clear_usage_error(
    release: tuple[ReleaseConfig, Layout], hub: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, layout = release
    monkeypatch.setattr(hub, "tokens", {"hf_some_other_token_with_write_access"})  # TEST_TOKEN may not write
    with pytest.raises(UsageError, match=r"refused the token.*write access") as refused:
        push.publish(config, layout)
    assert TEST_TOKEN not in str(refused.value)
    assert not hub.repos


def test_missing_inputs_are_usage_errors(release: tuple[ReleaseConfig, Layout], hub: HubServer) -> None:
    config, layout = release
    shutil.rmtree(layout.merged_model_dir)
    with pytest.raises(UsageError, match="pubctl merge"):
        push.publish(config, layout, dry_run=True)
    layout.readme.unlink()
    with pytest.raises(UsageError, match="pubctl card"):
        push.publish(config, layout, dry_run=True, card_only=True)


# --------------------------------------------------------------------------- adapter
def test_adapter_repo_gets_the_adapter_and_its_card(
    release: tuple[ReleaseConfig, Layout], hub: HubServer, make_config: Callable[..., str], tmp_path: Path
) -> None:
    import numpy as np
    from huggingface_hub import ModelCard
    from safetensors.numpy import save_file

    config, layout = rerender({"hub": {"adapter_repo_id": "pubctl-demo/tiny-qwen3-lora"}}, make_config)
    layout.merged_adapter_dir.mkdir(parents=True)
    (layout.merged_adapter_dir / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 8}\n', "utf-8")
    save_file(
        {"lora_A": np.ones((8, 4), dtype=np.float32)}, str(layout.merged_adapter_dir / "adapter_model.safetensors")
    )
    (layout.merged_adapter_dir / "README.md").write_text("peft's placeholder card\n", encoding="utf-8")

    plan = push.publish(config, layout)
    assert plan.adapter is not None and plan.adapter.result is not None
    adapter = hub.files("pubctl-demo/tiny-qwen3-lora")
    assert set(adapter) == {".gitattributes", "README.md", "adapter_config.json", "adapter_model.safetensors"}
    card = ModelCard(adapter["README.md"].decode())
    assert card.data.library_name == "peft" and "lora" in card.data.tags
    assert card.data.base_model is None  # builtin:tiny-qwen3 is no Hub id, so no base_model to link
    assert_downloads_match(
        "pubctl-demo/tiny-qwen3-lora",
        {p.name: p.read_bytes() for p in layout.merged_adapter_dir.iterdir() if p.name != "README.md"},
        tmp_path / "hf-cache",
    )


def test_adapter_card_links_a_hub_base_model(make_config: Callable[..., str]) -> None:
    from huggingface_hub import ModelCard

    name = make_config("hub-base", {"model": {"base_model": "Qwen/Qwen3-0.6B"}})
    config = load_config(name)
    card = ModelCard(push.adapter_card(config, Layout.for_release(name)))
    assert card.data.base_model == "Qwen/Qwen3-0.6B"
    assert card.data.base_model_relation == "adapter"
    assert card.data.library_name == "peft"
    assert "on top of `Qwen/Qwen3-0.6B`." in card.text


def test_adapter_card_escapes_config_values_as_the_model_card_does(
    make_config: Callable[..., str], project: Path
) -> None:
    """The adapter card is rendered by the model card's sandboxed environment and Markdown filters."""
    from huggingface_hub import ModelCard
    from markdown_it import MarkdownIt
    from test_card_records import HOSTILE, realistic_record, write_record

    from pipeline.stages.card import render_card

    hostile = f"{HOSTILE['markdown']} {HOSTILE['jinja']} <script>x</script>"
    name = make_config(
        "hostile-adapter",
        {"card": {"model_name": hostile}, "hub": {"adapter_repo_id": "pubctl-demo/tiny-lora"}},
    )
    config = load_config(name)
    layout = write_record(project, realistic_record(name))
    adapter = push.adapter_card(config, layout)
    model = render_card(config, layout).read_text(encoding="utf-8")

    title = adapter.split("\n---\n\n", 1)[1].splitlines()[0]
    assert title.endswith(" — LoRA adapter")
    escaped = title.removesuffix(" — LoRA adapter")
    assert f"{escaped}\n" in model  # the model card's title line, escaped the same way
    assert "\\{\\{ 7\\*7 \\}\\}" in adapter and "{{" not in adapter and "<script>" not in adapter
    heading = MarkdownIt("commonmark", {"html": True}).parse(title)
    inline = next(token for token in heading if token.type == "inline")
    assert [child.type for child in inline.children or []] == ["text"]  # no markup: the name renders as itself
    assert inline.children is not None and inline.children[0].content == f"{hostile} — LoRA adapter"
    assert ModelCard(adapter).data.library_name == "peft"  # the front matter still parses


# ------------------------------------------------------------------- token hygiene
def test_the_token_never_appears_in_anything_written(release: tuple[ReleaseConfig, Layout], hub: HubServer) -> None:
    """Push through the CLI in a child process with a canary token, one failed attempt included."""
    _, layout = release
    canary = "hf_CANARY" + hashlib.sha256(os.urandom(16)).hexdigest()[:30]
    env = {**os.environ, "HF_TOKEN": canary, "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1"}
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)  # progress bars on: they are output too
    pubctl = [sys.executable, "-c", "from pipeline.cli import app; app()"]
    outputs = []
    hub.add_fault("status", "commit", status=500)  # the commit POST is not retried: this attempt fails
    for expected_code in (1, 0):
        done = subprocess.run([*pubctl, "push", "demo"], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == expected_code, done.stderr
        outputs += [done.stdout, done.stderr]
    assert "HTTP 500" in outputs[1]  # the failure was reported...
    assert hashlib.sha256(canary.encode()).hexdigest() in hub.tokens_seen  # ...and the token was really sent

    written = [p for p in layout.root.rglob("*") if p.is_file()]
    assert layout.stamps_dir / "push.json" in written and layout.push_plan in written
    haystacks = outputs + [p.read_bytes().decode("utf-8", "replace") for p in written]
    haystacks += [content.decode("utf-8", "replace") for content in hub.files(REPO).values()]
    haystacks += [f"{c.title}\n{c.description}" for c in hub.history(REPO)] + [r.path for r in hub.requests]
    assert not [text for text in haystacks if canary in text or canary[3:] in text]


def test_scrub_removes_tokens_from_messages() -> None:
    message = "401 for Authorization: Bearer hf_abcdefghijklmnop and hf_QRSTUVWXYZ123456 via secret-token"
    scrubbed = push.scrub(message, token="secret-token")
    assert "abcdefghijklmnop" not in scrubbed and "QRSTUVWXYZ123456" not in scrubbed
    assert "secret-token" not in scrubbed and "Bearer ***" in scrubbed
    assert TEST_TOKEN not in push.scrub(f"token {TEST_TOKEN}", token=TEST_TOKEN)


def test_local_file_ids_are_the_ones_the_hub_reports(tmp_path: Path) -> None:
    from huggingface_hub.utils import sha

    from pipeline.hub_client import LocalFile, predict_lfs

    content = b"x" * (3 << 20) + b"tail"  # several read chunks
    (tmp_path / "big.txt").write_bytes(content)
    local = LocalFile.from_path("big.txt", tmp_path / "big.txt")
    assert (local.size, local.sha256, local.git_oid) == (len(content), sha256(content), sha.git_hash(content))
    assert local.lfs is False
    assert predict_lfs("model-00001-of-00002.safetensors", 10, b"{}")
    assert predict_lfs("plots/loss.png", 100, b"\x89PNG\r\n\x1a\n\x00")
    assert predict_lfs("tokenizer.json", 11 << 20, b"{")
    assert not predict_lfs("README.md", 100, b"---") and not predict_lfs("empty.bin", 0, b"")
