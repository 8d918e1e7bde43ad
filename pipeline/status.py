"""``pubctl list``: each config and what its stages have recorded so far.

Reads only configs/, cards/NAME/ and runs/NAME/stamps; never imports the heavy stack.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipeline.config import ReleaseConfig, load_config
from pipeline.errors import PubctlError
from pipeline.layout import Layout, configs_dir, project_root
from pipeline.results import read_results

STAGE_SECTIONS = {"train": "training", "merge": "merge", "evaluate": "evaluation"}


def release_state(layout: Layout, config: ReleaseConfig | None = None) -> dict[str, str]:
    """State per stage: 'done', 'missing', or the reason the record cannot be read.

    With ``config``, a stage whose stamp no longer matches its inputs is marked '(out of date)'.
    """
    state = dict.fromkeys(("train", "merge", "evaluate", "card", "push"), "—")
    if layout.results.is_file():
        try:
            results = read_results(layout.results)
        except PubctlError as exc:
            return {**state, "train": f"unreadable results: {exc}"}
        for stage, section in STAGE_SECTIONS.items():
            state[stage] = "done" if getattr(results, section) is not None else "—"
    if layout.readme.is_file():
        state["card"] = "rendered"
    push_stamp = layout.stamps_dir / "push.json"
    if push_stamp.is_file():
        try:
            state["push"] = str(json.loads(push_stamp.read_text(encoding="utf-8")).get("summary", "pushed"))
        except (OSError, ValueError):
            state["push"] = "stamp unreadable"
    if config is not None:
        _mark_out_of_date(state, config, layout)
    return state


def _mark_out_of_date(state: dict[str, str], config: ReleaseConfig, layout: Layout) -> None:
    """Stamps decide (pipeline.release); a stage without a stamp (a fresh clone has no runs/) is left as is."""
    from pipeline.release import _hasher, stage_status
    from pipeline.stamps import read_stamp

    hasher = _hasher(layout)
    for stage, value in state.items():
        if value != "—" and read_stamp(layout.stamps_dir, stage) and stage_status(stage, config, layout, hasher):
            state[stage] = f"{value} (out of date)"


def print_status(root: Path | None = None, console: Console | None = None) -> None:
    root = root or project_root()
    console = console or Console()
    folder = configs_dir(root)
    configs = sorted(folder.glob("*.yaml"))
    if not configs:
        console.print(f"No release configs in {folder}.")
        return
    table = Table("release", "method", "base model", "train", "merge", "evaluate", "card", "push")
    for path in configs:
        try:
            config = load_config(str(path), root)
        except PubctlError as exc:
            table.add_row(path.stem, "[red]invalid config[/]", str(exc).splitlines()[0][:60], "", "", "", "", "")
            continue
        state = release_state(Layout.for_release(config.name, root), config)
        table.add_row(
            config.name,
            config.method.name,
            config.model.base_model,
            state["train"],
            state["merge"],
            state["evaluate"],
            state["card"],
            state["push"],
        )
    console.print(table)
