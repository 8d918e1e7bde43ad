"""Where a result came from: pubctl and library versions, git commit, hardware, config hash.

Versions come from installed package metadata, so collecting them imports
nothing heavy; the hardware is read from torch only when the calling stage has
already imported it.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import __version__
from pipeline.refs import DataRef
from pipeline.results import Provenance

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig

PUBLISHED_CONFIG = "pubctl.yaml"
"""Where a push publishes the release's config in the model repository; the card links it there."""

TRACKED_PACKAGES = (
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "lm_eval",
    "huggingface_hub",
    "safetensors",
)


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (absent packages are left out)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit(root: Path, inputs: Iterable[Path] = ()) -> str | None:
    """HEAD of the project's git checkout, '-dirty' when what ran is not exactly that commit; None outside git.

    Dirty: a tracked file outside cards/ changed, a file outside cards/ that git does not ignore is not
    committed (a new config, data file or template), or one of ``inputs`` (the config, local training
    data) is not tracked by git at all (outside the checkout, or in an ignored folder).
    """
    try:
        sha = _git(root, "rev-parse", "HEAD").stdout.strip()
        # cards/ holds pubctl's own outputs (each stage rewrites results.json): only a change to code,
        # configs, data or templates makes the recorded commit an inexact description of what ran.
        status = _git(root, "status", "--porcelain", "--untracked-files=normal", "--", ".", ":(exclude)cards")
        dirty = bool(status.stdout)
        for path in inputs:
            if dirty:
                break
            dirty = _git(root, "ls-files", "--error-unmatch", "--", str(path), check=False).returncode != 0
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha


def _git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=check, timeout=10)


def release_inputs(config: ReleaseConfig, root: Path) -> list[Path]:
    """The files a release is made from that a commit should hold: its config and local training data."""
    inputs = [config.path] if config.path is not None else []
    data = DataRef.parse(config.data.train, root)
    if data.is_local and data.path is not None:
        inputs.append(data.path)
    return inputs


def describe_commit(git_commit: str | None) -> str:
    """The recorded commit in words: a '-dirty' one is never shown as if it were the code that ran."""
    if git_commit is None:
        return "not in a git checkout"
    if git_commit.endswith("-dirty"):
        return f"{git_commit.removesuffix('-dirty')} with uncommitted changes (the files that ran differ from it)"
    return git_commit


def hardware() -> dict[str, Any]:
    """The device the calling stage ran on; GPU names only when torch is already loaded."""
    info: dict[str, Any] = {"device": "cpu", "gpus": [], "cpu": platform.processor() or platform.machine()}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        info["device"] = "cuda"
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def collect(config: ReleaseConfig, root: Path) -> Provenance:
    """Provenance of a stage run now, for this config."""
    return Provenance(
        pubctl_version=__version__,
        git_commit=git_commit(root, release_inputs(config, root)),
        created_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        config_sha256=config.sha256 or None,
        versions=package_versions(),
        hardware=hardware(),
    )
