"""Provenance: the recorded git commit is marked dirty by code or config changes, not by pubctl's own card outputs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pipeline.provenance import git_commit


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def test_dirty_only_for_changes_outside_cards(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "configs").mkdir()
    (tmp_path / "cards" / "demo").mkdir(parents=True)
    (tmp_path / "configs" / "demo.yaml").write_text("hub: {repo_id: a/b}\n")
    (tmp_path / "cards" / "demo" / "results.json").write_text("{}\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    head = git(tmp_path, "rev-parse", "HEAD")
    assert git_commit(tmp_path) == head

    (tmp_path / "cards" / "demo" / "results.json").write_text('{"release": "demo"}\n')  # a stage's output
    assert git_commit(tmp_path) == head

    (tmp_path / "configs" / "demo.yaml").write_text("hub: {repo_id: a/c}\n")  # what ran differs from HEAD
    assert git_commit(tmp_path) == f"{head}-dirty"


def test_outside_git(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None
