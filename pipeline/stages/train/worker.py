"""One process of a multi-process training run: ``python -m pipeline.stages.train.worker CONFIG --root ROOT``.

The train stage launches this module N times (torch.distributed.run on CPU,
accelerate launch on GPUs). Each process loads the same config, builds the same
trainer and joins the process group the launcher set up; only rank 0 writes the
adapter. Rank 0 hands its training record, or a user error (printed once, with
its exit code), to the launching stage through the status file it named
(launcher.py); nothing under cards/ is written here. Run by hand, without a
launching stage, rank 0 prints the record as JSON on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline.errors import PubctlError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.stages.train.worker")
    parser.add_argument("config", help="Path to the release's YAML config.")
    parser.add_argument("--root", required=True, help="Project root (configs/, cards/, runs/).")
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True)
    options = parser.parse_args(argv)

    from pipeline.config import load_config
    from pipeline.console import StageOutput
    from pipeline.layout import Layout
    from pipeline.stages.train.launcher import report_record, report_worker_error
    from pipeline.stages.train.stage import train_process

    try:
        root = Path(options.root)
        config = load_config(options.config, root)
        layout = Layout.for_release(config.name, root)
        # Each rank keeps what its libraries print in its own log; rank 0 shows the progress (ProgressReporter).
        rank = int(os.environ.get("RANK", "0"))
        log = layout.logs_dir / ("train.log" if rank == 0 else f"train-rank{rank}.log")
        libraries = ("transformers", "datasets", "huggingface_hub")
        with StageOutput(
            "train", log, header=f"pubctl train {config.name} (rank {rank})", libraries=libraries, quiet_bars=True
        ):
            record = train_process(config, layout, resume=options.resume)
    except PubctlError as exc:
        if not report_worker_error(exc):
            sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    if record is not None and not report_record(record):
        sys.stdout.write(record.model_dump_json(exclude_unset=True, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
