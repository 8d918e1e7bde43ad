"""`pubctl release demo` end to end: real stages, the real huggingface_hub client, the test Hub on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hub_server import HubServer
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.layout import Layout

HEAVY = ("torch", "transformers", "trl", "peft", "lm_eval", "datasets", "accelerate")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _local_files(layout: Layout) -> dict[str, bytes]:
    """What a full push publishes: the merged model's files and the card bundle."""
    model = layout.merged_model_dir
    files = {p.relative_to(model).as_posix(): p.read_bytes() for p in model.rglob("*") if p.is_file()}
    for path in layout.card_dir.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            files[path.relative_to(layout.card_dir).as_posix()] = path.read_bytes()
    return files


@pytest.mark.slow  # trains, merges and evaluates the tiny model: about a minute of CPU
def test_release_demo_end_to_end(project: Path, hub: HubServer) -> None:
    runner = CliRunner()
    layout = Layout.for_release("demo", project)
    repo_id = yaml.safe_load((project / "configs" / "demo.yaml").read_text())["hub"]["repo_id"]

    # A stage run through its own command is stamped: the release does not train again.
    result = runner.invoke(app, ["train", "demo"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["release", "demo"])
    assert result.exit_code == 0, result.output
    assert "train: up to date" in result.output
    for stage in ("merge", "evaluate", "card", "check", "push"):
        assert f"{stage}: running" in result.output
    assert "release demo: ran merge, evaluate, card, check, push." in result.output

    # Everything the release wrote is on the Hub, byte for byte, fetched with the real client.
    from huggingface_hub import hf_hub_download

    remote = hub.files(repo_id)
    local = _local_files(layout)
    assert set(local) <= set(remote)
    for path, data in local.items():
        downloaded = Path(hf_hub_download(repo_id, path, cache_dir=project / "hf-cache"))
        assert _sha256(downloaded.read_bytes()) == _sha256(data), path
    commits = len(hub.repos[repo_id].commits)
    stamp = json.loads((layout.stamps_dir / "push.json").read_text())
    assert stamp["summary"] and stamp["record"]["commit"]

    # A finished release re-run does nothing, says so, and does not even contact the Hub.
    requests = len(hub.requests)
    result = runner.invoke(app, ["release", "demo"])
    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.output
    assert len(hub.requests) == requests and len(hub.repos[repo_id].commits) == commits

    # A card-only edit re-renders, re-checks and re-pushes the card; only README.md and pubctl.yaml are sent.
    config_path = project / "configs" / "demo.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["card"]["summary"] = "The same demo release, described in other words."
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    sent = hub.file_bytes
    result = runner.invoke(app, ["release", "demo"])
    assert result.exit_code == 0, result.output
    assert "release demo: ran card, check, push." in result.output
    assert hub.files(repo_id)["README.md"] == layout.readme.read_bytes()
    # The card and the config it came from (published as pubctl.yaml), nothing else.
    assert hub.file_bytes - sent == len(layout.readme.read_bytes()) + len(config_path.read_bytes())
    assert len(hub.repos[repo_id].commits) == commits + 1

    # The no-op release decides from stamps and file stats alone: no heavy library is imported.
    env = dict(os.environ, PUBCTL_ROOT=str(project))
    code = (
        "import sys\nfrom pipeline.cli import app\n"
        "try:\n    app(['release', 'demo'])\nexcept SystemExit as exc:\n    assert exc.code in (0, None), exc.code\n"
        f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "nothing to do" in done.stderr
    assert "HEAVY []" in done.stdout
