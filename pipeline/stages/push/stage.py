"""The push stage: the gates, then a plan (dry run) or one atomic commit per repository.

1. The honesty gates (pipeline.checks) run first: an unwaived failure stops a real
   push before anything is sent; a dry run shows the failures in its plan.
2. The local files are listed and diffed against the remote tree (plan.py).
3. A real push commits to the model repository, then to the adapter repository
   when hub.adapter_repo_id is set (publish.py).
4. The plan (runs/NAME/push-plan.json) is written atomically. The stamp is the
   chain's: :func:`run` returns the facts of the push as StageResult.details, which
   the chain keeps in runs/NAME/stamps/push.json.

The token is resolved by huggingface_hub (HF_TOKEN, then the stored login); this
stage only asks whether there is one, and every message it raises is scrubbed of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from pipeline import __version__
from pipeline.atomic import atomic_write_text
from pipeline.errors import CheckFailed, StageFailed, UsageError
from pipeline.hub_client import current_token, describe_hub_error, hub_api, is_hub_failure
from pipeline.layout import Layout
from pipeline.provenance import git_commit, release_inputs
from pipeline.refs import excerpt, revision_problem
from pipeline.results import read_results
from pipeline.stage import StageResult
from pipeline.stages.push.files import adapter_files, model_files
from pipeline.stages.push.output import print_checks, print_plan
from pipeline.stages.push.plan import PushOptions, PushPlan, TargetPlan, now, plan
from pipeline.stages.push.publish import push_target
from pipeline.stages.push.readback import model_mismatch
from pipeline.stages.push.release_files import refuse_tokens, release_files
from pipeline.stages.push.signature import add_signature, signature_record

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig
    from pipeline.hub_client import LocalFile
    from pipeline.results import FileEntry


def run(config: ReleaseConfig, layout: Layout, **options: Any) -> StageResult:
    """The stage entry: :func:`publish` with the same options, and what the chain keeps of it.

    A dry run sent nothing: there are no facts of a push to keep, and no stamp.
    """
    pushed = publish(config, layout, **options)
    details = None if pushed.dry_run else stamp_details(pushed)
    return StageResult(summary=pushed.summary, details=details, stamped=not pushed.dry_run)


def publish(
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
    options = push_options(
        config, card_only=card_only, revision=revision, tag=tag, private=private, create_pr=create_pr
    )
    checks = gate_verdict(config, layout, card_only=card_only)
    files = model_files(layout, card_only=card_only)  # first: it names a missing card bundle or model
    extra = release_files(config, layout, options.revision)
    files = sorted(files + extra.files, key=lambda f: f.path_in_repo)
    adapter = adapter_files(config, layout) if config.hub.adapter_repo_id and not card_only else None
    title = message or config.hub.commit_message or default_message(config, layout, card_only=card_only)
    refuse_tokens(config, files + (adapter or []), title, {"--revision": options.revision, "--tag": options.tag})
    files = add_signature(config, layout, files, card_only=card_only, dry_run=dry_run, checks=checks, console=console)
    prepared = _Prepared(options, checks, files, adapter, title, extra.notes)
    return _plan_only(config, layout, console, prepared) if dry_run else _push(config, layout, console, prepared)


@dataclass(frozen=True)
class _Prepared:
    """What a plan and a push both start from."""

    options: PushOptions
    checks: dict[str, Any]
    """The gates' verdict (gate_verdict)."""
    files: list[LocalFile]
    """The model repository's files."""
    adapter_files: list[LocalFile] | None
    """The adapter repository's files, when hub.adapter_repo_id is set."""
    title: str
    """The commit title."""
    notes: list[str]
    """What the plan says about the files pubctl makes for the push (release_files)."""


def push_options(
    config: ReleaseConfig,
    *,
    card_only: bool,
    revision: str | None,
    tag: str | None,
    private: bool | None,
    create_pr: bool | None,
) -> PushOptions:
    """The command's options with config.hub's values where they are None."""
    hub = config.hub
    for option, value in (("--revision", revision), ("--tag", tag)):
        problem = revision_problem(value) if value is not None else None
        if problem:
            raise UsageError(f"push {config.name}: {option} {excerpt(value)}: {problem}.")
    tag = tag if tag is not None else hub.tag
    create_pr = hub.create_pr if create_pr is None else create_pr
    if tag and create_pr:
        raise UsageError(
            f"push {config.name}: a tag ({tag}) and a pull request cannot go together: the tag would name an "
            "unmerged commit. Merge the pull request first, then push again with --tag (nothing is re-sent)."
        )
    return PushOptions(revision or hub.revision, hub.private if private is None else private, tag, create_pr, card_only)


def _plan_only(config: ReleaseConfig, layout: Layout, console: Console, prepared: _Prepared) -> PushPlan:
    api, options, title = hub_api(), prepared.options, prepared.title
    model = plan(api, "model", config.hub.repo_id, prepared.files, title, options)
    model.notes.extend(prepared.notes)
    if options.card_only and model.remote.exists:
        _plan_model_check(api, model, layout)
    adapter = None
    if prepared.adapter_files is not None and config.hub.adapter_repo_id:
        adapter_title = f"{title} (LoRA adapter)"
        adapter = plan(api, "adapter", config.hub.adapter_repo_id, prepared.adapter_files, adapter_title, options)
    result = PushPlan(config.name, True, options.card_only, model, adapter, prepared.checks)
    print_plan(console, result)
    write_plan(layout, result)
    console.print(f"Plan written to {escape(str(layout.push_plan))}; nothing was sent.")
    return result


def _plan_model_check(api: Any, model: TargetPlan, layout: Layout) -> None:
    """The card-only push's model check, shown by the dry run: a blocker, or a note when it could not run."""

    try:
        problem = model_mismatch(api, model.remote, described_model(layout))
    except Exception as exc:
        if not is_hub_failure(exc):
            raise
        model.notes.append(f"could not compare the Hub's model with the record ({describe_hub_error(exc)})")
        return
    if problem:
        model.blockers.append(f"the card describes another model than the Hub holds: {problem}")


def _push(config: ReleaseConfig, layout: Layout, console: Console, prepared: _Prepared) -> PushPlan:
    hub, options, title = config.hub, prepared.options, prepared.title
    _refuse_failed_gates(config, console, prepared.checks)
    if not current_token():
        raise UsageError(
            f"push {config.name}: no Hugging Face token. Set HF_TOKEN or run `hf auth login` with a token that "
            f"can write to {hub.repo_id}; `pubctl push {config.name} --dry-run` needs none."
        )
    api = hub_api()
    for note in prepared.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    described = described_model(layout) if options.card_only else None
    model = push_target(api, console, "model", hub.repo_id, prepared.files, title, options, described_model=described)
    adapter = None
    if prepared.adapter_files is not None and hub.adapter_repo_id:
        try:
            adapter_title = f"{title} (LoRA adapter)"
            adapter_files = prepared.adapter_files
            adapter = push_target(api, console, "adapter", hub.adapter_repo_id, adapter_files, adapter_title, options)
        except StageFailed as exc:
            raise StageFailed(f"{exc} The model itself was pushed: {model.result and model.result['url']}.") from None
    result = PushPlan(config.name, False, options.card_only, model, adapter, prepared.checks)
    write_plan(layout, result)
    console.print(
        f"[bold green]pushed[/] {escape(result.summary)} — {escape(str(model.result and model.result['url']))}"
    )
    return result


def _refuse_failed_gates(config: ReleaseConfig, console: Console, checks: dict[str, Any]) -> None:
    if not checks["failures"]:
        return
    from pipeline.checks import how_to_go_on

    print_checks(console, checks)
    lines = "; ".join(f"{f['id']}: found {f['found']}, expected {f['expected']}" for f in checks["failures"])
    raise CheckFailed(
        f"push {config.name}: {len(checks['failures'])} honesty gate(s) failed, nothing was pushed: {lines}. "
        + how_to_go_on([f["id"] for f in checks["failures"]])
    )


def gate_verdict(config: ReleaseConfig, layout: Layout, *, card_only: bool) -> dict[str, Any]:
    """The honesty gates' verdict as the plan records it."""
    from pipeline.checks import run_checks

    report = run_checks(config, layout, for_push=True, card_only=card_only)

    def item(check: Any) -> dict[str, str]:
        return {"id": str(check.id), "found": str(check.found), "expected": str(check.expected)}

    return {
        "ran": True,
        "failures": [item(c) for c in report.failures],
        "warnings": [item(c) for c in report.warnings],
    }


def default_message(config: ReleaseConfig, layout: Layout, *, card_only: bool) -> str:
    sha = git_commit(layout.root, release_inputs(config, layout.root))
    source = ""
    if sha:
        dirty = sha.endswith("-dirty")
        source = f" from git {sha.removesuffix('-dirty')[:12]}{' (uncommitted changes)' if dirty else ''}"
    what = "Update the model card of" if card_only else "Release"
    return f"{what} {config.name}{source} (pubctl {__version__})"


def described_model(layout: Layout) -> list[FileEntry]:
    """The model files the card describes: the record's model.files (empty when the merge never ran)."""
    model = read_results(layout.results).model
    return list(model.files) if model is not None else []


def write_plan(layout: Layout, pushed: PushPlan) -> None:
    atomic_write_text(layout.push_plan, json.dumps(pushed.as_dict(), indent=2, ensure_ascii=False) + "\n")


def stamp_details(pushed: PushPlan) -> dict[str, Any]:
    """What the chain keeps in the push stamp: where the release now is on the Hub."""
    result = pushed.model.result or {}
    return {
        "commit": result.get("commit"),
        "url": result.get("url"),
        "pr_url": result.get("pr_url"),
        "repo_id": pushed.model.repo_id,
        "revision": pushed.model.revision,
        "tag": pushed.model.tag,
        "card_only": pushed.card_only,
        "files_sent": result.get("files_sent"),
        "bytes_sent": result.get("bytes_sent"),
        "verified": result.get("verified"),
        "signature": signature_record(pushed.model),
        "adapter": pushed.adapter.result if pushed.adapter else None,
        "pushed_at": now(),
    }
