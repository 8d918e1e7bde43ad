"""Generation throughput of a saved model, measured the way users measure it.

Real chat prompts go through the tokenizer's chat template, ``model.generate`` produces exactly
``new_tokens`` tokens per prompt (min_new_tokens = max_new_tokens, greedy), untimed warm-up runs come
first, and each timed run is bracketed by device synchronisation and ``time.perf_counter``. A run's speed
is new tokens generated / seconds; the record keeps the median, min and max over the runs, with the
device, dtype and batch size they were measured with. No library measures this for a saved HF model,
hence this module; everything it times is transformers' own generate().
"""

from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path
from typing import Any

from pipeline.config import ThroughputSection
from pipeline.errors import StageFailed
from pipeline.results import ThroughputRecord

PROMPTS: tuple[str, ...] = (
    "Explain in two sentences why the sky is blue.",
    "Write a short, polite email asking a colleague to review my pull request.",
    "What are three good habits for keeping a small vegetable garden healthy?",
    "Summarise the plot of Romeo and Juliet for a ten-year-old.",
    "Give me a simple recipe for lentil soup.",
    "How does a hash map handle two keys with the same hash?",
    "ما هي فوائد المشي اليومي للصحة؟",
    "Translate into French: 'The train leaves at eight tomorrow morning.'",
    "List the planets of the solar system in order from the Sun.",
    "What should I pack for a three-day hiking trip in autumn?",
    "اكتب جملة قصيرة عن أهمية القراءة.",
    "Describe the difference between a list and a tuple in Python.",
)
"""Everyday chat requests in English and Arabic (the languages of pubctl's releases)."""


def device_name(device: str) -> str:
    """The GPU's name, or the CPU model (from /proc/cpuinfo on Linux, else platform)."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    if device == "mps":
        return f"Apple {platform.machine()} (MPS)"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def chat_prompts(tokenizer: Any, count: int) -> list[str]:
    """``count`` prompts rendered by the tokenizer's own chat template, ready for generation."""
    if not getattr(tokenizer, "chat_template", None):
        raise StageFailed(
            "The model's tokenizer has no chat template, so throughput cannot be measured on chat prompts "
            "(the merge stage should save the base model's template with the tokenizer)."
        )
    return [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}], tokenize=False, add_generation_prompt=True
        )
        for i in range(count)
    ]


def _synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))
    elif device == "mps":
        torch.mps.synchronize()


def measure_throughput(
    model_path: Path,
    dtype: str,
    device: str,
    settings: ThroughputSection,
    model: Any = None,
    trust_remote_code: bool = False,
) -> ThroughputRecord:
    """Time ``settings.runs`` generation runs over real chat prompts.

    ``model`` is the already loaded transformers model of ``model_path`` (the evaluate stage passes the one
    lm-eval loaded, on ``device``), or None to load it from ``model_path`` with ``dtype``.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    tokenizer.padding_side = "left"  # decoder-only batches are padded on the left so generation continues the text
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model is None:
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype, trust_remote_code=trust_remote_code).to(
            device
        )
    model.eval()
    prompts = chat_prompts(tokenizer, settings.prompts)
    batches = [
        tokenizer(prompts[i : i + settings.batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        for i in range(0, len(prompts), settings.batch_size)
    ]
    generate_kwargs = {
        "max_new_tokens": settings.new_tokens,
        "min_new_tokens": settings.new_tokens,  # EOS suppressed: every run generates the same number of tokens
        "do_sample": False,
        "pad_token_id": tokenizer.pad_token_id,
    }

    def one_run() -> int:
        generated = 0
        for batch in batches:
            inputs = {key: value.to(device) for key, value in batch.items()}
            output = model.generate(**inputs, **generate_kwargs)
            new = output.shape[1] - inputs["input_ids"].shape[1]
            if new != settings.new_tokens:
                raise StageFailed(f"generate() produced {new} new tokens per prompt, expected {settings.new_tokens}.")
            generated += new * output.shape[0]
        return generated

    speeds = []
    with torch.inference_mode():
        for _ in range(settings.warmup_runs):
            one_run()
        for _ in range(settings.runs):
            _synchronize(device)
            start = time.perf_counter()
            tokens = one_run()
            _synchronize(device)
            speeds.append(tokens / (time.perf_counter() - start))
    return ThroughputRecord(
        device=device_name(device),
        dtype=str(model.dtype).removeprefix("torch."),
        prompts=settings.prompts,
        new_tokens=settings.new_tokens,
        runs=settings.runs,
        batch_size=settings.batch_size,
        tokens_per_second_median=statistics.median(speeds),
        tokens_per_second_min=min(speeds),
        tokens_per_second_max=max(speeds),
        warmup_runs=settings.warmup_runs,
        tokens_per_run=settings.prompts * settings.new_tokens,
        device_type=device.split(":")[0],
        torch_threads=torch.get_num_threads(),
    )
