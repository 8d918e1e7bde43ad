"""What the train stage hands a method's ``build_trainer``: the model, data and arguments, ready.

It lives with the methods, not the stage, so that a method depends on its inputs
and never on the stage that prepares them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datasets import Dataset
    from peft import LoraConfig
    from pydantic import BaseModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback


@dataclass
class TrainContext:
    """Everything a method's ``build_trainer(ctx)`` needs to build its TRL trainer.

    The model is the plain base model and ``peft_config`` the LoRA to apply: TRL's
    trainers wrap the model themselves (seeded before the adapter is initialised,
    and using the adapter-disabled model as the reference, so no copy of the base
    is kept in memory).
    """

    # Typed as pydantic's BaseModel, not base.MethodParams: base names this class in MethodSpec, and the two
    # modules would import each other.
    params: BaseModel
    """The method's validated parameters (``config.method``, the method's MethodParams subclass)."""
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
