"""Stage stamps: what a finished stage was computed from, so an unchanged stage can be skipped.

A stamp (runs/NAME/stamps/<stage>.json) records the hashes of a stage's inputs
(the config sections it reads, its input files, pubctl and library versions,
the options it ran with) and of the outputs it left. A stage is up to date when
the hashes of its inputs now equal the stamp's and its outputs still hash to
what it wrote. Make-style timestamps would re-run a stage whenever a file is
touched and miss a config edit; hashing inputs catches both without false
alarms.

Files are hashed with a size + mtime + inode fast path over a per-release cache
(like git's index), so a no-op ``pubctl release`` reads no model weights. As in
git, an entry is trusted only when the file's mtime is older than the moment it
was hashed by more than the filesystem's timestamp granularity: a file rewritten
within the same tick with the same size is hashed again rather than missed.

Nothing here imports torch or the rest of the heavy stack.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any

from pipeline.atomic import atomic_write_text
from pipeline.hashing import NotRegularFile, kind_of, sha256_file, tree_digest, visible_files

if TYPE_CHECKING:
    from pipeline.layout import Layout

STAMP_VERSION = 1
HASH_CACHE = ".file-hashes.json"
MISSING = "missing"
"""Hash of an input or output that does not exist (never equal to a real hash)."""
RACY_SECONDS = 2.0
"""mtime granularity margin: entries for files modified this close to their hashing are not trusted."""


def canonical_hash(value: Any) -> str:
    """sha256 of the canonical JSON of ``value`` (sorted keys, no whitespace variance)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class FileHasher:
    """sha256 of files and folders, remembered across runs by (size, mtime, inode).

    The cache is a JSON file next to the stamps; a corrupt or missing cache only
    costs re-hashing, never a wrong answer, because every entry is checked
    against the file's current stat before use.
    """

    def __init__(self, cache_path: Path | None) -> None:
        self.cache_path = cache_path
        self._entries: dict[str, dict[str, Any]] = {}
        self._dirty = False
        if cache_path is not None and cache_path.is_file():
            with contextlib.suppress(OSError, ValueError):
                loaded = json.loads(cache_path.read_text(encoding="utf-8"))
                if isinstance(loaded, dict) and loaded.get("version") == STAMP_VERSION:
                    self._entries = dict(loaded.get("files", {}))

    def file(self, path: Path) -> str:
        """sha256 of one file's bytes; MISSING when it does not exist.

        Anything that is not a readable regular file (a FIFO, socket or device, a link loop, a file
        this user may not read) is hashed by what it is, never opened: a stamp only answers "did this
        input change", and ``pubctl list`` or a no-op release must not block on a FIFO or fail on a
        file the stage itself would refuse with a message of its own.
        """
        try:
            stat = path.stat()
        except FileNotFoundError:
            return MISSING
        except OSError as exc:  # a link loop, a name too long, a folder it may not enter
            return _identity(f"unreadable: {type(exc).__name__}")
        if not S_ISREG(stat.st_mode):
            return _identity(kind_of(stat.st_mode))
        key = str(path.resolve())
        signature = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        entry = self._entries.get(key)
        if entry and entry.get("stat") == signature:
            return str(entry["sha256"])
        try:
            sha = sha256_file(path)
        except NotRegularFile as exc:  # swapped for a special file since the stat
            return _identity(exc.why)
        except OSError as exc:
            return _identity(f"unreadable: {type(exc).__name__}")
        hashed_at = time.time()
        if hashed_at - stat.st_mtime_ns / 1e9 > RACY_SECONDS:
            self._entries[key] = {"stat": signature, "sha256": sha}
            self._dirty = True
        elif key in self._entries:
            del self._entries[key]
            self._dirty = True
        return sha

    def tree(self, path: Path) -> str:
        """Hash of a folder: relative paths and contents of every file below it (dotfiles excluded).

        Dotfiles are left out because they are the lock and temp files of atomic
        writes (.results.json.lock), not content.
        """
        if not path.is_dir():
            return self.file(path)  # a file, MISSING, or the identity of a special file
        entries = ((file.relative_to(path).as_posix(), self.file(file)) for file in visible_files(path))
        return tree_digest(entries) or MISSING

    def save(self) -> None:
        """Persist the cache (atomic); entries for deleted files are dropped."""
        if self.cache_path is None or not self._dirty:
            return
        live = {key: entry for key, entry in self._entries.items() if Path(key).exists()}
        atomic_write_text(self.cache_path, json.dumps({"version": STAMP_VERSION, "files": live}, sort_keys=True))
        self._dirty = False


def _identity(what: str) -> str:
    """The hash of an entry that is not read: what it is, so a FIFO replaced by a file (or back) still counts."""
    return "not-read:" + hashlib.sha256(what.encode()).hexdigest()


@dataclass
class StageInputs:
    """Everything a stage's result depends on, each part hashed separately so a change can be named."""

    config: dict[str, str] = field(default_factory=dict)
    """Config section name -> hash of its model_dump."""
    files: dict[str, str] = field(default_factory=dict)
    """Input label (adapter, merged model, results.json, templates, ...) -> hash."""
    versions: dict[str, str] = field(default_factory=dict)
    """pubctl and the libraries the stage runs on."""
    options: dict[str, Any] = field(default_factory=dict)
    """Command options that change the stage's result (evaluate --limit, push --revision, ...)."""

    def as_dict(self) -> dict[str, Any]:
        return {"config": self.config, "files": self.files, "versions": self.versions, "options": self.options}

    @property
    def key(self) -> str:
        return canonical_hash(self.as_dict())


def hasher_for(layout: Layout) -> FileHasher:
    """The release's file-hash cache (next to its stamps)."""
    return FileHasher(layout.stamps_dir / HASH_CACHE)


@dataclass
class Stamp:
    """A finished stage: the inputs it ran from and the outputs it left."""

    stage: str
    key: str
    inputs: dict[str, Any]
    outputs: dict[str, str]
    finished_at: str
    seconds: float
    summary: str
    record: dict[str, Any] | None = None
    """StageResult.details: facts of the run kept beside the stamp, not in the record (push: commit, url)."""

    def to_json(self) -> str:
        data = {"stamp_version": STAMP_VERSION, **self.__dict__}
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stamp_path(stamps_dir: Path, stage: str) -> Path:
    return stamps_dir / f"{stage}.json"


def read_stamp(stamps_dir: Path, stage: str) -> Stamp | None:
    """The stage's stamp, or None when there is none or it cannot be trusted (then the stage re-runs)."""
    path = stamp_path(stamps_dir, stage)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("stamp_version") != STAMP_VERSION:
        return None
    try:
        return Stamp(
            stage=str(data["stage"]),
            key=str(data["key"]),
            inputs=dict(data["inputs"]),
            outputs={str(k): str(v) for k, v in dict(data["outputs"]).items()},
            finished_at=str(data["finished_at"]),
            seconds=float(data["seconds"]),
            summary=str(data.get("summary", "")),
            record=data.get("record") if isinstance(data.get("record"), dict) else None,
        )
    except (KeyError, TypeError, ValueError):
        return None


def write_stamp(stamps_dir: Path, stamp: Stamp) -> None:
    atomic_write_text(stamp_path(stamps_dir, stamp.stage), stamp.to_json())


def remove_stamp(stamps_dir: Path, stage: str) -> None:
    """Forget a stage's stamp before it runs: an interrupted or failed run must not look finished."""
    with contextlib.suppress(FileNotFoundError):
        stamp_path(stamps_dir, stage).unlink()


def new_stamp(stage: str, inputs: StageInputs, outputs: dict[str, str], *, seconds: float, summary: str) -> Stamp:
    return Stamp(
        stage=stage,
        key=inputs.key,
        inputs=inputs.as_dict(),
        outputs=outputs,
        finished_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        seconds=round(seconds, 3),
        summary=summary,
    )


def changes(stamp: Stamp | None, inputs: StageInputs, outputs: dict[str, str]) -> list[str]:
    """Why a stage is not up to date, one short phrase per reason; [] when it is."""
    if stamp is None:
        return ["never ran (no stamp)"]
    reasons: list[str] = []
    if stamp.key != inputs.key:
        label = {"config": "config section", "files": "input", "versions": "version of", "options": "option"}
        current = inputs.as_dict()
        for part in ("config", "files", "versions", "options"):
            old, new = stamp.inputs.get(part, {}), current[part]
            for name in sorted(set(old) | set(new)):
                if old.get(name) != new.get(name):
                    detail = f" {old.get(name)} -> {new.get(name)}" if part in ("versions", "options") else ""
                    reasons.append(f"{label[part]} {name} changed{detail}")
        if not reasons:  # same parts, different key: a stamp from another pubctl layout
            reasons.append("inputs changed")
    for name, recorded in stamp.outputs.items():
        now = outputs.get(name, MISSING)
        if now == recorded:  # includes an optional output the stage did not write then and does not now
            continue
        if now == MISSING:
            reasons.append(f"output {name} is missing")
        else:
            reasons.append(f"output {name} was modified since the stage wrote it")
    return reasons
