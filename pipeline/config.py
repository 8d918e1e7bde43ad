"""The release config: one YAML file per release (configs/NAME.yaml), validated by pydantic.

Every section has defaults a user of TRL, peft and lm-eval would expect; every
field says what it is in its description (the JSON schema of ``pubctl schema``
carries them to editors). Misspelt keys are errors that suggest the closest
valid key; every error names the file, the field path and the YAML line.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pipeline.errors import ConfigError
from pipeline.layout import configs_dir, project_root
from pipeline.methods import METHODS, MethodParams, MethodSpec

BUILTIN_MODELS = ("builtin:tiny-qwen3",)
BUILTIN_DATASETS = ("builtin:preferences",)
BUILTIN_TASKS = "builtin"
"""evaluation.include_path value naming the bundled offline lm-eval tasks."""

DATA_SUFFIXES = (".json", ".jsonl", ".parquet")


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _looks_like_path(value: str) -> bool:
    return value.startswith(("/", "./", "../", "~")) or value.endswith(DATA_SUFFIXES) or "\\" in value


def _hub_id_problem(value: str, *, require_namespace: bool) -> str | None:
    """Why the Hub would refuse ``value`` as a repo id, or None when it would accept it."""
    # huggingface_hub's own validator holds the Hub's rules (length, characters, '--', '..').
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(value)
    except HFValidationError as exc:
        return str(exc).split("\n")[0]
    if require_namespace and "/" not in value:
        return "a repository you push to needs a namespace: 'user-or-org/name'"
    return None


def _check_reference(value: str, info: ValidationInfo, *, kind: str, builtins: tuple[str, ...], local: str) -> str:
    """A built-in name, an existing local path (relative to the project root), or a valid Hub id."""
    if value.startswith("builtin:"):
        if value not in builtins:
            raise ValueError(f"unknown built-in {kind} {value!r}; built-ins: {', '.join(builtins)}")
        return value
    path = Path(value).expanduser()
    path = path if path.is_absolute() else _root(info) / path
    if path.is_dir() or (local == "file" and path.is_file()):
        return value
    if _looks_like_path(value):
        raise ValueError(f"{value!r} looks like a local path but no {local} exists at {path}")
    problem = _hub_id_problem(value, require_namespace=False)
    if problem:
        raise ValueError(f"{value!r} is neither a Hub {kind} id nor an existing {local} ({problem})")
    return value


def _root(info: ValidationInfo) -> Path:
    context = info.context or {}
    return Path(context.get("root") or project_root())


# --------------------------------------------------------------------------- model
class ModelSection(Section):
    base_model: str = Field(
        "builtin:tiny-qwen3",
        description="Hub model id (Qwen/Qwen3-0.6B), a local model folder, or builtin:tiny-qwen3.",
    )
    revision: str | None = Field(
        None, description="Hub revision (branch, tag or commit sha) of the base model; None = main."
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype for training and the merged model; auto = the checkpoint's own."
    )
    trust_remote_code: bool = Field(False, description="Allow code from the model repo (off: safer).")

    @field_validator("base_model")
    @classmethod
    def _base_model_kind(cls, value: str, info: ValidationInfo) -> str:
        return _check_reference(value, info, kind="model", builtins=BUILTIN_MODELS, local="folder")


# ---------------------------------------------------------------------------- data
class Columns(Section):
    """Where each field lives in the dataset; rename here instead of editing the data."""

    prompt: str = Field("prompt", description="Prompt column (text or list of chat messages).")
    chosen: str = Field("chosen", description="Preferred completion column (paired data).")
    rejected: str = Field("rejected", description="Dispreferred completion column (paired data).")
    completion: str = Field("completion", description="Completion column (unpaired or SFT data).")
    label: str = Field("label", description="Boolean desirability column (unpaired data).")
    text: str = Field("text", description="Plain-text column (SFT data without a prompt).")
    # The fields below are left out of dumps at their defaults: the run fingerprint and the stage cache hash the
    # data section's dump, so configs written before these fields existed keep their checkpoints and cached stages.
    messages: str = Field(
        "messages",
        exclude_if=lambda value: value == "messages",
        description="Conversation column (SFT data: a list of {role, content} messages per row).",
    )
    system: str | None = Field(
        None,
        exclude_if=lambda value: value is None,
        description="System-prompt column (e.g. 'system' in Intel/orca_dpo_pairs); its non-empty values become a "
        "system message before the prompt, which makes the rows conversational. None = no system column.",
    )


class DataSection(Section):
    train: str = Field(
        "builtin:preferences",
        description="Hub dataset id, a local .json/.jsonl/.parquet file (relative to the project root), "
        "or builtin:preferences.",
    )
    subset: str | None = Field(None, description="Hub dataset configuration name, if it has several.")
    split: str = Field("train", description="Split to train on.")
    revision: str | None = Field(None, description="Hub dataset revision (commit sha pins it).")
    format: Literal["auto", "paired", "unpaired", "text"] = Field(
        "auto",
        description="paired: prompt/chosen/rejected; unpaired: prompt/completion/label; text: SFT. "
        "auto: detected from the columns.",
    )
    columns: Columns = Field(default_factory=Columns, description="Column names in the dataset.")
    eval_split: str | None = Field(None, description="Split to evaluate the training loss on, if any.")
    eval_fraction: float | None = Field(
        None, gt=0, lt=1, description="Hold out this fraction of the train split instead of an eval_split."
    )
    max_samples: int | None = Field(None, gt=0, description="Use only the first N rows (smoke runs).")

    @field_validator("train")
    @classmethod
    def _train_source(cls, value: str, info: ValidationInfo) -> str:
        return _check_reference(value, info, kind="dataset", builtins=BUILTIN_DATASETS, local="file")

    @model_validator(mode="after")
    def _one_eval_source(self) -> DataSection:
        if self.eval_split and self.eval_fraction:
            raise ValueError("set eval_split or eval_fraction, not both")
        return self


# -------------------------------------------------------------------------- method
MethodSection = Annotated[
    Union[tuple(spec.params for spec in METHODS.values())],  # noqa: UP007 - built from the registry
    Field(discriminator="name", description="Training method and its parameters, e.g. {name: dpo, beta: 0.1}."),
]


# ---------------------------------------------------------------------------- lora
class LoraSection(Section):
    r: int = Field(16, gt=0, description="LoRA rank.")
    alpha: int = Field(32, gt=0, description="LoRA alpha; the update is scaled by alpha/r (alpha/√r with rsLoRA).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        description="Modules that get adapters: a list of names or 'all-linear'.",
    )
    modules_to_save: list[str] = Field(
        default_factory=list, description="Modules trained in full and saved with the adapter (e.g. lm_head)."
    )
    use_rslora: bool = Field(False, description="Rank-stabilised scaling alpha/√r.")
    use_dora: bool = Field(False, description="Weight-decomposed LoRA (DoRA).")


# ------------------------------------------------------------------------ training
class LauncherSection(Section):
    num_processes: int = Field(1, ge=1, description="Processes to train with (GPUs, or CPU workers).")
    config_file: str | None = Field(None, description="accelerate config file (DeepSpeed ZeRO / FSDP) used on GPUs.")
    main_process_port: int | None = Field(None, ge=1, le=65535, description="Rendezvous port; None = free one.")


class TrainingSection(Section):
    epochs: float = Field(1.0, gt=0, description="Passes over the training data.")
    max_steps: int = Field(-1, description="Stop after this many optimizer steps; -1 = run the epochs.")
    per_device_batch_size: int = Field(2, ge=1, description="Examples per device per forward pass.")
    gradient_accumulation_steps: int = Field(8, ge=1, description="Forward passes per optimizer step.")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate (LoRA usually wants 1e-4..5e-4).")
    lr_scheduler_type: Literal["linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts"] = Field(
        "linear", description="Learning-rate schedule after warm-up."
    )
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Fraction of steps spent warming up.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    max_length: int = Field(512, gt=0, description="Longest prompt+completion in tokens; longer rows are truncated.")
    max_prompt_length: int | None = Field(
        None, gt=0, description="Longest prompt in tokens (truncated from the left); None = no separate limit."
    )
    seed: int = Field(42, description="Seed for data order, LoRA init and dropout.")
    logging_steps: int = Field(10, ge=1, description="Log loss and method metrics every N optimizer steps.")
    save_steps: int = Field(500, ge=1, description="Write a resumable checkpoint every N optimizer steps.")
    save_total_limit: int | None = Field(2, ge=1, description="Keep at most N checkpoints; None = all.")
    gradient_checkpointing: bool = Field(False, description="Trade compute for activation memory.")
    report_to: list[Literal["trackio", "wandb", "tensorboard"]] = Field(
        default_factory=list, description="Experiment trackers to stream logs to; [] = none."
    )
    launcher: LauncherSection = Field(default_factory=LauncherSection, description="Multi-process launch.")

    @model_validator(mode="after")
    def _lengths(self) -> TrainingSection:
        if self.max_prompt_length is not None and self.max_prompt_length >= self.max_length:
            raise ValueError(
                f"max_prompt_length ({self.max_prompt_length}) must be smaller than max_length ({self.max_length})"
            )
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps must be -1 (use epochs) or a positive number, got {self.max_steps}")
        return self

    @property
    def effective_batch_size(self) -> int:
        return self.per_device_batch_size * self.gradient_accumulation_steps * self.launcher.num_processes


# --------------------------------------------------------------------------- merge
class MergeSection(Section):
    strategy: Literal["streaming", "peft"] = Field(
        "streaming",
        description="streaming: shard by shard, about one shard in memory; peft: load all, merge_and_unload.",
    )
    max_shard_size: str = Field("5GB", description="Largest output shard, as transformers writes it.")
    parity_tolerance: float | None = Field(
        None,
        gt=0,
        description="Max |logit difference| merged vs adapter-on-base. None: 1e-4 for float32 merges; "
        "bfloat16/float16 merges are gated on parity_max_relative instead unless this is set.",
    )
    parity_max_relative: float = Field(
        0.25,
        gt=0,
        description="Half-precision merges: max |merged - adapter-on-base| logit difference as a fraction of the "
        "adapter's own effect, max |adapter-on-base - base|. Rounding W+dW to bf16 costs a few % of that effect; "
        "alpha/r applied twice or not at all costs about 100%, a missing module its share.",
    )
    probe_prompts: list[str] = Field(
        default_factory=lambda: [
            "The capital of France is",
            "Explain why the sky is blue.",
            "def fibonacci(n):",
            "ما هي عاصمة مصر؟",
        ],
        min_length=1,
        description="Prompts whose logits are compared in the parity check.",
    )
    dequantize: bool = Field(False, description="Dequantize a 4/8-bit base before merging instead of refusing.")

    def parity_gate(self, dtype: str) -> tuple[str, float]:
        """(measure, bound) the merge parity is judged on for a merged model stored in ``dtype``."""
        if self.parity_tolerance is not None:
            return "max_abs_diff", self.parity_tolerance
        if dtype in ("float32", "float64"):
            return "max_abs_diff", 1e-4
        return "relative_to_adapter_effect", self.parity_max_relative

    @field_validator("max_shard_size")
    @classmethod
    def _shard_size(cls, value: str) -> str:
        if not re.fullmatch(r"\d+(\.\d+)?\s*(B|KB|MB|GB|KiB|MiB|GiB)", value.strip()):
            raise ValueError(f"expected a size like '5GB' or '500MB', got {value!r}")
        return value.strip()


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
        problem = _hub_id_problem(value, require_namespace=True)
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


# ------------------------------------------------------------------------- release
class ReleaseConfig(Section):
    """One release: what to train, how to evaluate it, and where to publish it."""

    model: ModelSection = Field(default_factory=ModelSection, description="The base model.")
    data: DataSection = Field(default_factory=DataSection, description="Training data.")
    method: MethodSection = Field(
        default_factory=lambda: METHODS["enhanced_kto"].params(),
        description="Training method and its parameters.",
    )
    lora: LoraSection = Field(default_factory=LoraSection, description="LoRA adapter.")
    training: TrainingSection = Field(default_factory=TrainingSection, description="Trainer arguments.")
    merge: MergeSection = Field(default_factory=MergeSection, description="Merging the adapter into the base.")
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection, description="Benchmarks.")
    card: CardSection = Field(default_factory=CardSection, description="Model card.")
    hub: HubSection = Field(description="Where to publish.")
    checks: ChecksSection = Field(default_factory=ChecksSection, description="Honesty-gate thresholds.")

    _name: str = PrivateAttr("")
    _path: Path | None = PrivateAttr(None)
    _sha256: str = PrivateAttr("")

    @property
    def name(self) -> str:
        """The release name: the config file's stem."""
        return self._name

    @property
    def path(self) -> Path | None:
        """The YAML file this config was loaded from."""
        return self._path

    @property
    def sha256(self) -> str:
        """sha256 of the YAML file's bytes (recorded as provenance.config_sha256)."""
        return self._sha256

    @property
    def method_spec(self) -> MethodSpec:
        """The registered method this config trains with."""
        return METHODS[self.method.name]

    @model_validator(mode="after")
    def _consistent(self) -> ReleaseConfig:
        spec = METHODS[self.method.name]
        if self.data.format != "auto" and self.data.format not in spec.accepts:
            raise ValueError(
                f"method '{spec.name}' needs {' or '.join(spec.accepts)} data but data.format is '{self.data.format}'"
            )
        if self.training.per_device_batch_size < spec.min_batch_size:
            raise ValueError(
                f"method '{spec.name}' needs training.per_device_batch_size >= {spec.min_batch_size} "
                f"(its KL estimate pairs completions within a batch), got {self.training.per_device_batch_size}"
            )
        if self.data.max_samples is not None and self.data.max_samples < self.training.effective_batch_size:
            raise ValueError(
                f"data.max_samples ({self.data.max_samples}) is smaller than one optimizer step's "
                f"effective batch ({self.training.effective_batch_size} = per_device_batch_size x "
                "gradient_accumulation_steps x launcher.num_processes)"
            )
        return self


# -------------------------------------------------------------------------- loading
class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, yaml.Mark] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark
            )
        seen[key] = key_node.start_mark
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def resolve_config_path(name_or_path: str, root: Path | None = None) -> Path:
    """configs/NAME.yaml under the project root, or a path to a YAML file."""
    root = root or project_root()
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix in (".yaml", ".yml") or candidate.parent != Path():
        path = candidate if candidate.is_absolute() else (Path.cwd() / candidate)
        if not path.is_file():
            raise ConfigError(f"{name_or_path}: no such config file ({path}).")
        return path
    folder = configs_dir(root)
    path = folder / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        close = difflib.get_close_matches(name_or_path, known, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        listing = f" Known releases: {', '.join(known)}." if known else f" {folder} has no configs."
        raise ConfigError(f"No release config named '{name_or_path}' ({path} does not exist).{listing}{hint}")
    return path


def load_config(name_or_path: str, root: Path | None = None) -> ReleaseConfig:
    """Load and validate a release config; every problem is a ConfigError naming file, field and line."""
    root = (root or project_root()).resolve()
    path = resolve_config_path(name_or_path, root)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}).") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {exc.problem or exc.context}.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}.") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty; a release config needs at least hub.repo_id.")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections (model, data, method, ...), "
            f"found a {type(data).__name__}."
        )
    try:
        config = ReleaseConfig.model_validate(data, context={"root": root})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path, node)) from None
    config._name = path.stem
    config._path = path
    config._sha256 = hashlib.sha256(raw).hexdigest()
    return config


# ------------------------------------------------------------------- error messages
def format_validation_error(exc: ValidationError, path: Path, node: yaml.Node | None) -> str:
    """One line per problem: field path, YAML line, what was found and what was expected."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = _user_loc(error["loc"])
        dotted = ".".join(str(part) for part in loc) or "(top level)"
        line = _line_of(node, loc)
        where = f" (line {line})" if line else ""
        lines.append(f"  {dotted}{where}: {_describe(error, loc)}")
    count = len(lines)
    head = f"{path}: {count} problem{'s' if count > 1 else ''} in the config:"
    return "\n".join([head, *lines])


def _user_loc(loc: tuple) -> tuple:
    """Drop pydantic's union tag (method.dpo.beta -> method.beta): users never write it."""
    parts = list(loc)
    if len(parts) > 1 and parts[0] == "method" and parts[1] in METHODS:
        del parts[1]
    return tuple(parts)


def _describe(error: dict, loc: tuple) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        valid = _valid_keys(error["loc"][:-1])
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(sorted(valid))}"
        return f"unknown key '{key}'{hint}"
    if kind == "missing":
        return "required field is missing"
    if kind == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag", "")
        close = difflib.get_close_matches(str(tag), METHODS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown method '{tag}'; known methods: {', '.join(METHODS)}{hint}"
    if kind == "union_tag_not_found":
        return f"method needs a 'name': one of {', '.join(METHODS)}"
    message = error["msg"].removeprefix("Value error, ")
    found = error.get("input")
    if kind.endswith("_type") or kind.startswith(("greater", "less", "literal", "int_", "float_", "bool_")):
        return f"{message} (found {found!r})"
    return message


def _valid_keys(loc: tuple) -> list[str]:
    """The keys allowed at pydantic's ``loc`` in ReleaseConfig (for did-you-mean suggestions)."""
    current: type[BaseModel] | None = ReleaseConfig
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        if issubclass(current, MethodParams) or (current is ReleaseConfig and part == "method"):
            # pydantic puts the union tag in the loc: method.<name>.<key>
            current = MethodParams if part == "method" else METHODS[part].params if part in METHODS else None
            continue
        field = current.model_fields.get(str(part))
        current = _model_in(field.annotation) if field else None
    return list(current.model_fields) if current is not None and current is not MethodParams else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The config section model inside an annotation (unwrapping Optional, list and dict)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        model = _model_in(arg)
        if model is not None:
            return model
    return None


def _line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """1-based line of the YAML node at ``loc`` (the closest existing parent when the key is missing)."""
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == str(part)), None)
            if match is None:
                key_node = next((k for k, _ in node.value if k.value == str(part)), None)
                return (key_node.start_mark.line + 1) if key_node else line
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return line
        line = node.start_mark.line + 1
    return line


def config_schema() -> dict[str, Any]:
    """JSON schema of the release config (``pubctl schema``), for editors."""
    return ReleaseConfig.model_json_schema()
