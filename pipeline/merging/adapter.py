"""A saved peft LoRA adapter read as edits to named tensors of the base checkpoint.

peft saves ``adapter_config.json`` and ``adapter_model.safetensors`` whose keys are the
module paths of the wrapped model (``base_model.model.<module>.lora_A.weight`` ...). The
streaming merge needs the same information per base tensor: which tensor, which LoRA
factors, which scaling, whether DoRA rescales it, and which tensors the adapter replaces
outright (``modules_to_save``). peft has no API that gives this without building the whole
model, so the mapping is read here from peft's documented save format.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import UsageError
from pipeline.merging.checkpoint import read_json_object

if TYPE_CHECKING:
    import torch

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
NOT_ADAPTER = ("training_args.bin", "README.md")
"""Files trainers save beside the adapter that are not part of it: a pickle of the trainer's arguments, and
TRL's generated card (no numbers, ``licence`` for ``license``); the push writes the adapter repo's own card."""
PEFT_PREFIX = "base_model.model."

# LoRA options whose merge is not plain W + s·B·A (or DoRA on top of it). The streaming merge
# refuses them instead of writing a silently different model; peft's own merge may handle them.
UNSUPPORTED_OPTIONS = {
    "target_parameters": "LoRA on raw parameters (target_parameters)",
    "trainable_token_indices": "trainable token indices",
    "layer_replication": "layer replication",
    "alora_invocation_tokens": "activated LoRA (aLoRA)",
    "arrow_config": "Arrow routing",
    "use_bdlora": "block-diagonal LoRA",
    "velora_config": "VeLoRA",
    "monteclora_config": "MonteCLoRA",
    "kasa_config": "KaSA",
    "mica": "MiCA",
    "use_qalora": "QA-LoRA",
    "lora_bias": "LoRA bias terms (lora_bias)",
}


@dataclass
class LoraEdit:
    """One LoRA update of one base tensor."""

    module: str
    """Module path in the model, e.g. model.layers.0.self_attn.q_proj."""
    kind: str
    """'linear' (weight is out x in) or 'embedding' (weight is vocab x dim)."""
    lora_a: torch.Tensor
    lora_b: torch.Tensor
    scaling: float
    magnitude: torch.Tensor | None = None
    """DoRA magnitude vector (one entry per output row), None for plain LoRA."""
    fan_in_fan_out: bool = False
    """The base stores this weight transposed (in x out), as GPT-2's Conv1D does."""

    @property
    def target(self) -> str:
        return f"{self.module}.weight"


@dataclass
class Adapter:
    """Everything the merge needs from a saved adapter."""

    folder: Path
    config: dict[str, Any]
    edits: dict[str, LoraEdit] = field(default_factory=dict)
    """LoRA updates by base tensor name."""
    replacements: dict[str, torch.Tensor] = field(default_factory=dict)
    """Tensors the adapter replaces whole (modules_to_save), by base tensor name."""
    base_layers: dict[str, torch.Tensor] = field(default_factory=dict)
    """Base weights peft saved beside an embedding LoRA (save_embedding_layers), by base tensor name."""

    @property
    def base_model_name_or_path(self) -> str | None:
        return self.config.get("base_model_name_or_path") or None

    @property
    def ensure_weight_tying(self) -> bool:
        return bool(self.config.get("ensure_weight_tying"))

    @property
    def touched(self) -> set[str]:
        """Base tensor names whose merged value may differ from the base."""
        return set(self.edits) | set(self.replacements) | set(self.base_layers)


def _pattern_value(patterns: dict[str, Any], module: str, default: Any) -> Any:
    # Same matching rule as peft.utils.other.get_pattern_key; importing peft here would pull in
    # transformers and ~150 MB of resident memory into the streaming merge for a three-line regex.
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def read_adapter_config(folder: Path) -> dict[str, Any]:
    """adapter_config.json of ``folder``, with a clear error when the adapter is missing or not LoRA."""
    config_file = folder / ADAPTER_CONFIG
    if not config_file.is_file():
        raise UsageError(
            f"No adapter to merge: {config_file} does not exist. Run `pubctl train NAME` first "
            "(it saves the LoRA adapter there), or check that the train stage finished."
        )
    config = read_json_object(config_file)
    if config.get("peft_type") != "LORA":
        raise UsageError(f"{config_file}: peft_type is {config.get('peft_type')!r}; pubctl merges LoRA adapters only.")
    return config


def check_supported(config: dict[str, Any], folder: Path) -> None:
    """Refuse LoRA options the streaming merge does not implement (peft's merge may)."""
    used = [label for key, label in UNSUPPORTED_OPTIONS.items() if config.get(key)]
    if used:
        raise UsageError(
            f"The adapter in {folder} uses {', '.join(used)}, which the streaming merge does not implement. "
            "Set `merge.strategy: peft` in the config to merge it with peft's merge_and_unload instead."
        )


def load_adapter(folder: Path, *, streaming: bool = True) -> Adapter:
    """Read the adapter in ``folder`` into per-tensor edits.

    ``streaming=False`` reads it for the checks only (peft will merge it): options and tensors the
    streaming merge does not implement are then skipped instead of refused.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    config = read_adapter_config(folder)
    if streaming:
        check_supported(config, folder)
    weights = folder / ADAPTER_WEIGHTS
    if not weights.is_file():
        other = sorted(p.name for p in folder.glob("adapter_model.*"))
        found = f" (found {', '.join(other)}; pubctl reads safetensors only, never pickles)" if other else ""
        raise UsageError(f"No adapter weights: {weights} does not exist{found}. Re-run `pubctl train NAME`.")
    try:
        tensors = load_file(weights)
    except (SafetensorError, OSError) as exc:
        raise UsageError(f"{weights}: unreadable safetensors file ({exc}).") from None

    adapter = Adapter(folder=folder, config=config)
    factors: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        if not key.startswith(PEFT_PREFIX):
            raise UsageError(f"{weights}: unexpected key {key!r} (not saved by peft from a causal LM).")
        name = key[len(PEFT_PREFIX) :]
        match = re.fullmatch(
            r"(?P<module>.+)\.(?P<part>lora_A\.weight|lora_B\.weight|lora_embedding_A|lora_embedding_B|"
            r"lora_magnitude_vector(?:\.weight)?|base_layer\.weight)",
            name,
        )
        if match is None:
            if re.search(r"\.lora_[A-Za-z_]+", name):
                if not streaming:
                    continue
                raise UsageError(
                    f"{weights}: tensor {key!r} belongs to a LoRA variant the streaming merge does not implement. "
                    "Set `merge.strategy: peft` to merge it with peft."
                )
            adapter.replacements[name] = tensor  # modules_to_save: the trained copy of the whole module
            continue
        module, part = match["module"], match["part"]
        if part == "base_layer.weight":
            adapter.base_layers[f"{module}.weight"] = tensor
        else:
            factors.setdefault(module, {})[part.split(".")[0]] = tensor

    r_default, alpha_default = int(config.get("r", 8)), config.get("lora_alpha", 8)
    for module, parts in sorted(factors.items()):
        kind = "embedding" if "lora_embedding_A" in parts else "linear"
        a = parts.get("lora_embedding_A" if kind == "embedding" else "lora_A")
        b = parts.get("lora_embedding_B" if kind == "embedding" else "lora_B")
        if a is None or b is None:
            raise UsageError(f"{weights}: {module} has only one of its two LoRA factors; the file is incomplete.")
        r = int(_pattern_value(config.get("rank_pattern") or {}, module, r_default))
        alpha = float(_pattern_value(config.get("alpha_pattern") or {}, module, alpha_default))
        if a.shape[0] != r or b.shape[1] != r:
            raise UsageError(
                f"{weights}: {module} has rank {a.shape[0]} but adapter_config.json says r={r}; "
                "the config and weights do not belong together."
            )
        magnitude = parts.get("lora_magnitude_vector")
        if magnitude is not None and kind == "embedding" and streaming:
            raise UsageError(
                f"{weights}: DoRA on the embedding {module} is not implemented by the streaming merge. "
                "Set `merge.strategy: peft` to merge it with peft."
            )
        # scaling exactly as peft's LoraLayer.update_layer: alpha/r, or alpha/sqrt(r) with rsLoRA
        scaling = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
        adapter.edits[f"{module}.weight"] = LoraEdit(
            module=module,
            kind=kind,
            lora_a=a,
            lora_b=b,
            scaling=scaling,
            magnitude=magnitude,
            fan_in_fan_out=bool(config.get("fan_in_fan_out")) and kind == "linear",
        )
    if streaming and not adapter.edits and not adapter.replacements:
        raise UsageError(f"{weights}: holds no LoRA factors and no saved modules; nothing to merge.")
    return adapter
