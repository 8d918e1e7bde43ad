"""Which files of a folder count: hidden files are never recorded, hashed into stamps or published."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline.hashing import sha256_file, visible_files
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
