"""How the result is judged and published: benchmarks, card, Hub repository, honesty-gate thresholds."""

from __future__ import annotations

import importlib
import re
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from pipeline.config.base import (
    BATCH_MAX,
    BUILTIN_TASKS,
    LENGTH_MAX,
    LIST_MAX,
    SEED_MAX,
    STEPS_MAX,
    Section,
    check_inside_project,
    check_release_names,
    check_revision,
)
from pipeline.config.signing import SignSection
from pipeline.refs import QUOTE_MAX, REFERENCE_MAX, excerpt, hub_id_problem

PARAGRAPH_MAX = 10_000
"""Longest card summary or limitation: a paragraph, not a document."""


# ---------------------------------------------------------------------- evaluation
class HubBenchmark(Section):
    dataset_id: str = Field(description="Hub benchmark dataset (one with an eval.yaml), e.g. TIGER-Lab/MMLU-Pro.")
    task_id: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="The task's id in that dataset's eval.yaml, e.g. mmlu_pro.",
    )

    @field_validator("dataset_id")
    @classmethod
    def _hub_dataset(cls, value: str) -> str:
        problem = hub_id_problem(value, require_namespace=True)
        if problem:
            raise ValueError(f"not a Hub dataset id {excerpt(value)}: {problem}")
        return value


class TaskSpec(Section):
    name: str = Field(
        min_length=1, max_length=200, description="lm-eval task or group name (hellaswag, truthfulqa_mc2, mmlu, ...)."
    )
    num_fewshot: int = Field(0, ge=0, le=10_000, description="Few-shot examples in each prompt.")
    metric: str = Field(
        "acc", min_length=1, max_length=200, description="Metric reported on the card (acc, acc_norm, ...)."
    )
    # exclude: where a score is published says nothing about the score, so it stays out of every dump and
    # so out of the evaluate stamp (pipeline.stage hashes model_dump): setting it never re-runs lm-eval.
    hub_benchmark: HubBenchmark | None = Field(
        None,
        exclude=True,
        description="The Hub benchmark this task's score is published to (.eval_results/pubctl.yaml); "
        "None = pubctl's built-in mapping (pipeline/eval_results.py), if it has one.",
    )


class ThroughputSection(Section):
    enabled: bool = Field(True, description="Measure generation throughput of the merged model.")
    prompts: int = Field(8, ge=1, le=BATCH_MAX, description="Real chat prompts generated from in each timed run.")
    batch_size: int = Field(1, ge=1, le=BATCH_MAX, description="Prompts per generate() call.")
    new_tokens: int = Field(
        128, ge=1, le=LENGTH_MAX, description="Tokens generated per prompt (EOS ignored so every run is equal)."
    )
    warmup_runs: int = Field(1, ge=0, le=1000, description="Untimed runs first (kernels, caches, allocator).")
    runs: int = Field(5, ge=1, le=1000, description="Timed runs; the card shows their median, min and max.")


class EvaluationSection(Section):
    tasks: list[TaskSpec] = Field(
        default_factory=lambda: [
            TaskSpec(name="hellaswag", num_fewshot=10, metric="acc_norm"),
            TaskSpec(name="truthfulqa_mc2", num_fewshot=0, metric="acc"),
            TaskSpec(name="mmlu", num_fewshot=5, metric="acc"),
        ],
        max_length=LIST_MAX,
        description="Benchmarks to run with lm-eval.",
    )
    include_path: str | None = Field(
        None,
        min_length=1,
        max_length=REFERENCE_MAX,
        description="Folder of extra lm-eval task YAMLs inside the project, or 'builtin' for pubctl's offline "
        "demo tasks.",
    )
    limit: int | None = Field(
        None, gt=0, le=STEPS_MAX, description="Evaluate only N items per task (the card then says so)."
    )
    batch_size: int = Field(
        8, ge=1, le=BATCH_MAX, description="lm-eval batch size (an integer: 'auto' probes badly on CPU)."
    )
    device: str = Field(
        "auto",
        pattern=r"^[a-z]{2,16}(:[0-9]{1,3})?$",
        description="cpu, cuda, cuda:0, mps; auto = cuda when available.",
    )
    evaluate_base: bool = Field(True, description="Also evaluate the base model for deltas (cached).")
    bootstrap_iters: int = Field(
        1000, ge=1, le=1_000_000, description="Bootstrap resamples for stderr (never 0: N/A stderr)."
    )
    seed: int = Field(1234, ge=0, le=SEED_MAX, description="Seed for few-shot sampling and lm-eval's RNGs.")
    throughput: ThroughputSection = Field(default_factory=ThroughputSection, description="Generation speed.")

    @field_validator("tasks")
    @classmethod
    def _unique_tasks(cls, tasks: list[TaskSpec]) -> list[TaskSpec]:
        names = [task.name for task in tasks]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"task listed twice: {', '.join(excerpt(name) for name in duplicates[:5])}")
        return tasks

    @field_validator("include_path")
    @classmethod
    def _include_inside_project(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or value == BUILTIN_TASKS:
            return value
        return check_inside_project(value, info, folder=True, must_exist=True)


# ---------------------------------------------------------------------------- card
class CardSection(Section):
    template: str = Field(
        "model_card.md.j2",
        min_length=1,
        max_length=REFERENCE_MAX,
        description="Jinja template in templates/ or a path to one.",
    )
    model_name: str | None = Field(None, min_length=1, description="Title of the card; None = the repo name.")
    summary: str | None = Field(
        None, max_length=PARAGRAPH_MAX, description="One paragraph on what the model is for (any language)."
    )
    language: list[str] = Field(
        default_factory=lambda: ["en"], min_length=1, max_length=LIST_MAX, description="ISO 639-1 codes."
    )
    license: str = Field(
        "apache-2.0",
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$",
        description="Hub license id (apache-2.0, mit, cc-by-4.0, other); should match the base model's.",
    )
    tags: list[str] = Field(
        default_factory=list, max_length=LIST_MAX, description="Extra Hub tags (method and base tags are added)."
    )
    limitations: list[Annotated[str, Field(max_length=PARAGRAPH_MAX)]] = Field(
        default_factory=list, max_length=LIST_MAX, description="Known limitations, one per item."
    )
    compare_with: list[str] = Field(
        default_factory=list,
        max_length=LIST_MAX,
        description="Other releases whose recorded results the card compares against.",
    )

    @field_validator("compare_with")
    @classmethod
    def _release_names(cls, names: list[str]) -> list[str]:
        return check_release_names(names)

    @field_validator("language")
    @classmethod
    def _iso_codes(cls, codes: list[str]) -> list[str]:
        bad = [code for code in codes if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]+)?", code)]
        if bad:
            raise ValueError(f"not ISO 639 language codes: {', '.join(excerpt(c) for c in bad[:5])} (e.g. en, ar)")
        return codes


# ----------------------------------------------------------------------------- hub
class HubSection(Section):
    repo_id: str = Field(description="Model repository to publish to: 'user-or-org/name'.")
    private: bool = Field(False, description="Create the repository private (an existing one keeps its visibility).")
    revision: str = Field("main", description="Branch to commit to (created from main when missing).")
    tag: str | None = Field(None, description="Tag the pushed commit (e.g. v1.0.0).")
    create_pr: bool = Field(False, description="Open a pull request instead of committing to the branch.")
    commit_message: str | None = Field(
        None, min_length=1, description="Commit title; None = names the release and git commit."
    )
    adapter_repo_id: str | None = Field(None, description="Also publish the LoRA adapter to this repository.")
    sign: SignSection | None = Field(
        None, description="Sign the model repository's files with OpenSSF model-signing (model.sig); None = unsigned."
    )

    @field_validator("repo_id", "adapter_repo_id")
    @classmethod
    def _pushable(cls, value: str | None) -> str | None:
        if value is None:
            return value
        problem = hub_id_problem(value, require_namespace=True)
        if problem:
            raise ValueError(f"the Hub would refuse repo id {excerpt(value)}: {problem}")
        return value

    @field_validator("revision", "tag")
    @classmethod
    def _ref_name(cls, value: str | None) -> str | None:
        return check_revision(value)


# -------------------------------------------------------------------------- checks
def _waivable_check(check_id: str) -> str:
    """A checks.allow key: the id of a gate that can be waived."""
    # The gates sit above the config (each reads a ReleaseConfig), so their registry is reached by name when
    # there is a waiver to judge, as the release chain reaches its stages: an import here would be a loop.
    checks = importlib.import_module("pipeline.checks").CHECKS
    if check_id not in checks:
        raise ValueError(checks.unknown(check_id[:QUOTE_MAX]))
    if not checks[check_id].waivable:
        raise ValueError(f"'{check_id}' cannot be waived: {checks[check_id].description}")
    return check_id


def _reason(reason: str) -> str:
    if not reason.strip():
        raise ValueError("a waiver needs a reason (the card shows it)")
    return reason


class ChecksSection(Section):
    min_samples: int = Field(
        100, ge=1, le=STEPS_MAX, description="Fewest training samples a publishable run may have seen."
    )
    min_seconds_per_step: float = Field(
        1e-3, ge=0, description="Runtime below this per optimizer step means the steps did not really run."
    )
    near_chance_stderr: float = Field(
        2.0, gt=0, description="Warn when a benchmark is within this many stderr of chance."
    )
    allow: dict[Annotated[str, AfterValidator(_waivable_check)], Annotated[str, AfterValidator(_reason)]] = Field(
        default_factory=dict,
        max_length=LIST_MAX,
        description="Waivers declared up front: check id -> reason (shown on the card).",
    )
