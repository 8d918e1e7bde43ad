"""What a push adds beside the card and how it checks the Hub: pubctl.yaml, .eval_results, the read-back of the
commit, the card-only push's model check, and the dirty-tree provenance. Against tests/hub_server.py through the
real huggingface_hub client."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hub_fixtures import build_demo_project
from hub_server import HubServer

from pipeline.config import ReleaseConfig, load_config
from pipeline.errors import CheckFailed, StageFailed, UsageError
from pipeline.layout import Layout
from pipeline.stages import push

REPO = "pubctl-demo/tiny-qwen3-enhanced-kto"
EVAL_PATH = ".eval_results/pubctl.yaml"
BENCHMARK = {"dataset_id": "pubctl-test/demo-mmlu", "task_id": "demo_mmlu"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> Path:
    """The demo release built once, its demo_mmlu task published to a (test) Hub benchmark."""

    def publish_benchmark(data: dict) -> None:
        for task in data["evaluation"]["tasks"]:
            if task["name"] == "demo_mmlu":
                task["hub_benchmark"] = BENCHMARK

    return build_demo_project(tmp_path_factory, tiny_model_path, publish_benchmark)


@pytest.fixture
def release(project: Path, built: Path) -> tuple[ReleaseConfig, Layout]:
    shutil.copy(built / "configs" / "demo.yaml", project / "configs" / "demo.yaml")
    for part in ("cards", "runs"):
        shutil.copytree(built / part / "demo", project / part / "demo")
    return load_config("demo"), Layout.for_release("demo")


def cli(*args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from pipeline.cli import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


# ---------------------------------------------------------------- what the commit holds
def test_one_commit_holds_card_config_and_eval_results(
    release: tuple[ReleaseConfig, Layout], hub: HubServer, tmp_path: Path
) -> None:
    from huggingface_hub import ModelCard, hf_hub_download, parse_eval_result_entries

    _, layout = release
    code, output = cli("push", "demo")
    assert code == 0, output
    head = hub.history(REPO)[0]
    assert len(hub.history(REPO)) == 2  # the Hub's initial commit, then ONE commit with everything
    assert f"verified {len(hub.files(REPO)) - 1} files at {head.oid[:12]}" in output  # all but .gitattributes

    files = hub.files(REPO)
    assert files["pubctl.yaml"] == (layout.root / "configs" / "demo.yaml").read_bytes()
    assert "[`pubctl.yaml`](pubctl.yaml)" in files["README.md"].decode()

    entries = parse_eval_result_entries(yaml.safe_load(files[EVAL_PATH]))
    assert [(e.dataset_id, e.task_id) for e in entries] == [(BENCHMARK["dataset_id"], BENCHMARK["task_id"])]
    recorded = next(r for r in json.loads(files["results.json"])["evaluation"]["results"] if r["task"] == "demo_mmlu")
    assert entries[0].value == recorded["value"]
    assert entries[0].notes == "5-shot, acc, lm-eval 0.4.13 (task demo_mmlu, n=100)"
    assert entries[0].source_url == f"{hub.url}/{REPO}/blob/main/results.json"

    card = ModelCard(Path(hf_hub_download(REPO, "README.md", cache_dir=tmp_path)).read_text(encoding="utf-8"))
    assert len(card.data.eval_results) == 3  # model-index stays, all benchmarks in it


def test_eval_results_are_deleted_when_no_score_qualifies(
    release: tuple[ReleaseConfig, Layout], hub: HubServer, make_config: Callable[..., str]
) -> None:
    config, layout = release
    push.publish(config, layout)
    assert EVAL_PATH in hub.files(REPO)
    tasks = [{k: v for k, v in task.items() if k != "hub_benchmark"} for task in _configured_tasks(layout)]
    make_config("demo", {"evaluation": {"tasks": tasks}})
    plan = push.publish(load_config("demo"), layout, card_only=True)
    assert [f.path for f in plan.model.files if f.action == "delete"] == [EVAL_PATH]
    assert EVAL_PATH not in hub.files(REPO)


def _configured_tasks(layout: Layout) -> list[dict]:
    return yaml.safe_load((layout.root / "configs" / "demo.yaml").read_text(encoding="utf-8"))["evaluation"]["tasks"]


def test_a_config_holding_a_token_is_never_published(release: tuple[ReleaseConfig, Layout], hub: HubServer) -> None:
    _, layout = release
    path = layout.root / "configs" / "demo.yaml"
    secret = "hf_" + "Ab3" * 12
    path.write_text(path.read_text() + f"# my token: {secret}\n")
    with pytest.raises(UsageError, match="looks like a Hugging Face token") as refused:
        push.publish(load_config("demo"), layout, dry_run=True)
    assert secret not in str(refused.value)
    assert not hub.repos


def test_a_token_in_escapes_the_card_or_the_message_is_never_published(
    release: tuple[ReleaseConfig, Layout], hub: HubServer
) -> None:
    """The config's bytes may hide a token (YAML escapes); the card, results.json and the commit title carry
    what people wrote. Each is searched, and the message never shows the match."""
    import yaml

    _, layout = release
    path = layout.root / "configs" / "demo.yaml"
    original = path.read_text()
    secret = "hf_" + "Ab3" * 12
    data = yaml.safe_load(original)
    data["card"]["summary"] = "PLACEHOLDER"
    escaped = '"hf_' + "".join(f"\\u{ord(c):04x}" for c in "Ab3" * 12) + '"'
    path.write_text(yaml.safe_dump(data, sort_keys=False).replace("PLACEHOLDER", escaped))
    assert secret not in path.read_text() and load_config("demo").card.summary == secret
    with pytest.raises(UsageError, match="looks like a Hugging Face token") as refused:
        push.publish(load_config("demo"), layout, dry_run=True)
    assert secret not in str(refused.value)

    path.write_text(original)
    layout.readme.write_text(layout.readme.read_text() + f"\nMy token is {secret}.\n")
    with pytest.raises(UsageError, match=r"published as README\.md") as refused:
        push.publish(load_config("demo"), layout, dry_run=True)
    assert secret not in str(refused.value)
    layout.readme.write_text(layout.readme.read_text().replace(f"\nMy token is {secret}.\n", ""))
    with pytest.raises(UsageError, match="the commit's title"):
        push.publish(load_config("demo"), layout, dry_run=True, message=f"release with {secret}")
    for option in ("tag", "revision"):  # both become public names on the Hub
        with pytest.raises(UsageError, match="a branch or tag name") as refused:
            push.publish(load_config("demo"), layout, dry_run=True, **{option: secret})
        assert secret not in str(refused.value)
    assert not hub.repos


# ------------------------------------------------------------------------- read-back
@pytest.mark.parametrize("path", ["README.md", "model.safetensors", EVAL_PATH])
def test_a_file_the_hub_stored_differently_fails_the_push_naming_it(
    release: tuple[ReleaseConfig, Layout], hub: HubServer, path: str
) -> None:
    hub.add_fault("corrupt", "commit", path=path)
    code, output = cli("push", "demo", "--tag", "v1.0.0")
    assert code == 1, output
    assert f"reading it back, {path} differs from what was sent" in " ".join(output.split())
    assert "verified" not in output.replace("verify", "")
    assert hub.repos[REPO].tags == {}  # a commit that does not read back is not tagged


def test_an_unchanged_repush_sends_nothing_and_verifies(release: tuple[ReleaseConfig, Layout], hub: HubServer) -> None:
    config, layout = release
    first = push.publish(config, layout)
    mark = hub.mark()
    again = push.publish(config, layout)
    assert hub.body_bytes_since(mark) == 0 and "commit" not in hub.kinds_since(mark)
    assert again.model.result is not None and first.model.result is not None
    assert again.model.result["verified"] == first.model.result["verified"] == len(hub.files(REPO)) - 1


# ---------------------------------------------------------------- card-only model check
def test_card_only_push_refuses_a_card_for_another_model(release: tuple[ReleaseConfig, Layout], hub: HubServer) -> None:
    config, layout = release
    push.publish(config, layout)
    weights = (layout.merged_model_dir / "model.safetensors").read_bytes()
    other = weights[:-1] + bytes([weights[-1] ^ 1])  # same size, one bit off: only the sha256 tells
    hub.commit_directly(REPO, "main", {"model.safetensors": other}, "someone else's weights")
    head = hub.history(REPO)[0].oid
    plan = push.publish(config, layout, card_only=True, dry_run=True)
    assert any("model.safetensors on the Hub has sha256" in b for b in plan.model.blockers)
    with pytest.raises(CheckFailed, match=r"model\.safetensors on the Hub has sha256 .*; the record says"):
        push.publish(config, layout, card_only=True)
    assert hub.history(REPO)[0].oid == head


def test_card_only_push_names_a_model_file_missing_on_the_hub(
    release: tuple[ReleaseConfig, Layout], hub: HubServer
) -> None:
    from pipeline.lineage import files_digest
    from pipeline.results import FileEntry, read_results, update_results
    from pipeline.stages.card import render_card

    config, layout = release
    push.publish(config, layout)
    record = read_results(layout.results)
    assert record.model and record.merge and record.merge.lineage and record.evaluation and record.evaluation.lineage
    (layout.merged_model_dir / "added_tokens.json").write_bytes(b"{}\n")
    extra = FileEntry(path="added_tokens.json", size=3, sha256=hashlib.sha256(b"{}\n").hexdigest())
    files = [*record.model.files, extra]
    # The record (and so the card) of a merge that also wrote added_tokens.json, which was never pushed.
    produced = {"merged_model": files_digest(files)}
    consumed = {**record.evaluation.lineage.consumed, **produced}
    update_results(
        layout.results,
        "demo",
        model=record.model.model_copy(update={"files": files}),
        merge=record.merge.model_copy(
            update={"lineage": record.merge.lineage.model_copy(update={"produced": produced})}
        ),
        evaluation=record.evaluation.model_copy(
            update={"lineage": record.evaluation.lineage.model_copy(update={"consumed": consumed})}
        ),
    )
    render_card(config, layout)
    head = hub.history(REPO)[0].oid
    code, output = cli("push", "demo", "--card-only")
    assert code == 1, output
    assert "added_tokens.json (in the record's model.files) is not on the Hub" in " ".join(output.split())
    assert hub.history(REPO)[0].oid == head


def test_measure_bytes_and_commits_per_push(
    release: tuple[ReleaseConfig, Layout],
    hub: HubServer,
    make_config: Callable[..., str],
    capsys: pytest.CaptureFixture,
) -> None:
    from pipeline.stages.card import render_card

    config, layout = release
    rows = []
    for label in ("first push", "unchanged re-push", "card-only push"):
        if label == "card-only push":
            make_config("demo", {"card": {"summary": "The same demo release, in other words."}})
            config = load_config("demo")
            render_card(config, layout)
        mark, content = hub.mark(), hub.file_bytes
        push.publish(config, layout, card_only=label == "card-only push")
        uploaded = hub.body_bytes_since(mark, ("lfs_upload", "commit"))
        rows.append((label, uploaded, hub.file_bytes - content, hub.kinds_since(mark).count("commit")))
    with capsys.disabled():
        for label, uploaded, content, commits in rows:
            print(
                f"\n{label}: {uploaded:,} bytes of LFS and commit bodies ({content:,} of file content), "
                f"{commits} commit(s)"
            )
    assert rows[1][1:] == (0, 0, 0)
    assert rows[2][3] == 1 and 0 < rows[2][1] < rows[0][1]


# --------------------------------------------------------------------------- provenance
def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def test_untracked_config_or_data_marks_the_commit_dirty(tmp_path: Path) -> None:
    from pipeline.provenance import describe_commit, git_commit

    git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text("runs/\n")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "demo.yaml").write_text("hub: {repo_id: a/b}\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    head = git(tmp_path, "rev-parse", "HEAD")
    assert git_commit(tmp_path, [tmp_path / "configs" / "demo.yaml"]) == head

    (tmp_path / "configs" / "new.yaml").write_text("hub: {repo_id: a/c}\n")  # an uncommitted config
    assert git_commit(tmp_path) == f"{head}-dirty"
    (tmp_path / "configs" / "new.yaml").unlink()

    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "data.jsonl").write_text("{}\n")  # ignored by git, yet the release trained on it
    assert git_commit(tmp_path) == head
    assert git_commit(tmp_path, [tmp_path / "runs" / "data.jsonl"]) == f"{head}-dirty"
    outside = tmp_path.parent / "elsewhere.yaml"
    outside.write_text("hub: {repo_id: a/b}\n")
    assert git_commit(tmp_path, [outside]) == f"{head}-dirty"

    assert "uncommitted changes" in describe_commit(f"{head}-dirty") and head in describe_commit(f"{head}-dirty")
    assert describe_commit(head) == head and describe_commit(None) == "not in a git checkout"


def test_push_fails_when_the_hub_cannot_be_read_back(release: tuple[ReleaseConfig, Layout], hub: HubServer) -> None:
    config, layout = release
    # A first push downloads nothing before its commit: every download is the read-back's.
    hub.add_fault("status", "download", status=404, times=50)
    with pytest.raises(StageFailed, match="could not be read back to verify it"):
        push.publish(config, layout)
    assert "README.md" in hub.files(REPO)  # committed; the message says so and how to go on
