"""Shared fixtures: an isolated project root per test and one shared cache for the built-in model.

Tests never touch the repository's own cards/ or runs/: each gets a temporary
project (configs copied from the repo) through PUBCTL_ROOT. The built-in tiny
model is built once into runs/_cache of the checkout and shared by every test
and xdist worker (the build is race-safe: it renames a finished folder).
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Two xdist workers share two cores: one intra-op thread each avoids oversubscription.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import pytest
import yaml

# The local Hub of the push tests (tests/hub_server.py): huggingface_hub reads HF_ENDPOINT and
# HF_HUB_DISABLE_XET when first imported, so the port is reserved here, before any test imports it.
from hub_fixtures import hub, hub_session, reserve_local_hub  # noqa: F401 - the hub fixtures, for every module

reserve_local_hub()

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_CACHE = Path(os.environ.get("PUBCTL_TEST_CACHE", REPO_ROOT / "runs" / "_cache"))


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in, recursively for mappings; None deletes a key."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@pytest.fixture(scope="session")
def shared_cache() -> Path:
    SHARED_CACHE.mkdir(parents=True, exist_ok=True)
    return SHARED_CACHE


@pytest.fixture(scope="session")
def tiny_model_path(shared_cache: Path) -> Path:
    """The built-in tiny Qwen3 (config, safetensors, tokenizer, chat template)."""
    from pipeline.demo.tiny_model import tiny_qwen3_path

    return tiny_qwen3_path(shared_cache)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_cache: Path) -> Path:
    """A fresh project root with the repository's configs and templates, used as PUBCTL_ROOT and cwd."""
    root = tmp_path / "project"
    shutil.copytree(REPO_ROOT / "configs", root / "configs")
    if (REPO_ROOT / "templates").is_dir():
        shutil.copytree(REPO_ROOT / "templates", root / "templates")
    monkeypatch.setenv("PUBCTL_ROOT", str(root))
    monkeypatch.setenv("PUBCTL_CACHE", str(shared_cache))
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def make_config(project: Path) -> Callable[..., str]:
    """Write configs/NAME.yaml = demo.yaml with ``overrides`` deep-merged; returns NAME."""

    def write(name: str = "t", overrides: dict[str, Any] | None = None, base: str = "demo") -> str:
        data = yaml.safe_load((project / "configs" / f"{base}.yaml").read_text(encoding="utf-8"))
        data = deep_merge(data, overrides or {})
        (project / "configs" / f"{name}.yaml").write_text(
            yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
        return name

    return write


def run_idle_and_single_threaded(script: str) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh interpreter on a machine made to look idle with two CPUs.

    A pytest-xdist worker runs threads of its own, and the figures are never forked from a process with
    threads (pipeline.plot_png.processes_for): the fork path is tested where it would run.
    """
    prelude = (
        "import os\n"
        "os.getloadavg = lambda: (0.0, 0.0, 0.0)\n"
        "os.sched_getaffinity = lambda pid: {0, 1}\n"
        "from pipeline import plot_png\n"
        "import sys\n"
        "if plot_png.processes_for(5) == 1:\n"
        "    print('cannot fork here'); sys.exit(0)\n"
    )
    tests = Path(__file__).parent
    path = os.pathsep.join([str(tests.parent), str(tests), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    if done.stdout.strip() == "cannot fork here":
        pytest.skip("figures cannot be forked here (not Linux)")
    return done
