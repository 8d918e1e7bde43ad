"""Enhanced KTO on TRL's KTOTrainer: the loss of ``enhanced_kto_loss`` in place of KTO's 1 − σ(u).

TRL 1.16 computes the KTO loss inline in ``KTOTrainer._compute_loss`` (there is no separate loss
method any more), so that method is the smallest piece to override. The override keeps TRL's data
path: the same forward passes (policy, reference through the disabled adapter or a ref model, the
mismatched KL completions), the same z₀ estimate and the same logged metrics (``kl``, ``rewards/*``,
``logps/*``, ``logits/*``, ``entropy``, ``num_tokens``); only the loss differs, plus the ``ekto/*``
component metrics. δ, the BCO running mean, lives in a stateful TrainerCallback: transformers writes
it into each checkpoint's trainer_state.json and it is read back when training resumes.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate.utils import is_peft_model
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import ExportableState
from trl import KTOConfig, KTOTrainer
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import use_adapter

from pipeline.methods.enhanced_kto_loss import enhanced_kto_losses, kl_estimate, mean_token_logps
from pipeline.methods.enhanced_kto_params import Params


def _param_fields() -> list[tuple[str, Any, Any]]:
    """One dataclass field per Enhanced KTO parameter KTOConfig lacks, default and help text from Params.

    TRL's config is a dataclass (HfArgumentParser, to_dict and checkpoints read its fields), so the parameters
    must be fields; generating them keeps Params the only place a default is stated.
    """
    inherited = {f.name for f in dataclasses.fields(KTOConfig)}
    return [
        (name, info.annotation, field(default=info.default, metadata={"help": info.description}))
        for name, info in Params.model_fields.items()
        if name != "name" and name not in inherited
    ]


_EnhancedKTOFields = dataclasses.make_dataclass("_EnhancedKTOFields", _param_fields(), bases=(KTOConfig,))


@dataclass
class EnhancedKTOConfig(_EnhancedKTOFields):  # type: ignore[misc,valid-type]
    """KTOConfig plus the Enhanced KTO parameters (fields, defaults and help texts generated from Params)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss_type != "kto":
            raise ValueError(f"Enhanced KTO builds on loss_type='kto', got {self.loss_type!r}")
        self.loss_config()  # out-of-range parameters fail here, not at the first training step

    def loss_config(self) -> Params:
        """The loss's parameters, validated by Params, from this config's fields (KTO's own included)."""
        return Params(**{name: getattr(self, name) for name in Params.model_fields if name != "name"})


class BCOShiftState(TrainerCallback, ExportableState):
    """δ, the running mean of the rewards β·r seen in training, as checkpointable trainer state.

    ExportableState makes transformers write ``state()`` into every checkpoint's trainer_state.json
    (``stateful_callbacks``). Restoring them is opt-in in transformers
    (``restore_callback_states_from_checkpoint``), so ``on_train_begin`` reads the resumed state itself:
    δ must survive a resume whatever that flag says.
    """

    def __init__(self, count: int = 0, mean: float = 0.0) -> None:
        self.count = count
        self.mean = mean

    def update(self, rewards: torch.Tensor) -> None:
        """Fold a batch of rewards into the running mean (float64 on the host: it spans the whole run)."""
        rewards = rewards.detach().double().cpu()
        if rewards.numel() == 0:
            return
        total = self.count + rewards.numel()
        self.mean += (rewards.sum().item() - rewards.numel() * self.mean) / total
        self.count = total

    def state(self) -> dict[str, Any]:
        return {"args": {}, "attributes": {"count": self.count, "mean": self.mean}}

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        saved = (state.stateful_callbacks or {}).get(type(self).__name__)
        if isinstance(saved, dict):
            attributes = saved.get("attributes", {})
            self.count = int(attributes.get("count", 0))
            self.mean = float(attributes.get("mean", 0.0))


class EnhancedKTOTrainer(KTOTrainer):
    """KTOTrainer whose loss is the Enhanced KTO loss; everything else is TRL's."""

    args: EnhancedKTOConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, EnhancedKTOConfig):
            raise TypeError(f"EnhancedKTOTrainer needs an EnhancedKTOConfig, got {type(self.args).__name__}")
        self.loss_config = self.args.loss_config()
        if self.loss_config.bco_shift:
            self.add_callback(BCOShiftState())

    @property
    def bco_state(self) -> BCOShiftState | None:
        """The δ tracker (looked up each time: transformers may replace callbacks when it restores them)."""
        for callback in self.callback_handler.callbacks:
            if isinstance(callback, BCOShiftState):
                return callback
        return None

    def _forward_logps(self, model: Any, batch: dict[str, Any]) -> dict[str, Any]:
        """The policy, reference and KL log-probs of a batch, computed exactly as TRL's ``_compute_loss``."""
        kl_logps = self._compute_kl_logps(model, batch)
        non_model_keys = {
            "completion_mask",
            "KL_input_ids",
            "KL_attention_mask",
            "KL_completion_mask",
            "KL_token_type_ids",
            "KL_mm_token_type_ids",
            "label",
            "ref_logps",
            "ref_KL_logps",
        }
        model_kwargs = {k: v for k, v in batch.items() if k not in non_model_keys}
        model_kwargs["use_cache"] = False
        if self.aux_loss_enabled:
            model_kwargs["output_router_logits"] = True
        completion_labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
        outputs = model(**model_kwargs, labels=completion_labels, fused_lm_head=True)
        # Prompt-learning PEFT prepends virtual tokens to the outputs; keep the positions of the real tokens.
        seq_len = batch["input_ids"].size(1) - 1
        per_token_logps = outputs.log_probs[:, -seq_len:]
        if per_token_logps.shape[0] != len(batch["label"]):
            raise ValueError(
                "There is a mismatch between the number of examples in this batch and the number of "
                "examples for which an output sequence was predicted."
            )

        if self.precompute_ref_logps:
            ref_logps = batch["ref_logps"]
            ref_kl_logps = batch["ref_KL_logps"] if self.calculate_KL else None
        else:
            ref_model_kwargs = {k: v for k, v in model_kwargs.items() if k != "output_router_logits"}
            with torch.no_grad(), disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
                if is_peft_model(self.model) and self.ref_model is None:
                    unwrapped = self.accelerator.unwrap_model(self.model)
                    with use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None):
                        ref_kl_logps = self._compute_kl_logps(self.model, batch)
                        ref_outputs = self.model(**ref_model_kwargs, labels=completion_labels, fused_lm_head=True)
                else:
                    ref_kl_logps = self._compute_kl_logps(self.ref_model, batch)
                    ref_outputs = self.ref_model(**ref_model_kwargs, labels=completion_labels, fused_lm_head=True)
            ref_logps = ref_outputs.log_probs[:, -seq_len:].sum(-1)

        return {
            "outputs": outputs,
            "model_kwargs": model_kwargs,
            "seq_len": seq_len,
            "per_token_logps": per_token_logps,
            "logps": per_token_logps.sum(-1),
            "ref_logps": ref_logps,
            "kl_logps": kl_logps,
            "ref_kl_logps": ref_kl_logps,
        }

    def _kl(
        self, kl_logps: torch.Tensor | None, ref_kl_logps: torch.Tensor | None, device: torch.device
    ) -> torch.Tensor:
        """z₀ as TRL computes it: mean over the batch, averaged across processes, then clamped at 0."""
        if not self.calculate_KL:
            return torch.zeros(1, device=device)
        return kl_estimate(kl_logps, ref_kl_logps, lambda kl: self.accelerator.gather_for_metrics(kl).mean())

    def _delta(self, rewards: torch.Tensor, mode: str) -> float | None:
        """δ to shift by in this batch, or None while the BCO shift is off or still warming up.

        Training batches update δ before it is used (as BCO does), so δ always holds data once the
        shift applies; evaluation reads δ without changing it.
        """
        tracker = self.bco_state
        if tracker is None:
            return None
        if mode == "train":
            tracker.update(self.accelerator.gather_for_metrics(rewards.detach().float()))
        if tracker.count == 0 or self.state.global_step < self.loss_config.bco_shift_start_step:
            return None
        return tracker.mean

    def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
        mode = "train" if self.model.training else "eval"
        batch = {k: (v.to(self.accelerator.device) if isinstance(v, torch.Tensor) else v) for k, v in inputs.items()}
        fwd = self._forward_logps(model, batch)
        logps, ref_logps = fwd["logps"], fwd["ref_logps"]
        device = logps.device
        labels = torch.as_tensor(batch["label"], dtype=torch.bool, device=device)

        kl = self._kl(fwd["kl_logps"], fwd["ref_kl_logps"], device)
        rewards = self.beta * (logps - ref_logps).detach()
        delta = self._delta(rewards, mode)
        shift_mask = batch["completion_mask"][:, 1:]
        config = self.loss_config
        result = enhanced_kto_losses(
            logps,
            ref_logps,
            labels,
            config,
            kl=kl,
            mean_logps=mean_token_logps(fwd["per_token_logps"], shift_mask) if config.odds_ratio else None,
            delta=delta,
        )
        # float32 whatever the model dtype (the loss math is float32). A plain mean, not TRL's nanmean: a
        # non-finite example must surface in the logged loss (the train stage refuses it), not vanish.
        loss = result.losses.mean()

        self._log_kto_metrics(mode, batch, fwd, labels, kl, rewards)
        self._log_component_metrics(mode, result, delta)

        if self.aux_loss_enabled:
            aux_loss = fwd["outputs"].aux_loss
            loss = loss + self.router_aux_loss_coef * aux_loss
            self._metrics[mode]["aux_loss"].append(self.accelerator.gather_for_metrics(aux_loss).mean().item())

        if return_outputs:
            warnings.warn(
                "`return_outputs=True` recomputes the logits with an extra forward pass (the fused LM head does "
                "not build them), as TRL's KTOTrainer does.",
                FutureWarning,
                stacklevel=2,
            )
            with torch.no_grad():
                outputs = model(**fwd["model_kwargs"])
            return loss, outputs
        return loss

    def _mean_across(self, values: torch.Tensor) -> float:
        """Mean of per-example values over every process's batch.

        A plain sum, not nansum: nansum would count a NaN component as 0 and log a finite, wrong mean.
        """
        total = self.accelerator.gather_for_metrics(values.detach().float().sum()).sum()
        count = self.accelerator.gather_for_metrics(torch.tensor(float(values.numel()), device=values.device)).sum()
        return (total / count.clamp(min=1)).item()

    def _log_component_metrics(self, mode: str, result: Any, delta: float | None) -> None:
        """Each Enhanced KTO component, batch means, under ekto/* for the card's plots."""
        config = self.loss_config
        metrics = self._metrics[mode]
        metrics["ekto/margin"].append(self._mean_across(result.margins))
        if config.value_function:
            metrics["ekto/value_margin"].append(self._mean_across(result.value_margins))
        if config.probability_weighting:
            metrics["ekto/weighted_p"].append(self._mean_across(result.weighted_probabilities))
        if config.odds_ratio:
            metrics["ekto/odds_ratio"].append(self._mean_across(result.odds_ratio_terms))
        tracker = self.bco_state
        if tracker is not None:
            metrics["ekto/delta"].append(tracker.mean)
            metrics["ekto/bco_active"].append(float(delta is not None))

    def _log_kto_metrics(
        self,
        mode: str,
        batch: dict[str, Any],
        fwd: dict[str, Any],
        labels: torch.Tensor,
        kl: torch.Tensor,
        rewards: torch.Tensor,
    ) -> None:
        """TRL's KTO metrics, computed as in ``KTOTrainer._compute_loss`` so the two trainers log alike."""
        metrics = self._metrics[mode]
        gather = self.accelerator.gather_for_metrics
        outputs, seq_len, logps = fwd["outputs"], fwd["seq_len"], fwd["logps"]
        metrics["kl"].append(kl.item())

        mask = batch["completion_mask"][:, 1:]
        entropy_sum = gather((outputs.entropy[:, -seq_len:].detach() * mask).sum()).sum()
        total_tokens = gather(mask.sum()).sum()
        metrics["entropy"].append((entropy_sum / total_tokens).item() if total_tokens > 0 else 0.0)

        if mode == "train":
            self._total_train_tokens += gather(batch["attention_mask"].sum()).sum().item() // self._tp_size
        metrics["num_tokens"] = [self._total_train_tokens]

        chosen_idx = torch.nonzero(labels, as_tuple=False).view(-1)
        rejected_idx = torch.nonzero(~labels, as_tuple=False).view(-1)
        mean_logits = outputs.mean_logits[:, -seq_len:]
        for name, idx in (("chosen", chosen_idx), ("rejected", rejected_idx)):
            part_mask = mask.index_select(0, idx)
            logit_sum = gather(mean_logits.index_select(0, idx)[part_mask.bool()].sum()).sum().item()
            token_count = gather(part_mask.sum()).sum().item()
            if token_count > 0:
                metrics[f"logits/{name}"].append(logit_sum / token_count)

        counts = {
            "chosen": gather(labels.sum()).sum().item(),
            "rejected": gather((~labels).sum()).sum().item(),
        }
        for name, idx in (("chosen", chosen_idx), ("rejected", rejected_idx)):
            if counts[name] > 0:
                metrics[f"rewards/{name}"].append(
                    gather(rewards.index_select(0, idx).nansum()).nansum().item() / counts[name]
                )
                metrics[f"logps/{name}"].append(
                    gather(logps.detach().index_select(0, idx).nansum()).nansum().item() / counts[name]
                )
        if counts["chosen"] > 0 and counts["rejected"] > 0:
            metrics["rewards/margins"].append(metrics["rewards/chosen"][-1] - metrics["rewards/rejected"][-1])
