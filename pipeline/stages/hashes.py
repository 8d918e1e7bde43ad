"""The files each stage reads and leaves, hashed for its stamp (declared in pipeline.stages).

Each function returns label -> hash; a label names the input in "why it re-runs"
messages. Only stats and cached hashes are read here (pipeline.stamps.FileHasher):
deciding that a stage is up to date loads no model.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pipeline.errors import UsageError
from pipeline.layout import Layout, templates_dir
from pipeline.refs import DataRef, ModelRef, project_path
from pipeline.stamps import MISSING, FileHasher, canonical_hash

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig


def base_model(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> str:
    return ModelRef.parse(config.model.base_model, layout.root, config.model.revision).stamp_key(hasher)


def dataset(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> str:
    data = config.data
    return DataRef.parse(data.train, layout.root, data.revision, data.subset).stamp_key(hasher)


def tasks(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> str:
    include = config.evaluation.include_path
    if include is None:
        return "lm-eval built-in tasks"  # versioned by lm_eval's version, which is stamped
    from pipeline.config import BUILTIN_TASKS

    if include == BUILTIN_TASKS:
        from pipeline.demo import TASKS_DIR

        return hasher.tree(TASKS_DIR)
    return hasher.tree(project_path(include, layout.root))


def results_sections(layout: Layout, names: tuple[str, ...]) -> dict[str, str]:
    """Hashes of some top-level sections of results.json (a stage's share of the shared record)."""
    try:
        data = json.loads(layout.results.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    return {f"results.{name}": canonical_hash(data[name]) if name in data else MISSING for name in names}


# ------------------------------------------------------------------------ per stage
def train_files(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    inputs = {"base model": base_model(config, layout, hasher), "dataset": dataset(config, layout, hasher)}
    config_file = config.training.launcher.config_file
    if config_file:
        # The accelerate config (mixed precision, DeepSpeed/FSDP) changes the run; the config holds only its path.
        inputs["accelerate config"] = hasher.file(project_path(config_file, layout.root))
    return inputs


def train_outputs(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    return {"adapter": hasher.tree(layout.adapter_dir), **results_sections(layout, ("training",))}


def merge_files(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    return {"base model": base_model(config, layout, hasher), "adapter": hasher.tree(layout.adapter_dir)}


def merge_outputs(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    return {"merged model": hasher.tree(layout.merged_model_dir), **results_sections(layout, ("merge", "model"))}


def evaluate_files(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    return {
        "merged model": hasher.tree(layout.merged_model_dir),
        "base model": base_model(config, layout, hasher),
        "tasks": tasks(config, layout, hasher),
    }


def evaluate_outputs(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    return results_sections(layout, ("evaluation",))


def card_files(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    inputs = {"results.json": hasher.file(layout.results), "templates": hasher.tree(templates_dir(layout.root))}
    from pipeline.stages.card.template_files import user_template_file  # here: importing this module loads no stage

    try:
        template = user_template_file(config, layout)  # the very file the card stage renders
    except UsageError:
        inputs["template"] = "refused"  # the card stage says why, in its own words
    else:
        if template is not None:  # a template outside templates/
            inputs["template"] = hasher.file(template)
    for other in config.card.compare_with:
        inputs[f"results.json of {other}"] = hasher.file(layout.card_dir_of(other) / "results.json")
    return inputs


def card_outputs(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    return {"README.md": hasher.file(layout.readme), "plots": hasher.tree(layout.plots_dir)}


def check_files(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    return {"card bundle": hasher.tree(layout.card_dir), "merged model": hasher.tree(layout.merged_model_dir)}


def push_files(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    inputs = check_files(config, layout, hasher)
    if config.path is not None:
        # Its bytes are published as pubctl.yaml: a comment edited there is a file the Hub must get.
        inputs["config file"] = hasher.file(config.path)
    if config.hub.adapter_repo_id:
        inputs["adapter"] = hasher.tree(layout.merged_adapter_dir)
        inputs["adapter card template"] = hasher.file(templates_dir(layout.root) / "adapter_card.md.j2")
    return inputs
