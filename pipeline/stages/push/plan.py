"""The push plan: what each repository gets, diffed against the Hub's tree at the branch head.

Each local file is add, update or unchanged (compared by the ids the Hub reports:
git blob sha1 for regular files, sha256 for LFS ones); files pubctl published
before and no longer has are deleted (see :func:`deletable`). Blockers say why a
real push must not start; a dry run shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from pipeline import __version__
from pipeline.eval_results import EVAL_RESULTS_PATH
from pipeline.hub_client import LocalFile, RemoteState, read_remote
from pipeline.signing import SIGNATURE_NAME

Action = Literal["add", "update", "unchanged", "delete"]
Role = Literal["model", "adapter"]


def now() -> str:
    """The current UTC time, to the second, in ISO 8601."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class PushOptions:
    """The push options after the config's defaults are applied."""

    revision: str
    private: bool
    tag: str | None
    create_pr: bool
    card_only: bool


@dataclass
class PlannedFile:
    path: str
    size: int
    sha256: str | None
    git_oid: str | None
    lfs: bool
    action: Action
    local: LocalFile | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "git_oid": self.git_oid,
            "lfs": self.lfs,
            "action": self.action,
        }


@dataclass
class TargetPlan:
    """What one repository (the model, or the adapter) gets."""

    role: Role
    repo_id: str
    revision: str
    private: bool
    tag: str | None
    create_pr: bool
    commit_message: str
    remote: RemoteState
    files: list[PlannedFile]
    notes: list[str] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)
    """Why a real push to this target must not start (shown by the dry run, raised by a real push)."""
    result: dict[str, Any] | None = None
    created: bool = False
    """Whether this push created the repository."""

    @property
    def visibility(self) -> str:
        if self.remote.exists and self.remote.private is not None:
            kind = "created by this push" if self.created else "existing repository"
            return f"{'private' if self.remote.private else 'public'} ({kind})"
        # Unread, the repository may exist with its own visibility, which pubctl never changes.
        kind = "new repository" if self.remote.readable else "if the repository is new; the Hub was not read"
        return f"{'private' if self.private else 'public'} ({kind})"

    @property
    def changes(self) -> list[PlannedFile]:
        return [f for f in self.files if f.action != "unchanged"]

    def count(self, action: Action) -> int:
        return sum(1 for f in self.files if f.action == action)

    @property
    def bytes_to_send(self) -> int:
        return sum(f.size for f in self.files if f.action in ("add", "update"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "revision": self.revision,
            "visibility": self.visibility,
            "private": self.remote.private if self.remote.exists else self.private,
            "tag": self.tag,
            "create_pr": self.create_pr,
            "commit_message": self.commit_message,
            "remote": self.remote.as_dict(),
            "summary": {
                **{action: self.count(action) for action in ("add", "update", "unchanged", "delete")},
                "bytes_to_send": self.bytes_to_send,
            },
            "files": [f.as_dict() for f in self.files],
            "notes": list(self.notes),
            "blockers": list(self.blockers),
            "result": self.result,
        }


@dataclass
class PushPlan:
    """The push of one release: the model target, the optional adapter target and the gates' verdict."""

    release: str
    dry_run: bool
    card_only: bool
    model: TargetPlan
    adapter: TargetPlan | None
    checks: dict[str, Any]

    @property
    def summary(self) -> str:
        """One line for pubctl list and the release chain."""
        result = self.model.result
        if result is None:
            return f"planned: {self.model.repo_id}@{self.model.revision}"
        short = (result.get("commit") or "")[:8]
        where = "pull request" if self.model.create_pr and result.get("pr_url") else self.model.revision
        # A commit of deletions alone sends no file but is not "unchanged".
        changed = result.get("files_sent") or result.get("deleted")
        return f"{short} on {where}" + ("" if changed else " (unchanged)")

    def as_dict(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "created_at": now(),
            "pubctl_version": __version__,
            "dry_run": self.dry_run,
            "card_only": self.card_only,
            **self.model.as_dict(),
            "adapter": self.adapter.as_dict() if self.adapter else None,
            "checks": self.checks,
        }


# --------------------------------------------------------------------------- diffing
def deletable(role: str, path: str, remote: RemoteState, *, card_only: bool) -> bool:
    """Whether pubctl owns a remote file the release no longer has, and may delete it.

    pubctl owns plots/ (the card's figures) and the model files the previous
    release recorded in its results.json (model.files, written by the merge
    stage): a re-shard must not leave stale shards that transformers might load.
    Everything else (a LICENSE, an ONNX export, .gitattributes, files added by
    hand or by other tools) is never deleted; the adapter repository is never
    pruned. A card-only push touches no model file. Hidden paths are never
    pubctl's: the merge records every file of its folder, but only visible ones
    are published (collect_folder), and .gitattributes holds the Hub's LFS rules. The one hidden file
    pubctl owns is its evaluation results: a release left with no benchmark to publish there must not
    leave the previous release's scores on a leaderboard. Likewise the signature of a previous pubctl release:
    once signing is off, a model.sig left behind signs files this commit replaces.
    """
    if role == "model" and path == EVAL_RESULTS_PATH:
        return True
    if role == "model" and path == SIGNATURE_NAME and remote.published_model_files:
        return True
    if role != "model" or any(part.startswith(".") for part in path.split("/")):
        return False
    if path.startswith("plots/"):
        return True
    return not card_only and path in remote.published_model_files


def diff(role: str, files: list[LocalFile], remote: RemoteState, *, card_only: bool) -> list[PlannedFile]:
    """Each local file with its action, then the remote files to delete."""
    planned = []
    for local in files:
        theirs = remote.files.get(local.path_in_repo)
        if theirs is None:
            action: Action = "add"
        else:
            action = "unchanged" if theirs.same_content(local) else "update"
        lfs = local.lfs or (theirs is not None and theirs.lfs_sha256 is not None)
        planned.append(PlannedFile(local.path_in_repo, local.size, local.sha256, local.git_oid, lfs, action, local))
    ours = {f.path_in_repo for f in files}
    for path, theirs in sorted(remote.files.items()):
        if path not in ours and deletable(role, path, remote, card_only=card_only):
            lfs = theirs.lfs_sha256 is not None
            planned.append(PlannedFile(path, theirs.size, theirs.lfs_sha256, theirs.blob_id, lfs, "delete"))
    return planned


def plan(
    api: Any,
    role: Role,
    repo_id: str,
    files: list[LocalFile],
    title: str,
    options: PushOptions,
    remote: RemoteState | None = None,
) -> TargetPlan:
    """The plan of one repository against ``remote`` (read from the Hub when not given)."""
    remote = remote or read_remote(api, repo_id, options.revision)
    planned = diff(role, files, remote, card_only=options.card_only)
    target = TargetPlan(
        role, repo_id, options.revision, options.private, options.tag, options.create_pr, title, remote, planned
    )
    _note_remote(target, options)
    _block_pull_request(target, options)
    _block_tag(target, options)
    return target


def _note_remote(target: TargetPlan, options: PushOptions) -> None:
    """What the remote's state means for this push: notes, and the card-only push's need of a model."""
    remote, repo_id, revision = target.remote, target.repo_id, target.revision
    needs_model = options.card_only and target.role == "model"
    if not remote.readable:
        target.notes.append(f"could not read the Hub ({remote.reason}): every file is shown as add")
    elif not remote.exists:
        target.notes.append(f"{repo_id} does not exist yet: it will be created {target.visibility.split()[0]}")
        if needs_model:
            target.blockers.append("a card-only push needs the model on the Hub: push the whole release first")
    else:
        # Whether the Hub's model is the record's is compared file by file before the commit (readback.py).
        if options.private and remote.private is False:
            target.notes.append("the repository exists and is public: pubctl does not change its visibility")
        if not remote.branch_exists and not options.create_pr:
            target.notes.append(f"branch {revision} will be created from main at {remote.head and remote.head[:12]}")


def _block_pull_request(target: TargetPlan, options: PushOptions) -> None:
    # The Hub opens a pull request only against an existing branch (RevisionNotFound otherwise); a new
    # repository has main alone.
    remote = target.remote
    branch_missing = remote.readable and not remote.branch_exists and (remote.exists or target.revision != "main")
    if options.create_pr and branch_missing:
        target.blockers.append(
            f"a pull request needs an existing branch and {target.revision} does not exist: push without --create-pr "
            "to create it, or open the pull request against an existing branch with --revision"
        )


def _block_tag(target: TargetPlan, options: PushOptions) -> None:
    tag, remote = options.tag, target.remote
    if tag and remote.readable and tag in remote.tags:
        tagged = remote.tags[tag]
        if target.changes or tagged != remote.head:
            target.blockers.append(f"tag {tag} already exists on {tagged[:12]}: tags are not moved, pick a new one")
