"""The dtype codes of safetensors headers: read by the merge and by the honesty gates (no torch needed)."""

from __future__ import annotations

DTYPE_BYTES = {
    "F64": 8, "F32": 4, "BF16": 2, "F16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
}  # fmt: skip
"""Bytes per element of each safetensors dtype code."""

DTYPE_NAMES = {"F64": "float64", "F32": "float32", "BF16": "bfloat16", "F16": "float16"}
"""torch names of the floating-point codes a model's weights are stored in."""

NAME_BYTES = {name: DTYPE_BYTES[code] for code, name in DTYPE_NAMES.items()}
"""Bytes per element of each weights dtype name (float32: 4, ...)."""
