"""Rendering, writing and checking a card bundle: cards/NAME/README.md and plots/*.png."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.atomic import atomic_write_bytes, atomic_write_text
from pipeline.errors import CheckFailed, UsageError
from pipeline.hashing import sha256_file
from pipeline.layout import Layout
from pipeline.plot_output import committed_png
from pipeline.results import read_results
from pipeline.stage import StageResult
from pipeline.stages.card.context import build_context, method_spec
from pipeline.stages.card.environment import card_environment, method_partial, render_body
from pipeline.stages.card.front_matter import card_data, document
from pipeline.stages.card.hand_edits import KeptReadme, keep_hand_edit, remember_written

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
    _, kept = write_bundle(card, layout)
    where = layout.card_dir.relative_to(layout.root).as_posix()
    plots = f" ({', '.join(sorted(card.plots))})" if card.plots else ""
    summary = f"rendered README.md and {len(card.plots)} plots{plots} in {where}"
    if kept is not None:
        copy = kept.path.relative_to(layout.root).as_posix()
        summary += (
            f"; the README.md it replaced was not pubctl's last render (edited by hand?): a copy is in {copy}"
            if kept.render_recorded
            else f"; no record of an earlier render here (a fresh clone?), so the README.md it replaced is kept in "
            f"{copy} in case it held edits"
        )
    return StageResult(summary=summary, sections={})


def render_card(config: ReleaseConfig, layout: Layout) -> Path:
    """Write cards/NAME/README.md and cards/NAME/plots/*.png atomically; returns the README path."""
    return write(render(config, layout, reuse_plots=True), layout)


def write(card: RenderedCard, layout: Layout) -> Path:
    """Write a rendered card into the bundle; returns the README path."""
    return write_bundle(card, layout)[0]


def write_bundle(card: RenderedCard, layout: Layout) -> tuple[Path, KeptReadme | None]:
    """Write a rendered card into the bundle: (README path, the copy kept of a README pubctl did not write)."""
    _refuse_folders_in_the_way(card, layout)  # before anything is written
    kept = keep_hand_edit(layout, card.readme)
    layout.plots_dir.mkdir(parents=True, exist_ok=True)
    for name, png in card.plots.items():
        target = layout.plots_dir / name
        if committed_png(target) != png:  # a link, even to the same bytes, is replaced by the file itself
            atomic_write_bytes(target, png)
    # Figures an earlier render drew from data the record no longer holds would mislead.
    for stale in sorted(layout.plots_dir.glob("*.png")):
        if stale.name not in card.plots:
            stale.unlink()
    # The README last: it never names a plot that is not on disk yet.
    atomic_write_text(layout.readme, card.readme)
    remember_written(layout, card.readme)
    return layout.readme, kept


def _refuse_folders_in_the_way(card: RenderedCard, layout: Layout) -> None:
    """A UsageError naming the first folder where the bundle keeps a file (README.md, a figure), or a file
    where it keeps the plots/ folder: a rename cannot replace either."""
    plots = layout.plots_dir
    if plots.exists() and not plots.is_dir():
        raise UsageError(f"{plots}: not a folder; the card keeps its figures there. Move it away and render again.")
    names = set(card.plots) | ({path.name for path in plots.glob("*.png")} if plots.is_dir() else set())
    for path in [layout.readme, *(plots / name for name in sorted(names))]:
        if path.is_dir() and not path.is_symlink():
            raise UsageError(f"{path}: a folder where the card keeps a file. Move it away and render again.")


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
    """Raise CheckFailed naming the first difference, with a unified diff, when the committed card is stale."""
    problems = card_differences(config, layout)
    if problems:
        first, _, diff = problems[0].partition("\n")
        advice = OWN_TEXT if first.startswith(README_DIFFERS) else ""
        details = "\n".join(part for part in [diff, *problems[1:]] if part)
        raise CheckFailed(
            f"The committed card of '{layout.name}' is stale: {first} Run `pubctl card {layout.name}` and commit "
            f"the result.{advice}" + (f"\n{details}" if details else "")
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
        elif on_disk[name].is_symlink():
            problems.append(f"plots/{name}: a symbolic link; the card bundle must hold the figure itself.")
        elif committed_png(on_disk[name]) != fresh.plots[name]:
            problems.append(f"plots/{name}: differs from a fresh render (binary).")
    return problems


README_DIFFERS = "README.md line "
OWN_TEXT = (
    " A hand edit of README.md is replaced by the next render: put your own text in the config instead "
    "(card.summary, card.limitations) or in a template of yours that extends the default and overrides one "
    "block (card.template; see docs/card.md)."
)


def _readme_difference(readme: Path, fresh: str) -> list[str]:
    """The first differing line, named with its number and both texts, then the unified diff."""
    if not readme.is_file():
        return [f"{readme}: missing (never rendered)."]
    committed = readme.read_text(encoding="utf-8")
    if committed == fresh:
        return []
    old, new = committed.splitlines(), fresh.splitlines()
    line = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))
    first = (
        f"{README_DIFFERS}{line + 1} differs first: committed {_quote(old, line)}, a fresh render has "
        f"{_quote(new, line)}."
    )
    diff = difflib.unified_diff(
        committed.splitlines(keepends=True),
        fresh.splitlines(keepends=True),
        fromfile=f"committed/{readme.name}",
        tofile=f"fresh/{readme.name}",
    )
    return [first + "\n" + "".join(diff).rstrip("\n")]


def _quote(lines: list[str], index: int, limit: int = 100) -> str:
    """A line for a one-line message: quoted and shortened, or a note that the file ends before it."""
    if index >= len(lines):
        return "no such line (the file ends before it)"
    text = lines[index]
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
