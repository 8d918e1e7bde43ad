"""The training-method registry: one module per method, each exposing ``SPEC``.

Importing this package imports no heavy library: each method's trainer builder
imports TRL when it is called.
"""

from __future__ import annotations

from pipeline.methods import cpo, dpo, enhanced_kto, ipo, kto, orpo, sft, simpo
from pipeline.methods.base import DataFormat, MethodParams, MethodSpec
from pipeline.registry import Registry

METHODS: Registry[MethodSpec] = Registry("training method")
for _module in (sft, dpo, ipo, kto, cpo, simpo, orpo, enhanced_kto):
    METHODS.add(_module.SPEC.name, _module.SPEC)


def get_method(name: str) -> MethodSpec:
    """The method registered under ``name``; a clear error naming the known ones and the closest otherwise."""
    return METHODS.get_or_fail(name)


__all__ = ["METHODS", "DataFormat", "MethodParams", "MethodSpec", "get_method"]
