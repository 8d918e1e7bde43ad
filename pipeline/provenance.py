"""Where a result came from: pubctl and library versions, git commit, hardware, config hash.

Versions come from installed package metadata, so collecting them imports
nothing heavy; the hardware is read from torch only when the calling stage has
already imported it.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import __version__
from pipeline.results import Provenance

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig

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


def git_commit(root: Path) -> str | None:
    """HEAD of the project's git checkout, '-dirty' when tracked files outside cards/ changed; None outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        # cards/ holds pubctl's own outputs (each stage rewrites results.json): only a change to code,
        # configs or templates makes the recorded commit an inexact description of what ran.
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)cards"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha


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
        git_commit=git_commit(root),
        created_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        config_sha256=config.sha256 or None,
        versions=package_versions(),
        hardware=hardware(),
    )
