"""The push of one repository: ONE atomic create_commit against the head the plan was made from.

A real push creates the repository when missing, the branch when missing (from
the head it planned against), then sends only the added and updated files in one
create_commit with parent_commit = that head. A concurrent writer makes the Hub
answer 412 and nothing is committed; a push interrupted anywhere leaves the
branch at its old commit, and a rerun completes it without re-sending LFS
objects that already arrived (the LFS batch API skips them). Transient errors
(5xx, 429 with Retry-After, dropped connections) are retried with backoff by
huggingface_hub itself. Every failure becomes a PubctlError whose message is
scrubbed of credentials (describe_hub_error).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from pipeline import __version__
from pipeline.errors import CheckFailed, PubctlError, StageFailed, UsageError
from pipeline.hub_client import (
    HUB_TIMEOUT_ENV,
    LocalFile,
    RemoteState,
    describe_hub_error,
    hub_timeout,
    is_transport_error,
    read_remote,
)
from pipeline.stages.push.output import print_committed, print_target
from pipeline.stages.push.plan import PushOptions, Role, TargetPlan, plan
from pipeline.stages.push.readback import model_mismatch, verify_commit

if TYPE_CHECKING:
    from pipeline.results import FileEntry


def push_target(
    api: Any,
    console: Console,
    role: Role,
    repo_id: str,
    files: list[LocalFile],
    title: str,
    options: PushOptions,
    *,
    described_model: list[FileEntry] | None = None,
) -> TargetPlan:
    """Plan against the Hub's head, then commit the changes to ``repo_id`` in one commit and read it back;
    returns the plan with its ``result`` (commit, url, pr_url, files and bytes sent, deletions, tag, files
    verified). ``described_model``: the record's model.files, which a card-only push requires on the Hub."""
    head: str | None = None
    try:
        remote, created = _existing_remote(api, role, repo_id, files, title, options)
        head = remote.head
        target = plan(api, role, repo_id, files, title, options, remote)
        target.created = created
        print_target(console, target)
        if target.blockers:
            raise UsageError(f"push to {repo_id}@{options.revision}: {'; '.join(target.blockers)}. Nothing was sent.")
        if described_model is not None:
            _refuse_other_model(api, remote, described_model)
        if not options.create_pr and not remote.branch_exists:
            api.create_branch(repo_id, branch=options.revision, revision=remote.head)
        try:
            commit, url, pr_url = _commit(api, target, options)
        except Exception as exc:
            if not is_transport_error(exc):
                raise
            commit, url, pr_url = _after_lost_answer(api, console, target, options, exc)
    except Exception as exc:
        error = translate(exc, repo_id, options.revision, head)
        if error is None:
            raise  # ours already, or a bug with its traceback
        raise error from None
    verified = verify_commit(api, target, commit) if commit else 0
    if options.tag and options.tag not in remote.tags:
        _create_tag(api, repo_id, options, commit, title)
    target.result = {**_result(target, commit, url, pr_url), "verified": verified}
    print_committed(console, target)
    console.print(f"{target.role}: verified {verified} files at {escape(str(commit)[:12])}")
    return target


def _refuse_other_model(api: Any, remote: RemoteState, described: list[FileEntry]) -> None:
    """A card-only push must describe the model on the Hub: the record's files, byte for byte (exit 1)."""
    problem = model_mismatch(api, remote, described)
    if problem:
        raise CheckFailed(
            f"push --card-only to {remote.repo_id}@{remote.revision}: {problem}. The card describes the model "
            "in results.json, and the Hub holds another: push the whole release (without --card-only), or "
            "render the card from the record of the model that is there. Nothing was sent."
        )


def _create_tag(api: Any, repo_id: str, options: PushOptions, commit: str | None, title: str) -> None:
    """Tag the commit just made; a failure here must not read as if the commit had not landed."""
    assert options.tag is not None
    try:
        api.create_tag(repo_id, tag=options.tag, revision=commit, tag_message=title)
    except Exception as exc:
        error = translate(exc, repo_id, options.revision, commit)
        if error is None:
            raise
        raise type(error)(
            f"push to {repo_id}@{options.revision}: committed {commit and commit[:12]}, but the tag "
            f"{options.tag} was not created ({describe_hub_error(exc)}). Run pubctl push again with the same "
            "tag: nothing is sent again, the tag is created."
        ) from None


def _existing_remote(
    api: Any, role: Role, repo_id: str, files: list[LocalFile], title: str, options: PushOptions
) -> tuple[RemoteState, bool]:
    """The remote state to plan against, creating the repository first when it is missing: (state, created)."""
    remote = read_remote(api, repo_id, options.revision)
    if not remote.readable:
        raise StageFailed(f"push to {repo_id}: {remote.reason}; nothing was sent.")
    if remote.exists:
        return remote, False
    if options.card_only and role == "model":
        raise UsageError(
            f"push --card-only: {repo_id} is not on the Hub (or not visible with this token); "
            "a card-only push publishes the card of a model already there. Push the whole release first."
        )
    early = plan(api, role, repo_id, files, title, options, remote)
    if early.blockers:  # refused before the repository is created: nothing half-done
        raise UsageError(f"push to {repo_id}@{options.revision}: {'; '.join(early.blockers)}. Nothing was sent.")
    api.create_repo(repo_id, private=options.private, exist_ok=True)
    remote = read_remote(api, repo_id, options.revision)
    if not remote.readable or not remote.exists:
        why = remote.reason if not remote.readable else "it is still not visible with this token"
        raise StageFailed(f"push to {repo_id}: created the repository, then could not read it ({why}).")
    return remote, True


def _commit(api: Any, target: TargetPlan, options: PushOptions) -> tuple[str | None, str, str | None]:
    """Send the changes in one commit: (commit, url, pull request url). No change: the head, no commit."""
    head = target.remote.head
    if not target.changes:
        return head, f"{api.endpoint}/{target.repo_id}/tree/{options.revision}", None
    info = api.create_commit(
        target.repo_id,
        operations(target),
        commit_message=target.commit_message,
        commit_description=_description(target),
        revision=options.revision,
        create_pr=options.create_pr,
        parent_commit=head,
    )
    return info.oid, info.commit_url, info.pr_url


def _after_lost_answer(
    api: Any, console: Console, target: TargetPlan, options: PushOptions, exc: Exception
) -> tuple[str | None, str, str | None]:
    """The commit request timed out or its connection dropped: whether it landed is read back from the branch.

    The Hub may have committed and lost only its answer. Its branch head says which: unchanged, nothing
    was committed; moved to a commit holding every change of this push, it was committed (the push goes
    on from there); moved elsewhere, another writer committed and this push did not.
    """
    repo_id, revision, planned = target.repo_id, options.revision, target.remote.head
    why = describe_hub_error(exc)
    if "TimeoutException" in {cls.__name__ for cls in type(exc).__mro__}:
        why = f"the Hub did not answer the commit within {hub_timeout():g} s ({HUB_TIMEOUT_ENV}; {why})"
    if options.create_pr:
        raise StageFailed(
            f"push to {repo_id}@{revision}: the commit request failed ({why}); the Hub may still open the pull "
            f"request, which the branch head does not show. Look at {api.endpoint}/{repo_id}/discussions "
            "before running pubctl push again."
        )
    now = read_remote(api, repo_id, revision)
    if not now.readable:
        raise StageFailed(
            f"push to {repo_id}@{revision}: the commit request failed ({why}), then the Hub could not be read "
            f"back ({now.reason}), so whether it landed is unknown. Run pubctl push again: it plans against "
            "the Hub's head and sends only what is missing."
        )
    if now.head == planned:
        raise StageFailed(interrupted(repo_id, revision, planned, why))
    if now.head and _holds(now, target):
        console.print(
            f"[yellow]the commit request failed ({escape(why)}), but {escape(revision)} is now at "
            f"{now.head[:12]}, which holds every change of this push: it was committed.[/]"
        )
        return now.head, f"{api.endpoint}/{repo_id}/commit/{now.head}", None
    raise StageFailed(
        f"push to {repo_id}@{revision}: the commit request failed ({why}) and the branch moved from "
        f"{planned and planned[:12]} to {now.head and now.head[:12]} without this push's files (another "
        "writer committed): nothing of this push was committed; run again (pubctl push) to plan against the "
        "new head."
    )


def _holds(remote: RemoteState, target: TargetPlan) -> bool:
    """Whether the remote tree has every planned change: the additions with their content, no deleted path."""
    for planned in target.changes:
        there = remote.files.get(planned.path)
        if planned.action == "delete":
            if there is not None:
                return False
        elif there is None or planned.local is None or not there.same_content(planned.local):
            return False
    return True


def operations(target: TargetPlan) -> list[Any]:
    """huggingface_hub's commit operations for the planned changes."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    ops: list[Any] = []
    for planned in target.changes:
        if planned.action == "delete":
            ops.append(CommitOperationDelete(path_in_repo=planned.path))
            continue
        assert planned.local is not None
        source = planned.local.source if planned.local.source is not None else planned.local.content
        ops.append(CommitOperationAdd(path_in_repo=planned.path, path_or_fileobj=source))
    return ops


def _result(target: TargetPlan, commit: str | None, url: str, pr_url: str | None) -> dict[str, Any]:
    sent = [f for f in target.files if f.action in ("add", "update")]
    return {
        "commit": commit,
        "url": url,
        "pr_url": pr_url,
        "files_sent": len(sent),
        "bytes_sent": sum(f.size for f in sent),
        "deleted": target.count("delete"),
        "tag": target.tag,
    }


def _description(target: TargetPlan) -> str:
    return (
        f"Published by pubctl {__version__}: {target.count('add')} added, {target.count('update')} updated, "
        f"{target.count('delete')} deleted; {target.count('unchanged')} unchanged files were not re-sent."
    )


# ------------------------------------------------------------------ error translation
def translate(exc: Exception, repo_id: str, revision: str, head: str | None) -> PubctlError | None:
    """The user-facing error a failed push raises instead of ``exc``; None: let ``exc`` propagate."""
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError):
        return _http_error(exc, repo_id, revision, head)
    if isinstance(exc, PubctlError):
        return None
    # huggingface_hub wraps LFS upload failures in RuntimeError and bad server answers in ValueError.
    if isinstance(exc, (OSError, ValueError, RuntimeError)) or is_transport_error(exc):
        # The commit POST is not retried (a lost answer could mean a duplicate commit): a dropped connection ends here.
        return StageFailed(interrupted(repo_id, revision, head, describe_hub_error(exc)))
    return None


def _http_error(exc: Any, repo_id: str, revision: str, head: str | None) -> PubctlError:
    status = exc.response.status_code if exc.response is not None else None
    if status == 412:
        return StageFailed(
            f"push to {repo_id}@{revision}: the branch moved after pubctl planned against "
            f"{head and head[:12]} (another writer committed); nothing of this push was committed. "
            "Run pubctl push again to plan against the new head."
        )
    if status in (401, 403):
        # Running again would fail the same way: the token, not the Hub, is the problem.
        return UsageError(
            f"push to {repo_id}@{revision}: the Hub refused the token ({describe_hub_error(exc)}); nothing "
            f"was committed. Use a token with write access to {repo_id} (HF_TOKEN or `hf auth login`)."
        )
    return StageFailed(interrupted(repo_id, revision, head, describe_hub_error(exc)))


def interrupted(repo_id: str, revision: str, head: str | None, why: str) -> str:
    at = f" at {head[:12]}" if head else ""
    return (
        f"push to {repo_id}@{revision} failed: {why}. The branch is unchanged{at} (a commit is all or nothing): "
        "nothing was committed; run again. Running pubctl push again completes it; files that already reached "
        "the Hub are not sent again."
    )
