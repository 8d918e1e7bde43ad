"""One process of a multi-process training run: ``python -m pipeline.stages.train_worker CONFIG --root ROOT``.

The train stage launches this module N times (torch.distributed.run on CPU,
accelerate launch on GPUs). Each process loads the same config, builds the same
trainer and joins the process group the launcher set up; only rank 0 writes the
adapter and the record. A user error is handed to the launching stage through
the status file it named, so it is printed once, with its exit code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.errors import PubctlError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.stages.train_worker")
    parser.add_argument("config", help="Path to the release's YAML config.")
    parser.add_argument("--root", required=True, help="Project root (configs/, cards/, runs/).")
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True)
    options = parser.parse_args(argv)

    from pipeline.config import load_config
    from pipeline.layout import Layout
    from pipeline.stages import train

    try:
        root = Path(options.root)
        config = load_config(options.config, root)
        train.train_process(config, Layout.for_release(config.name, root), resume=options.resume)
    except PubctlError as exc:
        if not train.report_worker_error(exc):
            sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
