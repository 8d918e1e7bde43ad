"""Which dtypes this machine can train in, and at what cost: decided before any weights are loaded.

float16 training needs CUDA (its loss scaling has no CPU implementation); bfloat16 trains on a CPU
(transformers with ``use_cpu``), but only CPUs with native bfloat16 instructions (AVX512-BF16, AMX)
run it at speed. Elsewhere torch emulates it, and one layout of bfloat16 matrix product, the one a
language-model head's backward pass takes over a 150k-token vocabulary, is hundreds of times slower
than float32 (measured on an AVX2 CPU: 566 s against 1.3 s for a 384 x 151936 x 1024 product).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from pipeline.errors import UsageError

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig

NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""Linux /proc/cpuinfo flags of x86 CPUs that compute bfloat16 matrix products in hardware."""


def precision_problem(dtype: str) -> str:
    """Why this machine cannot train in ``dtype``, and what to set instead."""
    if dtype.startswith("float16"):
        return (
            f"model.dtype is {dtype}, but this machine has no CUDA GPU: float16 training needs CUDA (its loss "
            "scaling has no CPU implementation). Set model.dtype: bfloat16 (trains on the CPU) or float32 to train "
            "or rehearse here; keep float16 for the GPU run."
        )
    return f"model.dtype is {dtype}, but this GPU has no bfloat16 support: set model.dtype: float16 or float32."


def check_precision(config: ReleaseConfig) -> None:
    """Refuse a dtype the hardware cannot train in, before anything is loaded (exit 2, not a transformers error)."""
    import torch

    dtype = config.model.dtype
    on_gpu = torch.cuda.is_available()
    if dtype == "float16" and not on_gpu:
        raise UsageError(precision_problem("float16"))
    if dtype == "bfloat16" and on_gpu and not torch.cuda.is_bf16_supported():
        raise UsageError(precision_problem("bfloat16"))


@functools.cache
def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 matrix products in hardware (False where it cannot tell)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not sys.platform.startswith("linux") or not cpuinfo.is_file():
        return False
    for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("flags"):
            return bool(NATIVE_BF16_FLAGS & set(line.partition(":")[2].split()))
    return False


def computes_natively(dtype: str) -> bool:
    """Whether training in ``dtype`` runs at hardware speed here (a CUDA GPU, or a CPU with native bfloat16)."""
    import torch

    if dtype not in ("bfloat16", "float16") or torch.cuda.is_available():
        return True
    return dtype == "bfloat16" and cpu_has_native_bfloat16()


def warn_emulated_bfloat16(config: ReleaseConfig) -> None:
    """Say, once, that a bfloat16 run on this CPU is emulated and how much that costs."""
    if config.model.dtype == "bfloat16" and not computes_natively("bfloat16"):
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            "[yellow]warning: model.dtype is bfloat16 and this CPU has no native bfloat16 (AVX512-BF16 or AMX): "
            "torch emulates it, and the language-model head's backward pass runs hundreds of times slower than in "
            "float32. For a CPU run, model.dtype: float32 is faster; keep bfloat16 for the GPU run.[/]"
        )
