"""Generation throughput: real chat prompts, warm-up, timed generate() runs of a fixed token count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.config import ThroughputSection
from pipeline.errors import StageFailed
from pipeline.evaluation.throughput import PROMPTS, chat_prompts, device_name, measure_throughput


def test_measures_model_generate_on_every_run(tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    calls: list[tuple[int, int]] = []
    original = transformers.GenerationMixin.generate

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        output = original(self, *args, **kwargs)
        calls.append((kwargs["input_ids"].shape[0], output.shape[1] - kwargs["input_ids"].shape[1]))
        return output

    monkeypatch.setattr(transformers.GenerationMixin, "generate", counting)
    settings = ThroughputSection(prompts=3, batch_size=2, new_tokens=5, warmup_runs=1, runs=2)
    record = measure_throughput(tiny_model_path, "float32", "cpu", settings)

    # 3 prompts in batches of 2 and 1, for 1 warm-up and 2 timed runs; each row gets exactly 5 new tokens.
    assert calls == [(2, 5), (1, 5)] * 3
    assert (record.prompts, record.batch_size, record.new_tokens, record.runs) == (3, 2, 5, 2)
    assert record.tokens_per_run == 15 and record.warmup_runs == 1
    assert record.dtype == "float32" and record.device == device_name("cpu") and record.device_type == "cpu"
    assert 0 < record.tokens_per_second_min <= record.tokens_per_second_median <= record.tokens_per_second_max


def test_prompts_are_rendered_by_the_chat_template(tiny_model_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    prompts = chat_prompts(tokenizer, len(PROMPTS) + 1)
    assert len(prompts) == len(PROMPTS) + 1
    assert prompts[0] == f"<|im_start|>user\n{PROMPTS[0]}<|im_end|>\n<|im_start|>assistant\n"
    assert prompts[-1] == prompts[0]  # more prompts than the list: it cycles
    assert any("\u0627" in prompt for prompt in prompts)  # Arabic prompts too


def test_a_tokenizer_without_chat_template_fails(tiny_model_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    tokenizer.chat_template = None
    with pytest.raises(StageFailed, match="no chat template"):
        chat_prompts(tokenizer, 2)


def test_cpu_name_is_the_processor_model() -> None:
    name = device_name("cpu")
    assert name and name != "cpu"
