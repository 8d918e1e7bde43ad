"""Which files of a folder count: hidden files are never recorded, hashed into stamps or published."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pipeline.hashing import sha256_file, small_regular_bytes, visible_files
from pipeline.hub_client import collect_folder
from pipeline.merging.facts import file_entries


def make_folder(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / ".cache").mkdir()
    (root / "model.safetensors").write_bytes(b"weights" * 1000)
    (root / "sub" / "config.json").write_text("{}")
    (root / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    (root / ".results.json.lock").write_text("")
    (root / ".cache" / "blob").write_bytes(b"x")
    return root


def test_visible_files_leave_out_hidden_files_and_folders(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "m")
    assert [p.relative_to(root).as_posix() for p in visible_files(root)] == ["model.safetensors", "sub/config.json"]


def test_merge_facts_and_push_agree_on_the_files(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "m")
    recorded = [entry.path for entry in file_entries(root)]
    published = [local.path_in_repo for local in collect_folder(root)]
    assert recorded == published == ["model.safetensors", "sub/config.json"]


def test_sha256_file_reads_in_blocks(tmp_path: Path) -> None:
    path = tmp_path / "big"
    data = bytes(range(256)) * 9000  # > 2 MiB: several 1 MiB blocks
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_small_regular_bytes_reads_only_a_small_regular_file(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(b"12345")
    assert small_regular_bytes(plain, 5) == b"12345"
    assert small_regular_bytes(plain, 4) is None  # larger than the bound: not read
    link = tmp_path / "link"
    link.symlink_to(plain)
    assert small_regular_bytes(link, 5) is None  # never follows a link, even to a small regular file
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert small_regular_bytes(fifo, 5) is None  # never opened, so it cannot block
    assert small_regular_bytes(tmp_path / "missing", 5) is None
    assert small_regular_bytes(tmp_path, 5) is None  # a folder
