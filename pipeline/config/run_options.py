"""Config fields that say how to run, not what to compute."""

from __future__ import annotations

RUN_OPTIONS = (
    "training.report_to",
    "training.save_total_limit",
    "training.launcher.main_process_port",
    "evaluation.device",
    "evaluation.batch_size",
)
"""Where logs stream, how many checkpoints are kept, the rendezvous port, and where and how many items at a
time lm-eval scores (its scores depend on neither). No stage's stamp includes them (pipeline.stage), so
changing one makes nothing stale."""
