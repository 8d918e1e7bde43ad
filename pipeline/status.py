"""``pubctl list``: each config and what its stages have recorded so far.

Reads only configs/, cards/NAME/ and runs/NAME/stamps; never imports the heavy stack.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipeline.config import ReleaseConfig, load_config
from pipeline.errors import PubctlError
from pipeline.layout import Layout, configs_dir, project_root
from pipeline.results import read_results
from pipeline.stages import STAGE_NAMES, STAGES
from pipeline.stamps import hasher_for, read_stamp


def release_state(layout: Layout, config: ReleaseConfig | None = None) -> dict[str, str]:
    """State per stage (pipeline.stages order): 'done', 'rendered', a stamp's summary, or '—'.

    A stage that owns record sections is done when the record holds them (a fresh clone has the
    committed card bundle but no runs/); the card is rendered when README.md exists; check and push
    say what their stamp says. With ``config``, a stage whose stamp no longer matches its inputs is
    marked '(out of date)'.
    """
    state = dict.fromkeys(STAGE_NAMES, "—")
    results = None
    if layout.results.is_file():
        try:
            results = read_results(layout.results)
        except PubctlError as exc:
            return {**state, "train": f"unreadable results: {exc}"}
    for stage in STAGES.values():
        stamp = read_stamp(layout.stamps_dir, stage.name)
        sections = [section for section in stage.owns if section != "waivers"]
        if sections:
            recorded = results is not None and any(getattr(results, section) is not None for section in sections)
            state[stage.name] = "done" if recorded else "—"
        elif stage.name == "card":
            state[stage.name] = "rendered" if layout.readme.is_file() else "—"
        elif stamp is not None:
            state[stage.name] = stamp.summary or "done"
    if config is not None:
        _mark_out_of_date(state, config, layout)
    return state


def _mark_out_of_date(state: dict[str, str], config: ReleaseConfig, layout: Layout) -> None:
    """A stage whose stamp no longer matches its inputs is out of date, and so is every stage after it: they
    were made from its old outputs. Stamps decide (pipeline.release); a fresh clone (no runs/) has none."""
    from pipeline.release import stage_status

    hasher = hasher_for(layout)
    ran_here = layout.stamps_dir.is_dir()  # a fresh clone has the card bundle but no stamps
    upstream_changed = False
    for stage, value in state.items():
        if value == "—":
            continue
        stamp = read_stamp(layout.stamps_dir, stage)
        # No stamp where others exist: the stage started again and did not finish (interrupted or failed).
        unfinished = ran_here and stamp is None
        if upstream_changed or unfinished or (stamp and stage_status(stage, config, layout, hasher)):
            state[stage] = f"{value} (out of date)"
            upstream_changed = True


def print_status(root: Path | None = None, console: Console | None = None) -> None:
    root = root or project_root()
    console = console or Console()
    folder = configs_dir(root)
    configs = sorted(folder.glob("*.yaml"))
    if not configs:
        console.print(f"No release configs in {folder}.")
        return
    table = Table("release", "method", "base model", *STAGE_NAMES)
    for path in configs:
        try:
            config = load_config(str(path), root)
        except PubctlError as exc:
            table.add_row(path.stem, "[red]invalid config[/]", str(exc).splitlines()[0][:60], *[""] * len(STAGE_NAMES))
            continue
        try:
            state = release_state(Layout.for_release(config.name, root), config)
        except PubctlError as exc:  # e.g. cards/NAME linked out of the project: one row says so, the rest still list
            table.add_row(config.name, "[red]unreadable[/]", str(exc).splitlines()[0], *[""] * len(STAGE_NAMES))
            continue
        table.add_row(config.name, config.method.name, config.model.base_model, *state.values())
    console.print(table)
