"""Where a release's files live.

Two trees per release, as DESIGN.md fixes them:

- ``cards/NAME/``: the committed card bundle (README.md, results.json, plots/).
- ``runs/NAME/``: heavy, git-ignored outputs (checkpoints, adapter, merged model,
  raw evaluation output, stage stamps, the push plan).

Nothing else in pubctl builds these paths by hand, so moving a file is a one-line change here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT_ENV = "PUBCTL_ROOT"
"""Project root override; default: the current working directory."""

CACHE_ENV = "PUBCTL_CACHE"
"""Shared cache override (built-in model, base-model evaluations); default: runs/_cache under the root."""


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

    @classmethod
    def for_release(cls, name: str, root: Path | None = None) -> Layout:
        return cls(root=(root or project_root()).resolve(), name=name)

    # --- committed card bundle -------------------------------------------------
    @property
    def card_dir(self) -> Path:
        return self.root / "cards" / self.name

    @property
    def readme(self) -> Path:
        return self.card_dir / "README.md"

    @property
    def results(self) -> Path:
        return self.card_dir / "results.json"

    @property
    def plots_dir(self) -> Path:
        return self.card_dir / "plots"

    # --- heavy run outputs ------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return self.root / "runs" / self.name

    @property
    def train_dir(self) -> Path:
        """Trainer output_dir: checkpoint-N/ folders live here."""
        return self.run_dir / "train"

    @property
    def adapter_dir(self) -> Path:
        """The final LoRA adapter and tokenizer the train stage saves."""
        return self.train_dir / "adapter"

    @property
    def merge_dir(self) -> Path:
        return self.run_dir / "merge"

    @property
    def merged_model_dir(self) -> Path:
        """The merged, standalone model: safetensors, config, tokenizer, generation config."""
        return self.merge_dir / "model"

    @property
    def merged_adapter_dir(self) -> Path:
        """Copy of the adapter published to hub.adapter_repo_id, when set."""
        return self.merge_dir / "adapter"

    @property
    def eval_dir(self) -> Path:
        """Raw lm-eval output and the throughput measurement."""
        return self.run_dir / "eval"

    @property
    def stamps_dir(self) -> Path:
        """One JSON stamp per finished stage: the hash of its inputs."""
        return self.run_dir / "stamps"

    @property
    def push_plan(self) -> Path:
        return self.run_dir / "push-plan.json"

    @property
    def cache_dir(self) -> Path:
        return cache_root(self.root)

    # --- shared project folders -------------------------------------------------
    def card_dir_of(self, other: str) -> Path:
        """The card bundle of another release (for card.compare_with)."""
        return self.root / "cards" / other


def templates_dir(root: Path | None = None) -> Path:
    """The project's templates/ folder, or the one shipped beside the package."""
    local = (root or project_root()) / "templates"
    if local.is_dir():
        return local
    return Path(__file__).resolve().parent.parent / "templates"
