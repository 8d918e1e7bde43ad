"""The local files a push publishes: the card bundle, the merged model, the adapter and its card."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.errors import UsageError
from pipeline.hub_client import LocalFile, collect_folder
from pipeline.layout import Layout
from pipeline.stages.push.adapter import adapter_card

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig

CARD_FILES = ("README.md", "results.json")
"""Card bundle files at the repo root; plots/*.png join them under plots/."""


def model_files(layout: Layout, *, card_only: bool) -> list[LocalFile]:
    """The card bundle at the repo root, plus the merged model unless card_only."""
    missing = [name for name in CARD_FILES if not (layout.card_dir / name).is_file()]
    if missing:
        raise UsageError(
            f"{layout.card_dir}: no {' or '.join(missing)}; render the card first (pubctl card {layout.name})."
        )
    files = [LocalFile.from_path(name, layout.card_dir / name) for name in CARD_FILES]
    if layout.plots_dir.is_dir():
        files += [LocalFile.from_path(f"plots/{p.name}", p) for p in sorted(layout.plots_dir.glob("*.png"))]
    if card_only:
        return sorted(files, key=lambda f: f.path_in_repo)
    folder = layout.merged_model_dir
    if not folder.is_dir() or not any(folder.glob("*.safetensors")):
        raise UsageError(
            f"{folder}: no merged model (no *.safetensors); run pubctl merge {layout.name} first, "
            f"or push the card alone with --card-only."
        )
    # The card bundle's README.md and results.json are the ones published, never a copy in the model folder.
    files += collect_folder(folder, skip=frozenset(CARD_FILES))
    return sorted(files, key=lambda f: f.path_in_repo)


def adapter_files(config: ReleaseConfig, layout: Layout) -> list[LocalFile]:
    """The adapter the merge stage copied, with pubctl's card instead of peft's placeholder."""
    folder = layout.merged_adapter_dir
    if not folder.is_dir() or not any(folder.glob("adapter_config.json")):
        raise UsageError(
            f"hub.adapter_repo_id is set but {folder} holds no adapter (adapter_config.json); "
            f"run pubctl merge {config.name} first, or remove hub.adapter_repo_id."
        )
    files = collect_folder(folder, skip=frozenset({"README.md"}))
    files.append(LocalFile.from_bytes("README.md", adapter_card(config, layout).encode("utf-8")))
    return sorted(files, key=lambda f: f.path_in_repo)
