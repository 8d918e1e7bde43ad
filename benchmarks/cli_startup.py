"""Wall time of light pubctl commands against `python -c "import torch"` on the same machine.

    python benchmarks/cli_startup.py [--runs 7] [-- pubctl args ...]

Each command runs in a fresh interpreter (what a user waits for), interleaved with the torch
import so that machine load affects both alike; the median of the runs is reported.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("pubctl_args", nargs="*", default=["--help"])
    args = parser.parse_args()
    pubctl = shutil.which("pubctl")
    command = [pubctl, *args.pubctl_args] if pubctl else [sys.executable, "-m", "pipeline.cli", *args.pubctl_args]
    torch_import = [sys.executable, "-c", "import torch"]
    timed(command), timed(torch_import)  # warm the file cache for both
    ours, theirs = [], []
    for _ in range(args.runs):
        ours.append(timed(command))
        theirs.append(timed(torch_import))
    ours_median, torch_median = statistics.median(ours), statistics.median(theirs)
    print(f"pubctl {' '.join(args.pubctl_args)}: median {ours_median:.3f} s over {args.runs} runs")
    print(f"python -c 'import torch': median {torch_median:.3f} s over {args.runs} runs")
    print(f"ratio: {ours_median / torch_median:.2f}")


if __name__ == "__main__":
    main()
