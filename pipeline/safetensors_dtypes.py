"""The safetensors format as pubctl reads it without torch: dtype codes and the JSON header.

Read by the merge (dtype codes) and by the honesty gates (headers: tensor shapes and dtypes).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

DTYPE_BYTES = {
    "F64": 8, "F32": 4, "BF16": 2, "F16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
}  # fmt: skip
"""Bytes per element of each safetensors dtype code."""

DTYPE_NAMES = {"F64": "float64", "F32": "float32", "BF16": "bfloat16", "F16": "float16"}
"""torch names of the floating-point codes a model's weights are stored in."""

NAME_BYTES = {name: DTYPE_BYTES[code] for code, name in DTYPE_NAMES.items()}
"""Bytes per element of each weights dtype name (float32: 4, ...)."""

MAX_HEADER_BYTES = 100 * 1024 * 1024
"""Far beyond a real header (tens of KB per shard): a longer one means the file is not safetensors."""


class UnreadableWeights(ValueError):
    """A *.safetensors file whose header cannot be read."""


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (8-byte little-endian length, then JSON): no torch needed."""
    with path.open("rb") as handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise UnreadableWeights(f"{path.name} is not a safetensors file (shorter than its 8-byte header length)")
        (length,) = struct.unpack("<Q", raw)
        if length > MAX_HEADER_BYTES:
            raise UnreadableWeights(f"{path.name} is not a safetensors file (header length {length} bytes)")
        try:
            header = json.loads(handle.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UnreadableWeights(f"{path.name} has a corrupt safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise UnreadableWeights(f"{path.name} has a safetensors header that is not a JSON object")
    return header
