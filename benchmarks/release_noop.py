"""A finished `pubctl release demo` re-run, timed against `python -c "import torch"`; bytes each push sends.

    python benchmarks/release_noop.py [--runs 7] [--project DIR] [--json out.json]

Builds the demo release for real in a temporary project (or DIR): train, merge,
evaluate, card, check and push, to the Hub-compatible server of the tests
(tests/hub_server.py on 127.0.0.1, the real huggingface_hub client). Then:

- no-op: `pubctl release demo` with every stage up to date, each run in a fresh
  interpreter, interleaved with `python -c "import torch"` so machine load hits
  both alike; medians and their ratio (goal: <= 1.0);
- bytes of file content the Hub received: the first push (from the release), an
  unchanged re-push (`pubctl push demo`, which skips no stamp; goal: 0 and no
  commit), and a card-only change (a new card.summary, then `pubctl release demo`;
  goal: only README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))

from hub_server import HubServer  # noqa: E402 - a test module, found through the path above


def pubctl(*args: str, env: dict[str, str], cwd: Path, quiet: bool = True) -> float:
    """Run pubctl in a fresh interpreter; returns its wall time. A failure stops the benchmark."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args], cwd=cwd, env=env, capture_output=quiet, text=True
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"pubctl {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed


def torch_import() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--project", type=Path, help="project folder to build the demo in (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    project = args.project or Path(tempfile.mkdtemp(prefix="pubctl-release-noop-"))
    project.mkdir(parents=True, exist_ok=True)
    for folder in ("configs", "templates"):
        if not (project / folder).exists():
            shutil.copytree(REPO_ROOT / folder, project / folder)
    server = HubServer(socket.create_server(("127.0.0.1", 0))).start()
    env = dict(
        os.environ,
        PUBCTL_ROOT=str(project),
        PUBCTL_CACHE=os.environ.get("PUBCTL_CACHE", str(REPO_ROOT / "runs" / "_cache")),
        HF_ENDPOINT=server.url,
        HF_HUB_DISABLE_XET="1",
        HF_TOKEN="hf_benchmark_token",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_HOME=str(project / ".hf-home"),
        HF_DATASETS_OFFLINE="1",
    )
    repo_id = "pubctl-demo/tiny-qwen3-enhanced-kto"
    numbers: dict[str, Any] = {}
    try:
        build = pubctl("release", "demo", env=env, cwd=project)
        numbers["first_release_seconds"] = round(build, 1)
        numbers["first_push_file_bytes"] = server.file_bytes
        numbers["first_push_files"] = len(server.files(repo_id))

        before, commits = server.file_bytes, len(server.repos[repo_id].commits)
        pubctl("push", "demo", env=env, cwd=project)
        numbers["unchanged_repush_file_bytes"] = server.file_bytes - before
        numbers["unchanged_repush_commits"] = len(server.repos[repo_id].commits) - commits

        ours, theirs = [], []
        pubctl("release", "demo", env=env, cwd=project), torch_import()  # warm the file cache for both
        requests = len(server.requests)
        for _ in range(args.runs):
            ours.append(pubctl("release", "demo", env=env, cwd=project))
            theirs.append(torch_import())
        numbers["noop_hub_requests"] = len(server.requests) - requests
        numbers["noop_release_median_s"] = round(statistics.median(ours), 3)
        numbers["import_torch_median_s"] = round(statistics.median(theirs), 3)
        numbers["ratio"] = round(statistics.median(ours) / statistics.median(theirs), 2)

        import yaml

        config_path = project / "configs" / "demo.yaml"
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        config["card"]["summary"] = f"{config['card'].get('summary', '')} (edited by the benchmark)".strip()
        config_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
        before, old = server.file_bytes, server.files(repo_id)
        pubctl("release", "demo", env=env, cwd=project)
        new = server.files(repo_id)
        numbers["card_change_file_bytes"] = server.file_bytes - before
        numbers["card_change_files_changed"] = sorted(p for p in new if old.get(p) != new[p])
        numbers["card_change_readme_bytes"] = len(new["README.md"])
    finally:
        server.stop()

    print(f"project: {project}")
    print(f"first release (train..push): {numbers['first_release_seconds']} s")
    print(f"first push: {numbers['first_push_file_bytes']} bytes of file content, {numbers['first_push_files']} files")
    print(
        f"unchanged re-push (pubctl push demo): {numbers['unchanged_repush_file_bytes']} bytes, "
        f"{numbers['unchanged_repush_commits']} new commits"
    )
    print(
        f"card-only change: {numbers['card_change_file_bytes']} bytes, files changed "
        f"{numbers['card_change_files_changed']} (README.md is {numbers['card_change_readme_bytes']} bytes)"
    )
    print(
        f"no-op pubctl release demo: median {numbers['noop_release_median_s']} s over {args.runs} runs, "
        f"{numbers['noop_hub_requests']} Hub requests"
    )
    print(f"python -c 'import torch': median {numbers['import_torch_median_s']} s over {args.runs} runs")
    print(f"ratio: {numbers['ratio']}")
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
