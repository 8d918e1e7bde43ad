"""The push stage: one atomic Hub commit per repository, nothing unchanged re-sent, a plan you can read first.

Flow (huggingface_hub does every request; nothing here speaks HTTP):

1. The honesty gates (pipeline.checks) run first: an unwaived failure stops a real
   push before anything is sent; a dry run shows the failures in its plan.
2. The local files are listed with the ids the Hub reports (git blob sha1 for
   regular files, sha256 for LFS ones) and diffed against the remote tree at the
   branch head: each file is add, update or unchanged; files pubctl published
   before and no longer has are deleted (see :func:`_deletable`).
3. A real push creates the repository when missing, the branch when missing
   (from the head it planned against), then sends only the added and updated
   files in ONE create_commit with parent_commit = that head. A concurrent
   writer makes the Hub answer 412 and nothing is committed; a push interrupted
   anywhere leaves the branch at its old commit, and a rerun completes it
   without re-sending LFS objects that already arrived (the LFS batch API skips
   them). Transient errors (5xx, 429 with Retry-After, dropped connections) are
   retried with backoff by huggingface_hub itself.
4. The plan (runs/NAME/push-plan.json) and, after a real push, the stamp
   (runs/NAME/stamps/push.json) are written atomically.

The token is resolved by huggingface_hub (HF_TOKEN, then the stored login); this
module only asks whether there is one and scrubs it from every message it raises.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline import __version__
from pipeline.errors import CheckFailed, StageFailed, UsageError
from pipeline.hub_client import (
    LocalFile,
    RemoteState,
    collect_folder,
    current_token,
    describe_hub_error,
    is_transport_error,
    read_remote,
    scrub,
)
from pipeline.layout import Layout
from pipeline.markdown import size as size_text
from pipeline.provenance import git_commit
from pipeline.results import atomic_write_text

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig

Action = Literal["add", "update", "unchanged", "delete"]
CARD_FILES = ("README.md", "results.json")
"""Card bundle files at the repo root; plots/*.png join them under plots/."""


# ---------------------------------------------------------------------------- plan
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

    role: Literal["model", "adapter"]
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
            "created_at": _now(),
            "pubctl_version": __version__,
            "dry_run": self.dry_run,
            "card_only": self.card_only,
            **self.model.as_dict(),
            "adapter": self.adapter.as_dict() if self.adapter else None,
            "checks": self.checks,
        }


# ----------------------------------------------------------------------- the stage
def run(
    config: ReleaseConfig,
    layout: Layout,
    *,
    dry_run: bool = False,
    card_only: bool = False,
    revision: str | None = None,
    tag: str | None = None,
    private: bool | None = None,
    create_pr: bool | None = None,
    message: str | None = None,
    console: Console | None = None,
) -> PushPlan:
    """Plan (dry run) or publish the release; None options take their value from config.hub."""
    console = console or Console(highlight=False, soft_wrap=True)
    hub = config.hub
    revision = revision or hub.revision
    tag = tag if tag is not None else hub.tag
    private = hub.private if private is None else private
    create_pr = hub.create_pr if create_pr is None else create_pr
    if tag and create_pr:
        raise UsageError(
            f"push {config.name}: a tag ({tag}) and a pull request cannot go together: the tag would name an "
            "unmerged commit. Merge the pull request first, then push again with --tag (nothing is re-sent)."
        )

    checks = _run_checks(config, layout, card_only=card_only)
    model_files = _model_files(layout, card_only=card_only)
    adapter_files = _adapter_files(config, layout) if hub.adapter_repo_id and not card_only else None
    title = message or hub.commit_message or _default_message(config, layout, card_only=card_only)
    options = PushOptions(revision, private, tag, create_pr, card_only)

    from huggingface_hub import HfApi

    api = HfApi()
    if dry_run:
        model = _plan(api, "model", hub.repo_id, model_files, title, options)
        adapter = None
        if adapter_files is not None and hub.adapter_repo_id:
            adapter = _plan(api, "adapter", hub.adapter_repo_id, adapter_files, f"{title} (LoRA adapter)", options)
        plan = PushPlan(config.name, True, card_only, model, adapter, checks)
        _print_plan(console, plan)
        _write_plan(layout, plan)
        console.print(f"Plan written to {escape(str(layout.push_plan))}; nothing was sent.")
        return plan

    if checks["failures"]:
        _print_checks(console, checks)
        lines = "; ".join(f"{f['id']}: found {f['found']}, expected {f['expected']}" for f in checks["failures"])
        raise CheckFailed(
            f"push {config.name}: {len(checks['failures'])} honesty gate(s) failed, nothing was pushed: {lines}. "
            "Fix the release, or waive a check with pubctl check NAME --allow CHECK=REASON (shown on the card)."
        )
    if not current_token():
        raise UsageError(
            f"push {config.name}: no Hugging Face token. Set HF_TOKEN or run `hf auth login` with a token that "
            f"can write to {hub.repo_id}; `pubctl push {config.name} --dry-run` needs none."
        )

    pushed: list[TargetPlan] = []
    model = _push(api, console, "model", hub.repo_id, model_files, title, options)
    pushed.append(model)
    adapter = None
    if adapter_files is not None and hub.adapter_repo_id:
        try:
            adapter_title = f"{title} (LoRA adapter)"
            adapter = _push(api, console, "adapter", hub.adapter_repo_id, adapter_files, adapter_title, options)
        except StageFailed as exc:
            raise StageFailed(f"{exc} The model itself was pushed: {model.result and model.result['url']}.") from None
    plan = PushPlan(config.name, False, card_only, model, adapter, checks)
    _write_plan(layout, plan)
    _write_stamp(layout, plan)
    console.print(f"[bold green]pushed[/] {escape(plan.summary)} — {escape(str(model.result and model.result['url']))}")
    return plan


# ---------------------------------------------------------------------- local files
def _model_files(layout: Layout, *, card_only: bool) -> list[LocalFile]:
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


def _adapter_files(config: ReleaseConfig, layout: Layout) -> list[LocalFile]:
    folder = layout.merged_adapter_dir
    if not folder.is_dir() or not any(folder.glob("adapter_config.json")):
        raise UsageError(
            f"hub.adapter_repo_id is set but {folder} holds no adapter (adapter_config.json); "
            f"run pubctl merge {config.name} first, or remove hub.adapter_repo_id."
        )
    files = collect_folder(folder, skip=frozenset({"README.md"}))  # peft's placeholder card is replaced
    files.append(LocalFile.from_bytes("README.md", adapter_card(config, layout.root).encode("utf-8")))
    return sorted(files, key=lambda f: f.path_in_repo)


def adapter_card(config: ReleaseConfig, root: Path | None = None) -> str:
    """A small card for the adapter repo; the front matter is built by huggingface_hub's ModelCardData."""
    from huggingface_hub import ModelCardData

    from pipeline.stages.card import is_hub_id

    base = config.model.base_model
    hub_base = base if is_hub_id(base, root) else None
    data = ModelCardData(
        base_model=hub_base,
        base_model_relation="adapter" if hub_base else None,
        library_name="peft",
        license=config.card.license,
        language=list(config.card.language),
        pipeline_tag="text-generation",
        tags=sorted({"lora", "peft", "pubctl", config.method.name, *config.card.tags}),
    )
    adapter_repo = config.hub.adapter_repo_id
    base_note = (
        f"`{hub_base}`"
        if hub_base
        else f"`{base}` (not a Hub model, so the metadata names no base_model)"  # the Hub requires a Hub id there
    )
    lines = [
        "---",
        data.to_yaml().rstrip("\n"),
        "---",
        "",
        f"# {config.card.model_name or config.hub.repo_id.split('/')[-1]} — LoRA adapter",
        "",
        f"The LoRA adapter of [{config.hub.repo_id}](https://huggingface.co/{config.hub.repo_id}), trained with "
        f"`{config.method.name}` on top of {base_note}. The merged model's card holds the training record, the "
        "benchmarks and their limitations.",
        "",
        "## Use",
        "",
        "```python",
        "from peft import AutoPeftModelForCausalLM",
        "",
        f'model = AutoPeftModelForCausalLM.from_pretrained("{adapter_repo}")',
        "```",
        "",
        f"Published with pubctl {__version__}.",
        "",
    ]
    return "\n".join(lines)


def _default_message(config: ReleaseConfig, layout: Layout, *, card_only: bool) -> str:
    sha = git_commit(layout.root)
    source = ""
    if sha:
        dirty = sha.endswith("-dirty")
        source = f" from git {sha.removesuffix('-dirty')[:12]}{' (uncommitted changes)' if dirty else ''}"
    what = "Update the model card of" if card_only else "Release"
    return f"{what} {config.name}{source} (pubctl {__version__})"


# ---------------------------------------------------------------------------- checks
def _run_checks(config: ReleaseConfig, layout: Layout, *, card_only: bool) -> dict[str, Any]:
    from pipeline.checks import run_checks

    report = run_checks(config, layout, for_push=True, card_only=card_only)

    def item(check: Any) -> dict[str, str]:
        return {"id": str(check.id), "found": str(check.found), "expected": str(check.expected)}

    return {
        "ran": True,
        "failures": [item(c) for c in report.failures],
        "warnings": [item(c) for c in report.warnings],
    }


# --------------------------------------------------------------------------- diffing
def _deletable(role: str, path: str, remote: RemoteState, *, card_only: bool) -> bool:
    """Whether pubctl owns a remote file the release no longer has, and may delete it.

    pubctl owns plots/ (the card's figures) and the model files the previous
    release recorded in its results.json (model.files, written by the merge
    stage): a re-shard must not leave stale shards that transformers might load.
    Everything else (a LICENSE, an ONNX export, .gitattributes, files added by
    hand or by other tools) is never deleted; the adapter repository is never
    pruned. A card-only push touches no model file. Hidden paths are never
    pubctl's: the merge records every file of its folder, but only visible ones
    are published (collect_folder), and .gitattributes holds the Hub's LFS rules.
    """
    if role != "model" or any(part.startswith(".") for part in path.split("/")):
        return False
    if path.startswith("plots/"):
        return True
    return not card_only and path in remote.published_model_files


def _diff(role: str, files: list[LocalFile], remote: RemoteState, *, card_only: bool) -> list[PlannedFile]:
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
        if path not in ours and _deletable(role, path, remote, card_only=card_only):
            planned.append(
                PlannedFile(
                    path, theirs.size, theirs.lfs_sha256, theirs.blob_id, theirs.lfs_sha256 is not None, "delete"
                )
            )
    return planned


def _plan(
    api: Any,
    role: Literal["model", "adapter"],
    repo_id: str,
    files: list[LocalFile],
    title: str,
    options: PushOptions,
    remote: RemoteState | None = None,
) -> TargetPlan:
    revision, tag = options.revision, options.tag
    remote = remote or read_remote(api, repo_id, revision)
    planned = _diff(role, files, remote, card_only=options.card_only)
    target = TargetPlan(role, repo_id, revision, options.private, tag, options.create_pr, title, remote, planned)
    needs_model = options.card_only and role == "model"
    if not remote.readable:
        target.notes.append(f"could not read the Hub ({remote.reason}): every file is shown as add")
    elif not remote.exists:
        target.notes.append(f"{repo_id} does not exist yet: it will be created {target.visibility.split()[0]}")
        if needs_model:
            target.blockers.append("a card-only push needs the model on the Hub: push the whole release first")
    else:
        if needs_model and not any(p.endswith(".safetensors") for p in remote.files):
            target.blockers.append(f"{repo_id}@{revision} holds no *.safetensors: a card-only push needs the model")
        if options.private and remote.private is False:
            target.notes.append("the repository exists and is public: pubctl does not change its visibility")
        if not remote.branch_exists and not options.create_pr:
            target.notes.append(f"branch {revision} will be created from main at {remote.head and remote.head[:12]}")
    # The Hub opens a pull request only against an existing branch (RevisionNotFound otherwise); a new
    # repository has main alone.
    if options.create_pr and remote.readable and not remote.branch_exists and (remote.exists or revision != "main"):
        target.blockers.append(
            f"a pull request needs an existing branch and {revision} does not exist: push without --create-pr "
            "to create it, or open the pull request against an existing branch with --revision"
        )
    if tag and remote.readable and tag in remote.tags:
        tagged = remote.tags[tag]
        if target.changes or tagged != remote.head:
            target.blockers.append(f"tag {tag} already exists on {tagged[:12]}: tags are not moved, pick a new one")
    return target


# --------------------------------------------------------------------------- pushing
def _push(
    api: Any,
    console: Console,
    role: Literal["model", "adapter"],
    repo_id: str,
    files: list[LocalFile],
    title: str,
    options: PushOptions,
) -> TargetPlan:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete
    from huggingface_hub.errors import HfHubHTTPError

    revision, tag, create_pr = options.revision, options.tag, options.create_pr
    head: str | None = None
    created = False
    try:
        remote = read_remote(api, repo_id, revision)
        if not remote.readable:
            raise StageFailed(f"push to {repo_id}: {remote.reason}; nothing was sent.")
        if not remote.exists:
            if options.card_only and role == "model":
                raise UsageError(
                    f"push --card-only: {repo_id} is not on the Hub (or not visible with this token); "
                    "a card-only push publishes the card of a model already there. Push the whole release first."
                )
            early = _plan(api, role, repo_id, files, title, options, remote)
            if early.blockers:  # refused before the repository is created: nothing half-done
                raise UsageError(f"push to {repo_id}@{revision}: {'; '.join(early.blockers)}. Nothing was sent.")
            api.create_repo(repo_id, private=options.private, exist_ok=True)
            remote = read_remote(api, repo_id, revision)
            created = True
            if not remote.readable or not remote.exists:
                why = remote.reason if not remote.readable else "it is still not visible with this token"
                raise StageFailed(f"push to {repo_id}: created the repository, then could not read it ({why}).")
        head = remote.head
        target = _plan(api, role, repo_id, files, title, options, remote)
        target.created = created
        _print_target(console, target)
        if target.blockers:
            raise UsageError(f"push to {repo_id}@{revision}: {'; '.join(target.blockers)}. Nothing was sent.")

        if not create_pr and not remote.branch_exists:
            api.create_branch(repo_id, branch=revision, revision=remote.head)
        commit, url, pr_url = remote.head, f"{api.endpoint}/{repo_id}/tree/{revision}", None
        if target.changes:
            operations: list[Any] = []
            for planned in target.changes:
                if planned.action == "delete":
                    operations.append(CommitOperationDelete(path_in_repo=planned.path))
                else:
                    assert planned.local is not None
                    source = planned.local.source if planned.local.source is not None else planned.local.content
                    operations.append(CommitOperationAdd(path_in_repo=planned.path, path_or_fileobj=source))
            info = api.create_commit(
                repo_id,
                operations,
                commit_message=title,
                commit_description=_description(target),
                revision=revision,
                create_pr=create_pr,
                parent_commit=remote.head,
            )
            commit, url, pr_url = info.oid, info.commit_url, info.pr_url
        if tag and tag not in remote.tags:
            api.create_tag(repo_id, tag=tag, revision=commit, tag_message=title)
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 412:
            raise StageFailed(
                f"push to {repo_id}@{revision}: the branch moved after pubctl planned against "
                f"{head and head[:12]} (another writer committed); nothing of this push was committed. "
                "Run pubctl push again to plan against the new head."
            ) from None
        if status in (401, 403):
            # Running again would fail the same way: the token, not the Hub, is the problem.
            raise UsageError(
                f"push to {repo_id}@{revision}: the Hub refused the token ({describe_hub_error(exc)}); nothing "
                f"was committed. Use a token with write access to {repo_id} (HF_TOKEN or `hf auth login`)."
            ) from None
        raise StageFailed(_interrupted(repo_id, revision, head, describe_hub_error(exc))) from None
    except (StageFailed, UsageError):
        raise
    except (OSError, ValueError, RuntimeError) as exc:
        # huggingface_hub wraps LFS upload failures in RuntimeError and bad server answers in ValueError.
        raise StageFailed(_interrupted(repo_id, revision, head, describe_hub_error(exc))) from None
    except Exception as exc:
        if not is_transport_error(exc):
            raise  # a bug, with its traceback
        # The commit POST is not retried (a lost answer could mean a duplicate commit): a dropped connection ends here.
        raise StageFailed(_interrupted(repo_id, revision, head, describe_hub_error(exc))) from None
    sent = [f for f in target.files if f.action in ("add", "update")]
    target.result = {
        "commit": commit,
        "url": url,
        "pr_url": pr_url,
        "files_sent": len(sent),
        "bytes_sent": sum(f.size for f in sent),
        "deleted": target.count("delete"),
        "tag": tag,
    }
    verb = "committed" if target.changes else "already up to date at"
    console.print(
        f"{role}: {verb} {escape(str(commit)[:12])} — {escape(url)}" + (f" (PR {escape(pr_url)})" if pr_url else "")
    )
    return target


def _interrupted(repo_id: str, revision: str, head: str | None, why: str) -> str:
    at = f" at {head[:12]}" if head else ""
    return (
        f"push to {repo_id}@{revision} failed: {why}. The branch is unchanged{at}: a commit is all or nothing. "
        "Run pubctl push again to complete it; files that already reached the Hub are not sent again."
    )


def _description(target: TargetPlan) -> str:
    return (
        f"Published by pubctl {__version__}: {target.count('add')} added, {target.count('update')} updated, "
        f"{target.count('delete')} deleted; {target.count('unchanged')} unchanged files were not re-sent."
    )


def _write_plan(layout: Layout, plan: PushPlan) -> None:
    atomic_write_text(layout.push_plan, json.dumps(plan.as_dict(), indent=2, ensure_ascii=False) + "\n")


def _write_stamp(layout: Layout, plan: PushPlan) -> None:
    result = plan.model.result or {}
    stamp = {
        "summary": plan.summary,
        "commit": result.get("commit"),
        "url": result.get("url"),
        "pr_url": result.get("pr_url"),
        "repo_id": plan.model.repo_id,
        "revision": plan.model.revision,
        "tag": plan.model.tag,
        "card_only": plan.card_only,
        "files_sent": result.get("files_sent"),
        "bytes_sent": result.get("bytes_sent"),
        "adapter": plan.adapter.result if plan.adapter else None,
        "pushed_at": _now(),
    }
    atomic_write_text(layout.stamps_dir / "push.json", json.dumps(stamp, indent=2, ensure_ascii=False) + "\n")


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# --------------------------------------------------------------------------- output
ACTION_STYLE = {"add": "green", "update": "yellow", "unchanged": "dim", "delete": "red"}


def _print_target(console: Console, target: TargetPlan) -> None:
    pr = ", as a pull request" if target.create_pr else ""
    tag = f", tag {target.tag}" if target.tag else ""
    console.print(
        f"[bold]{escape(target.role)}[/]: {escape(target.repo_id)} @ {escape(target.revision)}{pr}{tag} — "
        f"{escape(target.visibility)}"
    )
    console.print(f"  remote: {escape(target.remote.reason)}")
    table = Table("path", "size", "action", "storage", "sha256", show_edge=False, pad_edge=False)
    for f in target.files:
        style = ACTION_STYLE[f.action]
        table.add_row(
            escape(f.path),
            size_text(f.size),
            f"[{style}]{f.action}[/]",
            "LFS" if f.lfs else "git",
            (f.sha256 or "")[:12],
        )
    console.print(table)
    console.print(
        f"  {target.count('add')} to add, {target.count('update')} to update, {target.count('delete')} to delete, "
        f"{target.count('unchanged')} unchanged: {size_text(target.bytes_to_send)} to send"
    )
    for note in target.notes:
        console.print(f"  [yellow]note:[/] {escape(note)}")
    for blocker in target.blockers:
        console.print(f"  [red]blocked:[/] {escape(blocker)}")


def _print_checks(console: Console, checks: dict[str, Any]) -> None:
    for f in checks["failures"]:
        console.print(f"[red]✗ {escape(f['id'])}[/]: found {escape(f['found'])}, expected {escape(f['expected'])}")
    for w in checks["warnings"]:
        console.print(f"[yellow]! {escape(w['id'])}[/]: found {escape(w['found'])}, expected {escape(w['expected'])}")


def _print_plan(console: Console, plan: PushPlan) -> None:
    console.print(f"[bold]push plan[/] for {escape(plan.release)}{' (card only)' if plan.card_only else ''} — dry run")
    for target in (plan.model, plan.adapter):
        if target is not None:
            _print_target(console, target)
    if plan.checks["failures"]:
        console.print(f"[red]{len(plan.checks['failures'])} check(s) fail: a real push would stop here.[/]")
    _print_checks(console, plan.checks)


__all__ = ["PushPlan", "TargetPlan", "adapter_card", "run", "scrub"]
