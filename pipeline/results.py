"""The results record, cards/NAME/results.json: the single source of truth of a card.

Typed models of DESIGN.md's schema_version-1 record, one per section. Each
stage writes its own section with :func:`update_results`, which re-reads the
file, replaces that section only and writes atomically (temp file, fsync,
rename): a crash leaves the old file or the new one, never half of one.
Unknown keys are kept (``extra="allow"``) so a newer pubctl's additions survive
a rewrite by an older one within the same schema version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from pipeline.atomic import atomic_write_text, locked
from pipeline.errors import ResultsError
from pipeline.origin import Traced
from pipeline.record_validation import MAX_BENCHMARKS, check_log_entry, not_negative, parse_record

SCHEMA_VERSION = 1
SECTIONS = ("rehearsal", "model", "training", "merge", "evaluation", "provenance")


class Record(BaseModel):
    """Base of every record model: keeps unknown keys, validates assignments."""

    # serialize_by_alias: a field whose JSON key would shadow a BaseModel attribute (``schema``) is declared
    # under another name and written under its key.
    model_config = ConfigDict(extra="allow", validate_assignment=True, validate_by_name=True, serialize_by_alias=True)


# ---------------------------------------------------------------------------- model
class FileEntry(Record):
    path: str = Field(description="Path inside the model repository.")
    size: int = Field(ge=0, description="Size in bytes.")
    sha256: str = Field(description="Hex sha256 of the file's bytes.")


class ModelRecord(Record, Traced):
    """Measured facts of the merged model (written by merge). Publication metadata (repo id, licence,
    language, tags) is not here: the card reads it from the config, so editing it never re-runs a merge.
    Records written before kept ``repo_id``, ``license`` and ``language`` here; they are carried, never read."""

    base_model: str = Field(description="Hub id (or builtin:/local path) of the base model.")
    base_model_revision: str | None = Field(None, description="Commit sha of the base model, when known.")
    architecture: str = Field(description="transformers architecture class, e.g. Qwen3ForCausalLM.")
    parameters: int = Field(ge=0, description="Parameter count measured on the merged weights.")
    dtype: str = Field(description="dtype of the saved weights.")
    files: list[FileEntry] = Field(default_factory=list, description="Every file of the merged model.")


# -------------------------------------------------------------------------- lineage
class Lineage(Record):
    """What a stage consumed and produced, by digest: the links the ``lineage`` gate follows from the training
    run to the files on the card. Folder digests are pipeline.hashing.tree_digest; models named by reference
    are pipeline.refs stamp keys (a built-in's recipe hash, a local folder's digest, a Hub id at a revision)."""

    consumed: dict[str, str] = Field(
        default_factory=dict,
        description="Input name (adapter, merged_model, base_model, dataset) -> its digest when the stage read it.",
    )
    produced: dict[str, str] = Field(
        default_factory=dict, description="Output name (adapter, merged_model) -> the digest of what the stage left."
    )


# ------------------------------------------------------------------------- training
class DatasetRecord(Record):
    id: str = Field(description="Hub dataset id or local file the model was trained on.")
    split: str | None = Field(None, description="Split used.")
    revision: str | None = Field(None, description="Commit sha (Hub) or sha256:<hex> (local file) of the data.")
    rows: int = Field(ge=0, description="Rows used for training after filtering.")
    source_rows: int | None = Field(None, ge=0, description="Rows in the split before pubctl's filtering.")
    eval_rows: int | None = Field(None, ge=0, description="Rows held out to evaluate the training loss on.")
    format: str | None = Field(None, description="Format of the source rows: paired, unpaired or text.")
    schema_name: str | None = Field(
        None, alias="schema", description="The Hub schema the rows were recognised as (e.g. ultrafeedback)."
    )
    trained_as: str | None = Field(None, description="Format the trainer was fed (paired rows split for KTO).")
    conversational: bool | None = Field(
        None, description="Whether the rows were conversations (TRL applies the chat template only to those)."
    )
    dropped_long_prompts: int | None = Field(None, ge=0, description="Rows dropped: prompt over max_prompt_length.")
    truncated_prompts: int | None = Field(None, ge=0, description="Prompts truncated from the left to fit.")
    rows_after_trainer_filtering: int | None = Field(
        None, ge=0, description="Rows left after the TRL trainer's own filtering (what it actually trained on)."
    )


class LoraRecord(Record):
    r: int = Field(ge=1, description="LoRA rank.")
    alpha: int = Field(ge=1, description="LoRA alpha.")
    dropout: float = Field(ge=0, le=1, description="Dropout on the LoRA input.")
    target_modules: list[str] | str = Field(description="Modules that got adapters, or 'all-linear'.")
    modules_to_save: list[str] | None = Field(None, description="Modules trained in full and saved with the adapter.")
    use_rslora: bool | None = Field(None, description="Rank-stabilised scaling alpha/sqrt(r).")
    use_dora: bool | None = Field(None, description="Weight-decomposed LoRA (DoRA).")


class Hyperparameters(Record):
    CORE: ClassVar[tuple[str, ...]] = (
        "epochs",
        "per_device_batch_size",
        "gradient_accumulation_steps",
        "effective_batch_size",
        "learning_rate",
        "max_length",
        "seed",
        "lora",
    )
    """The fields the card's hyperparameter table names one by one; the rest are listed after them."""

    epochs: float = Field(ge=0, description="training.epochs.")
    per_device_batch_size: int = Field(ge=1, description="Examples per device per forward pass.")
    gradient_accumulation_steps: int = Field(ge=1, description="Forward passes per optimizer step.")
    effective_batch_size: int = Field(
        ge=1, description="per_device_batch_size x gradient_accumulation_steps x processes."
    )
    learning_rate: float = Field(ge=0, description="Peak learning rate.")
    max_length: int = Field(ge=1, description="Longest prompt+completion in tokens.")
    seed: int = Field(description="Seed for data order, LoRA init and dropout.")
    lora: LoraRecord = Field(description="The LoRA adapter's settings.")
    max_steps: int | None = Field(None, ge=-1, description="training.max_steps (-1: the epochs decide).")
    num_processes: int | None = Field(None, ge=1, description="Training processes (data-parallel ranks).")
    lr_scheduler_type: str | None = Field(None, description="Learning-rate schedule after warm-up.")
    warmup_ratio: float | None = Field(None, ge=0, le=1, description="Fraction of steps spent warming up.")
    weight_decay: float | None = Field(None, ge=0, description="AdamW weight decay.")
    max_grad_norm: float | None = Field(None, ge=0, description="Gradient clipping norm.")
    max_prompt_length: int | None = Field(None, ge=1, description="Longest prompt in tokens (None: no separate limit).")
    dtype: str | None = Field(None, description="model.dtype the base was trained in.")
    gradient_checkpointing: bool | None = Field(None, description="Whether activations were recomputed.")

    def listed(self) -> list[tuple[str, Any]]:
        """(name, value) of every recorded field besides CORE, by name: declared ones this record holds, and
        any a newer pubctl added (kept as extras)."""
        names = (set(self.model_fields_set) | set(self.model_extra or {})) - set(self.CORE)
        return [(name, getattr(self, name)) for name in sorted(names)]


LogEntry = Annotated[dict[str, Any], AfterValidator(check_log_entry)]
"""One Trainer log_history entry: free keys, but a step and epoch a plot can put on an axis."""


class TrainingRecord(Record, Traced):
    method: str = Field(description="Registered method name.")
    method_params: dict[str, Any] = Field(default_factory=dict, description="The method's parameters.")
    datasets: list[DatasetRecord] = Field(default_factory=list, description="What the model was trained on.")
    hyperparameters: Hyperparameters = Field(description="The settings that shaped the run.")
    steps: int = Field(ge=0, description="Optimizer steps taken.")
    samples: int = Field(ge=0, description="Training examples seen.")
    runtime_seconds: float = Field(ge=0, description="Wall time of training from a monotonic clock, all parts.")
    runtime_seconds_this_run: float | None = Field(None, ge=0, description="Training time of the last part alone.")
    final_loss: float | None = Field(description="Training loss of the last logged step.")
    train_loss: float | None = Field(None, description="The Trainer's mean training loss over the run.")
    resumed_from_step: int | None = Field(None, ge=0, description="Step of the checkpoint resumed from (0: none).")
    steps_this_run: int | None = Field(None, ge=0, description="Optimizer steps taken by the last part.")
    epochs_completed: float | None = Field(None, ge=0, description="Trainer.state.epoch at the end.")
    base_model_revision: str | None = Field(None, description="Commit sha of the base trained on, when known.")
    log_history: list[LogEntry] = Field(default_factory=list, description="Trainer.state.log_history.")
    hardware: dict[str, Any] = Field(
        default_factory=dict, description="Where it trained: device, processes, backend and each rank's counts."
    )
    lineage: Lineage | None = Field(None, description="The base and data it trained on, the adapter it left.")


# ---------------------------------------------------------------------------- merge
class ParityGate(Record):
    measure: str = Field(description="max_abs_diff or relative_to_adapter_effect (pipeline.judgments).")
    bound: float = Field(ge=0, description="The bound the measure was held to.")


class MergeRecord(Record, Traced):
    strategy: str = Field(description="streaming or peft.")
    parity_max_abs_diff: float = Field(ge=0, description="Max |logit diff| merged vs adapter-on-base.")
    probe_prompts: int = Field(ge=1, description="Prompts the parity was measured on.")
    parity_adapter_effect: float | None = Field(
        None,
        ge=0,
        description="Max |adapter-on-base - base| logit difference: the scale half-precision parity is judged on.",
    )
    parity_gate: ParityGate | None = Field(None, description="How parity was judged when the merge passed it.")
    parity_compute_dtype: str | None = Field(None, description="dtype both sides of the parity were computed in.")
    dequantized: bool | None = Field(None, description="True when a quantized base was dequantized to merge.")
    lineage: Lineage | None = Field(None, description="The adapter and base it merged, the model it left.")


# ----------------------------------------------------------------------- evaluation
class BenchmarkResult(Record):
    task: str = Field(description="lm-eval task or group name.")
    dataset_id: str | None = Field(description="Hub id (or bundled file) of the benchmark data.")
    dataset_config: str | None = Field(None, description="The dataset's configuration name.")
    split: str | None = Field(description="Split scored.")
    num_fewshot: int = Field(ge=0, description="Few-shot examples in each prompt.")
    metric: str = Field(description="lm-eval metric name (acc, acc_norm, mc2, ...).")
    value: float = Field(description="The tuned model's score.")
    # Not ge=0: a NaN from lm-eval must reach to_json's "non-finite" refusal, not fail here as a traceback.
    stderr: Annotated[float | None, AfterValidator(not_negative)] = Field(
        description="lm-eval's standard error of the value (method: stderr_method)."
    )
    n: int = Field(ge=0, description="Items scored.")
    base_value: float | None = Field(None, description="The base model's score on the same task.")
    base_stderr: Annotated[float | None, AfterValidator(not_negative)] = Field(
        None, description="lm-eval's standard error of base_value."
    )
    chance: float | None = Field(None, description="Score of uniform guessing.")
    filter: str | None = Field(None, description="lm-eval filter the metric was read under (none, strict-match...).")
    stderr_method: str | None = Field(None, description="How the stderr was computed (bootstrap, analytic...).")
    limit: int | float | None = Field(None, ge=0, description="lm-eval limit the task ran with (None: the full set).")
    task_version: Any = Field(None, description="The task's version as lm-eval reports it.")
    harness: str | None = Field(None, description="The harness that scored it.")
    harness_version: str | None = Field(None, description="Its version.")


class ThroughputRecord(Record):
    device: str = Field(description="Device name, e.g. 'NVIDIA H100' or the CPU model.")
    dtype: str = Field(description="dtype the model generated in.")
    prompts: int = Field(ge=1, description="Chat prompts generated from per timed run.")
    new_tokens: int = Field(ge=1, description="Tokens generated per prompt.")
    runs: int = Field(ge=1, description="Timed runs.")
    batch_size: int = Field(1, ge=1, description="Prompts per generate() call.")
    tokens_per_second_median: float = Field(gt=0, description="Median over the timed runs.")
    tokens_per_second_min: float = Field(gt=0, description="Slowest timed run.")
    tokens_per_second_max: float = Field(gt=0, description="Fastest timed run.")
    warmup_runs: int | None = Field(None, ge=0, description="Untimed runs before the timed ones.")
    tokens_per_run: int | None = Field(None, ge=1, description="prompts x new_tokens.")
    device_type: str | None = Field(None, description="cpu, cuda, mps...")
    torch_threads: int | None = Field(None, ge=1, description="torch's intra-op threads (CPU speed depends on it).")


class EvaluationSettings(Record):
    device: str | None = Field(None, description="Device lm-eval ran on.")
    batch_size: int | str | None = Field(None, description="lm-eval batch size.")
    limit: int | float | None = Field(None, ge=0, description="lm-eval limit per task (None: the full sets).")
    bootstrap_iters: int | None = Field(None, ge=0, description="Bootstrap resamples for the stderr.")
    seed: int | None = Field(None, description="Seed of few-shot sampling and lm-eval's RNGs.")
    trust_remote_code: bool | None = Field(None, description="model.trust_remote_code.")
    dtype: str | None = Field(None, description="dtype the models were scored in.")
    include_path: str | None = Field(None, description="evaluation.include_path: where the task YAMLs came from.")


class EvaluatedBase(Record):
    reference: str = Field(description="The base model as the config names it.")
    revision: str | None = Field(None, description="Its Hub commit sha, when known.")


class EvaluationRecord(Record, Traced):
    harness: str = Field("lm-eval", description="The evaluation harness.")
    harness_version: str = Field(description="Its version.")
    results: list[BenchmarkResult] = Field(
        default_factory=list, max_length=MAX_BENCHMARKS, description="One entry per configured task."
    )
    throughput: ThroughputRecord | None = Field(None, description="Generation speed of the merged model.")
    settings: EvaluationSettings | None = Field(None, description="How lm-eval was run.")
    base_model: EvaluatedBase | None = Field(None, description="The base scored for base_value, when evaluated.")
    lineage: Lineage | None = Field(None, description="The merged model (and base) it scored.")


# ----------------------------------------------------------------------- provenance
class Provenance(Record):
    pubctl_version: str = Field(description="pubctl that wrote the record.")
    git_commit: str | None = Field(None, description="Commit of the project checkout (-dirty: uncommitted changes).")
    created_at: str = Field(description="ISO 8601 time the record was last written by a stage.")
    config_sha256: str | None = Field(None, description="sha256 of the release's YAML file.")
    versions: dict[str, str] = Field(default_factory=dict, description="Versions of the libraries that ran.")
    hardware: dict[str, Any] = Field(default_factory=dict, description="The machine of the last stage.")


# ------------------------------------------------------------------------ rehearsal
class RehearsalChange(Record):
    field: str = Field(description="Dotted config field the rehearsal changed.")
    real: Any = Field(description="Its value in the release's config.")
    rehearsal: Any = Field(description="Its value in the rehearsal.")


class RehearsalRecord(Record):
    """Present only in a rehearsal's record: what was rehearsed and how it was shrunk (never a release)."""

    of: str = Field(description="The release rehearsed (its config name).")
    config_sha256: str = Field(description="sha256 of that release's config file.")
    base_model: str = Field(description="The real base model whose architecture and tokenizer were used.")
    model_files: str = Field(description="Where its config.json and tokenizer came from: 'hub' or a local folder.")
    model_files_revision: str | None = Field(None, description="Commit sha of the Hub files, when fetched.")
    layers: int = Field(ge=1, description="Decoder layers of the random-weight base.")
    real_layers: int = Field(ge=1, description="Decoder layers of the real base.")
    random_parameters: int = Field(ge=0, description="Parameters of the random-weight base.")
    dataset: str = Field(description="The real training dataset.")
    data_source: str = Field(description="Where the sampled rows came from (a Hub stream or a local file).")
    data_revision: str | None = Field(None, description="Commit sha the Hub rows were streamed at.")
    rows: int = Field(ge=0, description="Rows sampled from the training split.")
    eval_rows: int = Field(0, ge=0, description="Rows sampled from data.eval_split to check its schema.")
    offline: bool = Field(description="No Hub access: benchmarks ran as pubctl's offline look-alikes.")
    tasks: dict[str, str | None] = Field(
        description="Each real benchmark and the task rehearsed for it (None: not run)."
    )
    changes: list[RehearsalChange] = Field(default_factory=list, description="Config fields the rehearsal shrank.")


class Waiver(Record):
    check: str = Field(description="Id of the waived check.")
    reason: str = Field(description="Why a person accepted the failure (shown on the card).")


class Results(Record):
    schema_version: Literal[1] = SCHEMA_VERSION
    release: str
    rehearsal: RehearsalRecord | None = None
    model: ModelRecord | None = None
    training: TrainingRecord | None = None
    merge: MergeRecord | None = None
    evaluation: EvaluationRecord | None = None
    provenance: Provenance | None = None
    waivers: list[Waiver] = Field(default_factory=list)

    def to_json(self) -> str:
        """Canonical text: sections not written yet are absent, not null; no NaN or Infinity."""
        # exclude_unset: a field no stage wrote is absent, as a section is; a default is never passed off as
        # a measurement. The three keys every record has are written whatever was set.
        data = self.model_dump(mode="json", exclude_unset=True)
        data = {"schema_version": self.schema_version, "release": self.release, **data}
        data.setdefault("waivers", [])
        for key in SECTIONS:
            if data.get(key) is None:
                data.pop(key, None)
        try:
            return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        except ValueError as exc:
            raise ResultsError(f"results for '{self.release}' hold a non-finite number: {exc}") from None


# ----------------------------------------------------------------------------- I/O
def read_results(path: Path) -> Results:
    """Read a record; a missing, corrupt, hostile or future-version file is a clear ResultsError.

    Read strictly and within bounds (pipeline.record_validation): a string where a number belongs
    (``"0.1"``) is a damaged record, not a number to guess at.
    """
    if not path.exists() and not path.is_symlink():
        raise ResultsError(f"{path}: no results record yet (run the stages first, e.g. pubctl release).")
    return parse_record(path, Results, SCHEMA_VERSION)


def read_or_new(path: Path, release: str) -> Results:
    """The record at ``path``, or an empty one for ``release`` when none exists yet."""
    return read_results(path) if path.is_file() else Results(release=release)


def write_results(path: Path, results: Results) -> None:
    """Write atomically: a temp file in the same folder, fsync, then rename over the old file."""
    atomic_write_text(path, results.to_json())


def update_results(path: Path, release: str, **sections: Any) -> Results:
    """Replace the given top-level sections (model=..., training=..., waivers=...) and keep the rest."""
    unknown = (set(sections) - set(Results.model_fields)) | ({"schema_version", "release"} & set(sections))
    if unknown:
        raise ValueError(f"not record sections: {sorted(unknown)}")
    with locked(path):
        results = read_or_new(path, release)
        for key, value in sections.items():
            setattr(results, key, value)
        write_results(path, results)
    return results
