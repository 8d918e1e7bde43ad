"""Wall time of `pubctl card demo` against `python -c "import torch"`, and what `pubctl card` imports.

    python benchmarks/card_speed.py [--runs 7] [--record cards/demo/results.json]

Three card timings:
- cold: no plots on disk, every figure drawn (matplotlib imported, in the drawing
  process `pubctl card` starts before it loads the config when a CPU is idle);
- check: `pubctl card demo --check`, which draws every figure again to compare (CI);
- re-render: the same record again: figures whose embedded input digest matches are
  reused, nothing heavy imported (the common `pubctl card` / release-chain case).
And two floors, so a ratio can be read against what no card code can go below: a
bare interpreter, and importing matplotlib's figure and Agg canvas (what drawing
a single figure needs first). Wall and CPU (user+sys of the child) medians are
both reported: on a shared, loaded machine the CPU time is the steadier number.

Every command runs as a user's install runs it: the `pubctl` console script of this
interpreter (not a version manager's shim on PATH, which adds its own start-up),
with bytecode caching on (PYTHONDONTWRITEBYTECODE is dropped for the children, as
pip's installs are compiled). The card is rendered in a temporary project
(configs/ and templates/ copied from this checkout) from the demo's committed
record when there is one, else from the realistic record the card tests use.
Each command runs in a fresh interpreter, interleaved with the torch import so
that machine load affects both alike; medians are reported. The goal is a ratio
of at most 0.3.

The module list is sys.modules after `pubctl card demo` ran in-process,
grouped by top-level package; any heavy package in it is a bug.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from pipeline.plot_png import spare_cpus

ROOT = Path(__file__).resolve().parent.parent

HEAVY = ("torch", "transformers", "trl", "peft", "datasets", "lm_eval", "accelerate")


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds user+sys) of one run in a fresh interpreter."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def make_project(record_path: Path | None) -> Path:
    project = Path(tempfile.mkdtemp(prefix="pubctl-card-speed-"))
    shutil.copytree(ROOT / "configs", project / "configs")
    shutil.copytree(ROOT / "templates", project / "templates")
    target = project / "cards" / "demo" / "results.json"
    target.parent.mkdir(parents=True)
    if record_path is not None and record_path.is_file():
        shutil.copy(record_path, target)
        print(f"record: {record_path}")
    else:
        # No demo run committed yet: the card tests' realistic record, renamed to the demo release.
        sys.path.insert(0, str(ROOT / "tests"))
        from test_card_records import realistic_record

        record = realistic_record("demo", method="enhanced_kto", method_params=_demo_method_params())
        target.write_text(record.to_json(), encoding="utf-8")
        print("record: tests/test_card_records.realistic_record (no cards/demo/results.json yet)")
    return project


def _demo_method_params() -> dict:
    from pipeline.config import load_config

    return load_config("demo", ROOT).method.model_dump()


def imported_modules(project: Path, env: dict[str, str]) -> list[str]:
    shutil.rmtree(project / "cards" / "demo" / "plots", ignore_errors=True)  # the cold path imports the most
    script = (
        "import sys, json\n"
        "from pipeline.cli import app\n"
        "try:\n"
        "    app(['card', 'demo'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, env=env, cwd=project
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def pubctl_command() -> list[str]:
    """This interpreter's own `pubctl` console script, else `python -m pipeline.cli`."""
    script = Path(sysconfig.get_path("scripts")) / "pubctl"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "pipeline.cli"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--record", type=Path, default=ROOT / "cards" / "demo" / "results.json")
    args = parser.parse_args()

    project = make_project(args.record)
    plots = project / "cards" / "demo" / "plots"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PUBCTL_ROOT"] = str(project)
    card = [*pubctl_command(), "card", "demo"]
    commands = {
        "cold": card,
        "check": [*card, "--check"],
        "re-render": card,
        "torch": [sys.executable, "-c", "import torch"],
        "python": [sys.executable, "-c", "pass"],
        "matplotlib": [sys.executable, "-c", "import matplotlib.figure, matplotlib.backends.backend_agg"],
    }
    samples: dict[str, list[tuple[float, float]]] = {kind: [] for kind in commands}
    drawing_process = 0  # cold runs started with a CPU to spare: the rule `pubctl card` starts its drawing process by
    try:
        for command in (card, commands["torch"], commands["matplotlib"]):  # warm the file and bytecode caches
            timed(command, env, project)
        for _ in range(args.runs):
            for kind, command in commands.items():
                if kind == "cold":
                    shutil.rmtree(plots, ignore_errors=True)  # every figure drawn
                    drawing_process += spare_cpus() >= 2
                samples[kind].append(timed(command, env, project))
        modules = imported_modules(project, env)
    finally:
        shutil.rmtree(project)

    def median(kind: str, index: int) -> float:
        return statistics.median(sample[index] for sample in samples[kind])

    labels = {
        "cold": "pubctl card demo (cold)",
        "check": "pubctl card demo --check",
        "re-render": "pubctl card demo (re-render)",
        "torch": "python -c 'import torch'",
        "python": "floor: python -c pass",
        "matplotlib": "floor: import matplotlib Agg",
    }
    print(f"command: {' '.join(card)}")
    for kind, label in labels.items():
        print(f"{label:30s} wall median {median(kind, 0):.3f} s   CPU median {median(kind, 1):.3f} s")
    for kind in ("cold", "check", "re-render", "python", "matplotlib"):
        print(
            f"ratio {kind:10s} / import torch: wall {median(kind, 0) / median('torch', 0):.2f}, "
            f"CPU {median(kind, 1) / median('torch', 1):.2f}"
            + (" (goal <= 0.3)" if kind in ("cold", "re-render") else "")
        )
    print(f"({args.runs} runs each, interleaved; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")
    print(
        f"cold runs begun with a CPU to spare, so drawn by the process started before the config loads: "
        f"{drawing_process} of {args.runs} (the others drew in the command's own process)"
    )
    packages: dict[str, int] = {}
    for name in modules:
        top = name.split(".")[0]
        packages[top] = packages.get(top, 0) + 1
    heavy = sorted(name for name in packages if name in HEAVY)
    third_party = {n: c for n, c in packages.items() if n not in sys.stdlib_module_names and not n.startswith("_")}
    print(f"modules imported by a cold `pubctl card demo`: {len(modules)} ({len(packages)} top-level names)")
    print("  non-stdlib: " + ", ".join(f"{n} ({c})" for n, c in sorted(third_party.items(), key=lambda kv: -kv[1])))
    print(f"heavy packages imported: {heavy or 'none'}")


if __name__ == "__main__":
    main()
