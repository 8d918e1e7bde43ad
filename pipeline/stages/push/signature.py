"""hub.sign at push: ``model.sig`` joins the model repository's commit, signed over exactly what it publishes.

The signed files are the push's own list for the model repository (card bundle, model files, the files
push makes), each with the sha256 push measured; a card-only push, which sends no model file, signs the
model files as results.json records them, which is what the Hub must hold for the card to be true.

The signature and what it signed are kept in runs/NAME/signature/ (never published):

- ``model.sig``: the last signature, reused while the files and the signer are the same, so an unchanged
  push stays unchanged (an ECDSA signature differs each time it is made).
- ``signed.json``: each signed path with its sha256 and where its bytes are here (a file of the release,
  or a copy in ``files/`` of what push generated), which ``pubctl verify NAME`` checks the signature against.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from pipeline.atomic import atomic_write_bytes, atomic_write_text
from pipeline.errors import UsageError
from pipeline.hashing import NotRegularFile, inside_regular_file, open_regular, tree_digest
from pipeline.hub_client import LocalFile, current_token
from pipeline.results import read_results
from pipeline.signing import SIGNATURE_MAX, SIGNATURE_NAME, require_extra, sign_digests, signer_name
from pipeline.stages.push.files import CARD_FILES

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig
    from pipeline.layout import Layout
    from pipeline.results import FileEntry
    from pipeline.stages.push.plan import TargetPlan

SIGNED_RECORD = "signed.json"
SIGNED_RECORD_MAX = 16 << 20
"""Largest signed.json read: a line per file."""
STORED = "files"
"""Copies of the signed files push generated (they exist nowhere else on disk)."""


def signature_dir(layout: Layout) -> Path:
    return layout.inside(layout.run_dir / "signature", "runs")


def add_signature(
    config: ReleaseConfig,
    layout: Layout,
    files: list[LocalFile],
    *,
    card_only: bool,
    dry_run: bool,
    checks: dict[str, Any],
    console: Console,
) -> list[LocalFile]:
    """``files`` with ``model.sig`` over them when hub.sign is set; ``files`` as they are otherwise."""
    if any(f.path_in_repo == SIGNATURE_NAME for f in files):
        raise UsageError(
            f"push {config.name}: the release has a file named {SIGNATURE_NAME}, the name of a model-signing "
            "signature: rename it. Nothing was sent."
        )
    sign = config.hub.sign
    if sign is None:
        return files
    require_extra()
    signed = _signed_files(layout, files, card_only=card_only)
    digests = [(path, sha) for path, sha, _ in signed]
    if sign.method == "sigstore" and dry_run:
        # Keyless signing writes to Sigstore's public log: never for a plan.
        console.print(f"{SIGNATURE_NAME}: the real push signs its {len(digests)} files keyless (sigstore)")
        return files
    if sign.method == "sigstore" and (checks["failures"] or not current_token()):
        return files  # the push refuses next, and nothing of it may reach a public log
    signer = signer_name(sign, layout.root)
    signature = _reusable(layout, digests, signer)
    if signature is None:
        signature = sign_digests(sign, layout.root, config.hub.repo_id.split("/")[-1], digests, layout.run_dir)
        _keep(layout, signed, signer, signature)
        what = "signed"
    else:
        what = "reused the signature of"
    sha = hashlib.sha256(signature).hexdigest()
    console.print(
        f"{SIGNATURE_NAME}: {what} {len(digests)} files as {escape(signer)} "
        f"(sha256 {sha[:12]}, {len(signature):,} bytes)"
    )
    return sorted([*files, LocalFile.from_bytes(SIGNATURE_NAME, signature)], key=lambda f: f.path_in_repo)


def signature_record(target: TargetPlan) -> dict[str, Any] | None:
    """What the push stamp keeps of the signature the commit carries (results.json cannot: it is signed)."""
    for planned in target.files:
        if planned.path == SIGNATURE_NAME and planned.action != "delete":
            return {"path": planned.path, "sha256": planned.sha256, "size": planned.size}
    return None


def published_entries(entries: list[FileEntry]) -> list[FileEntry]:
    """The recorded model files push publishes: the merge's visible files, the card's own two files aside."""
    return [
        entry
        for entry in entries
        if entry.path not in CARD_FILES and not any(part.startswith(".") for part in entry.path.split("/"))
    ]


def _signed_files(layout: Layout, files: list[LocalFile], *, card_only: bool) -> list[tuple[str, str, Any]]:
    """(repository path, sha256, where its bytes are: a Path, the bytes, or None) of every file signed."""
    signed: list[tuple[str, str, Any]] = [
        (f.path_in_repo, f.sha256, f.source if f.source is not None else f.content) for f in files
    ]
    if card_only:
        model = read_results(layout.results).model
        if model is None or not model.files:
            raise UsageError(
                f"push {layout.name}: hub.sign signs the model files with the card, and {layout.results} records "
                f"none (model.files, written by pubctl merge). Nothing was sent."
            )
        sent = {path for path, _, _ in signed}
        for entry in published_entries(model.files):
            if entry.path not in sent:
                signed.append((entry.path, entry.sha256, layout.merged_model_dir / entry.path))
    return sorted(signed, key=lambda item: item[0])


def _reusable(layout: Layout, digests: list[tuple[str, str]], signer: str) -> bytes | None:
    """The kept signature when it was made by ``signer`` over exactly ``digests``; None otherwise."""
    folder = signature_dir(layout)
    try:
        record = json.loads(_read_small(folder / SIGNED_RECORD, SIGNED_RECORD_MAX))
        signature = _read_small(folder / SIGNATURE_NAME, SIGNATURE_MAX)
    except (OSError, ValueError):  # ValueError: not JSON
        return None  # nothing kept, or a damaged copy: sign again
    same = (
        isinstance(record, dict)
        and record.get("signer") == signer
        and record.get("digests") == tree_digest(digests)
        and record.get("signature_sha256") == hashlib.sha256(signature).hexdigest()
    )
    return signature if same else None


def _read_small(path: Path, limit: int) -> bytes:
    """The bytes of a kept file of at most ``limit`` bytes; OSError for anything else (a link, a FIFO, too big)."""
    try:
        inside_regular_file(path, path.parent)
        with open_regular(path) as handle:
            data = handle.read(limit + 1)
    except NotRegularFile as exc:
        raise OSError(str(exc)) from None
    if len(data) > limit:
        raise OSError(f"{path} is larger than {limit:,} bytes")
    return data


def _keep(layout: Layout, signed: list[tuple[str, str, Any]], signer: str, signature: bytes) -> None:
    folder = signature_dir(layout)
    shutil.rmtree(folder / STORED, ignore_errors=True)  # copies of what an earlier signature covered
    entries = []
    for path, sha, where in signed:
        entry = {"path": path, "sha256": sha}
        if isinstance(where, bytes):
            atomic_write_bytes(_stored(folder, path), where)
            entry["stored"] = f"{STORED}/{path}"
        elif where is not None:
            entry["source"] = Path(where).relative_to(layout.root).as_posix()  # push's files are the release's
        entries.append(entry)
    atomic_write_bytes(folder / SIGNATURE_NAME, signature)
    record = {
        "signer": signer,
        "digests": tree_digest((path, sha) for path, sha, _ in signed),
        "signature_sha256": hashlib.sha256(signature).hexdigest(),
        "files": entries,
    }
    atomic_write_text(folder / SIGNED_RECORD, json.dumps(record, indent=2) + "\n")


def _stored(folder: Path, path: str) -> Path:
    target = folder / STORED / path
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


# ------------------------------------------------------------------------------ pubctl verify NAME


@contextmanager
def kept_view(layout: Layout) -> Iterator[tuple[Path, Path, int] | None]:
    """The kept signature, and a folder laid out like the repository it signed: (folder, signature, files).

    The folder (inside runs/NAME/signature, removed after) holds a link to each signed file where it is
    in the release (cards/NAME, runs/NAME) and to the kept copy of each file push generated. None when no
    signature was kept. A signed file missing here is left out, for model-signing to name it.
    """
    folder = signature_dir(layout)
    signature = folder / SIGNATURE_NAME
    if not signature.exists() and not signature.is_symlink():
        yield None
        return
    inside_regular_file(signature, folder)
    entries = _read_record(folder / SIGNED_RECORD)
    with tempfile.TemporaryDirectory(prefix=".view-", dir=folder) as scratch:
        view = Path(scratch)
        for path, where in entries:
            source = folder / where[len("stored:") :] if where.startswith("stored:") else layout.root / where
            if not source.exists() and not source.is_symlink():
                continue
            home = folder if where.startswith("stored:") else _release_folder(layout, source)
            inside_regular_file(source, home)
            link = view / path
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(source.resolve())
        yield view, signature, len(entries)


def _release_folder(layout: Layout, source: Path) -> Path:
    """cards/NAME or runs/NAME, whichever holds ``source``: the only places a signed file is read from."""
    for home in (layout.card_dir, layout.run_dir):
        if source.is_relative_to(home):
            return home
    raise UsageError(f"{signature_dir(layout) / SIGNED_RECORD}: names {source}, outside the release; push again.")


def _read_record(path: Path) -> list[tuple[str, str]]:
    """(repository path, 'stored:COPY' or a path from the project root) of each signed file in signed.json."""
    damaged = UsageError(f"{path}: missing or damaged; run pubctl push (or push --dry-run) again to sign anew.")
    try:
        record = json.loads(_read_small(path, SIGNED_RECORD_MAX))
    except (OSError, ValueError):
        raise damaged from None
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, list):
        raise damaged
    entries = []
    for entry in files:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise damaged
        where = f"stored:{entry['stored']}" if isinstance(entry.get("stored"), str) else entry.get("source")
        parts = PurePosixPath(entry["path"]).parts
        if not isinstance(where, str) or not parts or ".." in parts or PurePosixPath(entry["path"]).is_absolute():
            raise damaged
        entries.append((entry["path"], where))
    return entries
