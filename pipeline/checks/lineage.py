"""The lineage gate: every section was made from what the section before it produced.

Each stage records the digests of what it consumed and produced (pipeline.lineage). A
card describes the training run in the training section, but the model that is pushed
is the merge's, and the scores are evaluation's: if someone retrains by hand and does
not merge again, the card would describe one adapter and publish another. The links
below are followed on the record alone (CI holds only the card bundle) and, where
runs/NAME exists, against the files on disk. It cannot be waived: no reason makes a
card about other weights honest.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.checks.registry import check
from pipeline.lineage import files_digest, folder

if TYPE_CHECKING:
    from pipeline.checks.context import CheckContext
    from pipeline.checks.report import Outcome
    from pipeline.results import Lineage, Results


@dataclass(frozen=True)
class Link:
    """``later`` consumed ``what`` that ``earlier`` produced (or consumed: the same base everywhere)."""

    earlier: str
    earlier_side: str
    later: str
    what: str
    fix: str
    """The stage command that makes ``later`` agree again."""


LINKS = (
    Link("training", "produced", "merge", "adapter", "merge"),
    Link("merge", "produced", "evaluation", "merged_model", "evaluate"),
    Link("training", "consumed", "merge", "base_model", "merge"),
    Link("merge", "consumed", "evaluation", "base_model", "evaluate"),
)
"""The links between sections the gate follows, in chain order."""

RECORD_DIGEST = re.compile(r"`results\.json` beside it \(sha256 `([0-9a-f]{64})`\)")
"""How the card names the record it was rendered from (templates/partials/provenance.md.j2)."""


def _lineage(results: Results, section: str) -> Lineage | None:
    value = getattr(results, section)
    return value.lineage if value is not None else None


def _short(digest: str) -> str:
    """A folder digest cut to 12 characters; a model reference (hub:..., builtin:...) is shown whole."""
    return digest if digest.startswith(("hub:", "builtin:")) else digest[:12]


@check(
    "lineage",
    "each section was made from what the section before it produced: the adapter trained is the one merged, the "
    "model merged is the one scored and on disk, the card was rendered from this record (cannot be waived)",
    waivable=False,
)
def lineage(ctx: CheckContext, out: Outcome) -> None:
    results, name = ctx.results, ctx.layout.name
    followed = _unrecorded(ctx, out)
    for link in LINKS:
        earlier, later = _lineage(results, link.earlier), _lineage(results, link.later)
        if earlier is None or later is None:
            continue
        made = getattr(earlier, link.earlier_side).get(link.what)
        used = later.consumed.get(link.what)
        if made is None or used is None:
            continue
        followed += 1
        if made != used:
            out.fail(
                f"{link.later} used {link.what.replace('_', ' ')} {_short(used)} but {link.earlier} "
                f"{link.earlier_side} {_short(made)}",
                f"{link.later} to be made from the {link.earlier} section's {link.what.replace('_', ' ')} "
                f"(pubctl {link.fix} {name})",
            )
    followed += _model_files_link(ctx, out)
    followed += _adapter_on_disk(ctx, out)
    followed += _card_link(ctx, out)
    if not followed:
        out.skip("no section records its lineage yet (written by an earlier pubctl, or not run)", "lineage")


MEASURED = ("training", "merge", "evaluation")
"""The sections that record their lineage (each written by the stage that measured it)."""


def _unrecorded(ctx: CheckContext, out: Outcome) -> int:
    """Sections without lineage: a later one without it beside an earlier one with it was made before the
    earlier one was rewritten (older pubctl, or a hand edit); before a push, every section must record it."""
    present = [section for section in MEASURED if getattr(ctx.results, section) is not None]
    missing = [section for section in present if _lineage(ctx.results, section) is None]
    if not missing:
        return 0
    recorded = [section for section in present if section not in missing]
    judged = 0
    for section in missing:
        earlier = [other for other in recorded if MEASURED.index(other) < MEASURED.index(section)]
        if earlier or ctx.for_push:
            stage = {"training": "train", "merge": "merge", "evaluation": "evaluate"}[section]
            since = f" while {', '.join(earlier)} does" if earlier else ""
            out.fail(
                f"a {section} section that records no lineage{since}",
                f"every section to say what it was made from (pubctl {stage} {ctx.layout.name}, or a release)",
            )
            judged += 1
    return judged


def _model_files_link(ctx: CheckContext, out: Outcome) -> int:
    """The model section's files are the model the merge section says it produced (both written by merge)."""
    merge, model = ctx.results.merge, ctx.results.model
    produced = merge.lineage.produced.get("merged_model") if merge and merge.lineage else None
    if produced is None or model is None or not model.files:
        return 0
    listed = files_digest(model.files)
    if listed != produced:
        out.fail(
            f"model files {_short(listed)} but merge produced {_short(produced)}",
            f"one merge to write both sections (pubctl merge {ctx.layout.name})",
        )
    return 1


def _adapter_on_disk(ctx: CheckContext, out: Outcome) -> int:
    """Where the run folder exists, its adapter is the one the training section describes."""
    training = ctx.results.training
    produced = training.lineage.produced.get("adapter") if training and training.lineage else None
    adapter_dir = ctx.layout.adapter_dir
    if produced is None or not adapter_dir.is_dir():
        return 0
    on_disk = folder(adapter_dir)
    if on_disk != produced:
        out.fail(
            f"the adapter in {adapter_dir} ({_short(on_disk)}) is not the one the training section records "
            f"({_short(produced)})",
            f"the record of the training that left it (pubctl train {ctx.layout.name}, then merge and evaluate)",
        )
    return 1


def _card_link(ctx: CheckContext, out: Outcome) -> int:
    """The committed card names the record it was rendered from; that record is the one beside it."""
    readme = ctx.readme
    if readme is None or not ctx.layout.results.is_file():
        return 0
    match = RECORD_DIGEST.search(readme)
    if match is None:
        return 0  # a template of the user's own that does not name the record
    now = hashlib.sha256(ctx.layout.results.read_bytes()).hexdigest()
    if match.group(1) != now:
        out.fail(
            f"a card rendered from results.json {match.group(1)[:12]}, but results.json is now {now[:12]}",
            f"the card rendered from this record (pubctl card {ctx.layout.name})",
        )
    return 1
