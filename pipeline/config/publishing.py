"""How the result is judged and published: benchmarks, card, Hub repository, honesty-gate thresholds."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from pipeline.config.base import Section
from pipeline.refs import hub_id_problem


# ---------------------------------------------------------------------- evaluation
class TaskSpec(Section):
    name: str = Field(description="lm-eval task or group name (hellaswag, truthfulqa_mc2, mmlu, ...).")
    num_fewshot: int = Field(0, ge=0, description="Few-shot examples in each prompt.")
    metric: str = Field("acc", description="Metric reported on the card (acc, acc_norm, ...).")


class ThroughputSection(Section):
    enabled: bool = Field(True, description="Measure generation throughput of the merged model.")
    prompts: int = Field(8, ge=1, description="Real chat prompts generated from in each timed run.")
    batch_size: int = Field(1, ge=1, description="Prompts per generate() call.")
    new_tokens: int = Field(128, ge=1, description="Tokens generated per prompt (EOS ignored so every run is equal).")
    warmup_runs: int = Field(1, ge=0, description="Untimed runs first (kernels, caches, allocator).")
    runs: int = Field(5, ge=1, description="Timed runs; the card shows their median, min and max.")


class EvaluationSection(Section):
    tasks: list[TaskSpec] = Field(
        default_factory=lambda: [
            TaskSpec(name="hellaswag", num_fewshot=10, metric="acc_norm"),
            TaskSpec(name="truthfulqa_mc2", num_fewshot=0, metric="acc"),
            TaskSpec(name="mmlu", num_fewshot=5, metric="acc"),
        ],
        description="Benchmarks to run with lm-eval.",
    )
    include_path: str | None = Field(
        None, description="Folder of extra lm-eval task YAMLs, or 'builtin' for pubctl's offline demo tasks."
    )
    limit: int | None = Field(None, gt=0, description="Evaluate only N items per task (the card then says so).")
    batch_size: int = Field(8, ge=1, description="lm-eval batch size (an integer: 'auto' probes badly on CPU).")
    device: str = Field("auto", description="cpu, cuda, cuda:0, mps; auto = cuda when available.")
    evaluate_base: bool = Field(True, description="Also evaluate the base model for deltas (cached).")
    bootstrap_iters: int = Field(1000, ge=1, description="Bootstrap resamples for stderr (never 0: N/A stderr).")
    seed: int = Field(1234, description="Seed for few-shot sampling and lm-eval's RNGs.")
    throughput: ThroughputSection = Field(default_factory=ThroughputSection, description="Generation speed.")

    @field_validator("tasks")
    @classmethod
    def _unique_tasks(cls, tasks: list[TaskSpec]) -> list[TaskSpec]:
        names = [task.name for task in tasks]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"task listed twice: {', '.join(duplicates)}")
        return tasks


# ---------------------------------------------------------------------------- card
class CardSection(Section):
    template: str = Field("model_card.md.j2", description="Jinja template in templates/ or a path to one.")
    model_name: str | None = Field(None, description="Title of the card; None = the repo name.")
    summary: str | None = Field(None, description="One paragraph on what the model is for (any language).")
    language: list[str] = Field(default_factory=lambda: ["en"], min_length=1, description="ISO 639-1 codes.")
    license: str = Field("apache-2.0", description="Hub license id; should match the base model's.")
    tags: list[str] = Field(default_factory=list, description="Extra Hub tags (method and base tags are added).")
    limitations: list[str] = Field(default_factory=list, description="Known limitations, one per item.")
    compare_with: list[str] = Field(
        default_factory=list, description="Other releases whose recorded results the card compares against."
    )

    @field_validator("language")
    @classmethod
    def _iso_codes(cls, codes: list[str]) -> list[str]:
        bad = [code for code in codes if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]+)?", code)]
        if bad:
            raise ValueError(f"not ISO 639 language codes: {', '.join(bad)} (e.g. en, ar)")
        return codes


# ----------------------------------------------------------------------------- hub
class HubSection(Section):
    repo_id: str = Field(description="Model repository to publish to: 'user-or-org/name'.")
    private: bool = Field(False, description="Create the repository private (an existing one keeps its visibility).")
    revision: str = Field("main", description="Branch to commit to (created from main when missing).")
    tag: str | None = Field(None, description="Tag the pushed commit (e.g. v1.0.0).")
    create_pr: bool = Field(False, description="Open a pull request instead of committing to the branch.")
    commit_message: str | None = Field(None, description="Commit title; None = names the release and git commit.")
    adapter_repo_id: str | None = Field(None, description="Also publish the LoRA adapter to this repository.")

    @field_validator("repo_id", "adapter_repo_id")
    @classmethod
    def _pushable(cls, value: str | None) -> str | None:
        if value is None:
            return value
        problem = hub_id_problem(value, require_namespace=True)
        if problem:
            raise ValueError(f"the Hub would refuse repo id {value!r}: {problem}")
        return value


# -------------------------------------------------------------------------- checks
class ChecksSection(Section):
    min_samples: int = Field(100, ge=1, description="Fewest training samples a publishable run may have seen.")
    min_seconds_per_step: float = Field(
        1e-3, ge=0, description="Runtime below this per optimizer step means the steps did not really run."
    )
    near_chance_stderr: float = Field(
        2.0, gt=0, description="Warn when a benchmark is within this many stderr of chance."
    )
    allow: dict[str, str] = Field(
        default_factory=dict, description="Waivers declared up front: check id -> reason (shown on the card)."
    )
