"""The honesty gates: ``pubctl check NAME`` (pipeline.stages.check) and the gate before every real push.

Each gate has a stable id (waivers and CI refer to it) and reports what it found
and what it expected. The record gates read cards/NAME/results.json; the card
gates read the committed README.md; the model gates read the merged model in
runs/NAME/merge/model when it exists (safetensors headers, config.json,
tokenizer and generation config, all parsed as JSON: no torch). Where those
files are absent (CI on a tagged commit holds only the card bundle) the model
gates are skipped, unless the caller is about to push the model.

A failure can be waived with a reason (``--allow ID=REASON`` or
``checks.allow`` in the config); the card lists every waiver.

One module per family of gates, each gate one function registered with
``@check(id, description)`` (registry.py); context.py holds the facts they share,
report.py what they report, run.py the loop and the waivers.
"""

from __future__ import annotations

from pipeline.checks.registry import CHECKS, Check, check
from pipeline.checks.report import CheckItem, CheckReport

# isort: off
# Importing a family registers its gates: this order is the order they run, are reported and listed in.
from pipeline.checks import training  # noqa: F401
from pipeline.checks import model  # noqa: F401
from pipeline.checks import tokenizer  # noqa: F401
from pipeline.checks import evaluation  # noqa: F401
from pipeline.checks import card  # noqa: F401
from pipeline.checks import lineage  # noqa: F401
from pipeline.checks import imported  # noqa: F401
from pipeline.checks import publish  # noqa: F401

# isort: on
from pipeline.checks.run import how_to_go_on, run_checks, validate_waivers

__all__ = ["CHECKS", "Check", "CheckItem", "CheckReport", "check", "how_to_go_on", "run_checks", "validate_waivers"]
