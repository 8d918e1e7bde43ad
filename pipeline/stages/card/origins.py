"""What the card says about where its numbers came from (templates/partials/origin.md.j2).

Only a record with an imported section (``pubctl import``) gets the paragraph: a release pubctl trained,
merged and evaluated itself has every number measured, and its card stays as it was. Values stay plain
text; the template escapes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.results import Results

TRACED = {"training": "train", "model": "merge", "merge": "merge", "evaluation": "evaluate"}
"""The sections an import can write, and the stage that measures each otherwise."""
DIGEST_SHOWN = 12


def origins(results: Results) -> list[dict[str, Any]]:
    """One entry per section the record holds, in chain order, when any of them was imported; else []."""
    present = [(name, getattr(results, name)) for name in TRACED if getattr(results, name) is not None]
    if not any(section.origin is not None and section.origin.kind == "imported" for _, section in present):
        return []
    entries = []
    for name, section in present:
        origin = section.origin
        entry: dict[str, Any] = {"section": name, "kind": f"measured by pubctl {TRACED[name]}", "file": None}
        entry |= {"sha256": None, "also_read": [], "measured": [], "declared": [], "gaps": []}
        if origin is not None:
            entry["kind"] = "imported" if origin.kind == "imported" else "measured by pubctl import"
            entry["file"] = origin.file
            entry["sha256"] = origin.sha256[:DIGEST_SHOWN] if origin.sha256 else None
            entry["also_read"] = [
                {"role": f.role, "path": f.path, "sha256": f.sha256[:DIGEST_SHOWN]} for f in origin.also_read
            ]
            entry |= {"measured": origin.measured, "declared": origin.declared, "gaps": origin.gaps}
        entries.append(entry)
    return entries
