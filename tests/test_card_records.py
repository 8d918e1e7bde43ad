"""Results records the card and check tests write by hand (no test functions here).

Three kinds, built with pipeline.results models so they are valid records:
a realistic run, one mirroring the published bad card of shared/seeds/000 and
one full of hostile strings.
"""

from __future__ import annotations

import math
from pathlib import Path

from pipeline.layout import Layout
from pipeline.results import (
    BenchmarkResult,
    DatasetRecord,
    EvaluationRecord,
    FileEntry,
    Hyperparameters,
    LoraRecord,
    MergeRecord,
    ModelRecord,
    Provenance,
    Results,
    ThroughputRecord,
    TrainingRecord,
    Waiver,
    write_results,
)

HOSTILE = {
    "yaml": "key: value\n- item\n---\n# not a heading",
    "markdown": "| pipe | *bold* _it_ [link](http://x) <b>html</b> `code` ![img](y.png) \\ & # ~ costs $5, $x^2$",
    "jinja": "{{ 7*7 }} {% if true %}x{% endif %} {# c #} $x^",
    "arabic": "نموذج عربي: «اختبار» ١٢٣",
    "newlines": "line one\nline two\r\nline three",
}
HOSTILE_TEXT = " ".join(HOSTILE.values())


def log_history(steps: int, *, kl: bool = True) -> list[dict]:
    """A plausible decreasing-loss Trainer log with DPO/KTO-style rewards."""
    history = []
    for step in range(1, steps + 1):
        entry = {
            "step": step,
            "epoch": step / steps,
            "loss": round(0.6931 * math.exp(-step / (steps * 1.5)), 6),
            "learning_rate": round(5e-4 * (1 - (step - 1) / steps), 10),
            "rewards/chosen": round(0.01 * step, 6),
            "rewards/rejected": round(-0.008 * step, 6),
            "rewards/margins": round(0.018 * step, 6),
        }
        if kl:
            entry["kl"] = round(0.002 * step, 6)
        history.append(entry)
    return history


def realistic_record(release: str = "t", *, method: str = "kto", method_params: dict | None = None) -> Results:
    steps = 12
    history = log_history(steps, kl=method in ("kto", "enhanced_kto"))
    record = Results(
        release=release,
        model=ModelRecord(
            base_model="Qwen/Qwen3-0.6B",
            base_model_revision="c1899de289a04d12100db370d81485cdf75e47ca",
            architecture="Qwen3ForCausalLM",
            parameters=596049920,
            dtype="bfloat16",
            files=[
                FileEntry(path="model.safetensors", size=596049920 * 2 + 30_000, sha256="a" * 64),
                FileEntry(path="config.json", size=1_400, sha256="b" * 64),
            ],
        ),
        training=TrainingRecord(
            method=method,
            method_params=method_params if method_params is not None else {"beta": 0.1, "desirable_weight": 1.0},
            datasets=[
                DatasetRecord(
                    id="HuggingFaceH4/ultrafeedback_binarized", split="train_prefs", revision="3949bf5", rows=960
                )
            ],
            hyperparameters=Hyperparameters(
                epochs=1,
                per_device_batch_size=4,
                gradient_accumulation_steps=2,
                effective_batch_size=8,
                learning_rate=5e-4,
                max_length=128,
                seed=42,
                lora=LoraRecord(r=8, alpha=16, dropout=0.0, target_modules=["q_proj", "v_proj"]),
            ),
            steps=steps,
            samples=96,
            runtime_seconds=41.7,
            final_loss=history[-1]["loss"],
            log_history=history,
        ),
        merge=MergeRecord(strategy="streaming", parity_max_abs_diff=1.2e-6, probe_prompts=4, parity_adapter_effect=0.8),
        evaluation=EvaluationRecord(
            harness="lm-eval",
            harness_version="0.4.13",
            results=[
                BenchmarkResult(
                    task="hellaswag",
                    dataset_id="Rowan/hellaswag",
                    split="validation",
                    num_fewshot=10,
                    metric="acc_norm",
                    value=0.4213,
                    stderr=0.0049,
                    n=10042,
                    base_value=0.4170,
                    chance=0.25,
                ),
                BenchmarkResult(
                    task="truthfulqa_mc2",
                    dataset_id="truthfulqa/truthful_qa",
                    dataset_config="multiple_choice",
                    split="validation",
                    num_fewshot=0,
                    metric="acc",
                    value=0.4587,
                    stderr=0.0151,
                    n=817,
                    base_value=0.4402,
                    chance=None,
                ),
            ],
            throughput=ThroughputRecord(
                device="NVIDIA H100 80GB HBM3",
                dtype="bfloat16",
                prompts=8,
                new_tokens=128,
                runs=5,
                tokens_per_second_median=812.0,
                tokens_per_second_min=790.5,
                tokens_per_second_max=830.25,
            ),
        ),
        provenance=Provenance(
            pubctl_version="0.1.0",
            git_commit="0123456789abcdef0123456789abcdef01234567",
            created_at="2026-11-21T12:00:00+00:00",
            config_sha256="c" * 64,
            versions={"torch": "2.13.0", "transformers": "5.23.0", "trl": "1.16.0", "lm_eval": "0.4.13"},
            hardware={"device": "cuda", "gpus": ["NVIDIA H100 80GB HBM3"]},
        ),
    )
    link(record)
    return record


def link(record: Results) -> None:
    """The lineage the stages record: one adapter trained and merged, the merged files scored, one base."""
    from pipeline.lineage import files_digest, lineage

    base, merged = "hub:Qwen/Qwen3-0.6B@c1899de289a04d12100db370d81485cdf75e47ca", files_digest(record.model.files)
    record.training.lineage = lineage({"base_model": base, "dataset": "hub:x@3949bf5"}, {"adapter": "a" * 64})
    record.merge.lineage = lineage({"adapter": "a" * 64, "base_model": base}, {"merged_model": merged})
    record.evaluation.lineage = lineage({"merged_model": merged, "base_model": base})


def bad_card_record(release: str = "bad") -> Results:
    """The published seed-000 card as a record: every number in it is false."""
    record = realistic_record(release, method="cpo", method_params={"beta": 0.1})
    record.model = record.model.model_copy(
        update={
            "base_model": "Qwen/Qwen3-1.7B",
            "parameters": 500_000_000,  # "~0.5B" for a 1.7B base ...
            # ... while the files hold 1.72B bf16 parameters.
            "files": [FileEntry(path="model.safetensors", size=3_441_185_608, sha256="d" * 64)],
        }
    )
    record.training = record.training.model_copy(
        update={
            "samples": 3,
            "steps": 0,
            "final_loss": 0.0,
            "runtime_seconds": 0.005,
            "log_history": [{"step": 0, "loss": 0.0}],
            # The evaluation set listed as training data.
            "datasets": [DatasetRecord(id="Rowan/hellaswag", split="validation", revision=None, rows=3)],
        }
    )
    record.evaluation = record.evaluation.model_copy(
        update={
            "throughput": ThroughputRecord(
                device="",
                dtype="bfloat16",
                prompts=1,
                new_tokens=1,
                runs=100,
                tokens_per_second_median=6244.5,
                tokens_per_second_min=6244.5,
                tokens_per_second_max=6244.5,
            )
        }
    )
    return record


def hostile_record(release: str = "hostile") -> Results:
    record = realistic_record(release)
    record.training = record.training.model_copy(
        update={
            "method_params": {"beta": 0.1, "note": HOSTILE_TEXT},
            "datasets": [DatasetRecord(id=HOSTILE["markdown"], split=HOSTILE["newlines"], revision=None, rows=96)],
        }
    )
    rows = list(record.evaluation.results)
    rows.append(
        BenchmarkResult(
            task=HOSTILE["jinja"],
            dataset_id=HOSTILE["yaml"],
            dataset_config=HOSTILE["arabic"],
            split=HOSTILE["newlines"],
            num_fewshot=5,
            metric="acc",
            value=0.3125,
            stderr=0.02,
            n=512,
            base_value=0.30,
            chance=0.25,
        )
    )
    record.evaluation = record.evaluation.model_copy(
        update={
            "results": rows,
            "throughput": record.evaluation.throughput.model_copy(update={"device": HOSTILE["markdown"]}),
        }
    )
    record.waivers = [Waiver(check="near_chance", reason=HOSTILE_TEXT)]
    return record


def write_record(root: Path, record: Results) -> Layout:
    layout = Layout.for_release(record.release, root)
    write_results(layout.results, record)
    return layout
