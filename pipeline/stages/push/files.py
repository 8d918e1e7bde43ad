"""The local files a push publishes: the card bundle, the merged model, the adapter and its card.

Only regular files of the release are published, hashed at push time: each card bundle file inside
cards/NAME, each adapter file inside runs/NAME/merge/adapter, and each model file inside
runs/NAME/merge/model, recorded by the merge (results.json ``model.files``) with the sha256 it still has.
A link out of its folder, a FIFO or device, a file the merge did not record or one changed since is
refused (exit 2) naming it, before anything is sent: nothing but the release ever leaves the machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pipeline.errors import UsageError
from pipeline.hashing import NotRegularFile, inside_regular_file
from pipeline.hub_client import LocalFile, collect_folder
from pipeline.layout import Layout
from pipeline.results import read_results
from pipeline.stages.push.adapter import adapter_card

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig

CARD_FILES = ("README.md", "results.json")
"""Card bundle files at the repo root; plots/*.png join them under plots/."""
MAX_NAMED = 5
"""Refused model files named in one message; the rest are counted."""


def model_files(layout: Layout, *, card_only: bool) -> list[LocalFile]:
    """The card bundle at the repo root, plus the merged model unless card_only."""
    missing = [name for name in CARD_FILES if not os.path.lexists(layout.card_dir / name)]
    if missing:
        raise UsageError(
            f"{layout.card_dir}: no {' or '.join(missing)}; render the card first (pubctl card {layout.name})."
        )
    sources = [(name, layout.card_dir / name) for name in CARD_FILES]
    if layout.plots_dir.is_dir():
        sources += [(f"plots/{p.name}", p) for p in sorted(layout.plots_dir.glob("*.png"))]
    with _refusing(layout):
        for _, source in sources:
            inside_regular_file(source, layout.card_dir)
        files = [LocalFile.from_path(path_in_repo, source) for path_in_repo, source in sources]
    if card_only:
        return sorted(files, key=lambda f: f.path_in_repo)
    folder = layout.merged_model_dir
    if not folder.is_dir() or not any(folder.glob("*.safetensors")):
        raise UsageError(
            f"{folder}: no merged model (no *.safetensors); run pubctl merge {layout.name} first, "
            f"or push the card alone with --card-only."
        )
    # The card bundle's README.md and results.json are the ones published, never a copy in the model folder.
    with _refusing(layout):
        model = collect_folder(folder, skip=frozenset(CARD_FILES))
    _match_record(layout, model)
    return sorted(files + model, key=lambda f: f.path_in_repo)


def adapter_files(config: ReleaseConfig, layout: Layout) -> list[LocalFile]:
    """The adapter the merge stage copied, with pubctl's card instead of peft's placeholder."""
    folder = layout.merged_adapter_dir
    if not folder.is_dir() or not any(folder.glob("adapter_config.json")):
        raise UsageError(
            f"hub.adapter_repo_id is set but {folder} holds no adapter (adapter_config.json); "
            f"run pubctl merge {config.name} first, or remove hub.adapter_repo_id."
        )
    with _refusing(layout):
        files = collect_folder(folder, skip=frozenset({"README.md"}))
    files.append(LocalFile.from_bytes("README.md", adapter_card(config, layout).encode("utf-8")))
    return sorted(files, key=lambda f: f.path_in_repo)


@contextmanager
def _refusing(layout: Layout) -> Iterator[None]:
    """A file that is not a regular file of its folder, reported as the push's refusal."""
    try:
        yield
    except NotRegularFile as exc:
        raise UsageError(
            f"push {layout.name}: refused {exc.path}: it {exc.why}. A push publishes only the regular files of "
            "the release, and checks them all before sending any: remove it (or re-run the stage that writes "
            "that folder). Nothing was sent."
        ) from None


def _match_record(layout: Layout, files: list[LocalFile]) -> None:
    """Every model file is one the merge recorded, with the sha256 it recorded (hashed again just now)."""
    model = read_results(layout.results).model
    if model is None:
        raise UsageError(
            f"push {layout.name}: {layout.results} has no model section, so no file of {layout.merged_model_dir} "
            f"can be checked against the merge's record; run pubctl merge {layout.name}. Nothing was sent."
        )
    recorded = {entry.path: entry for entry in model.files}
    problems = []
    for local in files:
        entry = recorded.get(local.path_in_repo)
        if entry is None:
            problems.append(f"{local.path_in_repo} is not among the files the merge recorded")
        elif (entry.size, entry.sha256) != (local.size, local.sha256):
            problems.append(
                f"{local.path_in_repo} changed since the merge recorded it (sha256 {local.sha256[:12]}, "
                f"{local.size:,} bytes; recorded {entry.sha256[:12]}, {entry.size:,} bytes)"
            )
    if problems:
        more = f"; and {len(problems) - MAX_NAMED} more" if len(problems) > MAX_NAMED else ""
        raise UsageError(
            f"push {layout.name}: refused files of {layout.merged_model_dir}: {'; '.join(problems[:MAX_NAMED])}"
            f"{more}. A push publishes exactly the files the merge recorded, as it wrote them: remove the others, "
            f"or re-run pubctl merge {layout.name} to record the folder again. Nothing was sent."
        )
