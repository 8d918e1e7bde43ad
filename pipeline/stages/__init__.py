"""The six stages of a release, in chain order, each declared once (see pipeline.stage for the contract).

This module is the cache policy in one place: what each stage reads (config
fields, files, library versions), what it owns in the record, what it leaves.
The chain, the stamps, ``pubctl list`` and push's stamp read these declarations;
each stage's code lives in its own module or folder and is imported only when
it runs. Light: importing it imports no stage.
"""

from __future__ import annotations

from pipeline.registry import Registry
from pipeline.stage import DeclaredStage, Stage
from pipeline.stages import hashes

STAGES: Registry[Stage] = Registry("stage")
for _stage in (
    DeclaredStage(
        name="train",
        owns=("training",),
        config_fields=("model", "data", "method", "lora", "training"),
        entry="pipeline.stages.train:run",
        packages=("torch", "transformers", "trl", "peft", "accelerate", "datasets"),
        files=hashes.train_files,
        outputs=hashes.train_outputs,
        required=("adapter", "results.training"),
        options={},
        refreshes_provenance=True,
        on_interrupt="pipeline.stages.train.checkpoints:resume_hint",
    ),
    DeclaredStage(
        name="merge",
        owns=("model", "merge"),
        config_fields=("model", "lora", "merge"),
        entry="pipeline.stages.merge:run",
        packages=("torch", "transformers", "peft", "safetensors"),
        files=hashes.merge_files,
        outputs=hashes.merge_outputs,
        required=("merged model", "results.merge"),
    ),
    DeclaredStage(
        name="evaluate",
        owns=("evaluation",),
        config_fields=("model", "evaluation"),
        entry="pipeline.stages.evaluate:run",
        packages=("torch", "transformers", "lm_eval", "datasets"),
        files=hashes.evaluate_files,
        outputs=hashes.evaluate_outputs,
        required=("results.evaluation",),
        options={"limit": None, "tasks": None},
        refreshes_provenance=True,
    ),
    DeclaredStage(
        name="card",
        owns=(),
        config_fields=("card", "checks", "hub", "method", "model"),
        entry="pipeline.stages.card:run",
        packages=("jinja2", "matplotlib", "huggingface_hub"),
        files=hashes.card_files,
        outputs=hashes.card_outputs,
        required=("README.md",),
    ),
    DeclaredStage(
        name="check",
        owns=("waivers",),
        config_fields=("*",),
        entry="pipeline.stages.check:run",
        packages=("huggingface_hub",),
        files=hashes.check_files,
        options={"allow": {}},
    ),
    DeclaredStage(
        name="push",
        owns=(),
        # The adapter repository's card is rendered at push time from these (title, licence, method, base).
        config_fields=("hub", "card", "method", "model"),
        entry="pipeline.stages.push:run",
        packages=("huggingface_hub",),
        files=hashes.push_files,
        options={
            "card_only": False,
            "revision": None,
            "tag": None,
            "private": None,
            "create_pr": None,
            "message": None,
        },
    ),
):
    STAGES.add(_stage.name, _stage)

STAGE_NAMES: tuple[str, ...] = tuple(STAGES)
"""train, merge, evaluate, card, check, push: the chain's order."""

__all__ = ["STAGES", "STAGE_NAMES", "Stage"]
