"""A Hugging Face Hub-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

It speaks the subset of the Hub protocol that huggingface_hub's HfApi uses to
publish and read a model repository without Xet (``HF_HUB_DISABLE_XET=1``):
repo creation, info, preupload, the LFS batch API (basic transfer, upload, verify),
the NDJSON commit endpoint (parentCommit, create_pr, deletions), tree listing with
Link-header pagination, paths-info, refs, commits, branches, tags, YAML
validation and ``resolve`` downloads. The real client is exercised end to end;
nothing in huggingface_hub is patched.

Written by hand because no PyPI package serves the Hub's write protocol (the
Hub itself is closed source). Faithful where pubctl depends on it:

- commits are atomic: a request that fails or is dropped leaves the branch at its old commit;
- a stale ``parentCommit`` gets 412, as on the Hub;
- LFS objects are content-addressed per repository, so an object uploaded by an
  interrupted push is not asked for again (the batch answer has no ``actions``);
- upload modes follow the Hub's rules: LFS for ``.gitattributes`` patterns,
  binary samples and files of 10 MiB or more; regular files over 10 MiB are refused.

Tests inject faults (dropped connections, a status code once, 429 with
Retry-After, a concurrent writer before a commit, a request held unanswered
before or after it is served, a file altered after a commit) and read per-request
byte counters for the measurements.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

REGULAR_MAX_BYTES = 10 * 1024 * 1024
"""The Hub refuses regular (non-LFS) files from this size on, and preupload answers lfs for them."""

DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in (
        "*.7z",
        "*.arrow",
        "*.bin",
        "*.bz2",
        "*.ckpt",
        "*.ftz",
        "*.gz",
        "*.h5",
        "*.joblib",
        "*.lfs.*",
        "*.mlmodel",
        "*.model",
        "*.msgpack",
        "*.npy",
        "*.npz",
        "*.onnx",
        "*.ot",
        "*.parquet",
        "*.pb",
        "*.pickle",
        "*.pkl",
        "*.pt",
        "*.pth",
        "*.rar",
        "*.safetensors",
        "saved_model/**/*",
        "*.tar.*",
        "*.tar",
        "*.tflite",
        "*.tgz",
        "*.wasm",
        "*.xz",
        "*.zip",
        "*.zst",
        "*tfevents*",
    )
)
"""The .gitattributes the Hub puts in the first commit of a new model repository."""


def git_blob_oid(data: bytes) -> str:
    """Git's object id of a blob: sha1 of 'blob <size>\\0' + content (what the Hub reports as a file's oid)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The Git LFS pointer file stored in git in place of an LFS file."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def lfs_patterns(gitattributes: str) -> list[str]:
    return [line.split()[0] for line in gitattributes.splitlines() if "filter=lfs" in line.split()[1:]]


def matches_lfs(path: str, patterns: list[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    for pattern in patterns:
        target = path if "/" in pattern else name
        if fnmatch.fnmatch(target, pattern) or (pattern.endswith("/**/*") and path.startswith(pattern[:-4])):
            return True
    return False


# ----------------------------------------------------------------------------- state
@dataclass(frozen=True)
class Entry:
    """A file in a commit's tree."""

    size: int
    sha256: str
    lfs: bool

    def tree_item(self, path: str, content: bytes) -> dict[str, Any]:
        item: dict[str, Any] = {"type": "file", "path": path, "size": self.size}
        if self.lfs:
            pointer = lfs_pointer(self.sha256, self.size)
            item["oid"] = git_blob_oid(pointer)
            item["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": len(pointer)}
        else:
            item["oid"] = git_blob_oid(content)
        return item


@dataclass
class Commit:
    oid: str
    parent: str | None
    files: dict[str, Entry]
    title: str
    description: str
    date: str


@dataclass
class Repo:
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    pull_requests: dict[int, str] = field(default_factory=dict)
    objects: dict[str, bytes] = field(default_factory=dict)
    """Content by sha256: LFS objects uploaded through the batch API and regular files from commits."""

    def resolve(self, revision: str) -> str | None:
        """Commit oid of a branch, tag, refs/pr/N or full commit oid."""
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        if revision.startswith("refs/pr/") and revision[8:].isdigit():
            return self.pull_requests.get(int(revision[8:]))
        if revision.startswith("refs/heads/"):
            return self.branches.get(revision[11:])
        return revision if revision in self.commits else None


@dataclass
class RequestRecord:
    """One request the server answered (or dropped): what the measurements count."""

    method: str
    path: str
    kind: str
    body_bytes: int
    status: int | None
    """None when the connection was dropped without an answer."""


FaultKind = Literal["drop", "status", "concurrent_commit", "down", "stall", "stall_after", "corrupt"]


@dataclass
class Fault:
    """A misbehaviour injected into the next ``times`` requests of one kind.

    drop: read about half of the request body, then close the connection without answering.
    status: answer ``status`` (with Retry-After when ``retry_after`` is set) instead of serving.
    concurrent_commit: before serving a commit, another writer commits to the same branch.
    down: close every connection at once (kind "*" matches every request), like an unreachable Hub.
    stall: read the request, then answer nothing for ``seconds`` (or until the next reset) and close the
        connection; the request is not served (a commit does not land).
    stall_after: serve the request (a commit lands), then answer nothing as in stall: a lost answer.
    corrupt: serve a commit, then alter the stored ``path`` of the new commit (one byte appended), as a
        storage fault would: what a client reads back differs from what it sent.
    """

    kind: FaultKind
    endpoint: str
    status: int = 500
    retry_after: float | None = None
    times: int = 1
    seconds: float = 30.0
    path: str | None = None


class HubError(Exception):
    def __init__(self, status: int, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code


class _Dropped(Exception):
    """Raised to abandon a request without answering it."""


# ---------------------------------------------------------------------------- server
class HubServer:
    """The Hub state plus a threaded HTTP server serving it."""

    def __init__(
        self, sock: socket.socket | None = None, *, tokens: set[str] | None = None, tree_page_size: int = 1000
    ) -> None:
        self._sock = sock or socket.create_server(("127.0.0.1", 0))
        host, port = self._sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self.tokens = tokens
        """Tokens accepted for writes and private reads; None accepts any non-empty bearer token."""
        self.tree_page_size = tree_page_size
        self.lock = threading.RLock()
        self.repos: dict[str, Repo] = {}
        self.requests: list[RequestRecord] = []
        self.faults: list[Fault] = []
        self.file_bytes: int = 0
        self.tokens_seen: set[str] = set()
        """sha256 of every bearer token received: proves a token was sent without storing it."""
        """Bytes of file content received: LFS upload bodies and decoded regular files in commits."""
        self._counter = 0
        self._generation = 0
        """Bumped by reset(): a stalled request that ends after it is not counted in the next test's records."""
        self._released = threading.Event()
        """Set by reset(): ends every stall at once."""
        self._signature = secrets.token_hex(8)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle
    def start(self) -> HubServer:
        self._sock.listen()  # a socket reserved by bind() alone starts accepting here
        httpd = ThreadingHTTPServer(self._sock.getsockname()[:2], _make_handler(self), bind_and_activate=False)
        httpd.socket.close()
        httpd.socket = self._sock
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name="hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def reset(self) -> None:
        """Forget every repository, request record and fault (between tests)."""
        with self.lock:
            self._released.set()
            self._released = threading.Event()
            self._generation += 1
            self.repos.clear()
            self.requests.clear()
            self.faults.clear()
            self.file_bytes = 0
            self.tokens_seen.clear()

    # ---- test helpers
    def add_fault(self, kind: FaultKind, endpoint: str, **kwargs: Any) -> Fault:
        fault = Fault(kind, endpoint, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def _stall(self, seconds: float) -> None:
        with self.lock:
            released = self._released
        released.wait(seconds)  # outside the lock: the Hub keeps serving other requests meanwhile

    def mark(self) -> int:
        """Position in the request log, to measure what happens after it."""
        with self.lock:
            return len(self.requests)

    def body_bytes_since(self, mark: int, kinds: tuple[str, ...] | None = None) -> int:
        with self.lock:
            return sum(r.body_bytes for r in self.requests[mark:] if kinds is None or r.kind in kinds)

    def kinds_since(self, mark: int) -> list[str]:
        with self.lock:
            return [r.kind for r in self.requests[mark:]]

    def history(self, repo_id: str, revision: str = "main") -> list[Commit]:
        """Commits reachable from ``revision``, newest first."""
        with self.lock:
            repo = self.repos[repo_id]
            oid = repo.resolve(revision)
            chain = []
            while oid is not None:
                commit = repo.commits[oid]
                chain.append(commit)
                oid = commit.parent
            return chain

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """Path -> content of every file at ``revision``."""
        with self.lock:
            repo = self.repos[repo_id]
            oid = repo.resolve(revision)
            if oid is None:
                raise KeyError(revision)
            return {path: repo.objects[entry.sha256] for path, entry in repo.commits[oid].files.items()}

    def commit_directly(self, repo_id: str, branch: str, files: dict[str, bytes], title: str) -> str:
        """Another writer's commit, made without HTTP (simulates a concurrent push)."""
        with self.lock:
            repo = self.repos[repo_id]
            parent = repo.branches[branch]
            tree = dict(repo.commits[parent].files)
            for path, content in files.items():
                sha = hashlib.sha256(content).hexdigest()
                repo.objects[sha] = content
                tree[path] = Entry(len(content), sha, lfs=False)
            oid = self._new_commit(repo, parent, tree, title, "")
            repo.branches[branch] = oid
            return oid

    def corrupt(self, repo_id: str, oid: str, path: str) -> None:
        """Alter ``path`` in commit ``oid`` (one byte appended, LFS or not as before)."""
        with self.lock:
            repo = self.repos[repo_id]
            entry = repo.commits[oid].files[path]
            content = repo.objects[entry.sha256] + b"\n"
            sha = hashlib.sha256(content).hexdigest()
            repo.objects[sha] = content
            repo.commits[oid].files[path] = Entry(len(content), sha, entry.lfs)

    # ---- internals
    def _new_commit(self, repo: Repo, parent: str | None, files: dict[str, Entry], title: str, desc: str) -> str:
        self._counter += 1
        seed = json.dumps([parent, sorted((p, e.sha256) for p, e in files.items()), title, self._counter])
        oid = hashlib.sha1(seed.encode()).hexdigest()
        date = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        repo.commits[oid] = Commit(oid, parent, files, title, desc, date)
        return oid

    def _take_fault(self, kind: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.endpoint in (kind, "*") and fault.times > 0:
                    fault.times -= 1
                    if fault.kind != "down":
                        self.faults = [f for f in self.faults if f.times > 0 or f.kind == "down"]
                    else:
                        fault.times += 1  # down lasts until clear_faults()
                    return fault
        return None

    def _authorized(self, headers: Any) -> bool:
        value = headers.get("authorization") or ""
        token = value[7:].strip() if value.lower().startswith("bearer ") else ""
        if not token:
            return False
        self.tokens_seen.add(hashlib.sha256(token.encode()).hexdigest())
        return self.tokens is None or token in self.tokens

    def _repo(self, repo_id: str, headers: Any, *, write: bool = False) -> Repo:
        if write and not self._authorized(headers):
            raise HubError(401, "Invalid credentials in Authorization header")
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and not self._authorized(headers)):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _commit_of(self, repo: Repo, revision: str) -> Commit:
        oid = repo.resolve(revision)
        if oid is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.commits[oid]

    def _upload_mode(self, repo: Repo, commit: Commit, path: str, size: int, sample: bytes) -> str:
        existing = commit.files.get(path)
        if existing is not None and existing.lfs:
            return "lfs"
        attributes = commit.files.get(".gitattributes")
        patterns = lfs_patterns(repo.objects[attributes.sha256].decode()) if attributes else []
        if matches_lfs(path, patterns) or size >= REGULAR_MAX_BYTES or b"\0" in sample:
            return "lfs"
        return "regular"

    def _tree_items(self, repo: Repo, commit: Commit, prefix: str, recursive: bool) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        folders: set[str] = set()
        base = f"{prefix.rstrip('/')}/" if prefix else ""
        for path in sorted(commit.files):
            if not path.startswith(base):
                continue
            rest = path[len(base) :]
            parts = rest.split("/")
            for depth in range(1, len(parts)):
                folder = base + "/".join(parts[:depth])
                if folder not in folders and (recursive or depth == 1):
                    folders.add(folder)
                    items.append(
                        {"type": "directory", "path": folder, "oid": hashlib.sha1(folder.encode()).hexdigest()}
                    )
            if recursive or len(parts) == 1:
                entry = commit.files[path]
                items.append(entry.tree_item(path, repo.objects[entry.sha256]))
        if base and not items and prefix not in commit.files:
            raise HubError(404, f"{prefix} does not exist", "EntryNotFound")
        return items

    # ---- endpoints (called by the handler with the lock held)
    def create_repo(self, body: dict[str, Any], headers: Any) -> tuple[int, Any]:
        if not self._authorized(headers):
            raise HubError(401, "Invalid credentials in Authorization header")
        if body.get("type", "model") != "model":
            raise HubError(400, "this test Hub serves model repositories only")
        name, org = body.get("name"), body.get("organization")
        repo_id = f"{org}/{name}" if org else f"pubctl-test/{name}"
        url = f"{self.url}/{repo_id}"
        if repo_id in self.repos:
            return 409, {"error": "You already created this model repo", "url": url}
        private = body.get("visibility") == "private" or bool(body.get("private"))
        repo = Repo(repo_id, private)
        attributes = DEFAULT_GITATTRIBUTES.encode()
        sha = hashlib.sha256(attributes).hexdigest()
        repo.objects[sha] = attributes
        oid = self._new_commit(repo, None, {".gitattributes": Entry(len(attributes), sha, False)}, "initial commit", "")
        repo.branches["main"] = oid
        self.repos[repo_id] = repo
        return 200, {"url": url, "name": repo_id, "id": repo_id}

    def info(self, repo: Repo, revision: str) -> dict[str, Any]:
        commit = self._commit_of(repo, revision)
        return {
            "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.oid,
            "private": repo.private,
            "disabled": False,
            "gated": False,
            "lastModified": commit.date,
            "tags": [],
            "siblings": [{"rfilename": path} for path in sorted(commit.files)],
        }

    def preupload(self, repo: Repo, revision: str, body: dict[str, Any], create_pr: bool) -> dict[str, Any]:
        if create_pr and revision not in repo.branches:
            # As on the Hub: a pull request targets an existing branch (huggingface_hub's create_commit docs).
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        commit = self._commit_of(repo, revision)
        files = []
        for item in body.get("files", []):
            path, size = item["path"], int(item["size"])
            sample = base64.b64decode(item.get("sample", ""))
            mode = self._upload_mode(repo, commit, path, size, sample)
            existing = commit.files.get(path)
            oid = None
            if existing is not None:
                oid = existing.sha256 if existing.lfs else git_blob_oid(repo.objects[existing.sha256])
            files.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return {"files": files, "commitOid": commit.oid}

    def lfs_batch(self, repo: Repo, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("operation") != "upload":
            raise HubError(400, "only the upload operation is served")
        objects = []
        for obj in body.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            answer: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if oid not in repo.objects:  # no "actions": the object is already stored
                answer["actions"] = {
                    # Like the Hub's presigned storage URLs: the href itself authorises the PUT.
                    "upload": {"href": f"{self.url}/lfs-upload/{self._signature}/{repo.repo_id}/{oid}", "header": {}},
                    "verify": {"href": f"{self.url}/lfs-verify/{repo.repo_id}", "header": {}},
                }
            objects.append(answer)
        return {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}

    def lfs_upload(self, signature: str, repo_id: str, oid: str, data: bytes) -> dict[str, Any]:
        if signature != self._signature or repo_id not in self.repos:
            raise HubError(403, "invalid upload URL")
        self.lfs_store(self.repos[repo_id], oid, data)
        return {}

    def lfs_store(self, repo: Repo, oid: str, data: bytes) -> None:
        if hashlib.sha256(data).hexdigest() != oid:
            raise HubError(400, f"uploaded content does not hash to {oid}")
        repo.objects[oid] = data
        self.file_bytes += len(data)

    def lfs_verify(self, repo: Repo, body: dict[str, Any]) -> dict[str, Any]:
        data = repo.objects.get(body.get("oid", ""))
        if data is None or len(data) != int(body.get("size", -1)):
            raise HubError(404, f"object {body.get('oid')} is not stored")
        return {"message": "Object verified"}

    def commit(self, repo: Repo, revision: str, lines: list[dict[str, Any]], create_pr: bool) -> dict[str, Any]:
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "the first NDJSON line must be the header")
        header = lines[0]["value"]
        parent_commit = header.get("parentCommit")
        if create_pr:
            if revision not in repo.branches:
                raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            base = parent_commit or repo.branches[revision]
            if base not in repo.commits:
                raise HubError(404, f"Invalid rev id: {base}", "RevisionNotFound")
        else:
            if revision not in repo.branches:
                raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            base = repo.branches[revision]
            if parent_commit is not None and parent_commit != base:
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
        tree = dict(repo.commits[base].files)
        received = 0
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value", {})
            path = value.get("path", "")
            if key == "file":
                content = base64.b64decode(value["content"])
                if len(content) >= REGULAR_MAX_BYTES:
                    raise HubError(400, f"{path}: regular files over 10 MiB are refused; upload it with LFS")
                sha = hashlib.sha256(content).hexdigest()
                repo.objects[sha] = content
                tree[path] = Entry(len(content), sha, lfs=False)
                received += len(content)
            elif key == "lfsFile":
                stored = repo.objects.get(value["oid"])
                if stored is None or ("size" in value and len(stored) != int(value["size"])):
                    raise HubError(422, f"{path}: LFS object {value['oid']} was never uploaded")
                tree[path] = Entry(len(stored), value["oid"], lfs=True)
            elif key == "deletedFile":
                if path not in tree:
                    raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                del tree[path]
            elif key == "deletedFolder":
                prefix = path.rstrip("/") + "/"
                for name in [p for p in tree if p.startswith(prefix)]:
                    del tree[name]
            else:
                raise HubError(400, f"unknown commit operation {key!r}")
        oid = self._new_commit(repo, base, tree, header.get("summary", ""), header.get("description", ""))
        self.file_bytes += received
        pr_url = None
        if create_pr:
            number = max(repo.pull_requests, default=0) + 1
            repo.pull_requests[number] = oid
            pr_url = f"{self.url}/{repo.repo_id}/discussions/{number}"
        else:
            repo.branches[revision] = oid
        return {
            "success": True,
            "commitOid": oid,
            "commitUrl": f"{self.url}/{repo.repo_id}/commit/{oid}",
            "pullRequestUrl": pr_url,
            "hookOutput": "",
        }

    def paths_info(self, repo: Repo, revision: str, paths: list[str]) -> list[dict[str, Any]]:
        commit = self._commit_of(repo, revision)
        items = []
        for path in paths:
            path = path.strip("/")
            if path in commit.files:
                entry = commit.files[path]
                items.append(entry.tree_item(path, repo.objects[entry.sha256]))
            elif any(p.startswith(path + "/") for p in commit.files):
                items.append({"type": "directory", "path": path, "oid": hashlib.sha1(path.encode()).hexdigest()})
        return items

    def refs(self, repo: Repo, include_prs: bool) -> dict[str, Any]:
        def ref(kind: str, name: str, oid: str) -> dict[str, str]:
            return {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": oid}

        answer: dict[str, Any] = {
            "branches": [ref("heads", name, oid) for name, oid in sorted(repo.branches.items())],
            "converts": [],
            "tags": [ref("tags", name, oid) for name, oid in sorted(repo.tags.items())],
        }
        if include_prs:
            answer["pullRequests"] = [
                {"name": f"refs/pr/{n}", "ref": f"refs/pr/{n}", "targetCommit": oid}
                for n, oid in sorted(repo.pull_requests.items())
            ]
        return answer

    def commits_list(self, repo: Repo, revision: str) -> list[dict[str, Any]]:
        commit: Commit | None = self._commit_of(repo, revision)
        items = []
        while commit is not None:
            items.append(
                {
                    "id": commit.oid,
                    "title": commit.title,
                    "message": commit.description,
                    "authors": [],
                    "date": commit.date,
                }
            )
            commit = repo.commits[commit.parent] if commit.parent else None
        return items

    def create_branch(self, repo: Repo, branch: str, body: dict[str, Any]) -> dict[str, Any]:
        if branch in repo.branches:
            raise HubError(409, "Reference already exists")
        start = body.get("startingPoint") or "main"
        repo.branches[branch] = self._commit_of(repo, start).oid
        return {}

    def create_tag(self, repo: Repo, revision: str, body: dict[str, Any]) -> dict[str, Any]:
        tag = body.get("tag")
        if not tag:
            raise HubError(400, "missing tag name")
        if tag in repo.tags:
            raise HubError(409, f"Tag {tag} already exists")
        repo.tags[tag] = self._commit_of(repo, revision).oid
        return {}


# --------------------------------------------------------------------------- handler
def _make_handler(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: tests read hub.requests instead of a stderr access log."""

        # ---- plumbing
        def _read_body(self, *, drop_after_half: bool = False) -> bytes:
            if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                    if drop_after_half:
                        raise _Dropped
                return b"".join(chunks)
            length = int(self.headers.get("content-length") or 0)
            if drop_after_half:
                self.rfile.read(length // 2)
                raise _Dropped
            return self.rfile.read(length) if length else b""

        def _send(
            self,
            status: int,
            payload: Any = None,
            *,
            headers: dict[str, str] | None = None,
            body: bytes | None = None,
            content_type: str = "application/json",
        ) -> None:
            data = body if body is not None else (json.dumps(payload).encode() if payload is not None else b"")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            self._status = status

        def _drop(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        # ---- routing
        def _route(self) -> tuple[str, Any]:
            """(kind, handler) for this request; kind names the endpoint for faults and counters."""
            parts = urlsplit(self.path)
            segments = [unquote(s) for s in parts.path.split("/")[1:]]
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            method = self.command
            if segments[:2] == ["api", "repos"] and segments[2:] == ["create"] and method == "POST":
                return "create_repo", lambda body: hub.create_repo(self._json(body), self.headers)
            if segments == ["api", "validate-yaml"] and method == "POST":
                return "validate_yaml", lambda body: (200, self._validate_yaml(self._json(body)))
            if segments == ["api", "agent-harnesses"] and method == "GET":  # huggingface_hub's agent registry
                return "agent_registry", lambda body: (200, {"standardEnvVars": [], "harnesses": {}})
            if segments == ["api", "whoami-v2"] and method == "GET":
                return "whoami", lambda body: (200, self._whoami())
            if len(segments) >= 4 and segments[0] == "api" and segments[1] == "models":
                return self._route_api(f"{segments[2]}/{segments[3]}", segments[4:], query)
            if (
                len(segments) >= 2
                and segments[1].endswith(".git")
                and segments[2:] == ["info", "lfs", "objects", "batch"]
            ):
                repo_id = f"{segments[0]}/{segments[1][:-4]}"
                return "lfs_batch", lambda body: (200, hub.lfs_batch(self._repo(repo_id, write=True), self._json(body)))
            if segments[:1] == ["lfs-upload"] and len(segments) == 5 and method == "PUT":
                signature, repo_id, oid = segments[1], f"{segments[2]}/{segments[3]}", segments[4]
                return "lfs_upload", lambda body: (200, hub.lfs_upload(signature, repo_id, oid, body))
            if segments[:1] == ["lfs-verify"] and len(segments) == 3 and method == "POST":
                repo_id = f"{segments[1]}/{segments[2]}"
                return "lfs_verify", lambda body: (
                    200,
                    hub.lfs_verify(self._repo(repo_id, write=True), self._json(body)),
                )
            if len(segments) >= 5 and segments[2] == "resolve" and method in ("GET", "HEAD"):
                repo_id, revision, path = f"{segments[0]}/{segments[1]}", segments[3], "/".join(segments[4:])
                return "download", lambda body: self._resolve(repo_id, revision, path)
            return "unknown", lambda body: (_ for _ in ()).throw(HubError(404, f"no route for {method} {parts.path}"))

        def _route_api(self, repo_id: str, rest: list[str], query: dict[str, str]) -> tuple[str, Any]:
            method = self.command
            create_pr = query.get("create_pr") in ("1", "true", "True")
            head = rest[0] if rest else ""
            if not rest and method == "GET":
                return "info", lambda body: (200, hub.info(self._repo(repo_id), "main"))
            if head == "revision" and len(rest) == 2 and method == "GET":
                return "info", lambda body: (200, hub.info(self._repo(repo_id), rest[1]))
            if head == "preupload" and len(rest) == 2 and method == "POST":
                return "preupload", lambda body: (
                    200,
                    hub.preupload(self._repo(repo_id, write=True), rest[1], self._json(body), create_pr),
                )
            if head == "commit" and len(rest) == 2 and method == "POST":
                return "commit", lambda body: (
                    200,
                    hub.commit(self._repo(repo_id, write=True), rest[1], self._ndjson(body), create_pr),
                )
            if head == "tree" and len(rest) >= 2 and method == "GET":
                return "tree", lambda body: self._tree(repo_id, rest[1], "/".join(rest[2:]), query)
            if head == "paths-info" and len(rest) == 2 and method == "POST":
                return "paths_info", lambda body: (200, hub.paths_info(self._repo(repo_id), rest[1], self._paths(body)))
            if head == "refs" and len(rest) == 1 and method == "GET":
                include_prs = query.get("include_prs") in ("1", "true", "True")
                return "refs", lambda body: (200, hub.refs(self._repo(repo_id), include_prs))
            if head == "commits" and len(rest) == 2 and method == "GET":
                return "commits", lambda body: (200, hub.commits_list(self._repo(repo_id), rest[1]))
            if head == "branch" and len(rest) == 2 and method == "POST":
                return "branch", lambda body: (
                    200,
                    hub.create_branch(self._repo(repo_id, write=True), rest[1], self._json(body)),
                )
            if head == "tag" and len(rest) == 2 and method == "POST":
                return "tag", lambda body: (
                    200,
                    hub.create_tag(self._repo(repo_id, write=True), rest[1], self._json(body)),
                )
            return "unknown", lambda body: (_ for _ in ()).throw(HubError(404, f"no route for {method} {self.path}"))

        # ---- helpers used by routes
        def _repo(self, repo_id: str, *, write: bool = False) -> Repo:
            return hub._repo(repo_id, self.headers, write=write)

        @staticmethod
        def _json(body: bytes) -> dict[str, Any]:
            try:
                value = json.loads(body or b"{}")
            except json.JSONDecodeError as exc:
                raise HubError(400, f"invalid JSON body: {exc}") from None
            if not isinstance(value, dict):
                raise HubError(400, "expected a JSON object")
            return value

        @staticmethod
        def _ndjson(body: bytes) -> list[dict[str, Any]]:
            try:
                return [json.loads(line) for line in body.splitlines() if line.strip()]
            except json.JSONDecodeError as exc:
                raise HubError(400, f"invalid NDJSON body: {exc}") from None

        def _paths(self, body: bytes) -> list[str]:
            # HfApi.get_paths_info posts a form (paths repeated); other clients post JSON.
            if "json" in (self.headers.get("content-type") or ""):
                paths = self._json(body).get("paths", [])
                return [paths] if isinstance(paths, str) else list(paths)
            return parse_qs(body.decode()).get("paths", [])

        def _validate_yaml(self, body: dict[str, Any]) -> dict[str, Any]:
            content = body.get("content", "")
            if content.startswith("---"):
                front = content.split("---", 2)[1] if content.count("---") >= 2 else ""
                try:
                    data = yaml.safe_load(front)
                except yaml.YAMLError as exc:
                    raise HubError(400, f"invalid YAML front matter: {exc}") from None
                if data is not None and not isinstance(data, dict):
                    raise HubError(400, "the YAML front matter must be a mapping")
            return {"errors": [], "warnings": []}

        def _whoami(self) -> dict[str, Any]:
            if not hub._authorized(self.headers):
                raise HubError(401, "Invalid credentials in Authorization header")
            return {"type": "user", "name": "pubctl-test", "orgs": [], "auth": {"type": "access_token"}}

        def _tree(
            self, repo_id: str, revision: str, path: str, query: dict[str, str]
        ) -> tuple[int, Any, dict[str, str]]:
            repo = self._repo(repo_id)
            commit = hub._commit_of(repo, revision)
            items = hub._tree_items(repo, commit, path, query.get("recursive") in ("1", "true", "True"))
            start = int(query.get("cursor", "0"))
            page = items[start : start + hub.tree_page_size]
            headers = {}
            if start + hub.tree_page_size < len(items):
                base = self.path.split("?")[0]
                next_url = (
                    f"{hub.url}{base}?recursive={query.get('recursive', 'False')}&cursor={start + hub.tree_page_size}"
                )
                headers["Link"] = f'<{next_url}>; rel="next"'
            return 200, page, headers

        def _resolve(self, repo_id: str, revision: str, path: str) -> tuple[int, Any, dict[str, str], bytes]:
            repo = self._repo(repo_id)
            commit = hub._commit_of(repo, revision)
            entry = commit.files.get(path)
            if entry is None:
                raise HubError(404, f"{path} does not exist at {revision}", "EntryNotFound")
            content = repo.objects[entry.sha256]
            headers = {"X-Repo-Commit": commit.oid, "Accept-Ranges": "bytes"}
            if entry.lfs:
                headers.update(
                    {
                        "ETag": f'"{entry.sha256}"',
                        "X-Linked-Etag": f'"{entry.sha256}"',
                        "X-Linked-Size": str(entry.size),
                    }
                )
            else:
                headers["ETag"] = f'"{git_blob_oid(content)}"'
            return 200, None, headers, content

        # ---- dispatch
        def _handle(self) -> None:
            self._status: int | None = None
            kind, action = self._route()
            body_bytes = 0
            generation = hub._generation
            try:
                fault = hub._take_fault(kind)
                if fault is not None and fault.kind == "down":
                    raise _Dropped
                body = self._read_body(drop_after_half=fault is not None and fault.kind == "drop")
                body_bytes = len(body)
                if fault is not None and fault.kind == "status":
                    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                    self._send(fault.status, {"error": f"injected {fault.status}"}, headers=headers)
                    return
                if fault is not None and fault.kind == "stall":
                    hub._stall(fault.seconds)
                    raise _Dropped
                with hub.lock:
                    if fault is not None and fault.kind == "concurrent_commit":
                        repo_id = "/".join(urlsplit(self.path).path.split("/")[3:5])
                        branch = unquote(urlsplit(self.path).path.split("/")[-1])
                        hub.commit_directly(
                            repo_id, branch, {"CONCURRENT.md": f"{time.time()}".encode()}, "other writer"
                        )
                    answer = action(body)
                    if fault is not None and fault.kind == "corrupt" and fault.path is not None:
                        repo_id = "/".join(urlsplit(self.path).path.split("/")[3:5])
                        hub.corrupt(repo_id, answer[1]["commitOid"], fault.path)
                if fault is not None and fault.kind == "stall_after":
                    hub._stall(fault.seconds)
                    raise _Dropped
                status, payload, *extra = answer
                headers = extra[0] if extra else {}
                raw = extra[1] if len(extra) > 1 else None
                if kind == "validate_yaml" or kind.startswith("lfs"):
                    ctype = "application/vnd.git-lfs+json" if kind.startswith("lfs") else "application/json"
                    self._send(status, payload, headers=headers, content_type=ctype)
                elif raw is not None:
                    self._send(status, headers=headers, body=raw, content_type="application/octet-stream")
                else:
                    self._send(status, payload, headers=headers)
            except _Dropped:
                self._drop()
            except HubError as exc:
                headers = {"X-Error-Message": exc.message}
                if exc.error_code:
                    headers["X-Error-Code"] = exc.error_code
                self._send(exc.status, {"error": exc.message}, headers=headers)
            finally:
                with hub.lock:
                    if generation == hub._generation:
                        hub.requests.append(RequestRecord(self.command, self.path, kind, body_bytes, self._status))

        do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _handle

    return Handler


def main() -> None:  # pragma: no cover - manual use: python tests/hub_server.py
    """Serve an empty test Hub until interrupted (for trying pubctl push by hand)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    hub = HubServer(socket.create_server(("127.0.0.1", args.port))).start()
    print(f"HF_ENDPOINT={hub.url} HF_HUB_DISABLE_XET=1  (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        hub.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
