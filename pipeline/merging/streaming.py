"""The streaming merge: base safetensors shards in, merged shards out, one output shard in memory.

Tensors are read one at a time from the base's shards (safetensors ``safe_open``), the
adapter's edits are applied to the tensors they touch, and the result is written as shards
of at most ``max_shard_size`` (planned by huggingface_hub's shard splitter from the headers
alone, so names and index follow transformers' convention). Peak memory is about one output
shard plus the adapter, instead of the whole model that peft's ``merge_and_unload`` needs.

Tied embeddings (one matrix serving as input embedding and output head) stay tied unless the
adapter made the two differ, for example a LoRA on ``embed_tokens`` only: peft applies it to
the input side alone, so the merged model must carry a separate ``lm_head``. (peft's own
``merge_and_unload`` adds such a delta in place to the shared matrix and changes the head too.)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.atomic import atomic_write_text
from pipeline.errors import wrapped_os_error
from pipeline.merging.checkpoint import LM_HEAD, SAFE_INDEX, Checkpoint
from pipeline.merging.delta import merge_tensor
from pipeline.safetensors_dtypes import DTYPE_BYTES

if TYPE_CHECKING:
    import torch

    from pipeline.merging.adapter import Adapter

_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def shard_bytes(size: str) -> int:
    """'5GB' / '500MB' / '2GiB' in bytes.

    By hand because the config accepts both decimal and binary units, and neither
    huggingface_hub's parse_size_to_int (no KiB/MiB/GiB) nor transformers' converter
    (integers only) reads them all.
    """
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]+)", size.strip())
    if match is None or match[2].upper() not in _UNITS:
        raise ValueError(f"not a size: {size!r} (expected e.g. '5GB', '500MB', '2GiB')")
    return int(float(match[1]) * _UNITS[match[2].upper()])


def torch_dtype(name: str) -> torch.dtype:
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def weights_equal(first: torch.Tensor, second: torch.Tensor, *, nearly: bool) -> bool:
    """Whether two embedding matrices may be stored as one; ``nearly`` allows float rounding noise."""
    import torch

    if first.shape != second.shape:
        return False
    if torch.equal(first, second):
        return True
    return nearly and torch.allclose(first.float(), second.float(), rtol=1e-5, atol=1e-7)


M_MMAP_THRESHOLD = -3
"""glibc's mallopt parameter number for the size above which blocks are mapped, not taken from the heap."""


def _map_large_blocks() -> None:
    """Make glibc return every freed block of 1 MiB or more to the operating system at once (glibc only).

    By default glibc raises its mmap threshold to the largest block freed so far (up to 32 MiB), so
    after the first merged weight the shard's tensors come from the heap, and freed heap memory is
    kept: measured on a 174M-parameter bf16 model, resident memory then grew by about 1.5 shards per
    shard written. A fixed threshold keeps it at one shard. Other C libraries (macOS, musl) have no
    mallopt and already map large blocks.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 20)


@dataclass
class StreamingResult:
    files: list[str]
    """Weight files written (shards and index), relative to the output folder."""
    untied: bool
    """The base had tied embeddings and the merged model stores input and output separately."""
    parameters: int
    """Parameters written (a tied matrix counted once)."""
    changed: list[str]
    """Base tensors whose values the adapter changed or replaced."""


def _load_dtype(tensor: torch.Tensor, out_dtype: torch.dtype | None) -> torch.dtype:
    """The dtype a tensor has in the model peft merges: the requested model.dtype for floating tensors, else its own."""
    return out_dtype if out_dtype is not None and tensor.is_floating_point() else tensor.dtype


def tied_embeddings(
    base: Checkpoint, adapter: Adapter, read, out_dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Merged input embedding and, when it must be stored apart, the merged output head of a tied base."""
    embed = base.embed_name
    assert embed is not None  # refusals.check_adapter_fits guarantees it for a tied base
    weight = read(embed)
    dtype = _load_dtype(weight, out_dtype)
    # In peft the head *is* the embedding's base weight, so a saved base_layer of either replaces both.
    start = adapter.base_layers.get(embed, adapter.base_layers.get(LM_HEAD, weight))
    sides = {}
    for name in (embed, LM_HEAD):
        value = adapter.replacements.get(name, start).to(dtype)
        if name in adapter.edits:
            value = merge_tensor(value, adapter.edits[name])
        sides[name] = value
    if weights_equal(sides[embed], sides[LM_HEAD], nearly=adapter.ensure_weight_tying):
        return sides[embed], None
    return sides[embed], sides[LM_HEAD]


def merge_streaming(
    base: Checkpoint, adapter: Adapter, out_dir: Path, max_shard_size: str, dtype: str | None = None
) -> StreamingResult:
    """Write the merged weights of ``base`` + ``adapter`` to ``out_dir`` (shards and index)."""
    from huggingface_hub import split_state_dict_into_shards_factory
    from safetensors import safe_open
    from safetensors.torch import save_file

    _map_large_blocks()
    out_dtype = torch_dtype(dtype) if dtype else None
    precomputed: dict[str, torch.Tensor] = {}
    untied = False

    def read_base(name: str) -> torch.Tensor:
        # safetensors returns tensors backed by a memory map of the file, alive as long as the tensor; opening
        # per tensor ties each map to one tensor, so the input pages read are released with the shard written.
        with safe_open(base.folder / base.tensors[name].file, framework="pt") as handle:
            return handle.get_tensor(name)

    if base.tied and {base.embed_name, LM_HEAD} & adapter.touched:
        embed, head = tied_embeddings(base, adapter, read_base, out_dtype)
        precomputed[base.embed_name] = embed
        if head is not None:
            precomputed[LM_HEAD] = head
            untied = True

    def out_bytes(name: str) -> int:
        info = base.tensors[name if name in base.tensors else base.embed_name]
        floating = info.dtype in ("F32", "BF16", "F16", "F64")
        itemsize = out_dtype.itemsize if (out_dtype is not None and floating) else DTYPE_BYTES.get(info.dtype, 4)
        return info.numel * itemsize

    names = list(base.tensors) + ([LM_HEAD] if untied else [])
    split = split_state_dict_into_shards_factory(
        {name: out_bytes(name) for name in names},
        get_storage_size=lambda size: size,
        filename_pattern="model{suffix}.safetensors",
        max_shard_size=shard_bytes(max_shard_size),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    parameters = 0
    changed: list[str] = []
    for filename, shard_names in split.filename_to_tensors.items():
        shard: dict[str, torch.Tensor] = {}
        for name in shard_names:
            if name in precomputed:
                tensor = precomputed.pop(name)
            else:
                tensor = read_base(name)
                # Cast to the output dtype before merging, as peft merges into the model loaded with model.dtype:
                # merging in the base's dtype and casting afterwards would round a bfloat16 base's merge to
                # bfloat16 even when float32 was asked for.
                dtype = _load_dtype(tensor, out_dtype)
                tensor = adapter.base_layers.get(name, tensor).to(dtype)
                tensor = adapter.replacements.get(name, tensor).to(dtype)
                if name in adapter.edits:
                    tensor = merge_tensor(tensor, adapter.edits[name])
            if name in adapter.touched:
                changed.append(name)
            shard[name] = tensor.contiguous()
            parameters += tensor.numel()
        try:
            save_file(shard, out_dir / filename, metadata={"format": "pt"})
        except Exception as exc:  # safetensors wraps a full disk as "... (os error 28)": name the shard instead
            named = wrapped_os_error(exc, out_dir / filename)
            if named is None:
                raise
            raise named from exc
        del shard, tensor
    files = list(split.filename_to_tensors)
    if split.is_sharded:
        index = {
            "metadata": {"total_parameters": parameters, **split.metadata},
            "weight_map": dict(sorted(split.tensor_to_filename.items())),
        }
        atomic_write_text(out_dir / SAFE_INDEX, json.dumps(index, indent=2, sort_keys=True) + "\n")
        files.append(SAFE_INDEX)
    return StreamingResult(files=files, untied=untied, parameters=parameters, changed=sorted(changed))
