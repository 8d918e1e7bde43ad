"""`pubctl release qwen3-0.6b-kto --rehearse` offline: wall time and peak RSS, default layers and all 28.

    python benchmarks/rehearsal.py [--layers 2 28] [--rows 32] [--config qwen3-0.6b-kto] [--json out.json]

Runs in a temporary project with the shipped configs. The model files are tests/qwen3_fixture.py's
stand-in for Qwen/Qwen3-0.6B's config.json and tokenizer (real widths, vocabulary, ids and chat template);
the data are rows in HuggingFaceH4/ultrafeedback_binarized's schema (tests/hub_schemas.py). Each
rehearsal runs in a fresh interpreter; its peak RSS is the child's ru_maxrss (wait4), so it covers the
whole process, model building, training, merging and lm-eval included.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))

from hub_schemas import aya_command_r_dpo_rows, h4_ultrafeedback_rows, write_parquet  # noqa: E402 - test helpers
from qwen3_fixture import write_qwen3_files  # noqa: E402

DATA = {"qwen3-0.6b-kto": ("0.6B", h4_ultrafeedback_rows), "qwen3-1.7b-arabic-cpo": ("1.7B", aya_command_r_dpo_rows)}


def rehearse(project: Path, config: str, layers: int, rows: int, env: dict[str, str]) -> dict[str, Any]:
    variant, make_rows = DATA[config]
    model_files = write_qwen3_files(project / "model-files" / variant, variant)
    data = write_parquet(make_rows(max(rows, 8)), project / "data" / f"{config}.parquet")
    shutil.rmtree(project / "runs" / f"{config}-rehearsal", ignore_errors=True)
    shutil.rmtree(project / "cards" / f"{config}-rehearsal", ignore_errors=True)
    command = [sys.executable, "-m", "pipeline.cli", "release", config, "--rehearse", "--offline"]
    command += ["--model-files", str(model_files), "--data", str(data), "--layers", str(layers), "--rows", str(rows)]
    log = project / f"{config}-{layers}.log"
    start = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"rehearsal failed ({code}); log: {log}\n" + log.read_text()[-3000:])
    return {"config": config, "layers": layers, "rows": rows, "wall_seconds": round(seconds, 1),
            "peak_rss_mib": round(usage.ru_maxrss / 1024)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="qwen3-0.6b-kto", choices=sorted(DATA))
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 28])
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pubctl-rehearsal-bench-") as tmp:
        project = Path(tmp)
        shutil.copytree(REPO_ROOT / "configs", project / "configs")
        shutil.copytree(REPO_ROOT / "templates", project / "templates")
        env = {**os.environ, "PUBCTL_ROOT": str(project), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        env.setdefault("PUBCTL_CACHE", str(REPO_ROOT / "runs" / "_cache"))
        rows = []
        for layers in args.layers:
            row = rehearse(project, args.config, layers, args.rows, env)
            print(f"{row['config']} --rehearse --layers {layers}: {row['wall_seconds']} s, peak RSS "
                  f"{row['peak_rss_mib']} MiB")  # fmt: skip
            rows.append(row)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
