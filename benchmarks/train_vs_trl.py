"""Wall time and peak memory of `pubctl train` against a bare TRL script doing the same training.

    python benchmarks/train_vs_trl.py [--runs 3] [--steps 24] [--method kto|dpo]

Both sides train the built-in tiny Qwen3 with the same LoRA (r 8, alpha 16 on
q/k/v/o), the same data (the bundled pairs; unpaired with TRL's helper and
shuffled with the seed for KTO), batch 4 x accumulation 2, the same learning
rate, max_length 128, the same number of optimizer steps, a checkpoint every 6
steps and the adapter plus tokenizer saved at the end; neither evaluates.
`pubctl train` adds what the bare script lacks: config validation, data
validation (every prompt tokenized against max_length), the resumable-run
fingerprint, provenance (git, package versions) and the results record.

Each side runs in a fresh interpreter (what a user waits for: imports included),
interleaved so machine load affects both alike. Wall time is the median of the
runs; peak memory is the child's maximum resident set size from os.wait4 (its
own, not the largest of all children). The training loop alone (a monotonic
clock around trainer.train on both sides) separates pubctl's fixed start-up and
bookkeeping cost from the loop. Goal: wall-time ratio <= 1.10.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LORA = {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
TRAINING = {
    "per_device_batch_size": 4,
    "gradient_accumulation_steps": 2,
    "learning_rate": 5.0e-4,
    "max_length": 128,
    "logging_steps": 1,
    "save_steps": 6,
    "seed": 42,
}

# The bare script: what a TRL user writes by hand for the same run (no pubctl import besides the model's path).
BARE = r"""
import json
import sys
import time
from pathlib import Path

from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer

method, steps, out, model_path, data_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
lora, training = {lora}, {training}
tokenizer = AutoTokenizer.from_pretrained(model_path)
model = AutoModelForCausalLM.from_pretrained(model_path, dtype="float32")
dataset = load_dataset("json", data_files=data_path, split="train").select_columns(["prompt", "chosen", "rejected"])
common = dict(
    output_dir=out, per_device_train_batch_size=training["per_device_batch_size"],
    gradient_accumulation_steps=training["gradient_accumulation_steps"], learning_rate=training["learning_rate"],
    max_steps=steps, logging_steps=training["logging_steps"], save_steps=training["save_steps"],
    seed=training["seed"], data_seed=training["seed"], bf16=False, max_length=training["max_length"],
    gradient_checkpointing=False, report_to="none", save_total_limit=2,
)
peft_config = LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                         target_modules=lora["target_modules"], task_type="CAUSAL_LM")
if method == "kto":
    from trl import KTOConfig, KTOTrainer, maybe_unpair_preference_dataset
    dataset = maybe_unpair_preference_dataset(dataset).shuffle(seed=training["seed"]).flatten_indices()
    trainer = KTOTrainer(model=model, args=KTOConfig(**common), train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config)
else:
    from trl import DPOConfig, DPOTrainer
    trainer = DPOTrainer(model=model, args=DPOConfig(**common), train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config)
start = time.monotonic()
trainer.train()
loop = time.monotonic() - start
trainer.save_model(str(Path(out) / "adapter"))
tokenizer.save_pretrained(str(Path(out) / "adapter"))
(Path(out) / "loop.json").write_text(json.dumps({"seconds": loop}))
"""


def measured(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.stderr.write(stderr.decode(errors="replace")[-4000:])
        raise SystemExit(f"{' '.join(argv[:4])} failed with exit {process.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # Linux reports kilobytes


def make_project(method: str, steps: int) -> Path:
    import yaml

    project = Path(tempfile.mkdtemp(prefix="pubctl-train-bench-"))
    shutil.copytree(ROOT / "configs", project / "configs")
    config = yaml.safe_load((project / "configs" / "demo.yaml").read_text(encoding="utf-8"))
    config["method"] = {"name": method, "beta": 0.1}
    config["lora"] = dict(LORA)
    config["data"] = {"train": "builtin:preferences"}
    config["training"] = {**TRAINING, "max_steps": steps, "max_prompt_length": None}
    (project / "configs" / "bench.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--method", choices=("kto", "dpo"), default="kto")
    options = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from pipeline.demo import PREFERENCES
    from pipeline.demo.tiny_model import tiny_qwen3_path

    cache = ROOT / "runs" / "_cache"
    model_path = tiny_qwen3_path(cache)  # built once, outside the timings
    project = make_project(options.method, options.steps)
    env = {
        **os.environ,
        "PUBCTL_ROOT": str(project),
        "PUBCTL_CACHE": str(cache),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "TOKENIZERS_PARALLELISM": "false",
        "HF_DATASETS_OFFLINE": "1",
        "TRL_EXPERIMENTAL_SILENCE": "1",
    }
    bare_script = project / "bare_trl.py"
    bare_script.write_text(BARE.replace("{lora}", repr(LORA)).replace("{training}", repr(TRAINING)), encoding="utf-8")
    pubctl = [sys.executable, "-m", "pipeline.cli", "train", "bench", "--no-resume"]
    bare_out = project / "bare-out"
    bare = [sys.executable, str(bare_script), options.method, str(options.steps), str(bare_out)]
    bare += [str(model_path), str(PREFERENCES)]

    results: dict[str, list[tuple[float, float, float]]] = {"pubctl": [], "trl": []}
    loops: dict[str, list[float]] = {"pubctl": [], "trl": []}
    for run in range(options.runs):
        shutil.rmtree(bare_out, ignore_errors=True)
        results["pubctl"].append(measured(pubctl, env, project))
        results["trl"].append(measured(bare, env, project))
        # the training loop alone, timed the same way on both sides (monotonic clock around trainer.train)
        bench_record = json.loads((project / "cards" / "bench" / "results.json").read_text(encoding="utf-8"))
        loops["pubctl"].append(bench_record["training"]["runtime_seconds_this_run"])
        loops["trl"].append(json.loads((bare_out / "loop.json").read_text(encoding="utf-8"))["seconds"])
        print(
            f"run {run + 1}: pubctl {results['pubctl'][-1][0]:.2f} s wall, {results['pubctl'][-1][1]:.2f} s CPU; "
            f"trl {results['trl'][-1][0]:.2f} s wall, {results['trl'][-1][1]:.2f} s CPU; "
            f"loops {loops['pubctl'][-1]:.2f} s / {loops['trl'][-1]:.2f} s"
        )
    record = json.loads((project / "cards" / "bench" / "results.json").read_text(encoding="utf-8"))["training"]
    assert record["steps"] == options.steps, record["steps"]

    wall = {side: statistics.median(w for w, _, _ in runs) for side, runs in results.items()}
    cpu = {side: statistics.median(c for _, c, _ in runs) for side, runs in results.items()}
    rss = {side: max(r for _, _, r in runs) for side, runs in results.items()}
    threads = env["OMP_NUM_THREADS"]
    print(f"\nmethod {options.method}, {options.steps} steps, {options.runs} runs each, OMP_NUM_THREADS={threads}")
    print(
        f"wall time (median): pubctl train {wall['pubctl']:.2f} s, bare TRL {wall['trl']:.2f} s, "
        f"ratio {wall['pubctl'] / wall['trl']:.3f} (goal <= 1.10)"
    )
    print(
        f"CPU time (median):  pubctl train {cpu['pubctl']:.2f} s, bare TRL {cpu['trl']:.2f} s, "
        f"ratio {cpu['pubctl'] / cpu['trl']:.3f}"
    )
    print(
        f"peak RSS (max):     pubctl train {rss['pubctl']:.0f} MiB, bare TRL {rss['trl']:.0f} MiB, "
        f"ratio {rss['pubctl'] / rss['trl']:.3f}"
    )
    loop = {side: statistics.median(values) for side, values in loops.items()}
    print(
        f"training loop (median): pubctl {loop['pubctl']:.2f} s, bare TRL {loop['trl']:.2f} s, "
        f"ratio {loop['pubctl'] / loop['trl']:.3f}"
    )
    shutil.rmtree(project)


if __name__ == "__main__":
    main()
