"""Cost of the Enhanced KTO loss against TRL's KTO loss: the loss alone, and whole training steps.

    python benchmarks/enhanced_kto_overhead.py [--runs 5] [--steps 6] [--batch 4096]

1. Loss alone: forward + backward of ``enhanced_kto_losses`` on random log-probs of ``--batch``
   examples, with every component on (the defaults) and with every component off (KTO's 1 − σ(u)).
2. Training steps: TRL's KTOTrainer and pubctl's EnhancedKTOTrainer (defaults) on the built-in tiny
   Qwen3 with a LoRA (r=8 on q/k/v/o), ``--steps`` optimizer steps of 4 examples on the bundled
   preference data. The tiny model makes the forward passes cheap, so this is an upper bound on the
   loss's relative overhead; on a real model the forward passes dominate.

Runs are interleaved so machine load affects both alike; medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def time_loss(batch: int, runs: int) -> dict[str, float]:
    import torch

    from pipeline.methods.enhanced_kto_loss import EnhancedKTOLossConfig, enhanced_kto_losses

    generator = torch.Generator().manual_seed(0)
    reference = -50 + 10 * torch.randn(batch, generator=generator)
    policy0 = reference + torch.randn(batch, generator=generator)
    mean_logps = -torch.rand(batch, generator=generator) * 3 - 0.01
    desirable = torch.rand(batch, generator=generator) > 0.5
    configs = {
        "enhanced (all on)": EnhancedKTOLossConfig(),
        "kto (all off)": EnhancedKTOLossConfig(value_function=False, probability_weighting=False, odds_ratio=False),
    }
    samples: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(runs):
        for name, config in configs.items():
            policy = policy0.clone().requires_grad_(True)
            start = time.perf_counter()
            for _ in range(20):
                out = enhanced_kto_losses(policy, reference, desirable, config, kl=0.1, mean_logps=mean_logps)
                out.losses.mean().backward()
            samples[name].append((time.perf_counter() - start) / 20)
    return {name: statistics.median(values) for name, values in samples.items()}


def time_training(steps: int, runs: int) -> dict[str, float]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_callback import PrinterCallback
    from trl import KTOConfig, KTOTrainer, maybe_unpair_preference_dataset

    from pipeline.demo.tiny_model import DATA_DIR, tiny_qwen3_path
    from pipeline.layout import cache_root
    from pipeline.methods.enhanced_kto_trainer import EnhancedKTOConfig, EnhancedKTOTrainer

    model_path = tiny_qwen3_path(cache_root())
    rows = [json.loads(line) for line in (DATA_DIR / "preferences.jsonl").read_text(encoding="utf-8").splitlines()]
    paired = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows[: 2 * steps]])
    dataset = maybe_unpair_preference_dataset(paired)
    half = len(dataset) // 2
    dataset = dataset.select([i for pair in zip(range(half), range(half, 2 * half), strict=True) for i in pair])

    kinds = {"kto": (KTOTrainer, KTOConfig), "enhanced_kto": (EnhancedKTOTrainer, EnhancedKTOConfig)}
    samples: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(runs):
        for name, (trainer_class, config_class) in kinds.items():
            with tempfile.TemporaryDirectory() as out:
                args = config_class(
                    output_dir=str(Path(out)),
                    per_device_train_batch_size=4,
                    max_steps=steps,
                    max_length=128,
                    learning_rate=5e-4,
                    logging_steps=1,
                    save_strategy="no",
                    report_to=[],
                    use_cpu=True,
                    seed=42,
                    disable_tqdm=True,
                )
                trainer = trainer_class(
                    model=AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32),
                    args=args,
                    train_dataset=dataset,
                    processing_class=AutoTokenizer.from_pretrained(model_path),
                    peft_config=LoraConfig(r=8, lora_alpha=16, target_modules=TARGETS, task_type="CAUSAL_LM"),
                )
                trainer.remove_callback(PrinterCallback)  # the per-step log dicts would drown the report
                start = time.perf_counter()
                trainer.train()
                samples[name].append((time.perf_counter() - start) / steps)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=4096)
    args = parser.parse_args()
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, device cpu")
    loss = time_loss(args.batch, args.runs)
    print(f"loss alone, forward + backward, batch {args.batch} (median of {args.runs} runs):")
    for name, seconds in loss.items():
        print(f"  {name:<18} {seconds * 1e3:8.3f} ms")
    train = time_training(args.steps, args.runs)
    print(f"tiny-qwen3 + LoRA, {args.steps} steps of 4 examples (median of {args.runs} runs):")
    for name, seconds in train.items():
        print(f"  {name:<18} {seconds * 1e3:8.1f} ms/step")
    print(f"  enhanced / kto      {train['enhanced_kto'] / train['kto']:8.3f}x")


if __name__ == "__main__":
    main()
