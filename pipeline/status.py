"""``pubctl list``: each config and what its stages have recorded so far.

Reads only configs/, cards/NAME/ and runs/NAME/stamps; never imports the heavy stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline.config import ReleaseConfig, load_config
from pipeline.errors import PubctlError
from pipeline.layout import Layout, configs_dir, project_root
from pipeline.results import read_results
from pipeline.stages import STAGE_NAMES, STAGES
from pipeline.stamps import hasher_for, read_stamp


def release_state(layout: Layout, config: ReleaseConfig | None = None) -> dict[str, str]:
    """State per stage (pipeline.stages order): 'done', 'imported', 'rendered', a stamp's summary, or '—'.

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
            recorded = [getattr(results, section) for section in sections] if results is not None else []
            recorded = [section for section in recorded if section is not None]
            # `pubctl import` wrote these sections (from files made elsewhere, or measuring them): it leaves no
            # stamp to be out of date against. Only its sections carry an origin.
            imported = any(getattr(section, "origin", None) is not None for section in recorded)
            state[stage.name] = "imported" if imported else "done" if recorded else "—"
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
        if value in ("—", "imported"):
            continue
        stamp = read_stamp(layout.stamps_dir, stage)
        # No stamp where others exist: the stage started again and did not finish (interrupted or failed).
        unfinished = ran_here and stamp is None
        if upstream_changed or unfinished or (stamp and stage_status(stage, config, layout, hasher)):
            state[stage] = f"{value} (out of date)"
            upstream_changed = True


def print_status(root: Path | None = None, console: Console | None = None) -> None:
    """One row per config. The full table (a column per stage) where the terminal is wide enough; else a compact
    one that fits 80 columns, with the stages summed up in one column. Release and method names, which a
    user types, are never cut; an invalid config shows its first problem whole."""
    root = root or project_root()
    console = console or Console()
    folder = configs_dir(root)
    configs = sorted(folder.glob("*.yaml"))
    if not configs:
        console.print(f"No release configs in {folder}.")
        return
    rows = [_row(path, root) for path in configs]
    if _full_width(rows) <= console.width:
        console.print(_full_table(rows))
        return
    console.print(_compact_table(rows))
    # A problem is read in full below the table, at the terminal's width, not folded into a narrow column.
    for row in rows:
        if row.problem is not None:
            console.print(f"[bold]{escape(row.name)}[/]: {escape(row.problem)}")


@dataclass
class _Row:
    name: str
    method: str
    base_model: str
    state: dict[str, str] | None = None
    problem: str | None = None
    """Why the config or its record cannot be read (then ``method`` says which)."""


def _row(path: Path, root: Path) -> _Row:
    try:
        config = load_config(str(path), root)
    except PubctlError as exc:
        return _Row(path.stem, "invalid config", "", problem=first_problem(str(exc)))
    try:
        state = release_state(Layout.for_release(config.name, root), config)
    except PubctlError as exc:  # e.g. cards/NAME linked out of the project: one row says so, the rest still list
        return _Row(config.name, "unreadable", config.model.base_model, problem=first_problem(str(exc)))
    return _Row(config.name, config.method.name, config.model.base_model, state=state)


def first_problem(message: str) -> str:
    """The line of an error that says what is wrong: a config error's first problem, not its header."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        more = len(lines) - 2
        return lines[1] + (f" (and {more} more: pubctl check NAME lists them)" if more else "")
    return lines[0] if lines else message


STATE_WORD = len("rendered")
"""The longest word of a stage's state ('rendered', 'done (out of date)'): a stage column's narrowest width."""


def _full_width(rows: list[_Row]) -> int:
    """Columns the full table needs without breaking a word: borders and padding take 3 per column, plus 1."""
    release, method = _names(rows)
    base = max([len(word) for row in rows for word in row.base_model.split()] + [len("base model")])
    stages = sum(max(len(stage), STATE_WORD) for stage in STAGE_NAMES)
    return release + method + base + stages + 3 * (3 + len(STAGE_NAMES)) + 1


def _names(rows: list[_Row]) -> tuple[int, int]:
    return max(len(row.name) for row in rows), max(len(row.method) for row in rows)


def _full_table(rows: list[_Row]) -> Table:
    release, method = _names(rows)
    table = Table()
    table.add_column("release", no_wrap=True, min_width=release)
    table.add_column("method", no_wrap=True, min_width=method)
    table.add_column("base model", overflow="fold")
    for stage in STAGE_NAMES:
        table.add_column(stage, overflow="fold")
    for row in rows:
        if row.state is None:
            table.add_row(
                row.name, f"[red]{escape(row.method)}[/]", escape(row.problem or ""), *[""] * len(STAGE_NAMES)
            )
        else:
            table.add_row(row.name, row.method, escape(row.base_model), *(escape(v) for v in row.state.values()))
    return table


def _compact_table(rows: list[_Row]) -> Table:
    release, method = _names(rows)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("release", no_wrap=True, min_width=release)
    table.add_column("method", no_wrap=True, min_width=method)
    table.add_column("base model", overflow="fold", ratio=2)
    table.add_column("stages", overflow="fold", ratio=3)
    for row in rows:
        if row.state is None:
            table.add_row(row.name, f"[red]{escape(row.method)}[/]", escape(row.base_model), "see below")
        else:
            table.add_row(row.name, row.method, escape(row.base_model), escape(stages_in_brief(row.state)))
    return table


def stages_in_brief(state: dict[str, str]) -> str:
    """The stage states of one release as one short text: which are done, out of date, not run."""
    problems = [value for value in state.values() if value.startswith("unreadable")]
    if problems:
        return problems[0]
    groups: dict[str, list[str]] = {"done": [], "imported": [], "out of date": [], "not run": []}
    for stage, value in state.items():
        kind = "not run" if value == "—" else "out of date" if value.endswith("(out of date)") else "done"
        groups["imported" if value == "imported" else kind].append(stage)
    if not any(groups[kind] for kind in ("done", "imported", "out of date")):
        return "nothing run yet"
    return "; ".join(f"{kind}: {', '.join(stages)}" for kind, stages in groups.items() if stages)
