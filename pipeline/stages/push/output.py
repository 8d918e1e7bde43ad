"""What a push prints: each target's file table, notes and blockers, the gates' verdict, the outcome.

Every value is passed through rich's markup escape: a file name or repo id with
``[brackets]`` is printed as itself.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline.markdown import size as size_text
from pipeline.stages.push.plan import PushPlan, TargetPlan

ACTION_STYLE = {"add": "green", "update": "yellow", "unchanged": "dim", "delete": "red"}


def print_target(console: Console, target: TargetPlan) -> None:
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


def print_checks(console: Console, checks: dict[str, Any]) -> None:
    for f in checks["failures"]:
        console.print(f"[red]✗ {escape(f['id'])}[/]: found {escape(f['found'])}, expected {escape(f['expected'])}")
    for w in checks["warnings"]:
        console.print(f"[yellow]! {escape(w['id'])}[/]: found {escape(w['found'])}, expected {escape(w['expected'])}")


def print_plan(console: Console, plan: PushPlan) -> None:
    console.print(f"[bold]push plan[/] for {escape(plan.release)}{' (card only)' if plan.card_only else ''} — dry run")
    for target in (plan.model, plan.adapter):
        if target is not None:
            print_target(console, target)
    if plan.checks["failures"]:
        console.print(f"[red]{len(plan.checks['failures'])} check(s) fail: a real push would stop here.[/]")
    print_checks(console, plan.checks)


def print_committed(console: Console, target: TargetPlan) -> None:
    """One line per pushed repository: the commit it is at now."""
    result = target.result or {}
    commit, url, pr_url = str(result.get("commit")), str(result.get("url")), result.get("pr_url")
    verb = "committed" if target.changes else "already up to date at"
    console.print(
        f"{target.role}: {verb} {escape(commit[:12])} — {escape(url)}" + (f" (PR {escape(pr_url)})" if pr_url else "")
    )
