"""Where a release's files live.

Two trees per release, as DESIGN.md fixes them:

- ``cards/NAME/``: the committed card bundle (README.md, results.json, plots/).
- ``runs/NAME/``: heavy, git-ignored outputs (checkpoints, adapter, merged model,
  raw evaluation output, stage stamps, the push plan).

Nothing else in pubctl builds these paths by hand, so moving a file is a one-line change here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import UsageError

ROOT_ENV = "PUBCTL_ROOT"
"""Project root override; default: the current working directory."""

CACHE_ENV = "PUBCTL_CACHE"
"""Shared cache override (built-in model, base-model evaluations); default: runs/_cache under the root."""


RELEASE_NAME_MAX = 100
"""Longest release name: the name becomes folder and file names (runs/NAME-rehearsal/config/NAME-rehearsal.yaml)."""

_RELEASE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def release_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a release (it becomes cards/NAME and runs/NAME), or None when it can."""
    if len(name) > RELEASE_NAME_MAX:
        return f"release name too long ({len(name)} characters; at most {RELEASE_NAME_MAX})"
    if not _RELEASE_NAME.fullmatch(name):
        # A first letter or digit rules out '.', '..', hidden folders, '-option' lookalikes and runs/_cache.
        return (
            f"invalid release name {name[:60]!r}: use ASCII letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return None


def check_release_name(name: str, source: str = "") -> str:
    """``name`` when it can name a release; a UsageError saying why not otherwise."""
    problem = release_name_problem(name)
    if problem:
        raise UsageError(f"{source}: {problem}." if source else f"{problem[0].upper()}{problem[1:]}.")
    return name


def project_root() -> Path:
    """The folder holding configs/, cards/ and runs/."""
    return Path(os.environ.get(ROOT_ENV) or Path.cwd()).resolve()


def configs_dir(root: Path | None = None) -> Path:
    """The project's release configs: configs/NAME.yaml."""
    return (root or project_root()) / "configs"


def cache_root(root: Path | None = None) -> Path:
    """Caches shared between releases: the built-in tiny model, base-model evaluation results."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).resolve() if env else (root or project_root()) / "runs" / "_cache"


@dataclass(frozen=True)
class Layout:
    """The paths of one release, derived from the project root and the release name."""

    root: Path
    name: str

    def __post_init__(self) -> None:
        # The config loader checks the name too; a Layout built any other way must not reach outside either.
        check_release_name(self.name)

    @classmethod
    def for_release(cls, name: str, root: Path | None = None) -> Layout:
        return cls(root=(root or project_root()).resolve(), name=name)

    def inside(self, path: Path, top: str) -> Path:
        """``path`` when, links resolved, it lies inside the project's ``top`` folder (runs or cards).

        Every path below is built from the name, so this is what keeps a symlinked cards/NAME or
        runs/NAME/merge from sending a write elsewhere. ``top`` itself is resolved first: runs/ may
        be a link to a scratch disk.
        """
        try:
            base, resolved = (self.root / top).resolve(), path.resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop, a name the file system refuses
            raise UsageError(f"{path}: cannot be resolved ({exc}).") from None
        if not resolved.is_relative_to(base):
            raise UsageError(
                f"{path} resolves to {resolved}, outside {base}: pubctl reads and writes a release's files only "
                f"under the project's {top}/ folder. Remove the link."
            )
        return path

    # --- committed card bundle -------------------------------------------------
    @property
    def card_dir(self) -> Path:
        return self.inside(self.root / "cards" / self.name, "cards")

    @property
    def readme(self) -> Path:
        return self.inside(self.card_dir / "README.md", "cards")

    @property
    def results(self) -> Path:
        return self.inside(self.card_dir / "results.json", "cards")

    @property
    def plots_dir(self) -> Path:
        return self.inside(self.card_dir / "plots", "cards")

    # --- heavy run outputs ------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return self.inside(self.root / "runs" / self.name, "runs")

    @property
    def train_dir(self) -> Path:
        """Trainer output_dir: checkpoint-N/ folders live here."""
        return self.inside(self.run_dir / "train", "runs")

    @property
    def adapter_dir(self) -> Path:
        """The final LoRA adapter and tokenizer the train stage saves."""
        return self.inside(self.train_dir / "adapter", "runs")

    @property
    def merge_dir(self) -> Path:
        return self.inside(self.run_dir / "merge", "runs")

    @property
    def merged_model_dir(self) -> Path:
        """The merged, standalone model: safetensors, config, tokenizer, generation config."""
        return self.inside(self.merge_dir / "model", "runs")

    @property
    def merged_adapter_dir(self) -> Path:
        """Copy of the adapter published to hub.adapter_repo_id, when set."""
        return self.inside(self.merge_dir / "adapter", "runs")

    @property
    def eval_dir(self) -> Path:
        """Raw lm-eval output and the throughput measurement."""
        return self.inside(self.run_dir / "eval", "runs")

    @property
    def stamps_dir(self) -> Path:
        """One JSON stamp per finished stage: the hash of its inputs."""
        return self.inside(self.run_dir / "stamps", "runs")

    @property
    def logs_dir(self) -> Path:
        """One log per stage (STAGE.log): what the libraries printed while it ran, kept off the terminal."""
        return self.inside(self.run_dir / "logs", "runs")

    @property
    def push_plan(self) -> Path:
        return self.inside(self.run_dir / "push-plan.json", "runs")

    @property
    def cache_dir(self) -> Path:
        # Shared by every release and movable with PUBCTL_CACHE: not a release's folder.
        return cache_root(self.root)

    # --- shared project folders -------------------------------------------------
    def card_dir_of(self, other: str) -> Path:
        """The card bundle of another release (for card.compare_with)."""
        check_release_name(other, source="card.compare_with")
        return self.inside(self.root / "cards" / other, "cards")


def templates_dir(root: Path | None = None) -> Path:
    """The project's templates/ folder, or the one shipped beside the package."""
    local = (root or project_root()) / "templates"
    if local.is_dir():
        return local
    return Path(__file__).resolve().parent.parent / "templates"
