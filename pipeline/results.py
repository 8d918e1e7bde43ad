"""The results record, cards/NAME/results.json: the single source of truth of a card.

Typed models of DESIGN.md's schema_version-1 record, one per section. Each
stage writes its own section with :func:`update_results`, which re-reads the
file, replaces that section only and writes atomically (temp file, fsync,
rename): a crash leaves the old file or the new one, never half of one.
Unknown keys are kept (``extra="allow"``) so a newer pubctl's additions survive
a rewrite by an older one within the same schema version.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.errors import ResultsError

SCHEMA_VERSION = 1
SECTIONS = ("rehearsal", "model", "training", "merge", "evaluation", "provenance")


class Record(BaseModel):
    """Base of every record model: keeps unknown keys, validates assignments."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)


# ---------------------------------------------------------------------------- model
class FileEntry(Record):
    path: str = Field(description="Path inside the model repository.")
    size: int = Field(ge=0, description="Size in bytes.")
    sha256: str = Field(description="Hex sha256 of the file's bytes.")


class ModelRecord(Record):
    repo_id: str = Field(description="Hub repository the model is published to.")
    base_model: str = Field(description="Hub id (or builtin:/local path) of the base model.")
    base_model_revision: str | None = Field(None, description="Commit sha of the base model, when known.")
    architecture: str = Field(description="transformers architecture class, e.g. Qwen3ForCausalLM.")
    parameters: int = Field(ge=0, description="Parameter count measured on the merged weights.")
    dtype: str = Field(description="dtype of the saved weights.")
    license: str = Field(description="Hub license id.")
    language: list[str] = Field(description="ISO 639 codes.")
    files: list[FileEntry] = Field(default_factory=list, description="Every file of the merged model.")


# ------------------------------------------------------------------------- training
class DatasetRecord(Record):
    id: str = Field(description="Hub dataset id or local file the model was trained on.")
    split: str | None = Field(None, description="Split used.")
    revision: str | None = Field(None, description="Commit sha (Hub) or sha256 (local file) of the data.")
    rows: int = Field(ge=0, description="Rows used for training after filtering.")


class LoraRecord(Record):
    r: int
    alpha: int
    dropout: float
    target_modules: list[str] | str


class Hyperparameters(Record):
    epochs: float
    per_device_batch_size: int
    gradient_accumulation_steps: int
    effective_batch_size: int
    learning_rate: float
    max_length: int
    seed: int
    lora: LoraRecord


class TrainingRecord(Record):
    method: str = Field(description="Registered method name.")
    method_params: dict[str, Any] = Field(default_factory=dict, description="The method's parameters.")
    datasets: list[DatasetRecord] = Field(default_factory=list)
    hyperparameters: Hyperparameters
    steps: int = Field(ge=0, description="Optimizer steps taken.")
    samples: int = Field(ge=0, description="Training examples seen.")
    runtime_seconds: float = Field(ge=0, description="Wall time of training from a monotonic clock.")
    final_loss: float | None = Field(description="Training loss of the last logged step.")
    log_history: list[dict[str, Any]] = Field(default_factory=list, description="Trainer.state.log_history.")


# ---------------------------------------------------------------------------- merge
class MergeRecord(Record):
    strategy: str = Field(description="streaming or peft.")
    parity_max_abs_diff: float = Field(ge=0, description="Max |logit diff| merged vs adapter-on-base.")
    probe_prompts: int = Field(ge=1, description="Prompts the parity was measured on.")
    parity_adapter_effect: float | None = Field(
        None,
        ge=0,
        description="Max |adapter-on-base - base| logit difference: the scale half-precision parity is judged on.",
    )


# ----------------------------------------------------------------------- evaluation
class BenchmarkResult(Record):
    task: str
    dataset_id: str | None = Field(description="Hub id (or bundled file) of the benchmark data.")
    dataset_config: str | None = None
    split: str | None = Field(description="Split scored.")
    num_fewshot: int = Field(ge=0)
    metric: str
    value: float
    stderr: float | None = Field(description="lm-eval's standard error of the value (method: stderr_method).")
    n: int = Field(ge=0, description="Items scored.")
    base_value: float | None = Field(None, description="The base model's score on the same task.")
    chance: float | None = Field(None, description="Score of uniform guessing.")


class ThroughputRecord(Record):
    device: str = Field(description="Device name, e.g. 'NVIDIA H100' or the CPU model.")
    dtype: str
    prompts: int = Field(ge=1)
    new_tokens: int = Field(ge=1)
    runs: int = Field(ge=1)
    batch_size: int = Field(1, ge=1)
    tokens_per_second_median: float = Field(gt=0)
    tokens_per_second_min: float = Field(gt=0)
    tokens_per_second_max: float = Field(gt=0)


class EvaluationRecord(Record):
    harness: str = "lm-eval"
    harness_version: str
    results: list[BenchmarkResult] = Field(default_factory=list)
    throughput: ThroughputRecord | None = None


# ----------------------------------------------------------------------- provenance
class Provenance(Record):
    pubctl_version: str
    git_commit: str | None = None
    created_at: str = Field(description="ISO 8601 time the record was last written by a stage.")
    config_sha256: str | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    hardware: dict[str, Any] = Field(default_factory=dict)


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
        data = self.model_dump(mode="json")
        for key in SECTIONS:
            if data.get(key) is None:
                data.pop(key, None)
        try:
            return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        except ValueError as exc:
            raise ResultsError(f"results for '{self.release}' hold a non-finite number: {exc}") from None


# ----------------------------------------------------------------------------- I/O
def read_results(path: Path) -> Results:
    """Read a record; a missing, corrupt or future-version file is a clear ResultsError."""
    if not path.is_file():
        raise ResultsError(f"{path}: no results record yet (run the stages first, e.g. pubctl release).")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(
            f"{path}: corrupt results record, invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: a results record is a JSON object, found {type(data).__name__}.")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        newer = isinstance(version, int) and version > SCHEMA_VERSION
        why = "written by a newer pubctl; upgrade pubctl to read it" if newer else "not a version pubctl knows"
        raise ResultsError(
            f"{path}: schema_version {version!r} is {why} (this pubctl reads schema_version {SCHEMA_VERSION})."
        )
    try:
        return Results.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
        )
        raise ResultsError(f"{path}: invalid results record: {problems}.") from None


def read_or_new(path: Path, release: str) -> Results:
    """The record at ``path``, or an empty one for ``release`` when none exists yet."""
    return read_results(path) if path.is_file() else Results(release=release)


def write_results(path: Path, results: Results) -> None:
    """Write atomically: a temp file in the same folder, fsync, then rename over the old file."""
    atomic_write_text(path, results.to_json())


def atomic_write_text(path: Path, text: str) -> None:
    """Write text so readers see the old content or the new, never a partial file."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()
        raise


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write cycles of one record between processes (POSIX)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: a single writer is the documented use
        yield
        return
    with (path.parent / f".{path.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def update_results(path: Path, release: str, **sections: Any) -> Results:
    """Replace the given top-level sections (model=..., training=..., waivers=...) and keep the rest."""
    unknown = (set(sections) - set(Results.model_fields)) | ({"schema_version", "release"} & set(sections))
    if unknown:
        raise ValueError(f"not record sections: {sorted(unknown)}")
    with _locked(path):
        results = read_or_new(path, release)
        for key, value in sections.items():
            setattr(results, key, value)
        write_results(path, results)
    return results
