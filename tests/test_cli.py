"""The CLI: every DESIGN.md command is registered, and the light commands never import the heavy stack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline import __version__
from pipeline.cli import app

REPO_ROOT = Path(__file__).resolve().parent.parent

runner = CliRunner()
HEAVY = ("torch", "transformers", "trl", "peft", "datasets", "lm_eval", "accelerate")

PROBE = """
import sys
from pipeline.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


def imported_heavy(args: list[str], cwd: Path) -> tuple[list[str], subprocess.CompletedProcess[str]]:
    env = {**os.environ, "PUBCTL_ROOT": str(cwd)}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = next(line for line in proc.stderr.splitlines() if line.startswith("HEAVY="))
    return [m for m in line.removeprefix("HEAVY=").split(",") if m], proc


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["list"],
        ["schema"],
        ["train", "--help"],
        ["push", "--help"],
        ["import", "--help"],
        ["verify", "--help"],
    ],
)
def test_light_commands_import_no_heavy_library(project: Path, args: list[str]) -> None:
    heavy, proc = imported_heavy(args, project)
    assert heavy == [], f"{args} imported {heavy}; stderr: {proc.stderr[-2000:]}"


@pytest.mark.parametrize(
    "args", [["card", "demo", "--check"], ["check", "demo"], ["push", "demo", "--card-only", "--dry-run"]]
)
def test_ci_path_on_a_card_bundle_imports_no_heavy_library(project: Path, args: list[str]) -> None:
    """What release.yml runs on a tagged commit, with the light install: the committed bundle only."""
    shutil.copytree(REPO_ROOT / "cards" / "demo", project / "cards" / "demo")
    heavy, proc = imported_heavy(args, project)
    assert heavy == [], f"{args} imported {heavy}; stderr: {proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_every_design_command_is_registered() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("release", "train", "merge", "evaluate", "card", "check", "push", "list", "schema"):
        assert command in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_list_shows_each_config(project: Path) -> None:
    (project / "configs" / "broken.yaml").write_text("hub: {repo_id: a/b}\ntraining: {lr: 1}\n", encoding="utf-8")
    result = runner.invoke(app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("demo", "qwen3-0.6b-kto", "qwen3-1.7b-arabic-cpo", "broken"):
        assert name in result.output
    assert "invalid config" in result.output


def test_list_shows_recorded_stages(project: Path) -> None:
    card = project / "cards" / "demo"
    card.mkdir(parents=True)
    (card / "results.json").write_text(
        json.dumps(
            {
                "schema_version": 1,
                "release": "demo",
                "merge": {"strategy": "streaming", "parity_max_abs_diff": 0.0, "probe_prompts": 4},
            }
        ),
        encoding="utf-8",
    )
    from pipeline.layout import Layout
    from pipeline.status import release_state

    state = release_state(Layout.for_release("demo", project))
    assert state["merge"] == "done" and state["train"] == "—"


def test_bad_allow_syntax_is_usage_error(project: Path) -> None:
    result = runner.invoke(app, ["check", "demo", "--allow", "near_chance"])
    assert result.exit_code == 2
    assert "CHECK=REASON" in result.output


def test_bad_stage_name_is_usage_error(project: Path) -> None:
    result = runner.invoke(app, ["release", "demo", "--from", "trian"])
    assert result.exit_code == 2
    assert "not a stage" in result.output
