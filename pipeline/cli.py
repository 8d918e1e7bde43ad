"""The pubctl command line: one thin function per command, no logic.

Each command loads the config, builds the layout and calls one function of a
stage module, imported inside the command so that ``pubctl --help``, ``list``,
``schema``, ``card`` and ``check`` never import torch. A PubctlError becomes a
one-paragraph message on stderr and its exit code; an error of the machine (a
full disk, a read-only or unreadable file) is one line naming the file, exit 1;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from pipeline import __version__
from pipeline.errors import OS_ERROR_EXIT_CODE, Interrupted, PubctlError, UsageError, os_error_message

app = typer.Typer(
    name="pubctl",
    help="Publish fine-tuned language models on the Hugging Face Hub honestly and reproducibly.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold a token
    rich_markup_mode="rich",
)
err = Console(stderr=True, highlight=False, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])
NAME_HELP = "Release: a file in configs/ without .yaml, or a path to a YAML file."


def command(*args: Any, **kwargs: Any) -> Callable[[F], F]:
    """app.command that turns a PubctlError into its message and exit code, and an error of the machine (disk
    full, read-only file system) into one line naming the file and exit 1."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*a: Any, **kw: Any) -> Any:
            try:
                return fn(*a, **kw)
            except PubctlError as exc:
                label = "interrupted" if isinstance(exc, Interrupted) else "error"
                err.print(f"[bold red]{label}:[/] {escape(str(exc))}")
                raise typer.Exit(exc.exit_code) from None
            except KeyboardInterrupt:  # outside a stage: loading the config, planning the chain
                err.print("[bold red]interrupted[/]: nothing was left half-written; run the command again.")
                raise typer.Exit(Interrupted.exit_code) from None
            except Exception as exc:
                # A full disk or a read-only file system is the machine's failure, not a bug: one line naming
                # the file (every pubctl write is atomic, so the old file is still whole). Anything else
                # keeps its traceback.
                message = os_error_message(exc)
                if message is None:
                    raise
                err.print(f"[bold red]error:[/] {escape(message)}")
                raise typer.Exit(OS_ERROR_EXIT_CODE) from None

        app.command(*args, **kwargs)(wrapper)
        return fn

    return decorate


def _load(name: str):  # -> tuple[ReleaseConfig, Layout]
    from pipeline.config import load_config
    from pipeline.layout import Layout

    config = load_config(name)
    return config, Layout.for_release(config.name)


def _chain():  # -> module pipeline.release
    """The release chain, through which every stage command runs (it keeps the stage stamps).

    Imported when a command runs: it is light itself, and imports each stage only to run it.
    """
    import pipeline.release

    return pipeline.release


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pubctl {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    verbose: bool = typer.Option(
        False, "--verbose", help="Show the libraries' output (bars, warnings) live; it is always in runs/NAME/logs/."
    ),
) -> None:
    """train -> merge -> evaluate -> card -> check -> push, from one YAML config."""
    from pipeline.console import set_verbose

    set_verbose(verbose)


@command("release")
def release(
    name: str = typer.Argument(..., help=NAME_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="Plan the push instead of pushing."),
    force: bool = typer.Option(False, "--force", help="Re-run stages even when their inputs are unchanged."),
    from_stage: str | None = typer.Option(None, "--from", help="First stage (train ... push)."),
    to_stage: str | None = typer.Option(None, "--to", help="Last stage to run."),
    rehearse: bool = typer.Option(
        False,
        "--rehearse",
        help="Run the real config on a shrunk random-weight model (NAME-rehearsal); never pushes.",
    ),
    layers: int | None = typer.Option(
        None, "--layers", min=1, help="Rehearsal: decoder layers of the random base [default: 2]."
    ),
    rows: int | None = typer.Option(
        None, "--rows", min=1, help="Rehearsal: first rows of the training data [default: 32]."
    ),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Rehearsal: optimizer steps [default: 2]."),
    limit: int | None = typer.Option(
        None, "--limit", min=2, help="Rehearsal: lm-eval items per task (2 at least: 1 has no stderr) [default: 2]."
    ),
    max_length: int | None = typer.Option(
        None, "--max-length", min=8, help="Rehearsal: cap on training.max_length [default: 256]."
    ),
    model_files: Path | None = typer.Option(
        None, "--model-files", help="Rehearsal: local folder with the base's config.json and tokenizer (offline)."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="Rehearsal: local .json/.jsonl/.parquet in the dataset's schema (offline)."
    ),
    offline: bool = typer.Option(
        False, "--offline", help="Rehearsal without the Hub: --model-files, --data and offline benchmark look-alikes."
    ),
) -> None:
    """Run train -> merge -> evaluate -> card -> check -> push, skipping stages whose inputs are unchanged."""
    shrink = {"layers": layers, "rows": rows, "steps": steps, "limit": limit, "max_length": max_length}
    shrink |= {"model_files": model_files, "data": data, "offline": offline or None}
    given = {key: value for key, value in shrink.items() if value is not None}
    if given and not rehearse:
        flags = ", ".join(f"--{key.replace('_', '-')}" for key in given)
        raise UsageError(f"{flags}: rehearsal options; add --rehearse (pubctl release {name} --rehearse {flags} ...).")
    if rehearse and (from_stage or to_stage or dry_run):
        raise UsageError("--rehearse runs the whole chain as a dry run: drop --from, --to and --dry-run.")
    config, layout = _load(name)
    if rehearse:
        from pipeline.rehearsal.options import RehearsalOptions
        from pipeline.rehearsal.run import rehearse as run_rehearsal

        run_rehearsal(config, RehearsalOptions(**given), force=force)
        return
    _chain().run_release(config, layout, dry_run=dry_run, force=force, from_stage=from_stage, to_stage=to_stage)


@command("train")
def train(
    name: str = typer.Argument(..., help=NAME_HELP),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Continue from the last checkpoint (nothing to do after a finished run)."
    ),
) -> None:
    """Train a LoRA adapter with the config's TRL method; records the training section."""
    config, layout = _load(name)
    # Resuming a finished, unchanged run has nothing to do; --no-resume asks for a new run.
    _chain().run_stage("train", config, layout, resume=resume, unless_up_to_date=resume)


@command("merge")
def merge(name: str = typer.Argument(..., help=NAME_HELP)) -> None:
    """Merge the adapter into the base, verify parity, save a standalone model."""
    config, layout = _load(name)
    _chain().run_stage("merge", config, layout)


@command("evaluate")
def evaluate(
    name: str = typer.Argument(..., help=NAME_HELP),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Items per task (smoke runs; the card says so)."),
    tasks: str | None = typer.Option(None, "--tasks", help="Comma-separated subset of the config's tasks."),
) -> None:
    """Benchmark the merged model (and its base) with lm-eval and measure generation throughput."""
    config, layout = _load(name)
    selected = [task.strip() for task in tasks.split(",") if task.strip()] if tasks else None
    _chain().run_stage("evaluate", config, layout, limit=limit, tasks=selected)


@command("card")
def card(
    name: str = typer.Argument(..., help=NAME_HELP),
    check: bool = typer.Option(False, "--check", help="Exit 1 with a diff when the committed card is stale."),
) -> None:
    """Render cards/NAME/README.md and plots from cards/NAME/results.json alone."""
    from pipeline.plot_worker import drawing_ahead, stale_figures

    with drawing_ahead(likely=check or stale_figures(name)):  # --check draws every figure
        config, layout = _load(name)
        if check:
            from pipeline.stage import load_entry

            load_entry("pipeline.stages.card:check_card")(config, layout)
            err.print(
                f"card {name}: up to date (README.md and plots match a fresh render of results.json)", markup=False
            )
        else:  # through the release module, which stamps the render for `pubctl release`
            _chain().run_stage("card", config, layout)


@command("check")
def check(
    name: str = typer.Argument(..., help=NAME_HELP),
    allow: list[str] = typer.Option(
        [], "--allow", help="Waive a failing check: CHECK=REASON (recorded in results.json, shown on the card)."
    ),
) -> None:
    """Run the honesty gates on the card bundle."""
    waivers: dict[str, str] = {}
    for item in allow:
        check_id, sep, reason = item.partition("=")
        if not sep or not check_id.strip() or not reason.strip():
            raise UsageError(f"--allow {item!r}: expected CHECK=REASON with a non-empty reason.")
        waivers[check_id.strip()] = reason.strip()
    from pipeline.plot_worker import drawing_ahead

    with drawing_ahead():  # the card gate draws every figure again to compare
        config, layout = _load(name)
        _chain().run_stage("check", config, layout, allow=waivers)


@command("push")
def push(
    name: str = typer.Argument(..., help=NAME_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print and write the plan; no token, no network needed."),
    card_only: bool = typer.Option(False, "--card-only", help="Publish README.md, plots and results.json only."),
    revision: str | None = typer.Option(None, "--revision", help="Branch to commit to (default: hub.revision)."),
    tag: str | None = typer.Option(None, "--tag", help="Tag the commit (default: hub.tag)."),
    private: bool | None = typer.Option(None, "--private/--public", help="Visibility of a new repo."),
    create_pr: bool | None = typer.Option(None, "--create-pr", help="Open a pull request instead."),
    message: str | None = typer.Option(None, "--message", help="Commit title (default: hub.commit_message)."),
) -> None:
    """Publish the release to the Hub in one atomic commit; unchanged files are not re-sent."""
    config, layout = _load(name)
    _chain().run_stage(
        "push",
        config,
        layout,
        dry_run=dry_run,
        card_only=card_only,
        revision=revision,
        tag=tag,
        private=private,
        create_pr=create_pr,
        message=message,
    )


@command("verify")
def verify(
    target: str = typer.Argument(
        ..., metavar="NAME|DIR|REPO_ID", help="A release in configs/, a folder laid out like its Hub repo, a repo id."
    ),
    key: Path | None = typer.Option(None, "--key", help="PEM public key of a key signature (default: hub.sign)."),
    certificate: list[Path] = typer.Option(
        [], "--certificate", help="PEM root of trust of a certificate signature (repeatable; default: hub.sign)."
    ),
    identity: str | None = typer.Option(None, "--identity", help="Sigstore: the signer's identity (a workflow URI)."),
    issuer: str | None = typer.Option(None, "--issuer", help="Sigstore: its OIDC issuer (default: GitHub Actions')."),
    revision: str | None = typer.Option(None, "--revision", help="REPO_ID: branch, tag or commit (default: main)."),
) -> None:
    """Check a release's files (and its model.sig, when signed) against its results.json."""
    from pipeline.verify import VerifyOptions
    from pipeline.verify import verify as verify_target

    options = VerifyOptions(key, tuple(certificate), identity, issuer, revision)
    verify_target(target, options)


@command("import")
def import_release(name: str = typer.Argument(..., help=NAME_HELP)) -> None:
    """Build the record from results made outside pubctl (the config's import: section), each section marked."""
    from pipeline.importing.run import run as run_import

    config, layout = _load(name)
    run_import(config, layout)  # prints its one-line summary, as a stage does


@command("list")
def list_releases() -> None:
    """Each config in configs/ and the state of its stages."""
    from pipeline.status import print_status

    print_status()


@command("schema")
def schema() -> None:
    """Print the JSON schema of the release config (for editors)."""
    from pipeline.config import config_schema

    typer.echo(json.dumps(config_schema(), indent=2, ensure_ascii=False))


if __name__ == "__main__":  # pragma: no cover
    app()
