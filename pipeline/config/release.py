"""One release: the config's sections together, and the rules that span them."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, PrivateAttr, model_validator

from pipeline.config.base import Section
from pipeline.config.importing import ImportSection
from pipeline.config.publishing import CardSection, ChecksSection, EvaluationSection, HubSection
from pipeline.config.sources import DataSection, ModelSection
from pipeline.config.training import LoraSection, MergeSection, MethodSection, TrainingSection
from pipeline.methods import METHODS, MethodSpec


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
    import_: ImportSection = Field(default_factory=ImportSection, alias="import", description="Results made elsewhere.")

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
