"""Model gates: the record's files, parameter count, dtype and architecture, and the merge's parity.

Each compares the model section of the record with itself and, where the merged
model is on disk, with its files (sizes, sha256, safetensors headers, config.json).
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from pipeline.checks.registry import check
from pipeline.hashing import NotRegularFile, inside_regular_file, sha256_file, visible_files
from pipeline.judgments import PARITY_OPTIONS, describe_parity, parity_value
from pipeline.provenance import PUBLISHED_CONFIG
from pipeline.safetensors_dtypes import DTYPE_NAMES, NAME_BYTES
from pipeline.signing import SIGNATURE_NAME

if TYPE_CHECKING:
    from pathlib import Path

    from pipeline.checks.context import CheckContext
    from pipeline.checks.report import Outcome
    from pipeline.results import ModelRecord

# A safetensors file is its tensors plus an 8-byte length and a JSON header (tens of KB);
# mixed-precision norms may add a little: 2% and 64 KiB per file cover both.
SIZE_SLACK = 1.02
HEADER_SLACK_BYTES = 65536

NOT_PUBLISHED_FROM_MODEL = ("README.md", "results.json")
"""Push publishes the card bundle's copies of these (pipeline.stages.push.files.CARD_FILES), never the model
folder's: one there that the merge did not record is never sent, so it is not a stray file."""
PUBLISHED_BESIDE_MODEL = (PUBLISHED_CONFIG, SIGNATURE_NAME)
"""Files push adds to the model's commit: the release's config and its signature."""
PUBLISHED_FOLDERS = ("plots", ".eval_results")
"""Folders of the model repository the card bundle and push fill (the card's figures, the Hub's scores)."""


def taken_by_release(path: str) -> bool:
    """Whether a model file at ``path`` would collide with a file the release itself publishes beside the model:
    the same path twice in one commit, and the model's copy could win over the card's."""
    return path in NOT_PUBLISHED_FROM_MODEL or path in PUBLISHED_BESIDE_MODEL or path.split("/")[0] in PUBLISHED_FOLDERS


MAX_NAMED = 5
"""Stray files named in a failure; the rest are counted."""


@check("model_files", "the record lists the model's files, none empty; local files match size and sha256")
def model_files(ctx: CheckContext, out: Outcome) -> None:
    model = ctx.results.model
    if model is None:
        out.fail("no model section in results.json", "the merged model's record (pubctl merge)")
        return
    empty = [f.path for f in model.files if f.size <= 0]
    if not model.files:
        out.fail("no files listed", "the merged model's files with sizes and sha256")
    elif not any(f.path.endswith(".safetensors") for f in model.files):
        out.fail("no *.safetensors among the files", "the weights in safetensors format")
    if empty:
        out.fail(f"empty files: {', '.join(empty)}", "non-empty files")
    taken = [f.path for f in model.files if taken_by_release(f.path)]
    if taken:
        out.fail(
            f"model files named like the release's own: {', '.join(taken[:MAX_NAMED])}",
            "no model file at README.md, results.json, pubctl.yaml, model.sig, plots/ or .eval_results/",
        )
    if ctx.has_model:  # without the files, the record alone is what a card bundle can be checked against
        _files_match_record(model, ctx.model_dir, out)


def _files_match_record(model: ModelRecord, folder: Path, out: Outcome) -> None:
    """Every recorded file is a regular file of the folder with its recorded size and sha256, and nothing the
    merge did not record is there: what push publishes is exactly this list (pipeline.stages.push.files)."""
    for entry in model.files:
        path = folder / entry.path
        if not os.path.lexists(path):
            out.fail(f"{entry.path} listed but missing from {folder}", "every listed file")
            continue
        try:
            size = inside_regular_file(path, folder).st_size
            if size != entry.size:
                out.fail(f"{entry.path} is {size:,} bytes, recorded {entry.size:,}", "the recorded size")
            elif sha256_file(path) != entry.sha256:
                out.fail(f"{entry.path} sha256 differs from the record", "the recorded sha256")
        except NotRegularFile as exc:
            out.fail(f"{entry.path} {exc.why}", "a regular file inside the model folder, as the merge wrote it")
    recorded = {entry.path for entry in model.files} | set(NOT_PUBLISHED_FROM_MODEL)
    stray = [path for path in visible_files(folder) if path.relative_to(folder).as_posix() not in recorded]
    extra = [path.relative_to(folder).as_posix() + _what(path, folder) for path in stray]
    if extra:
        shown = ", ".join(extra[:MAX_NAMED]) + (f" and {len(extra) - MAX_NAMED} more" if len(extra) > MAX_NAMED else "")
        out.fail(
            f"{shown} in {folder} but not among the files the merge recorded",
            "only the merge's files (re-run pubctl merge, or remove them)",
        )


def _what(path: Path, folder: Path) -> str:
    """' (what it is)' for an entry that is not a regular file of ``folder``; '' for one that is. Opens nothing."""
    try:
        inside_regular_file(path, folder)
    except NotRegularFile as exc:
        return f" ({exc.why})"
    return ""


@check("parameter_count", "the recorded parameter count matches the weights' bytes and the safetensors headers")
def parameter_count(ctx: CheckContext, out: Outcome) -> None:
    model = ctx.results.model
    if model is None:
        out.fail("no model section", "a measured parameter count")
    elif model.parameters <= 0:
        out.fail(f"{model.parameters} parameters", "the count measured on the merged weights")
    else:
        _count_fits_recorded_bytes(model, out)
    # The record's own consistency was checked above: only the exact count needs the files.
    if ctx.without_model(out, partly=True):
        return
    if ctx.weights.unreadable:
        out.fail("; ".join(ctx.weights.unreadable), "safetensors files whose headers parse")
    elif not ctx.weights.headers:
        out.fail(f"no *.safetensors in {ctx.model_dir}", "the merged weights")
    else:
        count = sum(math.prod(t["shape"]) for t in ctx.weights.tensors)
        if model is not None and count != model.parameters:
            out.fail(f"{count:,} parameters in the safetensors headers", f"{model.parameters:,} as recorded")


def _count_fits_recorded_bytes(model: ModelRecord, out: Outcome) -> None:
    """The recorded count times the dtype's size must be what the recorded weight files hold."""
    weights = [f for f in model.files if f.path.endswith(".safetensors")]
    itemsize = NAME_BYTES.get(model.dtype)
    if not weights or not itemsize:  # model_files and dtype_match report those
        return
    stored = sum(f.size for f in weights)
    low = model.parameters * itemsize
    if not low <= stored <= low * SIZE_SLACK + HEADER_SLACK_BYTES * len(weights):
        out.fail(
            f"{model.parameters:,} parameters recorded but {stored:,} bytes of {model.dtype} weights "
            f"(about {stored / itemsize:,.0f} parameters)",
            "the recorded count to match the weight files",
        )


@check("dtype_match", "the recorded dtype matches the safetensors tensors")
def dtype_match(ctx: CheckContext, out: Outcome) -> None:
    model = ctx.results.model
    if model is not None and model.dtype not in NAME_BYTES:
        out.fail(f"dtype {model.dtype!r}", f"one of {', '.join(NAME_BYTES)}")
    # A known dtype name proves nothing about the weights: without them the check did not run.
    if ctx.without_model(out):
        return
    weights = ctx.weights
    if weights.unreadable or not weights.headers:  # parameter_count reports weights it cannot read
        return
    floats: dict[str, int] = {}
    for t in weights.tensors:
        if t["dtype"] in DTYPE_NAMES:
            floats[DTYPE_NAMES[t["dtype"]]] = floats.get(DTYPE_NAMES[t["dtype"]], 0) + math.prod(t["shape"])
    main = max(sorted(floats), key=floats.__getitem__) if floats else None
    if model is not None and main != model.dtype:
        out.fail(f"weights mostly {main}", f"{model.dtype} as recorded")


@check("architecture_match", "the recorded architecture matches config.json")
def architecture_match(ctx: CheckContext, out: Outcome) -> None:
    if ctx.without_model(out):
        return
    architectures = ctx.model_json("config.json").get("architectures") or []
    model = ctx.results.model
    if model is not None and model.architecture not in architectures:
        out.fail(f"config.json architectures {architectures}", f"{model.architecture!r}")


@check("merge_parity", "merged logits match adapter-on-base within the tolerance")
def merge_parity(ctx: CheckContext, out: Outcome) -> None:
    merge = ctx.results.merge
    if merge is None:
        out.fail("no merge section in results.json", "a parity measurement (pubctl merge)")
        return
    model = ctx.results.model
    measure, bound = ctx.config.merge.parity_gate(model.dtype if model else ctx.config.model.dtype)
    found = parity_value(measure, merge.parity_max_abs_diff, merge.parity_adapter_effect)
    if found is None:
        out.fail("no parity_adapter_effect in the merge record", "a re-run of pubctl merge")
    elif not math.isfinite(found) or found > bound:
        out.fail(describe_parity(measure, found), f"at most {bound:g} ({PARITY_OPTIONS[measure]})")
