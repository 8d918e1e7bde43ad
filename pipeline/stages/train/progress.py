"""What a person sees while training: the step on the stage's progress display, and a compact metrics line.

Replaces transformers' own ProgressCallback (a tqdm bar) and PrinterCallback (each log as a raw dict on
stdout): the trainer is built with ``disable_tqdm`` and its PrinterCallback removed (stage.py). Imports
transformers at the top: only the code that trains imports this module.
"""

from __future__ import annotations

import math
import time
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from pipeline.console import progress_begin, progress_update, say
from pipeline.stages.train.log_lines import metrics_line

LINE_INTERVAL_S = 10.0
"""The shortest time between two metrics lines (evaluations and the last step are always shown)."""


class ProgressReporter(TrainerCallback):
    """Feeds the stage's display (rank 0 only): the optimizer step, evaluation batches and metrics lines."""

    def __init__(self) -> None:
        self._last_line = -math.inf
        self._eval_batches = 0

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if state.is_world_process_zero:
            progress_begin(state.max_steps or None, "step", completed=state.global_step)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            progress_update(state.global_step)

    def on_prediction_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        self._eval_batches += 1
        loader = kwargs.get("eval_dataloader")
        of = f"/{len(loader)}" if loader is not None and hasattr(loader, "__len__") else ""
        progress_update(doing=f"evaluating {self._eval_batches}{of}")

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self._eval_batches = 0
        if state.is_world_process_zero:
            progress_update(doing="")

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        line = metrics_line(logs, state.global_step, state.max_steps or None)
        if line is None:
            return
        now = time.monotonic()
        last_step = bool(state.max_steps) and state.global_step >= state.max_steps
        if line.startswith("eval") or last_step or now - self._last_line >= LINE_INTERVAL_S:
            self._last_line = now
            say(line)
        if not line.startswith("eval"):
            progress_update(doing=line.split(" ", 2)[-1])  # the metrics, beside the step count
