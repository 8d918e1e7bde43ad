"""Fetching what a model reference (pipeline.refs) names onto local disk.

``builtin:`` models are built from the embedded recipe; local folders are used as
they are; Hub ids are fetched with huggingface_hub (snapshot_download), which also
pins the commit sha recorded as provenance. A failed download becomes one
clear UsageError (exit 2) that says what could not be fetched and why, instead
of a traceback from deep inside transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import UsageError
from pipeline.layout import Layout
from pipeline.refs import ModelRef

MODEL_FILES = ("*.json", "*.safetensors", "*.jinja", "*.txt", "*.model", "*.tiktoken", "*.py")


@dataclass(frozen=True)
class ResolvedModel:
    """A model available on local disk."""

    reference: str
    """What the config said: builtin:tiny-qwen3, a path, or a Hub id."""
    path: Path
    """Local folder with config.json, weights and tokenizer."""
    revision: str | None
    """Hub commit sha, None for built-in and local models."""


def download_error(kind: str, repo_id: str, revision: str | None, exc: BaseException) -> UsageError:
    """One paragraph explaining a failed Hub fetch, with the likely cause and the fix."""
    from huggingface_hub import constants

    reason = type(exc).__name__
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = reason.lower()
    if "gated" in name:
        hint = "the repository is gated: accept its terms on the Hub and log in (hf auth login or HF_TOKEN)."
    elif "repositorynotfound" in name or "revisionnotfound" in name:
        hint = "check the id and revision (private repositories need a token)."
    elif constants.HF_HUB_OFFLINE:
        hint = "HF_HUB_OFFLINE is set and it is not in the local cache."
    else:
        hint = (
            f"this machine could not reach {constants.ENDPOINT}; pubctl needs internet for Hub {kind}s "
            "(use builtin:tiny-qwen3 / builtin:preferences, or local paths, offline)."
        )
    at = f" at revision {revision}" if revision else ""
    return UsageError(f"Could not download {kind} '{repo_id}'{at} from the Hub ({reason}: {detail}): {hint}")


def resolve_model(reference: str, revision: str | None, layout: Layout) -> ResolvedModel:
    """Local folder of ``reference`` (building or downloading it when needed)."""
    ref = ModelRef.parse(reference, layout.root, revision)
    if ref.is_builtin:
        from pipeline.demo.tiny_model import tiny_qwen3_path

        return ResolvedModel(reference, tiny_qwen3_path(layout.cache_dir), None)
    if ref.is_local and ref.path is not None:
        if not ref.path.is_dir():
            raise UsageError(f"model.base_model: {ref.problem or f'no model folder at {ref.path}'}.")
        return ResolvedModel(reference, ref.path, None)
    if not ref.is_hub:
        raise UsageError(f"model.base_model: {ref.problem}.")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(reference, revision=revision, allow_patterns=list(MODEL_FILES)))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as exc:
        raise download_error("model", reference, revision, exc) from None
    # snapshot folders are named after the commit sha they hold
    return ResolvedModel(reference, folder, folder.name)
