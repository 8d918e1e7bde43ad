"""Training data: loading, column mapping, validation and conversion (no training here)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import load_config
from pipeline.errors import UsageError
from pipeline.layout import Layout
from pipeline.training_data import prepare_data


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_path))


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def pairs(n: int) -> list[dict[str, Any]]:
    return [
        {"prompt": f"Question number {i}?", "chosen": f"A good answer {i}.", "rejected": f"A bad answer {i}."}
        for i in range(n)
    ]


@pytest.fixture
def prepare(make_config: Callable[..., str], project: Path, tokenizer) -> Callable[..., Any]:
    def run(overrides: dict[str, Any]):
        # the demo's method section is replaced, not merged: its beta is not a parameter of every method
        overrides = {**overrides, "method": {"beta": None, **overrides.get("method", {})}}
        name = make_config("data", overrides)
        config = load_config(name, project)
        return prepare_data(config, Layout.for_release(name, project), tokenizer)

    return run


def test_builtin_pairs_become_shuffled_unpaired_rows_for_kto(prepare) -> None:
    data = prepare({"method": {"name": "kto"}, "data": {"eval_fraction": 0.1}})
    record = data.record()
    assert data.source_format == "paired" and data.consumed_format == "unpaired"
    assert set(data.train.column_names) == {"prompt", "completion", "label"}
    # every held-in pair gives one desirable and one undesirable row
    assert record["rows"] == 2 * (record["source_rows"] - record["eval_rows"] // 2)
    labels = data.train["label"]
    assert sum(labels) == len(labels) // 2
    # TRL's helper writes all desirable rows first; KTO batches must mix both kinds
    assert len(set(labels[:16])) == 2
    assert record["revision"].startswith("sha256:")


def test_eval_fraction_keeps_both_answers_of_a_prompt_on_one_side(prepare) -> None:
    data = prepare({"method": {"name": "kto"}, "data": {"eval_fraction": 0.2}})
    assert data.eval is not None
    assert not set(data.train["prompt"]) & set(data.eval["prompt"])


def test_pairs_become_prompt_completion_for_sft(prepare) -> None:
    data = prepare({"method": {"name": "sft"}, "data": {"eval_fraction": None, "max_samples": 20}})
    assert data.train.column_names == ["prompt", "completion"]
    assert len(data.train) == 20
    assert data.record()["trained_as"] == "text"


def test_local_file_with_column_mapping_and_its_sha256(prepare, project: Path) -> None:
    rows = [{"question": r["prompt"], "good": r["chosen"], "bad": r["rejected"]} for r in pairs(12)]
    path = write_jsonl(project / "mine.jsonl", rows)
    data = prepare(
        {
            "method": {"name": "dpo"},
            "data": {
                "train": "mine.jsonl",
                "eval_fraction": None,
                "columns": {"prompt": "question", "chosen": "good", "rejected": "bad"},
            },
        }
    )
    assert data.train.column_names == ["prompt", "chosen", "rejected"]
    assert data.train[0]["chosen"] == "A good answer 0."
    assert data.record()["revision"] == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_parquet_unpaired_file(prepare, project: Path) -> None:
    from datasets import Dataset

    rows = [{"prompt": f"Q{i}?", "completion": f"A{i}.", "label": i % 2 == 0} for i in range(16)]
    Dataset.from_list(rows).to_parquet(str(project / "rows.parquet"))
    data = prepare({"method": {"name": "kto"}, "data": {"train": "rows.parquet", "eval_fraction": None}})
    assert data.source_format == "unpaired" and len(data.train) == 16


def test_conversational_pairs_are_detected(prepare, project: Path) -> None:
    rows = [
        {
            "prompt": [{"role": "user", "content": f"Question {i}?"}],
            "chosen": [{"role": "assistant", "content": "Good."}],
            "rejected": [{"role": "assistant", "content": "Bad."}],
        }
        for i in range(10)
    ]
    write_jsonl(project / "chat.jsonl", rows)
    data = prepare({"method": {"name": "dpo"}, "data": {"train": "chat.jsonl", "eval_fraction": None}})
    assert data.conversational


def test_max_prompt_length_cuts_text_prompts_from_the_left(prepare, project: Path, tokenizer) -> None:
    long_prompt = " ".join(f"word{i}" for i in range(200)) + " final question?"
    write_jsonl(project / "long.jsonl", [{**row, "prompt": long_prompt} for row in pairs(8)])
    data = prepare(
        {
            "method": {"name": "dpo"},
            "data": {"train": "long.jsonl", "eval_fraction": None},
            "training": {"max_length": 128, "max_prompt_length": 32},
        }
    )
    prompt = data.train[0]["prompt"]
    assert prompt.endswith("final question?")
    assert len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) <= 32
    assert data.record()["truncated_prompts"] == 8


@pytest.mark.parametrize(
    ("rows", "overrides", "message"),
    [
        ([], {}, "no rows"),
        ([{"prompt": "Q?", "chosen": "A."}] * 8, {"format": "paired"}, "'rejected'"),
        ([{"prompt": "Q?", "answer": "A."}] * 8, {}, "cannot tell the format"),
        ([{"prompt": "Q?", "completion": "A.", "label": 1}] * 8, {}, "must hold booleans"),
        ([{"prompt": "Q?", "chosen": "", "rejected": "B."}] * 8, {}, "empty 'chosen'"),
        ([{"prompt": "long " * 300, "chosen": "A.", "rejected": "B."}] * 8, {}, "every prompt"),
    ],
    ids=["empty", "missing-column", "unknown-format", "int-labels", "empty-value", "prompts-too-long"],
)
def test_bad_data_is_a_usage_error(prepare, project: Path, rows, overrides, message) -> None:
    path = project / "bad.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    method = "kto" if rows and "label" in rows[0] else "dpo"
    with pytest.raises(UsageError, match=message):
        prepare(
            {
                "method": {"name": method},
                "data": {"train": "bad.jsonl", "eval_fraction": None, **overrides},
                "training": {"max_length": 64, "max_prompt_length": None},
            }
        )


def test_unpaired_data_cannot_feed_a_paired_method(prepare, project: Path) -> None:
    write_jsonl(project / "u.jsonl", [{"prompt": "Q?", "completion": "A.", "label": True}] * 8)
    with pytest.raises(UsageError, match="accepts paired"):
        prepare({"method": {"name": "dpo"}, "data": {"train": "u.jsonl", "eval_fraction": None}})


def test_eval_split_of_a_local_file_is_refused(prepare, project: Path) -> None:
    write_jsonl(project / "p.jsonl", pairs(8))
    with pytest.raises(UsageError, match="eval_fraction instead"):
        prepare({"method": {"name": "dpo"}, "data": {"train": "p.jsonl", "eval_fraction": None, "eval_split": "test"}})


def test_hub_dataset_unreachable_is_a_clear_download_error(prepare, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UsageError, match="Could not download dataset 'someone/prefs'"):
        prepare({"method": {"name": "dpo"}, "data": {"train": "someone/prefs", "eval_fraction": None}})


@pytest.mark.parametrize(
    ("name", "content"), [("broken.jsonl", '{"prompt": "Q?"}\n{"prompt": \n'), ("x.parquet", "xx")]
)
def test_an_unreadable_file_is_a_usage_error(prepare, project: Path, name: str, content: str) -> None:
    (project / name).write_text(content, encoding="utf-8")
    with pytest.raises(UsageError, match=f"could not read {name}"):
        prepare({"method": {"name": "dpo"}, "data": {"train": name, "eval_fraction": None}})
