"""The train stage (entry ``pipeline.stages.train:run``), one module per part:

- ``stage``: ``run`` (checks, then trains here or launches processes) and ``train_process`` (one process's part);
- ``arguments``: the TRL version gate, TrainingArguments, the LoRA config and the checks on them;
- ``checkpoints``: the train folder's fingerprint, the checkpoint to resume from, the adapter swap;
- ``launcher`` and ``worker``: several processes, and the status file rank 0 answers through;
- ``callbacks``: the per-rank counter and the training clock (import transformers: loaded only to train);
- ``record``: the ``training`` section and the refusals of a run that did not really train.

Importing this package imports no heavy library.
"""

from __future__ import annotations

from pipeline.stages.train.arguments import check_trl_version
from pipeline.stages.train.checkpoints import RUNTIME_FILE, checkpoint_progress, last_checkpoint
from pipeline.stages.train.record import build_record, samples_seen
from pipeline.stages.train.stage import run, train_process

__all__ = [
    "RUNTIME_FILE",
    "build_record",
    "check_trl_version",
    "checkpoint_progress",
    "last_checkpoint",
    "run",
    "samples_seen",
    "train_process",
]
