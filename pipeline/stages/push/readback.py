"""Reading the Hub back: the commit a push made, and the model a card-only push describes.

- :func:`verify_commit`: after the commit, the tree at the new commit is read again and every planned
  file compared by the ids the Hub reports (sha256 for LFS files, git blob id for regular ones, and the
  size); README.md's front matter and the evaluation results are downloaded and parsed back with
  huggingface_hub. A file that differs is a failed push (exit 1) naming it.
- :func:`model_mismatch`: a card-only push publishes a card about a model already on the Hub; the
  record's model.files (size, sha256) must be what the Hub holds, or the card would describe another model.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import StageFailed
from pipeline.eval_results import EVAL_RESULTS_PATH, parse
from pipeline.hub_client import describe_hub_error, is_hub_failure, read_tree

if TYPE_CHECKING:
    from pipeline.hub_client import RemoteFile, RemoteState
    from pipeline.results import FileEntry
    from pipeline.stages.push.plan import PlannedFile, TargetPlan


class _Differs(Exception):
    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path} {why}")
        self.path = path


def verify_commit(api: Any, target: TargetPlan, commit: str) -> int:
    """Compare ``commit`` on the Hub with the plan; the number of files verified, or StageFailed naming one."""
    where = f"push to {target.repo_id}@{target.revision}: committed {commit[:12]}"
    try:
        tree = read_tree(api, target.repo_id, commit)
        for planned in target.files:
            _compare(planned, tree.get(planned.path))
        with tempfile.TemporaryDirectory(prefix="pubctl-verify-") as cache:
            planned_paths = {f.path: f for f in target.files if f.action != "delete"}
            for path, check in (("README.md", _front_matter), (EVAL_RESULTS_PATH, _eval_results)):
                if path in planned_paths:
                    remote = Path(api.hf_hub_download(target.repo_id, path, revision=commit, cache_dir=cache))
                    check(planned_paths[path], remote.read_bytes())
    except _Differs as exc:
        raise StageFailed(
            f"{where}, but reading it back, {exc}. The commit is on the Hub as it is: run pubctl push again; "
            f"it plans against that commit and sends {exc.path} again."
        ) from None
    except Exception as exc:
        if not is_hub_failure(exc):
            raise
        raise StageFailed(
            f"{where}, but it could not be read back to verify it ({describe_hub_error(exc)}). "
            "Run pubctl push again: it compares every file with the Hub and re-sends what is not there."
        ) from None
    return sum(1 for f in target.files if f.action != "delete")


def _compare(planned: PlannedFile, there: RemoteFile | None) -> None:
    if planned.action == "delete":
        if there is not None:
            raise _Differs(planned.path, "is still there, though the commit deleted it")
        return
    if there is None:
        raise _Differs(planned.path, "is missing")
    assert planned.local is not None  # every non-deleted planned file is a local one
    if not there.same_content(planned.local):
        theirs = f"sha256 {there.lfs_sha256[:12]}" if there.lfs_sha256 else f"git blob {there.blob_id[:12]}"
        ours = f"sha256 {planned.local.sha256[:12]}" if there.lfs_sha256 else f"git blob {planned.local.git_oid[:12]}"
        raise _Differs(
            planned.path,
            f"differs from what was sent: the Hub has {there.size:,} bytes, {theirs}; "
            f"pubctl sent {planned.local.size:,} bytes, {ours}",
        )


def _front_matter(planned: PlannedFile, remote: bytes) -> None:
    from huggingface_hub import ModelCard

    try:
        theirs = ModelCard(remote.decode("utf-8"), ignore_metadata_errors=False).data.to_dict()
    except Exception as exc:  # huggingface_hub raises ValueError or yaml's errors for a broken header
        raise _Differs("README.md", f"has front matter huggingface_hub cannot parse ({type(exc).__name__})") from None
    ours = ModelCard(planned.local.read_bytes().decode("utf-8")).data.to_dict()
    if theirs != ours:
        raise _Differs("README.md", "parses to other front matter than the card pubctl rendered")


def _eval_results(planned: PlannedFile, remote: bytes) -> None:
    from huggingface_hub import eval_result_entries_to_yaml

    try:
        theirs = parse(remote)
    except ValueError as exc:
        raise _Differs(EVAL_RESULTS_PATH, f"does not parse as evaluation results ({exc})") from None
    ours = parse(planned.local.read_bytes())
    if eval_result_entries_to_yaml(theirs) != eval_result_entries_to_yaml(ours):
        raise _Differs(EVAL_RESULTS_PATH, "parses to other entries than pubctl wrote")


# ------------------------------------------------------------------------ card-only push
def model_mismatch(api: Any, remote: RemoteState, recorded: list[FileEntry]) -> str | None:
    """Why the model on the Hub is not the one the record describes (the first file that differs), or None."""
    if not recorded:
        return "the record lists no model files (model.files, written by pubctl merge), so the card describes none"
    for entry in recorded:
        there = remote.files.get(entry.path)
        if there is None:
            return f"{entry.path} (in the record's model.files) is not on the Hub"
        if there.size != entry.size:
            return f"{entry.path} is {there.size:,} bytes on the Hub; the record says {entry.size:,}"
        theirs = there.lfs_sha256 or _regular_sha256(api, remote, entry.path)
        if theirs != entry.sha256:
            return f"{entry.path} on the Hub has sha256 {theirs[:12]}; the record says {entry.sha256[:12]}"
    return None


def _regular_sha256(api: Any, remote: RemoteState, path: str) -> str:
    """sha256 of a regular file on the Hub: it reports only a git blob id, so the (small) file is read."""
    with tempfile.TemporaryDirectory(prefix="pubctl-model-") as cache:
        downloaded = api.hf_hub_download(remote.repo_id, path, revision=remote.head, cache_dir=cache)
        return hashlib.sha256(Path(downloaded).read_bytes()).hexdigest()
