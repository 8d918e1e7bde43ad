"""A model folder's config and safetensors shards, read from headers without loading weights."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import UsageError
from pipeline.safetensors_dtypes import DTYPE_NAMES

SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
EMBED_SUFFIXES = ("embed_tokens.weight", "wte.weight", "word_embeddings.weight")
LM_HEAD = "lm_head.weight"


def read_json_object(path: Path) -> dict[str, Any]:
    """A model folder's JSON file as a mapping; a damaged one is the user's input error, not a traceback."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); a damaged download?") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object, found {type(data).__name__}.")
    return data


@dataclass(frozen=True)
class TensorInfo:
    file: str
    dtype: str
    """safetensors dtype code: F32, BF16, F16, ..."""
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count


@dataclass
class Checkpoint:
    """A model folder: its config.json and where each tensor lives."""

    folder: Path
    config: dict[str, Any]
    tensors: dict[str, TensorInfo]
    """Every tensor by name, in file order."""

    @classmethod
    def read(cls, folder: Path) -> Checkpoint:
        from safetensors import SafetensorError, safe_open

        config_file = folder / "config.json"
        if not config_file.is_file():
            raise UsageError(f"{folder} is not a model folder: it has no config.json.")
        config = read_json_object(config_file)
        if (folder / SAFE_INDEX).is_file():
            weight_map = read_json_object(folder / SAFE_INDEX).get("weight_map")
            if not isinstance(weight_map, dict):
                raise UsageError(f"{folder / SAFE_INDEX} has no weight_map: a damaged or incomplete download?")
            files = list(dict.fromkeys(weight_map.values()))
        elif (folder / SAFE_WEIGHTS).is_file():
            files = [SAFE_WEIGHTS]
        else:
            others = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".gguf"))
            found = f" (it has {', '.join(others)})" if others else ""
            raise UsageError(
                f"{folder} has no safetensors weights{found}. The streaming merge reads safetensors only; "
                "set `merge.strategy: peft` to merge with peft, or convert the base to safetensors."
            )
        tensors: dict[str, TensorInfo] = {}
        for name in files:
            path = folder / name
            if not path.is_file():
                raise UsageError(f"{folder / SAFE_INDEX} lists {name}, which is missing: incomplete download?")
            try:
                with safe_open(path, framework="pt") as handle:
                    for key in handle.keys():  # noqa: SIM118 - safe_open has keys(), no __iter__
                        piece = handle.get_slice(key)
                        info = TensorInfo(file=name, dtype=piece.get_dtype(), shape=tuple(piece.get_shape()))
                        tensors[key] = info
            except (SafetensorError, OSError) as exc:  # a damaged header, a truncated file, an unknown dtype
                reason = " ".join(str(exc).split())[:200]
                raise UsageError(f"{path} is not a readable safetensors file ({reason}).") from None
        return cls(folder=folder, config=config, tensors=tensors)

    @property
    def text_config(self) -> dict[str, Any]:
        """The language-model part of the config (multimodal configs nest it)."""
        return self.config.get("text_config") or self.config

    @property
    def vocab_size(self) -> int | None:
        size = self.text_config.get("vocab_size", self.config.get("vocab_size"))
        return int(size) if size is not None else None

    @property
    def embed_name(self) -> str | None:
        """Name of the input-embedding weight, by the naming conventions of transformers' decoders."""
        names = [name for name in self.tensors if name.endswith(EMBED_SUFFIXES)]
        return names[0] if len(names) == 1 else None

    @property
    def tied(self) -> bool:
        """The checkpoint stores one matrix for input and output embeddings."""
        return LM_HEAD not in self.tensors and self.embed_name is not None

    @property
    def quantization(self) -> dict[str, Any] | None:
        quant = self.config.get("quantization_config") or self.text_config.get("quantization_config")
        return quant if isinstance(quant, dict) else None

    def dtype_name(self) -> str:
        """The floating dtype holding most parameters (norms may be kept in float32 beside bf16 weights)."""
        counts: dict[str, int] = {}
        for info in self.tensors.values():
            if info.dtype in DTYPE_NAMES:
                counts[info.dtype] = counts.get(info.dtype, 0) + info.numel
        if not counts:
            raise UsageError(f"{self.folder}: no floating-point tensors in the checkpoint.")
        return DTYPE_NAMES[max(counts, key=lambda code: counts[code])]
