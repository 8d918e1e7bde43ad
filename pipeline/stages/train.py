"""The train stage: a TRL trainer with a peft LoRA adapter, resumable, with an honest record.

``run`` prepares everything a method needs into a :class:`TrainContext`, lets the
method's ``build_trainer`` build its TRL trainer, trains (resuming from the last
checkpoint in runs/NAME/train/ by default), saves the adapter and tokenizer and
writes the ``training`` section of cards/NAME/results.json. A run that did not
really train (no optimizer step, a non-finite loss, too few samples) is a
StageFailed and writes nothing to the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.errors import UsageError

if TYPE_CHECKING:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback

    from pipeline.config import ReleaseConfig
    from pipeline.layout import Layout
    from pipeline.methods.base import MethodParams

TRL_TESTED = (">=1.16", "<1.17")
"""TRL versions pubctl's trainers are tested with (TRL moves trainers between releases)."""


def check_trl_version() -> str:
    """The installed TRL version; a UsageError when it is outside the range pubctl is tested with."""
    from importlib import metadata

    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    try:
        installed = metadata.version("trl")
    except metadata.PackageNotFoundError:
        raise UsageError(
            "The train stage needs TRL, which is not installed. Install the training stack with: "
            "pip install 'pubctl[train]'."
        ) from None
    tested = SpecifierSet(",".join(TRL_TESTED))
    if Version(installed) not in tested:
        raise UsageError(
            f"TRL {installed} is installed but pubctl's trainers are tested with trl{','.join(TRL_TESTED)} "
            "(TRL moves trainers between releases: KTO left the stable API and came back, BCO was deleted in 1.14). "
            f"Install a tested version: pip install 'trl{','.join(TRL_TESTED)}'."
        )
    return installed


@dataclass
class TrainContext:
    """Everything a method's ``build_trainer(ctx)`` needs to build its TRL trainer.

    The model is the plain base model and ``peft_config`` the LoRA to apply: TRL's
    trainers wrap the model themselves (seeded before the adapter is initialised,
    and using the adapter-disabled model as the reference, so no copy of the base
    is kept in memory).
    """

    config: ReleaseConfig
    layout: Layout
    params: MethodParams
    """The method's validated parameters (``config.method``)."""
    model: PreTrainedModel
    """The base model, loaded in the config's dtype, without the adapter."""
    peft_config: LoraConfig
    """The LoRA adapter from ``config.lora``; pass it to the trainer as ``peft_config``."""
    tokenizer: PreTrainedTokenizerBase
    """Tokenizer of the base model (TRL's ``processing_class``)."""
    train_dataset: Dataset
    """Training rows already in the format ``SPEC.consumes`` (paired, unpaired or text)."""
    eval_dataset: Dataset | None
    """Held-out rows in the same format, or None when the config asks for no evaluation."""
    training_args: dict[str, Any]
    """Common TrainingArguments kwargs derived from the config (output_dir, batches, lr, precision, ...)."""
    callbacks: list[TrainerCallback] = field(default_factory=list)
    """Callbacks pubctl adds to every trainer."""

    def make_args(self, config_class: type, **method_kwargs: Any) -> Any:
        """``config_class`` (a TRL config) built from the common arguments plus the method's own."""
        clash = set(method_kwargs) & set(self.training_args)
        if clash:
            raise ValueError(f"method arguments override common training arguments: {sorted(clash)}")
        return config_class(**self.training_args, **method_kwargs)

    def trainer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments every TRL trainer takes besides ``args``."""
        return {
            "model": self.model,
            "train_dataset": self.train_dataset,
            "eval_dataset": self.eval_dataset,
            "processing_class": self.tokenizer,
            "peft_config": self.peft_config,
            "callbacks": list(self.callbacks),
        }
