"""The training-method registry: one module per method, each exposing ``SPEC``.

Importing this package imports no heavy library: each method's trainer builder
imports TRL when it is called.
"""

from __future__ import annotations

import difflib

from pipeline.errors import UsageError
from pipeline.methods import cpo, dpo, enhanced_kto, ipo, kto, orpo, sft, simpo
from pipeline.methods.base import DataFormat, MethodParams, MethodSpec

METHODS: dict[str, MethodSpec] = {
    module.SPEC.name: module.SPEC for module in (sft, dpo, ipo, kto, cpo, simpo, orpo, enhanced_kto)
}


def get_method(name: str) -> MethodSpec:
    """The method registered under ``name``; a clear error naming the closest one otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        close = difflib.get_close_matches(name, METHODS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise UsageError(f"Unknown training method '{name}'. Known methods: {', '.join(METHODS)}.{hint}") from None


__all__ = ["METHODS", "DataFormat", "MethodParams", "MethodSpec", "get_method"]
