"""The GitHub Actions workflows: valid, free of known security problems, and their steps work here.

Offline throughout: the GitHub workflow JSON schema is the copy check-jsonschema
vendors from schemastore, and zizmor runs with --offline. The release workflow's
`run:` steps are executed locally, in order, with the environment GitHub would
give them, against a demo card bundle in a temporary project, so a workflow that
calls a command or option pubctl does not have fails here rather than on a tag.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
SCRIPTS = Path(sysconfig.get_path("scripts"))
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def _tool(name: str) -> str:
    found = shutil.which(name) or (str(SCRIPTS / name) if (SCRIPTS / name).exists() else None)
    if found is None:
        pytest.fail(f"{name} is not installed; it is part of the dev extra: pip install -e '.[dev]'")
    return found


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    # PyYAML reads the key `on` as the boolean True (YAML 1.1); GitHub reads it as "on".
    if True in data:
        data["on"] = data.pop(True)
    return data


def _steps(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job_id, step) for job_id, job in workflow["jobs"].items() for step in job.get("steps", [])]


def test_both_workflows_exist() -> None:
    assert [path.name for path in FILES] == ["ci.yml", "release.yml"]


def test_workflows_match_the_github_workflow_schema() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, FILES)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    # The schema check above must be able to fail: a job without runs-on is invalid.
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  test:\n    steps:\n      - run: echo hi\n")
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0


def test_zizmor_finds_nothing_offline() -> None:
    result = subprocess.run(
        [_tool("zizmor"), "--offline", "--no-progress", *map(str, FILES)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_catches_tag_injection(tmp_path: Path) -> None:
    # What release.yml avoids: an attacker-chosen tag name spliced into a shell script.
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on:\n  push:\n    tags: ['*/v*']\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: pubctl check ${{ github.ref_name }}\n"
    )
    result = subprocess.run(
        [_tool("zizmor"), "--offline", "--no-progress", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "template-injection" in result.stdout + result.stderr


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_expression_inside_run_scripts_and_actions_pinned(path: Path) -> None:
    workflow = _load(path)
    assert workflow["permissions"] == {"contents": "read"}
    for job_id, step in _steps(workflow):
        if "run" in step:
            # Values reach scripts through env: only, where the shell treats them as data.
            assert not EXPRESSION.search(step["run"]), f"{job_id}: ${{{{ }}}} inside run: {step['run']!r}"
        if "uses" in step:
            assert PINNED.match(step["uses"]), f"{job_id}: {step['uses']} is not pinned to a commit sha"
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_ci_installs_cpu_torch_then_dev_extra_and_runs_the_readme_test_command() -> None:
    workflow = _load(WORKFLOWS / "ci.yml")
    assert set(workflow["on"]) == {"push", "pull_request"}
    scripts = "\n".join(step.get("run", "") for _, step in _steps(workflow))
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in scripts
    assert 'pip install -e ".[dev]"' in scripts
    assert scripts.index("torch==2.13.0") < scripts.index('.[dev]"')
    assert "ruff check ." in scripts and "ruff format --check ." in scripts
    assert "python -m pytest -n auto" in scripts
    setup = next(step for _, step in _steps(workflow) if "setup-python" in step.get("uses", ""))
    assert setup["with"]["cache"] == "pip"


# ------------------------------------------------------------------ running release.yml's steps here
class StepRunner:
    """Runs `run:` steps as GitHub's bash shell does, resolving the few expressions release.yml uses."""

    def __init__(self, cwd: Path, env: dict[str, str], context: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env
        self.context = context  # e.g. {"github.ref_name": "demo/v1.0.0", "secrets.HF_TOKEN": ""}
        self.outputs: dict[str, dict[str, str]] = {}

    def value(self, expression: str) -> str:
        match = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expression)
        if match:
            return self.outputs.get(match[1], {}).get(match[2], "")
        if expression in self.context:
            return self.context[expression]
        raise AssertionError(f"release.yml uses an expression this test does not know: {expression}")

    def condition(self, expression: str) -> bool:
        match = re.fullmatch(r"\$?\{?\{?\s*(.+?)\s*==\s*'([^']*)'\s*\}?\}?", expression.strip())
        assert match, f"condition this test does not know: {expression}"
        return self.value(match[1].strip()) == match[2]

    def run(self, step: dict[str, Any], tmp: Path) -> subprocess.CompletedProcess[str] | None:
        if "if" in step and not self.condition(str(step["if"])):
            return None
        output_file = tmp / f"output-{len(self.outputs)}"
        output_file.write_text("")
        env = dict(self.env, GITHUB_OUTPUT=str(output_file))
        for key, raw in (step.get("env") or {}).items():
            env[key] = EXPRESSION.sub(lambda m: self.value(m[1]), str(raw))
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if "id" in step:
            pairs = (line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line)
            self.outputs[step["id"]] = dict(pairs)
        return result


def _offline_env(root: Path, tmp: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "PUBCTL_"))}
    env.update(
        PATH=f"{SCRIPTS}{os.pathsep}{env.get('PATH', '')}",
        PUBCTL_ROOT=str(root),
        HF_HOME=str(tmp / "hf-home"),  # no stored login token
        HF_ENDPOINT="http://127.0.0.1:9",  # nothing listens: a dry run must not need the Hub
        HF_HUB_DISABLE_XET="1",
    )
    return env


def _release_job() -> tuple[dict[str, Any], dict[str, Any]]:
    workflow = _load(WORKFLOWS / "release.yml")
    return workflow["jobs"]["verify"], workflow["jobs"]["publish"]


def test_release_triggers_on_versioned_tags_only() -> None:
    workflow = _load(WORKFLOWS / "release.yml")
    assert workflow["on"] == {"push": {"tags": ["*/v[0-9]+.[0-9]+.[0-9]+"]}}
    verify, publish = _release_job()
    install = [step["run"] for step in verify["steps"] if "pip install" in step.get("run", "")]
    assert install == ["python -m pip install -e ."]  # the light install: no [train], no torch
    assert publish["needs"] == "verify"
    assert publish["if"] == "vars.PUBCTL_PUSH_CARDS == 'true'"


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("demo/v1.0.0", "demo"),
        ("qwen3-0.6b-kto/v12.3.45", "qwen3-0.6b-kto"),
        ("demo/v1.0", None),
        ("demo/1.0.0", None),
        ("nosuch/v1.0.0", None),
        ("../configs/demo/v1.0.0", None),
        ("$(touch PWNED)/v1.0.0", None),
        ("demo;touch PWNED/v1.0.0", None),
        ('demo"/v1.0.0', None),
    ],
)
def test_tag_mapping_step(tag: str, expected: str | None, project: Path, tmp_path: Path) -> None:
    verify, _ = _release_job()
    step = next(step for step in verify["steps"] if step.get("id") == "tag")
    runner = StepRunner(project, _offline_env(project, tmp_path), {"github.ref_name": tag})
    result = runner.run(step, tmp_path)
    assert result is not None
    assert not list(project.rglob("PWNED")) and not (tmp_path / "PWNED").exists()
    if expected is None:
        assert result.returncode != 0
        assert "::error::" in result.stdout
        assert "release" not in runner.outputs["tag"]
    else:
        assert result.returncode == 0, result.stderr
        assert runner.outputs["tag"] == {"release": expected}


def _demo_bundle(project: Path) -> None:
    """cards/demo as CI sees it: the committed bundle when the repository has one, else a fresh render."""
    committed = REPO_ROOT / "cards" / "demo"
    if (committed / "results.json").is_file():
        shutil.copytree(committed, project / "cards" / "demo")
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from test_card_records import realistic_record, write_record

    write_record(project, realistic_record("demo"))
    result = subprocess.run(
        [str(SCRIPTS / "pubctl"), "card", "demo"],
        cwd=project,
        env=_offline_env(project, project.parent),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow  # four pubctl processes that render plots: about half a minute on two cores
def test_release_workflow_steps_run_here(project: Path, tmp_path: Path) -> None:
    """Every run: step of release.yml, in order, as on a tag demo/v1.0.0 with no HF_TOKEN secret."""
    _demo_bundle(project)
    verify, publish = _release_job()
    env = _offline_env(project, tmp_path)
    context = {"github.ref_name": "demo/v1.0.0", "secrets.HF_TOKEN": "", "vars.PUBCTL_PUSH_CARDS": "true"}
    runner = StepRunner(project, env, context)
    ran = []
    for step in verify["steps"]:
        if "uses" in step or "pip install" in step.get("run", ""):
            continue  # checkout and setup-python: this checkout; the install: done already
        result = runner.run(step, tmp_path)
        assert result is not None
        assert result.returncode == 0, f"{step['name']}:\n{result.stdout}\n{result.stderr}"
        ran.append(step["run"].strip())
    assert ran[1:] == [
        'pubctl card "$RELEASE" --check',
        'pubctl check "$RELEASE"',
        'pubctl push "$RELEASE" --card-only --dry-run',
    ]
    plan = project / "runs" / "demo" / "push-plan.json"
    assert plan.is_file()

    # publish, opted in but without the secret: warns and pushes nothing.
    runner.context["needs.verify.outputs.release"] = runner.outputs["tag"]["release"]
    results = [runner.run(step, tmp_path) for step in publish["steps"] if "run" in step and "pip" not in step["run"]]
    token_check, push = results
    assert token_check is not None and token_check.returncode == 0
    assert "::warning::" in token_check.stdout
    assert push is None  # skipped by its if:
