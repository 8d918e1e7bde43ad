"""What the push stage needs from the Hub, on top of huggingface_hub: local file ids, the remote state, token hygiene.

huggingface_hub does the talking (HfApi: model_info, list_repo_refs,
list_repo_tree, hf_hub_download); this module turns its answers into the facts a
push plan compares: for every file, the git blob id and sha256 the Hub itself
reports, so an unchanged file is recognised without sending a byte.

The token is never read here except to scrub it from messages: huggingface_hub
resolves it (HF_TOKEN, then the stored login) for every request.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import UsageError
from pipeline.hashing import inside_regular_file, open_regular, visible_files

HUB_REGULAR_MAX_BYTES = 10 * 1024 * 1024
"""The Hub stores files of this size or more with LFS (and refuses larger regular files)."""

SAMPLE_BYTES = 512
"""huggingface_hub sends the first 512 bytes of each file to preupload; the Hub stores binary samples with LFS."""

HUB_DEFAULT_LFS_PATTERNS = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*", "*.mlmodel",
    "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt",
    "*.pth", "*.rar", "*.safetensors", "*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst",
    "*tfevents*",
)  # fmt: skip
"""LFS patterns of the .gitattributes the Hub writes into a new model repository."""

REMOTE_TIMEOUT_S = 15.0
"""How long a dry run waits for the Hub before saying it could not read it."""

HUB_TIMEOUT_ENV = "PUBCTL_HUB_TIMEOUT"
DEFAULT_HUB_TIMEOUT_S = 300.0
"""How long any one push request (the commit POST included) may wait for the Hub's next byte, in seconds.

huggingface_hub's shared HTTP client has no timeout: a Hub that accepts the commit and never answers
would hold ``pubctl push`` forever. Five minutes is far beyond a healthy commit's answer on a slow link,
and each LFS upload is bounded per read and write of its body, not in total, so large shards still go."""

_TOKEN_PATTERNS = (
    re.compile(r"hf_[A-Za-z0-9_]{8,}"),  # Hugging Face user and org tokens
    re.compile(r"(?i)(bearer\s+)[^\s'\"]+"),
)


# ------------------------------------------------------------------------- local files
@dataclass(frozen=True)
class LocalFile:
    """One file to publish: where it comes from and the ids the Hub compares."""

    path_in_repo: str
    size: int
    sha256: str
    git_oid: str
    """git blob sha1 of the content: the id the Hub reports for a regular file."""
    lfs: bool
    """Whether the Hub will store it with LFS (predicted as the Hub decides; the Hub has the last word)."""
    source: Path | None = None
    content: bytes | None = None
    """Generated files (the adapter card) carry their bytes instead of a source path."""

    @classmethod
    def from_path(cls, path_in_repo: str, source: Path) -> LocalFile:
        """The ids of ``source``'s bytes; NotRegularFile for anything but a regular file (never opened)."""
        size, sha256, git_oid, sample = _hash_file(source)
        return cls(path_in_repo, size, sha256, git_oid, predict_lfs(path_in_repo, size, sample), source=source)

    @classmethod
    def from_bytes(cls, path_in_repo: str, content: bytes) -> LocalFile:
        from huggingface_hub.utils import sha

        size = len(content)
        lfs = predict_lfs(path_in_repo, size, content[:SAMPLE_BYTES])
        return cls(path_in_repo, size, hashlib.sha256(content).hexdigest(), sha.git_hash(content), lfs, content=content)

    def read_bytes(self) -> bytes:
        """Its bytes: the generated content, or the source file's (a regular file, never a link or FIFO)."""
        if self.content is not None:
            return self.content
        assert self.source is not None
        with open_regular(self.source) as handle:
            return handle.read()


def _hash_file(source: Path) -> tuple[int, str, str, bytes]:
    """(size, sha256, git blob sha1, first 512 bytes) in ONE read of the file.

    By hand because huggingface_hub's helpers (sha_fileobj, git_hash) each need their own pass
    or the whole file in memory, and model shards are gigabytes.
    """
    with open_regular(source) as handle:
        size = os.fstat(handle.fileno()).st_size
        sha256 = hashlib.sha256()
        blob = hashlib.sha1(b"blob %d\0" % size)  # git's object id, not a security hash
        sample = b""
        while chunk := handle.read(1 << 20):
            if not sample:
                sample = chunk[:SAMPLE_BYTES]
            sha256.update(chunk)
            blob.update(chunk)
    return size, sha256.hexdigest(), blob.hexdigest(), sample


def predict_lfs(path_in_repo: str, size: int, sample: bytes) -> bool:
    """The Hub's choice: LFS for .gitattributes patterns, files of 10 MiB or more, and binary content."""
    if size == 0:
        return False  # huggingface_hub commits empty files as regular ones
    name = path_in_repo.rsplit("/", 1)[-1]
    return (
        any(fnmatch.fnmatch(name, pattern) for pattern in HUB_DEFAULT_LFS_PATTERNS)
        or size >= HUB_REGULAR_MAX_BYTES
        or b"\0" in sample
    )


def collect_folder(folder: Path, *, prefix: str = "", skip: frozenset[str] = frozenset()) -> list[LocalFile]:
    """Every file under ``folder`` (hidden files and ``skip`` names at its top excluded), sorted by repo path.

    Each must be a regular file whose resolved path lies inside ``folder``: a link out of it (a token, a file
    of the system), a FIFO or a device is NotRegularFile naming it, before any file is opened.
    """
    sources = [source for source in visible_files(folder) if source.relative_to(folder).as_posix() not in skip]
    for source in sources:
        inside_regular_file(source, folder)
    return [LocalFile.from_path(prefix + source.relative_to(folder).as_posix(), source) for source in sources]


def hub_timeout() -> float:
    """PUBCTL_HUB_TIMEOUT in seconds (default :data:`DEFAULT_HUB_TIMEOUT_S`); UsageError when not a positive number."""
    raw = os.environ.get(HUB_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_HUB_TIMEOUT_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < 86400:  # also refuses nan and inf
        raise UsageError(
            f"{HUB_TIMEOUT_ENV}={raw[:40]!r}: give the seconds a Hub request may wait, a number above 0 and "
            f"below 86400 (default {DEFAULT_HUB_TIMEOUT_S:g})."
        )
    return seconds


def hub_api() -> Any:
    """huggingface_hub's HfApi, every request of its shared client bounded by :func:`hub_timeout`.

    The client is huggingface_hub's own (``get_session``), so its retries, proxies and headers are
    kept; only its default timeout changes, which applies to every request made without one of its own,
    among them the commit POST (create_commit gives it none).
    """
    from huggingface_hub import HfApi
    from huggingface_hub.utils import get_session

    get_session().timeout = hub_timeout()  # bounds each wait (connect, a read, a write), never a whole upload
    return HfApi()


# ------------------------------------------------------------------------ remote state
@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    blob_id: str
    lfs_sha256: str | None

    def same_content(self, local: LocalFile) -> bool:
        if self.size != local.size:
            return False
        if self.lfs_sha256 is not None:
            return self.lfs_sha256 == local.sha256
        return self.blob_id == local.git_oid


@dataclass
class RemoteState:
    """What the Hub holds for a repository and revision, as far as it could be read."""

    repo_id: str
    revision: str
    readable: bool
    reason: str
    """Why the remote could not be read, or what was read (for the plan and the table)."""
    exists: bool = False
    private: bool | None = None
    branch_exists: bool = False
    head: str | None = None
    """Commit the plan is made against: the branch head, or main's head when the branch is to be created."""
    files: dict[str, RemoteFile] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    published_model_files: frozenset[str] = frozenset()
    """Model files the previous pubctl release recorded in the remote results.json (pubctl owns them)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "readable": self.readable,
            "reason": self.reason,
            "exists": self.exists,
            "private": self.private,
            "branch_exists": self.branch_exists,
            "head": self.head,
        }


def read_remote(api: Any, repo_id: str, revision: str, *, timeout: float = REMOTE_TIMEOUT_S) -> RemoteState:
    """Read the repository's refs and tree at ``revision`` (or main, where the branch would start).

    Never raises for an unreachable or missing repository, or for a Hub that fails
    part-way through the reads (refs, tree, the published results.json): the state
    says what happened, a dry run shows every file as an add and a real push stops
    before sending anything. Anything else (a bug) propagates.
    """
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    if constants.is_offline_mode():
        return RemoteState(repo_id, revision, readable=False, reason="HF_HUB_OFFLINE is set; the Hub was not read")
    try:
        return _read_remote(api, repo_id, revision, timeout)
    except RepositoryNotFoundError:
        return RemoteState(
            repo_id, revision, readable=True, reason="the repository does not exist yet (or is private to others)"
        )
    except OfflineModeIsEnabled:
        return RemoteState(repo_id, revision, readable=False, reason="HF_HUB_OFFLINE is set; the Hub was not read")
    except LocalEntryNotFoundError as exc:
        # hf_hub_download's wrapper (an OSError, no HTTP error) when the listed results.json could not be fetched
        # and no cache holds it: the cause says whether the Hub answered an error or could not be reached.
        cause = exc.__cause__
        status = getattr(getattr(cause, "response", None), "status_code", None)
        why = f"answered HTTP {status}" if status else f"could not be reached ({type(cause).__name__})"
        return RemoteState(repo_id, revision, readable=False, reason=f"the Hub {why} for the published results.json")
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "no"
        return RemoteState(repo_id, revision, readable=False, reason=f"the Hub answered HTTP {status}")
    except Exception as exc:
        if not is_transport_error(exc):
            raise
        return RemoteState(
            repo_id, revision, readable=False, reason=f"the Hub could not be reached ({type(exc).__name__})"
        )


def _read_remote(api: Any, repo_id: str, revision: str, timeout: float) -> RemoteState:
    info = api.model_info(repo_id, timeout=timeout)
    refs = api.list_repo_refs(repo_id)
    branches = {ref.name: ref.target_commit for ref in refs.branches}
    state = RemoteState(
        repo_id,
        revision,
        readable=True,
        reason="",
        exists=True,
        private=bool(info.private),
        branch_exists=revision in branches,
        tags={ref.name: ref.target_commit for ref in refs.tags},
    )
    state.head = branches.get(revision) or branches.get("main") or info.sha
    where = revision if state.branch_exists else f"main (branch {revision} does not exist yet)"
    state.reason = f"read {where} at {state.head[:12]}" if state.head else "the repository has no commit"
    if state.head:
        state.files = read_tree(api, repo_id, state.head)
        if "results.json" in state.files:
            state.published_model_files = _published_model_files(api, repo_id, state.head)
    return state


def read_tree(api: Any, repo_id: str, revision: str) -> dict[str, RemoteFile]:
    """Every file of ``repo_id`` at ``revision`` with the ids the Hub reports (blob id; sha256 for LFS)."""
    files = {}
    for item in api.list_repo_tree(repo_id, revision=revision, recursive=True):
        if not hasattr(item, "blob_id"):
            continue  # a folder
        lfs = getattr(item, "lfs", None)
        files[item.path] = RemoteFile(item.path, int(item.size), item.blob_id, lfs.sha256 if lfs else None)
    return files


def _published_model_files(api: Any, repo_id: str, head: str) -> frozenset[str]:
    """model.files of the results.json on the Hub: what the previous pubctl release published as the model."""
    with tempfile.TemporaryDirectory(prefix="pubctl-remote-") as cache:
        path = api.hf_hub_download(repo_id, "results.json", revision=head, cache_dir=cache)
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return frozenset()  # not a pubctl record: claim no model files, delete none
    model = data.get("model") if isinstance(data, dict) else None
    files = model.get("files") if isinstance(model, dict) else None
    if not isinstance(files, list):
        return frozenset()
    return frozenset(f["path"] for f in files if isinstance(f, dict) and isinstance(f.get("path"), str))


def is_hub_failure(exc: BaseException) -> bool:
    """A failure of the Hub or of reaching it (an HTTP error, an OS or transport error), not a bug in pubctl."""
    from huggingface_hub.errors import HfHubHTTPError

    return isinstance(exc, (HfHubHTTPError, OSError)) or is_transport_error(exc)


def is_transport_error(exc: BaseException) -> bool:
    """A connection-level failure (DNS, refused, reset, timeout) from the HTTP client huggingface_hub uses."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"TransportError", "ConnectionError", "TimeoutError"})


# ----------------------------------------------------------------------- token hygiene
def current_token() -> str | None:
    """The token huggingface_hub would send (HF_TOKEN or the stored login); used only to scrub and to fail early."""
    from huggingface_hub import get_token

    return get_token()


def scrub(text: str, token: str | None = None) -> str:
    """``text`` with the token, any hf_ token and any bearer credential replaced by ***."""
    token = token if token is not None else current_token()
    if token:
        text = text.replace(token, "***")
    text = _TOKEN_PATTERNS[0].sub("hf_***", text)
    return _TOKEN_PATTERNS[1].sub(r"\1***", text)


def describe_hub_error(exc: BaseException) -> str:
    """One line for a failed Hub call: status and the Hub's own message, scrubbed of credentials."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    server_message = getattr(exc, "server_message", None)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    parts = [f"HTTP {status}" if status else type(exc).__name__, first]
    if server_message and server_message not in first:
        parts.append(str(server_message).strip())
    cause = exc.__cause__
    if cause is not None and not status:
        parts.append(
            f"caused by {type(cause).__name__}: {str(cause).strip().splitlines()[0] if str(cause).strip() else ''}"
        )
    return scrub(" — ".join(p for p in parts if p))
