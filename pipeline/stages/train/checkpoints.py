"""The train folder runs/NAME/train/: whose checkpoints it holds, which one to resume from, how far it got.

Resuming is the default, so every rule that keeps two different runs from being
mixed, or a half-written checkpoint from being trusted, lives here.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import UsageError

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig
    from pipeline.layout import Layout

RUN_FILE = "pubctl-run.json"
"""In runs/NAME/train/: the fingerprint of what the checkpoints were trained on (resume refuses a different run)."""
RUNTIME_FILE = "pubctl-runtime.json"
"""In each checkpoint: the training time up to it, so a resumed run records the time of all its parts."""


RESUMABLE = ("max_steps", "epochs", "logging_steps", "save_steps", "save_total_limit", "report_to", "launcher")
"""training fields a resume may change: the step budget, logging, saving and where logs go (the launcher's
process count is in the batch below)."""


def run_fingerprint(config: ReleaseConfig, layout: Layout) -> str:
    """Hash of what checkpoints depend on: the base's and the data's contents (not just their names), the
    method, the LoRA and every training field that shapes the weights; the step budget, logging and saving
    may change between resumes."""
    import hashlib

    from pipeline.lineage import base_model_key, dataset_key

    t = config.training
    payload = {
        "model": config.model.model_dump(mode="json"),
        "base_model": base_model_key(config, layout, None),
        "data": config.data.model_dump(mode="json"),
        "dataset": dataset_key(config, layout, None),
        "method": config.method.model_dump(mode="json"),
        "lora": config.lora.model_dump(mode="json"),
        "training": t.model_dump(mode="json", exclude=set(RESUMABLE)),
        "processes": t.launcher.num_processes,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def claim_train_dir(config: ReleaseConfig, layout: Layout, *, resume: bool) -> None:
    """Start over (--no-resume) or check that the checkpoints there belong to this run before resuming."""
    from pipeline.atomic import atomic_write_text

    checkpoints = sorted(layout.train_dir.glob("checkpoint-*")) if layout.train_dir.is_dir() else []
    # A run killed while swapping the adapter into place leaves the old one aside (replace_dir); the release lock
    # is held, so nothing else is using it.
    for leftover in layout.train_dir.glob(".adapter-old-*") if layout.train_dir.is_dir() else []:
        shutil.rmtree(leftover, ignore_errors=True)
    run_file = layout.train_dir / RUN_FILE
    fingerprint = run_fingerprint(config, layout)
    if not resume:
        for checkpoint in checkpoints:
            shutil.rmtree(checkpoint)
    elif checkpoints:
        recorded = json.loads(run_file.read_text(encoding="utf-8")).get("fingerprint") if run_file.is_file() else None
        if recorded != fingerprint:
            raise UsageError(
                f"{layout.train_dir} holds checkpoints of a different training run (the base model, the data or its "
                "contents, the method, LoRA or training settings changed since they were written); resuming from "
                "them would mix two runs. "
                f"Start over with: pubctl train {config.name} --no-resume."
            )
    atomic_write_text(run_file, json.dumps({"fingerprint": fingerprint}, indent=2) + "\n")


def last_checkpoint(layout: Layout) -> str | None:
    """The newest complete checkpoint-N folder of the release's train folder.

    transformers writes a checkpoint in place (weights, optimizer, RNG state, then trainer_state.json) and
    pubctl adds its runtime file after that, so a run killed while saving leaves a newer folder without them.
    transformers' get_last_checkpoint would pick that folder and the resume would fail on it (or, missing only
    the runtime file, record too short a runtime); the newest folder holding both is the one to resume from.
    """
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    if not layout.train_dir.is_dir():
        return None
    complete = [
        (int(folder.name.removeprefix(f"{PREFIX_CHECKPOINT_DIR}-")), folder)
        for folder in layout.train_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*")
        if folder.name.removeprefix(f"{PREFIX_CHECKPOINT_DIR}-").isdigit()
        and (folder / "trainer_state.json").is_file()
        and (folder / RUNTIME_FILE).is_file()
    ]
    return str(max(complete)[1]) if complete else None


@dataclass(frozen=True)
class Progress:
    """How far the checkpoint a run resumes from got."""

    step: int = 0
    """Its optimizer step (0: no checkpoint, a fresh start)."""
    runtime: float = 0.0
    """Training seconds up to it, all earlier parts together."""
    total: int | None = None
    """The run's total optimizer steps as the trainer planned them."""
    complete: bool = False
    """It already holds the whole run: the stage was stopped after its last save, before it finished."""

    def describe(self, checkpoint: str) -> str:
        of = f" of {self.total}" if self.total else ""
        return f"{Path(checkpoint).name} (step {self.step}{of})"


def checkpoint_progress(config: ReleaseConfig, checkpoint: str | None) -> Progress:
    """Step, cumulative training time and completeness of ``checkpoint``."""
    if checkpoint is None:
        return Progress()
    folder = Path(checkpoint)
    state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    step = int(state["global_step"])
    t = config.training
    epoch = float(state.get("epoch") or 0)
    past = step > t.max_steps if t.max_steps > 0 else epoch > t.epochs + 1e-9
    if past:
        budget = f"training.max_steps ({t.max_steps})" if t.max_steps > 0 else f"training.epochs ({t.epochs})"
        raise UsageError(
            f"{folder} is at step {step}, past {budget}: the run would record more training than the config "
            f"asks for. Raise {budget.split(' ')[0]} back, or start over with: pubctl train {config.name} --no-resume."
        )
    complete = step == t.max_steps if t.max_steps > 0 else epoch >= t.epochs - 1e-9
    earlier = json.loads((folder / RUNTIME_FILE).read_text(encoding="utf-8"))["runtime_seconds"]
    # The config's budget when it names one (it may have been raised since); else what the trainer planned.
    planned = state.get("max_steps")
    total = t.max_steps if t.max_steps > 0 else planned if isinstance(planned, int) and planned > 0 else None
    return Progress(step, float(earlier), total, complete)


def resume_hint(config: ReleaseConfig, layout: Layout) -> str:
    """What ``pubctl train NAME`` will do after an interruption: resume from which checkpoint, or start over."""
    checkpoint = last_checkpoint(layout)
    if checkpoint is None:
        return (
            f"no checkpoint was written yet (one every training.save_steps = {config.training.save_steps} steps): "
            f"`pubctl train {config.name}` starts over"
        )
    return f"`pubctl train {config.name}` resumes from {checkpoint_progress(config, checkpoint).describe(checkpoint)}"


FINAL_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")
"""What of a checkpoint is the adapter itself (the rest is optimizer, scheduler and RNG state)."""


def adapter_from_checkpoint(checkpoint: str, staging: Path) -> None:
    """The adapter a complete checkpoint holds, copied into ``staging`` as save_model would have written it."""
    staging.mkdir(parents=True, exist_ok=True)
    for name in FINAL_ADAPTER_FILES:
        source = Path(checkpoint) / name
        if source.is_file():
            shutil.copy2(source, staging / name)
    if not (staging / "adapter_config.json").is_file():
        raise UsageError(f"{checkpoint} holds no adapter_config.json: it is not a LoRA checkpoint pubctl wrote.")


def replace_dir(staging: Path, target: Path) -> None:
    """Put ``staging`` at ``target``; the old folder is removed only once the new one is in place."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))  # removed below
        target.rename(old / target.name)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old)
