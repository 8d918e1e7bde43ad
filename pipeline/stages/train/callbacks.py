"""The callbacks pubctl adds to every trainer: what each rank did, and how long training took.

Imports transformers at the top: only the code that runs training imports this
module, so ``pubctl --help`` and the config never pay for it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from pipeline.stages.train.checkpoints import RUNTIME_FILE


class RankCounter(TrainerCallback):
    """Counts what this process did: optimizer steps and micro-batches (the proof every rank trained)."""

    def __init__(self) -> None:
        self.steps = 0
        self.micro_batches = 0

    def on_substep_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.micro_batches += 1

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self.steps += 1
        self.micro_batches += 1  # the accumulation step that ends in the optimizer step

    def summary(self) -> dict[str, Any]:
        return {
            "rank": int(os.environ.get("RANK", "0")),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "optimizer_steps": self.steps,
            "micro_batches": self.micro_batches,
        }


class RuntimeClock(TrainerCallback):
    """Monotonic training time, written into every checkpoint so resumed runs add up their parts."""

    def __init__(self, earlier: float) -> None:
        self.earlier = earlier
        self.started: float | None = None

    def start(self) -> None:
        self.started = time.monotonic()

    def elapsed(self) -> float:
        if self.started is None:
            raise RuntimeError("RuntimeClock.start() was not called before training")
        return time.monotonic() - self.started

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        from pipeline.atomic import atomic_write_text

        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            total = {"runtime_seconds": self.earlier + self.elapsed()}
            atomic_write_text(folder / RUNTIME_FILE, json.dumps(total) + "\n")


def gather(summary: dict[str, Any], world_size: int) -> list[dict[str, Any]]:
    """Every rank's RankCounter summary, on every rank (one collective)."""
    if world_size <= 1:
        return [summary]
    import torch.distributed as dist

    gathered: list[Any] = [None] * world_size
    dist.all_gather_object(gathered, summary)
    return sorted(gathered, key=lambda item: item["rank"])
