"""References to models and datasets, parsed once: ``builtin:NAME``, a local path, or a Hub id.

A config names its base model and training data by one string each, and a
record names them again. Whether a string is built in, local or on the Hub
decides how it is validated, fetched, stamped and linked on the card, so the
rule lives here alone (like mergekit's ModelReference) and every stage asks a
:class:`ModelRef` or :class:`DataRef` instead of looking at the string.

The rule, in order:

1. ``builtin:`` + a known name: pubctl's embedded model or data.
2. a path that exists (relative to the project root, or absolute, or ``~``), or a
   string that can only be a path (``./``, ``../``, ``/``, ``~``, a backslash, a
   data-file suffix): local. A local path that does not exist is a problem the
   config reports; a record may name one that this checkout lacks (CI).
3. anything huggingface_hub's ``validate_repo_id`` accepts: a Hub id.
4. otherwise: invalid, with the Hub's reason.

A record pins a local dataset by its digest (``revision: sha256:<hex>``), so a
record read where the file is absent still says it was local.

Imports nothing heavy: huggingface_hub's validator is imported when a Hub id is judged.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

BUILTIN_PREFIX = "builtin:"
BUILTIN_MODELS = ("builtin:tiny-qwen3",)
BUILTIN_DATASETS = ("builtin:preferences",)
DATA_SUFFIXES = (".json", ".jsonl", ".parquet")
LOCAL_DIGEST_PREFIX = "sha256:"
"""How the train stage records a local dataset's revision: its content digest."""

REFERENCE_MAX = 255
"""Longest model or data reference: a Hub id is at most 96 characters, and a longer path would meet the file
system's name limit (ENAMETOOLONG) in the middle of a stage instead of here."""
REVISION_MAX = 255
"""Longest Hub revision (branch, tag or commit sha): it becomes part of a URL and of a ref file name."""
QUOTE_MAX = 60
"""Most characters of a user's value an error message quotes."""

Kind = Literal["builtin", "local", "hub", "invalid"]

_REVISION = re.compile(r"[A-Za-z0-9._/+-]+")


def excerpt(value: object, limit: int = QUOTE_MAX) -> str:
    """``repr(value)``, cut to ``limit`` characters: an error quotes what it refuses without repeating a megabyte."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


class TreeHasher(Protocol):
    """What a stamp key needs of pipeline.stamps.FileHasher (named here so refs imports no stamp code)."""

    def tree(self, path: Path) -> str: ...


def project_path(value: str | Path, root: Path) -> Path:
    """``value`` as a path: ``~`` expanded, relative paths taken from the project root (never the cwd)."""
    path = Path(value)
    with contextlib.suppress(RuntimeError):  # '~user' of no such user: a path as written, which will not exist
        path = path.expanduser()
    return path if path.is_absolute() else root / path


def looks_like_path(value: str) -> bool:
    """Whether ``value`` can only be a path (the Hub accepts ``data/prefs.jsonl`` as an id; pubctl does not)."""
    return value.startswith(("/", "./", "../", "~")) or value.endswith(DATA_SUFFIXES) or "\\" in value


def revision_problem(value: str) -> str | None:
    """Why a branch, tag or commit sha would be refused by git (and so the Hub), or None when it would not.

    A subset of git check-ref-format that needs no quoting in a URL: ASCII letters, digits and ``._/+-``,
    no ``..`` or ``//``, no component starting with '.' or ending in '.lock', no leading '-' or '/'.
    """
    if not value:
        return "an empty revision"
    if len(value) > REVISION_MAX:
        return f"too long ({len(value)} characters; at most {REVISION_MAX})"
    if not _REVISION.fullmatch(value):
        return "use ASCII letters, digits and '._/+-' only (no spaces or control characters)"
    parts = value.split("/")
    if ".." in value or "" in parts or value.startswith("-") or value.endswith("."):
        return "not a git ref name ('..', '//', a leading '-' or '/', a trailing '.' or '/')"
    if any(part.startswith(".") or part.endswith(".lock") for part in parts):
        return "not a git ref name (a part starts with '.' or ends with '.lock')"
    return None


def hub_id_problem(value: str, *, require_namespace: bool = False) -> str | None:
    """Why the Hub would refuse ``value`` as a repo id, or None when it would accept it."""
    # huggingface_hub's own validator holds the Hub's rules (length, characters, '--', '..').
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(value)
    except HFValidationError as exc:
        return str(exc).split("\n")[0]
    if require_namespace and "/" not in value:
        return "a repository you push to needs a namespace: 'user-or-org/name'"
    return None


def _classify(value: str, root: Path, builtins: tuple[str, ...], what: str) -> tuple[Kind, Path | None, str | None]:
    """(kind, local path, problem) of one reference string."""
    if value.startswith(BUILTIN_PREFIX):
        if value not in builtins:
            return "builtin", None, f"unknown built-in {what} {excerpt(value)}; built-ins: {', '.join(builtins)}"
        return "builtin", None, None
    if not value.strip():
        return "invalid", None, "an empty reference"
    if len(value) > REFERENCE_MAX:
        return "invalid", None, None
    if "\0" in value:
        return "invalid", None, "a NUL character"
    path = project_path(value, root)
    if looks_like_path(value) or _exists(path):
        return "local", path, None
    problem = hub_id_problem(value)
    return ("invalid", None, problem) if problem else ("hub", None, None)


def _invalid(value: str, problem: str | None, neither: str) -> str:
    if len(value) > REFERENCE_MAX:
        return f"{value[:QUOTE_MAX]!r}... is too long ({len(value)} characters; at most {REFERENCE_MAX})"
    return f"{excerpt(value)} is {neither} ({problem})"


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; False when the file system refuses the name itself (too long, bad bytes)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class _Ref:
    value: str
    """The reference as written in the config or record."""
    kind: Kind
    revision: str | None = None
    """Hub revision (branch, tag or commit sha); for a recorded local dataset its ``sha256:`` digest."""
    path: Path | None = None
    """Absolute local path (kind 'local'); it may not exist (see ``problem``)."""
    problem: str | None = None
    """Why the reference is unusable, or None."""

    @property
    def is_builtin(self) -> bool:
        return self.kind == "builtin"

    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    @property
    def is_hub(self) -> bool:
        """Whether this names a Hub repository a card may link to and a download may fetch."""
        return self.kind == "hub"

    @property
    def hub_url(self) -> str | None:
        return None


@dataclass(frozen=True)
class ModelRef(_Ref):
    """A base model: ``builtin:tiny-qwen3``, a local model folder, or a Hub model id at a revision."""

    @classmethod
    def parse(cls, value: str, root: Path, revision: str | None = None) -> ModelRef:
        kind, path, problem = _classify(value, root, BUILTIN_MODELS, "model")
        if kind == "local" and path is not None and not _is_dir(path):
            problem = f"{excerpt(value)} looks like a local path but no folder exists at {path}"
        if kind == "invalid":
            problem = _invalid(value, problem, "neither a Hub model id nor an existing folder")
        return cls(value, kind, revision, path, problem)

    @property
    def hub_url(self) -> str | None:
        return f"https://huggingface.co/{self.value}" if self.is_hub else None

    def stamp_key(self, hasher: TreeHasher) -> str:
        """What identifies this model's contents for the stage cache, computed without loading it."""
        if self.is_builtin:
            # The recipe hash names the built model exactly (seed, architecture, corpus) without building it.
            from pipeline.demo.tiny_model import recipe_hash

            return f"{self.value}#{recipe_hash()}"
        if self.is_local and self.path is not None:
            return hasher.tree(self.path)
        # A Hub model is known by its id and revision; an unpinned 'main' that moves is not noticed offline.
        return f"hub:{self.value}@{self.revision or 'main'}"


@dataclass(frozen=True)
class DataRef(_Ref):
    """Training data: ``builtin:preferences``, a local .json/.jsonl/.parquet file, or a Hub dataset id."""

    subset: str | None = None
    """Hub dataset configuration name."""

    @classmethod
    def parse(cls, value: str, root: Path, revision: str | None = None, subset: str | None = None) -> DataRef:
        if (revision or "").startswith(LOCAL_DIGEST_PREFIX) and not value.startswith(BUILTIN_PREFIX):
            # a record's local file, maybe not checked out here
            return cls(value, "local", revision, project_path(value, root), None, subset)
        kind, path, problem = _classify(value, root, BUILTIN_DATASETS, "dataset")
        if kind == "local" and path is not None and not _exists(path):
            problem = f"{excerpt(value)} looks like a local path but no file exists at {path}"
        if kind == "invalid":
            problem = _invalid(value, problem, "neither a Hub dataset id nor an existing file")
        return cls(value, kind, revision, path, problem, subset)

    @property
    def hub_url(self) -> str | None:
        return f"https://huggingface.co/datasets/{self.value}" if self.is_hub else None

    def local_file(self) -> Path | None:
        """The file holding the rows (the bundled one for a built-in); None for a Hub dataset."""
        if self.is_builtin:
            from pipeline.demo import PREFERENCES

            return PREFERENCES
        return self.path if self.is_local else None

    def stamp_key(self, hasher: TreeHasher) -> str:
        local = self.local_file()
        if local is not None:
            return hasher.tree(local)
        subset = f"/{self.subset}" if self.subset else ""
        return f"hub:{self.value}{subset}@{self.revision or 'main'}"
