"""Rendering, writing and checking a card bundle: cards/NAME/README.md and plots/*.png."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.atomic import atomic_write_bytes, atomic_write_text
from pipeline.errors import CheckFailed
from pipeline.hashing import sha256_file
from pipeline.layout import Layout
from pipeline.results import read_results
from pipeline.stage import StageResult
from pipeline.stages.card.context import build_context, method_spec
from pipeline.stages.card.environment import card_environment, method_partial, render_body
from pipeline.stages.card.front_matter import card_data, document

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig


@dataclass(frozen=True)
class RenderedCard:
    """A card in memory: the README text and each plot's PNG bytes by file name."""

    readme: str
    plots: dict[str, bytes]


def run(config: ReleaseConfig, layout: Layout) -> StageResult:
    """The card stage: render and write the bundle; it owns no record section."""
    card = render(config, layout, reuse_plots=True)
    write(card, layout)
    where = layout.card_dir.relative_to(layout.root).as_posix()
    return StageResult(summary=f"rendered README.md and {len(card.plots)} plots in {where}", sections={})


def render_card(config: ReleaseConfig, layout: Layout) -> Path:
    """Write cards/NAME/README.md and cards/NAME/plots/*.png atomically; returns the README path."""
    return write(render(config, layout, reuse_plots=True), layout)


def write(card: RenderedCard, layout: Layout) -> Path:
    """Write a rendered card into the bundle; returns the README path."""
    layout.plots_dir.mkdir(parents=True, exist_ok=True)
    for name, png in card.plots.items():
        target = layout.plots_dir / name
        if not (target.is_file() and target.read_bytes() == png):
            atomic_write_bytes(target, png)
    # Figures an earlier render drew from data the record no longer holds would mislead.
    for stale in sorted(layout.plots_dir.glob("*.png")):
        if stale.name not in card.plots:
            stale.unlink()
    # The README last: it never names a plot that is not on disk yet.
    atomic_write_text(layout.readme, card.readme)
    return layout.readme


def render(config: ReleaseConfig, layout: Layout, *, reuse_plots: bool = False) -> RenderedCard:
    """Render the card in memory from the record and the templates.

    ``reuse_plots``: keep a committed PNG whose embedded input digest matches instead of drawing it
    again (same bytes, without importing matplotlib); ``pubctl card`` uses it, ``--check`` does not.
    """
    from pipeline.plots import build_plots

    results = read_results(layout.results)
    plots = build_plots(results, method_spec(results, config).metrics, reuse=layout.plots_dir if reuse_plots else None)
    env, template_name = card_environment(config, layout)
    context = build_context(config, layout, results, plots)
    context["method_partial"] = method_partial(env, context["method_name"])
    # The card names the exact record it describes: the lineage gate and any reader can check the two match.
    context["record_sha256"] = sha256_file(layout.results)
    body = render_body(env, template_name, context)
    readme = document(card_data(config, results, layout.root), body)
    return RenderedCard(readme=readme, plots={plot.name: plot.png for plot in plots})


def check_card(config: ReleaseConfig, layout: Layout) -> None:
    """Raise CheckFailed with a unified diff when the committed card differs from a fresh render."""
    problems = card_differences(config, layout)
    if problems:
        raise CheckFailed(
            f"The committed card of '{layout.name}' is stale: it differs from a fresh render of "
            f"{layout.results}. Run `pubctl card {layout.name}` and commit the result.\n" + "\n".join(problems)
        )


def card_differences(config: ReleaseConfig, layout: Layout) -> list[str]:
    """What differs between the committed README/plots and a fresh in-memory render (empty: up to date).

    Every figure is drawn again (no reuse of committed PNGs), so a hand-edited plot is caught too.
    """
    fresh = render(config, layout, reuse_plots=False)
    problems = _readme_difference(layout.readme, fresh.readme)
    on_disk = {path.name: path for path in layout.plots_dir.glob("*.png")} if layout.plots_dir.is_dir() else {}
    for name in sorted(set(on_disk) | set(fresh.plots)):
        if name not in on_disk:
            problems.append(f"plots/{name}: missing from the committed card.")
        elif name not in fresh.plots:
            problems.append(f"plots/{name}: committed but a fresh render does not draw it.")
        elif on_disk[name].read_bytes() != fresh.plots[name]:
            problems.append(f"plots/{name}: differs from a fresh render (binary).")
    return problems


def _readme_difference(readme: Path, fresh: str) -> list[str]:
    if not readme.is_file():
        return [f"{readme}: missing (never rendered)."]
    committed = readme.read_text(encoding="utf-8")
    if committed == fresh:
        return []
    diff = difflib.unified_diff(
        committed.splitlines(keepends=True),
        fresh.splitlines(keepends=True),
        fromfile=f"committed/{readme.name}",
        tofile=f"fresh/{readme.name}",
    )
    return ["".join(diff).rstrip("\n")]
