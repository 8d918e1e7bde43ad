"""Stage stamps: file hashing with its stat cache, stamp files, and the reasons a stage is out of date."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pipeline.stamps import (
    MISSING,
    RACY_SECONDS,
    FileHasher,
    StageInputs,
    changes,
    new_stamp,
    read_stamp,
    remove_stamp,
    stamp_path,
    write_stamp,
)


def _age(path: Path, seconds: float) -> None:
    """Backdate a file so its hash may be cached (fresh files are re-hashed, see RACY_SECONDS)."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - int(seconds * 1e9)))


def test_file_hash_is_sha256_of_the_bytes(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # crosses chunk boundaries
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    assert FileHasher(None).file(path) == hashlib.sha256(data).hexdigest()
    assert FileHasher(None).file(tmp_path / "absent") == MISSING


def test_cache_is_used_when_stat_matches_and_refreshed_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"a" * 100)
    _age(path, RACY_SECONDS + 5)
    cache = tmp_path / "stamps" / ".hashes.json"
    first = FileHasher(cache)
    sha = first.file(path)
    first.save()
    stored = json.loads(cache.read_text())["files"]
    assert stored[str(path.resolve())]["sha256"] == sha

    # A cached entry whose stat still matches is trusted without reading the file: prove it by
    # planting a different hash for the same stat.
    stored[str(path.resolve())]["sha256"] = "planted"
    cache.write_text(json.dumps({"version": 1, "files": stored}))
    assert FileHasher(cache).file(path) == "planted"

    # Same size, new mtime: re-hashed.
    path.write_bytes(b"b" * 100)
    _age(path, RACY_SECONDS + 1)
    assert FileHasher(cache).file(path) == hashlib.sha256(b"b" * 100).hexdigest()


def test_freshly_written_files_are_not_cached(tmp_path: Path) -> None:
    # A file modified within the mtime granularity of its hashing could change again unseen.
    path = tmp_path / "results.json"
    path.write_text("{}")
    cache = tmp_path / ".hashes.json"
    hasher = FileHasher(cache)
    hasher.file(path)
    hasher.save()
    assert not cache.exists() or str(path.resolve()) not in json.loads(cache.read_text())["files"]


def test_corrupt_cache_only_costs_rehashing(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    cache = tmp_path / ".hashes.json"
    cache.write_text("{not json")
    assert FileHasher(cache).file(path) == hashlib.sha256(b"x").hexdigest()


def test_tree_hash_covers_names_and_contents_and_ignores_dotfiles(tmp_path: Path) -> None:
    root = tmp_path / "bundle"
    (root / "plots").mkdir(parents=True)
    (root / "README.md").write_text("card")
    (root / "plots" / "loss.png").write_bytes(b"png")
    hasher = FileHasher(None)
    base = hasher.tree(root)
    (root / ".results.json.lock").write_text("")  # lock and temp files of atomic writes are not content
    assert hasher.tree(root) == base
    (root / "plots" / "loss.png").write_bytes(b"png2")
    changed = hasher.tree(root)
    assert changed != base
    (root / "plots" / "loss.png").rename(root / "plots" / "kl.png")
    assert hasher.tree(root) not in (base, changed)
    assert hasher.tree(tmp_path / "nothing") == MISSING
    assert hasher.tree(tmp_path / "empty") == MISSING


def test_stamp_round_trip_and_reasons(tmp_path: Path) -> None:
    inputs = StageInputs(
        config={"training": "h1"}, files={"dataset": "d1"}, versions={"trl": "1.16.0"}, options={"limit": None}
    )
    outputs = {"adapter": "a1", "plots": MISSING}
    stamp = new_stamp("train", inputs, outputs, seconds=1.23456, summary="done")
    write_stamp(tmp_path, stamp)
    loaded = read_stamp(tmp_path, "train")
    assert loaded is not None and loaded.key == inputs.key and loaded.seconds == 1.235
    assert changes(loaded, inputs, outputs) == []

    edited = StageInputs(
        config={"training": "h2"}, files={"dataset": "d1"}, versions={"trl": "1.17.0"}, options={"limit": 5}
    )
    reasons = changes(loaded, edited, outputs)
    assert reasons == [
        "config section training changed",
        "version of trl changed 1.16.0 -> 1.17.0",
        "option limit changed None -> 5",
    ]
    assert changes(loaded, inputs, {"adapter": MISSING}) == ["output adapter is missing"]
    assert changes(loaded, inputs, {"adapter": "a2"}) == ["output adapter was modified since the stage wrote it"]
    assert changes(None, inputs, outputs) == ["never ran (no stamp)"]

    remove_stamp(tmp_path, "train")
    assert read_stamp(tmp_path, "train") is None
    remove_stamp(tmp_path, "train")  # forgetting twice is fine


def test_unreadable_stamp_means_rerun(tmp_path: Path) -> None:
    stamp_path(tmp_path, "merge").write_text("{truncated")
    assert read_stamp(tmp_path, "merge") is None
    stamp_path(tmp_path, "merge").write_text(json.dumps({"stamp_version": 99, "stage": "merge"}))
    assert read_stamp(tmp_path, "merge") is None
