"""Digests of what a stage consumed and produced (the record's ``lineage``), computed the same way everywhere.

The train stage records the adapter it left; the merge, the adapter it merged and the model it
left; evaluation, the model it scored. The ``lineage`` gate (pipeline.checks.lineage) follows
those links, so a card cannot describe one adapter while the published model was merged from
another. Models named by reference use the stage cache's key (pipeline.refs), which for a Hub
model is its id at the commit that was actually downloaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.hashing import folder_digest, tree_digest
from pipeline.refs import DataRef, ModelRef
from pipeline.results import FileEntry, Lineage
from pipeline.stamps import hasher_for

if TYPE_CHECKING:
    from pathlib import Path

    from pipeline.config import ReleaseConfig
    from pipeline.layout import Layout


def _key(ref: ModelRef | DataRef, layout: Layout) -> str:
    # A local base or data file of gigabytes is hashed once, then known by its stat (the stamps' cache).
    hasher = hasher_for(layout)
    key = ref.stamp_key(hasher)
    hasher.save()
    return key


def base_model_key(config: ReleaseConfig, layout: Layout, resolved_revision: str | None) -> str:
    """The base model as the stages agree on it: recipe hash, local folder digest, or Hub id @ commit."""
    return _key(
        ModelRef.parse(config.model.base_model, layout.root, resolved_revision or config.model.revision), layout
    )


def dataset_key(config: ReleaseConfig, layout: Layout, resolved_revision: str | None) -> str:
    """The training data as the stages agree on it: the bundled or local file's digest, or Hub id @ commit."""
    data = config.data
    return _key(DataRef.parse(data.train, layout.root, resolved_revision or data.revision, data.subset), layout)


def folder(path: Path) -> str:
    """A folder's digest; 'missing' when it holds no file (never equal to a real digest)."""
    return folder_digest(path) or "missing"


def files_digest(files: list[FileEntry]) -> str:
    """The digest of a folder from the file list a merge records (no second read of the weights)."""
    return tree_digest((entry.path, entry.sha256) for entry in files) or "missing"


def lineage(consumed: dict[str, str], produced: dict[str, str] | None = None) -> Lineage:
    return Lineage(consumed=consumed, produced=produced or {})
