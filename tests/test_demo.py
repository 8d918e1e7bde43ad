"""The embedded default: bundled data sets and the deterministic built-in tiny Qwen3."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pipeline.demo import PREFERENCES, TASKS_DIR


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_preference_data() -> None:
    rows = read_jsonl(PREFERENCES)
    assert len(rows) >= 300
    for row in rows:
        assert row["prompt"].strip() and row["chosen"].strip() and row["rejected"].strip()
        assert row["chosen"] != row["rejected"]
    languages = {lang: sum(r["language"] == lang for r in rows) for lang in ("en", "ar")}
    assert languages["en"] >= 100 and languages["ar"] >= 60, languages
    assert len({r["prompt"] for r in rows}) == len(rows), "duplicate prompts"


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("hellaswag_mini.jsonl", {"ctx", "endings", "label", "activity_label"}),
        ("truthfulqa_mc2_mini.jsonl", {"question", "mc1_targets", "mc2_targets"}),
        ("mmlu_mini.jsonl", {"question", "subject", "choices", "answer"}),
    ],
)
def test_offline_eval_data(name: str, keys: set[str]) -> None:
    rows = read_jsonl(TASKS_DIR / name)
    assert len(rows) >= 50
    for row in rows:
        assert keys <= set(row)


@pytest.mark.slow
def test_tiny_model_is_deterministic(tmp_path: Path, tiny_model_path: Path) -> None:
    from pipeline.demo.tiny_model import tiny_qwen3_path

    rebuilt = tiny_qwen3_path(tmp_path)
    assert rebuilt.name == tiny_model_path.name  # same recipe hash
    for name in ("model.safetensors", "tokenizer.json", "config.json", "generation_config.json"):
        assert sha256(rebuilt / name) == sha256(tiny_model_path / name), name


@pytest.mark.slow
def test_tiny_model_is_a_qwen3_with_chat_template(tiny_model_path: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    config = AutoConfig.from_pretrained(tiny_model_path)
    assert config.architectures == ["Qwen3ForCausalLM"]
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    parameters = sum(p.numel() for p in model.parameters())
    assert 100_000 <= parameters <= 1_000_000, parameters
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "ما هي عاصمة مصر؟"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>user\nما هي عاصمة مصر؟<|im_end|>\n<|im_start|>assistant\n"
    # byte-level BPE is lossless on any script
    sample = "The Nile flows north. يتدفق النيل شمالاً."
    assert tokenizer.decode(tokenizer(sample).input_ids) == sample
    generation = GenerationConfig.from_pretrained(tiny_model_path)
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in generation.eos_token_id
    assert tokenizer.eos_token == "<|im_end|>"


def test_real_base_model_fails_with_clear_message_offline(project: Path) -> None:
    """Here (no Hub access) the real configs stop at the first download with one clear paragraph."""
    from pipeline.config import load_config
    from pipeline.errors import UsageError
    from pipeline.layout import Layout
    from pipeline.sources import resolve_model

    config = load_config("qwen3-0.6b-kto")
    with pytest.raises(UsageError, match=r"Could not download model 'Qwen/Qwen3-0.6B' at revision main"):
        resolve_model(config.model.base_model, config.model.revision, Layout.for_release(config.name))
