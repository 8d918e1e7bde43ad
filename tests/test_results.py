"""The results record: typed, atomic, one section per stage, clear errors on bad files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pipeline import atomic as atomic_module
from pipeline.errors import ResultsError
from pipeline.results import (
    MergeRecord,
    Results,
    Waiver,
    read_results,
    update_results,
    write_results,
)


def test_sections_not_written_are_absent(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    update_results(path, "demo", merge=MergeRecord(strategy="streaming", parity_max_abs_diff=1e-7, probe_prompts=4))
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["schema_version"] == 1 and data["release"] == "demo"
    assert "training" not in data and "evaluation" not in data and "model" not in data
    assert data["merge"]["parity_max_abs_diff"] == 1e-7


def test_update_replaces_only_its_section(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    update_results(path, "demo", merge=MergeRecord(strategy="peft", parity_max_abs_diff=0.0, probe_prompts=1))
    update_results(path, "demo", waivers=[Waiver(check="near_chance", reason="demo model")])
    record = read_results(path)
    assert record.merge is not None and record.merge.strategy == "peft"
    assert record.waivers[0].check == "near_chance"


def test_unknown_keys_survive_a_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "release": "x",
                "future_section": {"a": 1},
                "merge": {"strategy": "s", "parity_max_abs_diff": 0, "probe_prompts": 2, "k": "v"},
            }
        )
    )
    update_results(path, "x", waivers=[])
    data = json.loads(path.read_text())
    assert data["future_section"] == {"a": 1}
    assert data["merge"]["k"] == "v"


def test_arabic_text_is_stored_readably(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    update_results(path, "x", waivers=[Waiver(check="c", reason="نموذج تجريبي")])
    assert "نموذج تجريبي" in path.read_text(encoding="utf-8")


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text('{"schema_version": 1, "release": ', encoding="utf-8")
    with pytest.raises(ResultsError, match=r"corrupt results record, invalid JSON at line 1"):
        read_results(path)


def test_future_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"schema_version": 99, "release": "x"}), encoding="utf-8")
    with pytest.raises(ResultsError, match=r"schema_version 99 is written by a newer pubctl"):
        read_results(path)


def test_invalid_field(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "release": "x",
                "merge": {"strategy": "s", "parity_max_abs_diff": -1, "probe_prompts": 2},
            }
        )
    )
    with pytest.raises(ResultsError, match=r"merge.parity_max_abs_diff"):
        read_results(path)


def test_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(ResultsError, match="JSON object"):
        read_results(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="no results record yet"):
        read_results(tmp_path / "results.json")


def test_non_finite_numbers_are_refused_and_old_file_kept(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    update_results(path, "x", merge=MergeRecord(strategy="s", parity_max_abs_diff=0.0, probe_prompts=1))
    before = path.read_bytes()
    with pytest.raises(ResultsError, match="non-finite"):
        update_results(path, "x", merge=MergeRecord(strategy="s", parity_max_abs_diff=math.inf, probe_prompts=1))
    assert path.read_bytes() == before


def test_crash_during_write_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "results.json"
    write_results(path, Results(release="x"))
    before = path.read_bytes()

    def crash(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic_module.os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        update_results(path, "x", waivers=[Waiver(check="a", reason="b")])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_update_refuses_unknown_sections(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not record sections"):
        update_results(tmp_path / "r.json", "x", schema_version=2)


def test_design_example_record_validates() -> None:
    """The record shown in DESIGN.md is a valid schema_version-1 record."""
    example = {
        "schema_version": 1,
        "release": "qwen3-0.6b-kto",
        "model": {
            "repo_id": "org/Qwen3-0.6B-Enhanced-KTO",
            "base_model": "Qwen/Qwen3-0.6B",
            "base_model_revision": None,
            "architecture": "Qwen3ForCausalLM",
            "parameters": 596049920,
            "dtype": "bfloat16",
            "license": "apache-2.0",
            "language": ["en"],
            "files": [{"path": "model.safetensors", "size": 1192135096, "sha256": "ab" * 32}],
        },
        "training": {
            "method": "enhanced_kto",
            "method_params": {"beta": 0.1},
            "datasets": [
                {"id": "HuggingFaceH4/ultrafeedback_binarized", "split": "train_prefs", "revision": None, "rows": 61135}
            ],
            "hyperparameters": {
                "epochs": 1,
                "per_device_batch_size": 2,
                "gradient_accumulation_steps": 8,
                "effective_batch_size": 16,
                "learning_rate": 0.0002,
                "max_length": 512,
                "seed": 42,
                "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]},
            },
            "steps": 3820,
            "samples": 61135,
            "runtime_seconds": 8123.4,
            "final_loss": 0.412,
            "log_history": [{"step": 10, "loss": 0.49, "learning_rate": 0.0002, "kl": 0.08}],
        },
        "merge": {"strategy": "streaming", "parity_max_abs_diff": 1.2e-06, "probe_prompts": 4},
        "evaluation": {
            "harness": "lm-eval",
            "harness_version": "0.4.13",
            "results": [
                {
                    "task": "hellaswag",
                    "dataset_id": "Rowan/hellaswag",
                    "dataset_config": None,
                    "split": "validation",
                    "num_fewshot": 10,
                    "metric": "acc_norm",
                    "value": 0.336,
                    "stderr": 0.0047,
                    "n": 10042,
                    "base_value": 0.331,
                    "chance": 0.25,
                }
            ],
            "throughput": {
                "device": "NVIDIA H100",
                "dtype": "bfloat16",
                "prompts": 8,
                "new_tokens": 128,
                "runs": 5,
                "tokens_per_second_median": 812.0,
                "tokens_per_second_min": 790.0,
                "tokens_per_second_max": 830.0,
            },
        },
        "provenance": {
            "pubctl_version": "0.1.0",
            "git_commit": None,
            "created_at": "2026-11-21T00:00:00+00:00",
            "config_sha256": "cd" * 32,
            "versions": {"torch": "2.13.0"},
            "hardware": {"device": "cpu", "gpus": []},
        },
        "waivers": [{"check": "near_chance", "reason": "demo model"}],
    }
    record = Results.model_validate(example)
    dumped = json.loads(record.to_json())
    # nothing is added that no stage wrote: a declared default is not a measurement
    assert dumped == example


def test_failed_write_names_the_record_not_its_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os

    path = tmp_path / "results.json"
    write_results(path, Results(release="x"))
    before = path.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as the kernel reports it: no file name

    monkeypatch.setattr(atomic_module.os, "fsync", full)
    with pytest.raises(OSError) as caught:
        update_results(path, "x", waivers=[Waiver(check="a", reason="b")])
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, str(path))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_long_file_name_is_not_refused_for_its_temp_name(tmp_path: Path) -> None:
    path = tmp_path / ("n" * 250)  # valid (255 is the usual limit), though the temp name adds to it
    atomic_module.atomic_write_text(path, "ok")
    assert path.read_text(encoding="utf-8") == "ok"


def test_record_is_read_strictly(tmp_path: Path) -> None:
    """pubctl writes typed values, so a string where a number belongs is a damaged record, not a number."""
    path = tmp_path / "results.json"
    record = {"schema_version": 1, "release": "x", "merge": {"strategy": "s", "probe_prompts": 1}}
    path.write_text(json.dumps({**record, "merge": {**record["merge"], "parity_max_abs_diff": "0.0"}}))
    found = r"merge\.parity_max_abs_diff: Input should be a valid number \(found '0\.0'\)"
    with pytest.raises(ResultsError, match=found):
        read_results(path)
    path.write_text(json.dumps({**record, "merge": {**record["merge"], "parity_max_abs_diff": 0}}))
    assert read_results(path).merge.parity_max_abs_diff == 0.0  # an integer is a number


def test_every_number_in_a_record_is_finite(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text('{"schema_version": 1, "release": "x", "extra": {"deep": [1, 2, NaN]}}')
    with pytest.raises(ResultsError, match=r"extra\.deep\[2\]: nan is not a finite number"):
        read_results(path)


def test_method_params_are_checked_against_the_method(tmp_path: Path) -> None:
    from test_card_records import realistic_record

    path = tmp_path / "results.json"
    record = realistic_record("x")
    record.training.method_params = {"beta": 0.1, "newer_param": "kept"}
    write_results(path, record)
    assert read_results(path).training.method_params["newer_param"] == "kept"  # unknown keys stay free
    data = json.loads(path.read_text(encoding="utf-8"))
    data["training"]["method_params"]["beta"] = "0.1"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ResultsError, match=r"training\.method_params\.beta: Input should be a valid number"):
        read_results(path)


def test_a_bad_number_among_many_is_named_by_its_path(tmp_path: Path) -> None:
    """The record is checked a depth at a time in bulk; the path is still exact."""
    rows = [{"v": [1.0, 2, "s", None]}] * 100_000 + [{"v": [1.0, 2, 1e999]}, {"v": [-(2**64)]}]
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"schema_version": 1, "release": "x", "extra": {"rows": rows}}))
    with pytest.raises(ResultsError, match=r"extra\.rows\[100000\]\.v\[2\]: inf is not a finite number"):
        read_results(path)
    path.write_text(json.dumps({"schema_version": 1, "release": "x", "extra": {"rows": rows[-1:]}}))
    with pytest.raises(ResultsError, match=r"extra\.rows\[0\]\.v\[0\]: -18446744073709551616 does not fit in 64 bits"):
        read_results(path)
