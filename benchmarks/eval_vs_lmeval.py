"""Wall time of `pubctl evaluate` against lm-eval run directly on the same model and tasks.

    python benchmarks/eval_vs_lmeval.py [--runs 3] [--limit N] [--no-cli]

Setup (untimed): a temporary project with configs/demo.yaml, the built-in tiny Qwen3 copied in as the
merged model, and one `pubctl evaluate demo` so the base model's results are cached (the timed pubctl
runs evaluate the tuned model only, as every run after the first does).

Timed, each in a fresh interpreter, interleaved so machine load affects all alike:
  pubctl          `pubctl evaluate demo` (lm-eval on the tuned model, base from cache, throughput, record)
  pubctl-no-tput  the same with evaluation.throughput.enabled: false (lm-eval work only)
  lm_eval-lib     one python process calling lm_eval.simple_evaluate once per task with its num_fewshot
  lm_eval-cli     `python -m lm_eval ... --num_fewshot K` once per task (the CLI's num_fewshot is global;
                  the demo's tasks use 10, 0 and 5 shots), summed
All use the same resolved task folder, device cpu, batch size 8 and seeds 1234 (the CLI has no bootstrap_iters
option; the demo's metrics are means, whose stderr lm-eval computes in closed form, so it changes nothing).
Medians are reported, with the ratios pubctl / lm_eval-lib (the goal is <= 1.10). The script also checks
that pubctl's recorded numbers equal those of the direct runs.
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

import yaml

REPO = Path(__file__).resolve().parent.parent
SEED = 1234

DIRECT_LIB = """
import json, sys
import lm_eval
from lm_eval.tasks import TaskManager
model, include, out, limit = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
tasks = json.loads(sys.argv[5])
results = {}
for name, shots in tasks:
    r = lm_eval.simple_evaluate(
        model="hf", model_args={"pretrained": model, "dtype": "float32"}, tasks=[name], num_fewshot=shots,
        task_manager=TaskManager(include_path=include, include_defaults=False), device="cpu", batch_size=8,
        limit=None if limit == "none" else int(limit), bootstrap_iters=200, random_seed=1234,
        numpy_random_seed=1234, torch_random_seed=1234, fewshot_random_seed=1234)
    results[name] = r["results"][name]
json.dump(results, open(out, "w"))
"""


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="Items per task (default: all of the demo's).")
    parser.add_argument("--no-cli", action="store_true", help="Skip the lm_eval-cli variant (three processes).")
    args = parser.parse_args()

    from pipeline.demo.tiny_model import tiny_qwen3_path
    from pipeline.evaluation.tasks import builtin_tasks_dir, materialize_tasks
    from pipeline.layout import cache_root

    work = Path(tempfile.mkdtemp(prefix="pubctl-eval-bench-"))
    try:
        root = work / "project"
        shutil.copytree(REPO / "configs", root / "configs")
        demo = yaml.safe_load((root / "configs" / "demo.yaml").read_text(encoding="utf-8"))
        tasks = [[task["name"], task["num_fewshot"]] for task in demo["evaluation"]["tasks"]]
        demo["evaluation"]["throughput"] = {**demo["evaluation"].get("throughput", {}), "enabled": False}
        (root / "configs" / "demo-no-tput.yaml").write_text(yaml.safe_dump(demo), encoding="utf-8")
        cache = cache_root(REPO)
        model = tiny_qwen3_path(cache)
        for release in ("demo", "demo-no-tput"):
            shutil.copytree(model, root / "runs" / release / "merge" / "model")
        merged = root / "runs" / "demo" / "merge" / "model"
        include = materialize_tasks(builtin_tasks_dir(), work / "tasks")
        env = {
            **os.environ,
            "PUBCTL_ROOT": str(root),
            "PUBCTL_CACHE": str(cache),
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
        }
        limit = ["--limit", str(args.limit)] if args.limit else []
        pubctl = shutil.which("pubctl")
        base_cmd = [pubctl] if pubctl else [sys.executable, "-m", "pipeline.cli"]
        commands = {
            "pubctl": [[*base_cmd, "evaluate", "demo", *limit]],
            "pubctl-no-tput": [[*base_cmd, "evaluate", "demo-no-tput", *limit]],
            "lm_eval-lib": [
                [
                    sys.executable,
                    "-c",
                    DIRECT_LIB,
                    str(merged),
                    str(include),
                    str(work / "direct.json"),
                    str(args.limit or "none"),
                    json.dumps(tasks),
                ]
            ],
            "lm_eval-cli": [
                [
                    sys.executable,
                    "-m",
                    "lm_eval",
                    "--model",
                    "hf",
                    "--model_args",
                    f"pretrained={merged},dtype=float32",
                    "--tasks",
                    name,
                    "--num_fewshot",
                    str(shots),
                    "--include_path",
                    str(include),
                    "--device",
                    "cpu",
                    "--batch_size",
                    "8",
                    "--seed",
                    str(SEED),
                    *(["--limit", str(args.limit)] if args.limit else []),
                ]
                for name, shots in tasks
            ],
        }
        if args.no_cli:
            del commands["lm_eval-cli"]
        # Untimed: the base results into the cache, and every file into the page cache.
        for argv_list in commands.values():
            for argv in argv_list:
                timed(argv, env, root)

        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv_list in commands.items():
                times[name].append(sum(timed(argv, env, root) for argv in argv_list))

        record = json.loads((root / "cards" / "demo" / "results.json").read_text(encoding="utf-8"))["evaluation"]
        direct = json.loads((work / "direct.json").read_text(encoding="utf-8"))
        for entry in record["results"]:
            theirs = direct[entry["task"]][f"{entry['metric']},none"]
            status = "equal" if theirs == entry["value"] else f"DIFFERENT (lm_eval {theirs})"
            print(f"{entry['task']}: pubctl {entry['metric']} = {entry['value']!r} ({status}), n = {entry['n']}")

        medians = {name: statistics.median(values) for name, values in times.items()}
        items = f"limit {args.limit}" if args.limit else "all items"
        print(f"\n{args.runs} runs each, demo tasks ({items}), tiny Qwen3 on cpu, os.cpu_count() = {os.cpu_count()}")
        for name, values in times.items():
            runs = ", ".join(f"{value:.1f}" for value in values)
            print(f"{name:>15}: median {medians[name]:6.1f} s  (runs: {runs})")
        print(f"ratio pubctl / lm_eval-lib:         {medians['pubctl'] / medians['lm_eval-lib']:.2f}")
        print(f"ratio pubctl-no-tput / lm_eval-lib: {medians['pubctl-no-tput'] / medians['lm_eval-lib']:.2f}")
        if "lm_eval-cli" in medians:
            print(f"ratio pubctl / lm_eval-cli:         {medians['pubctl'] / medians['lm_eval-cli']:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
