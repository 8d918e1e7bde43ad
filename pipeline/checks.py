"""The honesty gates: ``pubctl check NAME`` and the gate before every real push.

Each gate has a stable id (waivers and CI refer to it) and reports what it found
and what it expected. The record gates read cards/NAME/results.json; the card
gates read the committed README.md; the model gates read the merged model in
runs/NAME/merge/model when it exists (safetensors headers, config.json,
tokenizer and generation config, all parsed as JSON: no torch). Where those
files are absent (CI on a tagged commit holds only the card bundle) the model
gates are skipped, unless the caller is about to push the model.

A failure can be waived with a reason (``--allow ID=REASON`` or
``checks.allow`` in the config); the card lists every waiver.
"""

from __future__ import annotations

import json
import math
import re
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import CheckFailed, UsageError
from pipeline.hashing import sha256_file
from pipeline.judgments import (
    PARITY_OPTIONS,
    describe_parity,
    evaluation_limit,
    is_near_chance,
    metric_range,
    parity_value,
)
from pipeline.layout import Layout
from pipeline.results import Results, Waiver, read_results, update_results
from pipeline.safetensors_dtypes import DTYPE_NAMES, NAME_BYTES

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig

CHECKS: dict[str, str] = {
    "training_ran": "the training section exists, optimizer steps > 0, a loss is logged at a step > 0 and no logged "
    "loss lies past the recorded step count",
    "samples_min": "training saw at least checks.min_samples examples",
    "loss_finite": "every logged loss and the final loss are finite numbers",
    "loss_not_zero": "the final training loss is not exactly 0 (the default of a loop that never ran)",
    "runtime_consistent": "training runtime is at least checks.min_seconds_per_step per optimizer step",
    "model_files": "the record lists the model's files, none empty; local files match size and sha256",
    "parameter_count": "the recorded parameter count matches the weights' bytes and the safetensors headers",
    "dtype_match": "the recorded dtype matches the safetensors tensors",
    "architecture_match": "the recorded architecture matches config.json",
    "merge_parity": "merged logits match adapter-on-base within the tolerance",
    "chat_template": "the tokenizer ships a chat template that renders a user/assistant conversation",
    "generation_eos": "generation_config.json stops at the tokenizer's eos and at the token the chat template ends "
    "an assistant turn with",
    "benchmark_fields": "every benchmark result has dataset, split, n, stderr and the harness version",
    "metric_range": "every score and stderr lies within its metric's range",
    "near_chance": "(warning) a score within checks.near_chance_stderr standard errors of chance",
    "eval_subset": "(warning) benchmarks scored on an lm-eval limit, not the full sets",
    "eval_not_train": "no benchmark dataset is also a training dataset",
    "throughput_device": "throughput names the device it ran on and its median lies within min..max",
    "model_index_parses": "the card's model-index parses with huggingface_hub and holds only recorded benchmarks",
    "no_template_syntax": "the card body holds no leftover template syntax or None",
    "card_current": "the committed card equals a fresh render of results.json",
    "base_model_hub_id": "base_model is a Hub id (checked before a real push)",
    "not_rehearsal": "the record is not a rehearsal's (checked before a real push; cannot be waived)",
}
WARNING_CHECKS = frozenset({"near_chance", "eval_subset"})
UNWAIVABLE = frozenset({"not_rehearsal"})
"""A rehearsal's model has random weights: no reason makes publishing it honest."""
MODEL_FILE_CHECKS = ("parameter_count", "dtype_match", "architecture_match", "chat_template", "generation_eos")

GENERIC_DEVICES = frozenset(
    {"", "cpu", "cuda", "gpu", "mps", "xpu", "auto", "unknown", "unknown cpu", "device", "none", "null"}
)
# Names of non-benchmark quantities that must never appear in a model-index (seed 000 did this).
NOT_BENCHMARKS = re.compile(r"loss|runtime|time|throughput|speed|efficien|tokens_per|samples_per|flops", re.I)
# A printed Python None is a value on its own ("| None |", "loss None."); "None of the ..." in an
# author's summary is English, so a None followed by a lower-case word is not a leftover.
TEMPLATE_SYNTAX = re.compile(r"\{\{|\{%|\{#|\}\}|%\}|\bNone\b(?! [a-z])")


# ------------------------------------------------------------------------ report
@dataclass(frozen=True)
class CheckItem:
    id: str
    found: str
    expected: str
    waiver: str | None = None

    def line(self) -> str:
        return f"{self.id}: found {self.found}, expected {self.expected}"


@dataclass
class CheckReport:
    failures: list[CheckItem] = field(default_factory=list)
    """Failed and not waived: the release must not go out."""
    warnings: list[CheckItem] = field(default_factory=list)
    skipped: list[CheckItem] = field(default_factory=list)
    """Not run; ``found`` says why."""
    waived: list[CheckItem] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


class _Gates:
    """Collects outcomes while the checks run; a check id passes when it recorded no failure."""

    def __init__(self) -> None:
        self.failed: list[CheckItem] = []
        self.warned: list[CheckItem] = []
        self.skipped: list[CheckItem] = []
        self.ran: list[str] = []

    def fail(self, check: str, found: object, expected: object) -> None:
        item = CheckItem(check, str(found), str(expected))
        (self.warned if check in WARNING_CHECKS else self.failed).append(item)

    def skip(self, check: str, why: str, expected: str = "the files to check") -> None:
        self.skipped.append(CheckItem(check, why, expected))

    def run(self, check: str) -> None:
        self.ran.append(check)


# ----------------------------------------------------------------------- public API
def run_checks(
    config: ReleaseConfig, layout: Layout, *, for_push: bool = False, card_only: bool = False
) -> CheckReport:
    """Every gate on the bundle; waivers from results.json and config.checks.allow are applied."""
    results = read_results(layout.results)
    gates = _Gates()
    _training_checks(gates, config, results)
    _model_record_checks(gates, config, results)
    _model_file_checks(gates, layout, results, need_model=for_push and not card_only)
    _evaluation_checks(gates, config, results)
    _card_checks(gates, config, layout, results)
    if for_push:
        gates.run("base_model_hub_id")
        from pipeline.stages.card import is_hub_id

        base = results.model.base_model if results.model else config.model.base_model
        if not is_hub_id(base, layout.root):
            gates.fail("base_model_hub_id", repr(base), "a Hub model id the card's base_model can link to")
        gates.run("not_rehearsal")
        # The record's section, or a config that the rehearsal generated under runs/: either alone marks one.
        generated = config.path is not None and layout.run_dir.resolve() in config.path.resolve().parents
        if results.rehearsal is None and generated:
            gates.fail(
                "not_rehearsal",
                f"a config generated by a rehearsal ({config.path})",
                "a release's own config in configs/",
            )
        elif results.rehearsal is not None:
            gates.fail(
                "not_rehearsal",
                f"the record of a rehearsal of '{results.rehearsal.of}' (random weights, shrunk config)",
                f"a release's own record: run pubctl release {results.rehearsal.of}",
            )
    else:
        gates.skip("base_model_hub_id", "not a push", "checked before a real push")
        gates.skip("not_rehearsal", "not a push", "checked before a real push")

    waivers = {w.check: w.reason for w in results.waivers}
    waivers.update({k: v for k, v in config.checks.allow.items() if k not in waivers})
    report = CheckReport(warnings=gates.warned, skipped=gates.skipped)
    for item in gates.failed:
        if item.id in waivers and item.id not in UNWAIVABLE:
            report.waived.append(CheckItem(item.id, item.found, item.expected, waiver=waivers[item.id]))
        else:
            report.failures.append(item)
    failed_ids = {item.id for item in gates.failed} | {item.id for item in gates.warned}
    report.passed = [check for check in dict.fromkeys(gates.ran) if check not in failed_ids]
    return report


def run_checks_command(config: ReleaseConfig, layout: Layout, allow: dict[str, str]) -> None:
    """``pubctl check``: record new waivers, print one line per failure, raise CheckFailed on any."""
    _validate_waiver_ids({**config.checks.allow, **allow}, source="--allow / checks.allow")
    if allow:
        results = read_results(layout.results)
        merged = {w.check: w.reason for w in results.waivers}
        merged.update(allow)
        waivers = [Waiver(check=check, reason=reason) for check, reason in merged.items()]
        if waivers != results.waivers:
            update_results(layout.results, layout.name, waivers=waivers)
            if layout.readme.is_file():
                # The card shows every waiver: re-render so the committed card says what was waived.
                from pipeline.stages.card import render_card

                render_card(config, layout)
                _say(f"recorded {len(allow)} waiver(s) in {layout.results} and re-rendered {layout.readme}")
            else:
                _say(f"recorded {len(allow)} waiver(s) in {layout.results}")
    report = run_checks(config, layout)
    for item in report.waived:
        _say(f"waived   {item.line()} (reason: {item.waiver})")
    for item in report.warnings:
        _say(f"warning  {item.line()}")
    for item in report.skipped:
        _say(f"skipped  {item.id}: {item.found}")
    for item in report.failures:
        _say(f"FAILED   {item.line()}")
    summary = (
        f"{len(report.passed)} passed, {len(report.failures)} failed, {len(report.waived)} waived, "
        f"{len(report.warnings)} warnings, {len(report.skipped)} skipped"
    )
    if report.failures:
        ids = ", ".join(dict.fromkeys(item.id for item in report.failures))
        raise CheckFailed(
            f"{layout.name}: {summary}. Failed: {ids}. Fix the release, or waive a check with "
            "pubctl check NAME --allow ID=REASON (the card will show the waiver)."
        )
    _say(f"{layout.name}: {summary}")


def _say(line: str) -> None:
    # The CLI's output channel for the report; plain stdout so CI logs keep it verbatim.
    sys.stdout.write(line + "\n")


def _validate_waiver_ids(waivers: dict[str, str], source: str) -> None:
    unknown = sorted(set(waivers) - set(CHECKS))
    if unknown:
        import difflib

        hints = []
        for check in unknown:
            close = difflib.get_close_matches(check, CHECKS, n=1)
            hints.append(f"'{check}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise UsageError(f"{source}: no check named {', '.join(hints)}. Check ids: {', '.join(CHECKS)}.")
    fixed = sorted(set(waivers) & UNWAIVABLE)
    if fixed:
        raise UsageError(f"{source}: {', '.join(fixed)} cannot be waived: {CHECKS[fixed[0]]}.")


# ---------------------------------------------------------------------- training
def _training_checks(gates: _Gates, config: ReleaseConfig, results: Results) -> None:
    for check in ("training_ran", "samples_min", "loss_finite", "loss_not_zero", "runtime_consistent"):
        gates.run(check)
    training = results.training
    if training is None:
        for check in ("training_ran", "samples_min", "loss_finite", "loss_not_zero", "runtime_consistent"):
            gates.fail(check, "no training section in results.json", "a recorded training run (pubctl train)")
        return
    logged_steps = [e["step"] for e in training.log_history if _is_number(e.get("step")) and "loss" in e]
    if training.steps <= 0:
        gates.fail("training_ran", f"{training.steps} optimizer steps", "more than 0 optimizer steps")
    elif not logged_steps or max(logged_steps) <= 0:
        gates.fail("training_ran", "no logged loss at a step > 0", "a Trainer log with the training loss")
    elif max(logged_steps) > training.steps:
        gates.fail(
            "training_ran",
            f"a log reaching step {max(logged_steps)} but steps = {training.steps}",
            "the log and the step count to agree",
        )

    minimum = config.checks.min_samples
    if training.samples < minimum:
        gates.fail("samples_min", f"{training.samples} training samples", f"at least {minimum} (checks.min_samples)")

    losses = [(e.get("step"), e["loss"]) for e in training.log_history if "loss" in e]
    bad = [(step, loss) for step, loss in losses if not _is_number(loss) or not math.isfinite(loss)]
    if bad:
        step, loss = bad[0]
        gates.fail("loss_finite", f"loss {loss!r} at step {step} ({len(bad)} non-finite)", "finite losses")
    elif training.final_loss is None:
        gates.fail("loss_finite", "no final loss", "the loss of the last logged step")
    elif not math.isfinite(training.final_loss):
        gates.fail("loss_finite", f"final loss {training.final_loss}", "a finite final loss")

    if training.final_loss is not None and training.final_loss == 0.0:
        gates.fail(
            "loss_not_zero", "final loss exactly 0.0", "a non-zero loss (0.0 is what a loop that never ran reports)"
        )

    per_step = config.checks.min_seconds_per_step
    runtime = training.runtime_seconds
    if training.steps <= 0 or runtime <= 0 or runtime < training.steps * per_step:
        gates.fail(
            "runtime_consistent",
            f"{runtime:g} s for {training.steps} optimizer steps",
            f"more than 0 steps taking at least {per_step:g} s each (checks.min_seconds_per_step)",
        )


# ------------------------------------------------------------------- model record
def _model_record_checks(gates: _Gates, config: ReleaseConfig, results: Results) -> None:
    for check in ("model_files", "parameter_count", "merge_parity"):
        gates.run(check)
    model = results.model
    if model is None:
        gates.fail("model_files", "no model section in results.json", "the merged model's record (pubctl merge)")
        gates.fail("parameter_count", "no model section", "a measured parameter count")
    else:
        weights = [f for f in model.files if f.path.endswith(".safetensors")]
        empty = [f.path for f in model.files if f.size <= 0]
        if not model.files:
            gates.fail("model_files", "no files listed", "the merged model's files with sizes and sha256")
        elif not weights:
            gates.fail("model_files", "no *.safetensors among the files", "the weights in safetensors format")
        if empty:
            gates.fail("model_files", f"empty files: {', '.join(empty)}", "non-empty files")
        itemsize = NAME_BYTES.get(model.dtype)
        if model.parameters <= 0:
            gates.fail("parameter_count", f"{model.parameters} parameters", "the count measured on the merged weights")
        elif weights and itemsize:
            stored = sum(f.size for f in weights)
            low = model.parameters * itemsize
            # A safetensors file is its tensors plus an 8-byte length and a JSON header (tens of KB);
            # mixed-precision norms may add a little: 2% and 64 KiB per file cover both.
            high = low * 1.02 + 65536 * len(weights)
            if not low <= stored <= high:
                implied = stored / itemsize
                gates.fail(
                    "parameter_count",
                    f"{model.parameters:,} parameters recorded but {stored:,} bytes of {model.dtype} weights "
                    f"(about {implied:,.0f} parameters)",
                    "the recorded count to match the weight files",
                )
        if itemsize is None:
            gates.fail("dtype_match", f"dtype {model.dtype!r}", f"one of {', '.join(NAME_BYTES)}")

    merge = results.merge
    if merge is None:
        gates.fail("merge_parity", "no merge section in results.json", "a parity measurement (pubctl merge)")
    else:
        measure, bound = config.merge.parity_gate(model.dtype if model else config.model.dtype)
        found = parity_value(measure, merge.parity_max_abs_diff, merge.parity_adapter_effect)
        if found is None:
            gates.fail("merge_parity", "no parity_adapter_effect in the merge record", "a re-run of pubctl merge")
        elif not math.isfinite(found) or found > bound:
            gates.fail(
                "merge_parity", describe_parity(measure, found), f"at most {bound:g} ({PARITY_OPTIONS[measure]})"
            )


# -------------------------------------------------------------------- model files
def _model_file_checks(gates: _Gates, layout: Layout, results: Results, *, need_model: bool) -> None:
    folder = layout.merged_model_dir
    if not (folder / "config.json").is_file():
        why = f"no merged model at {folder}"
        for check in MODEL_FILE_CHECKS:
            if need_model:
                gates.run(check)
                gates.fail(check, why, "the merged model to push (run pubctl merge)")
            else:
                gates.skip(check, f"checks on the model files skipped, {why} (card bundle only)")
        return
    for check in MODEL_FILE_CHECKS:
        gates.run(check)
    model = results.model
    if model is not None:
        for entry in model.files:
            path = folder / entry.path
            if not path.is_file():
                gates.fail("model_files", f"{entry.path} listed but missing from {folder}", "every listed file")
            elif path.stat().st_size != entry.size:
                gates.fail(
                    "model_files",
                    f"{entry.path} is {path.stat().st_size:,} bytes, recorded {entry.size:,}",
                    "the recorded size",
                )
            elif sha256_file(path) != entry.sha256:
                gates.fail("model_files", f"{entry.path} sha256 differs from the record", "the recorded sha256")

    headers, unreadable = [], []
    for path in sorted(folder.glob("*.safetensors")):
        try:
            headers.append(_safetensors_header(path))
        except _UnreadableWeights as exc:  # a truncated or corrupt file is a failed check, not bad usage
            unreadable.append(str(exc))
    if unreadable:
        gates.fail("parameter_count", "; ".join(unreadable), "safetensors files whose headers parse")
    elif not headers:
        gates.fail("parameter_count", f"no *.safetensors in {folder}", "the merged weights")
    else:
        tensors = [t for header in headers for name, t in header.items() if name != "__metadata__"]
        count = sum(math.prod(t["shape"]) for t in tensors)
        if model is not None and count != model.parameters:
            gates.fail(
                "parameter_count",
                f"{count:,} parameters in the safetensors headers",
                f"{model.parameters:,} as recorded",
            )
        floats: dict[str, int] = {}
        for t in tensors:
            if t["dtype"] in DTYPE_NAMES:
                floats[DTYPE_NAMES[t["dtype"]]] = floats.get(DTYPE_NAMES[t["dtype"]], 0) + math.prod(t["shape"])
        main = max(sorted(floats), key=floats.__getitem__) if floats else None
        if model is not None and main != model.dtype:
            gates.fail("dtype_match", f"weights mostly {main}", f"{model.dtype} as recorded")

    config_json = _read_json(folder / "config.json")
    architectures = config_json.get("architectures") or []
    if model is not None and model.architecture not in architectures:
        gates.fail("architecture_match", f"config.json architectures {architectures}", f"{model.architecture!r}")

    tokenizer_config = _read_json(folder / "tokenizer_config.json")
    template = _chat_template(folder, tokenizer_config)
    end_of_turn: str | None = None
    if template is None:
        gates.fail(
            "chat_template",
            f"no chat template in {folder}",
            "tokenizer_config.json chat_template or chat_template.jinja",
        )
    else:
        import jinja2

        try:
            end_of_turn = _end_of_turn(template, tokenizer_config, _token_contents(folder, tokenizer_config))
        except (jinja2.TemplateError, TypeError) as exc:  # TypeError: e.g. a template adding None to a string
            gates.fail(
                "chat_template",
                f"a chat template that fails on a user/assistant exchange ({type(exc).__name__}: {exc})",
                "a template apply_chat_template can render",
            )

    eos_token = _token_text(tokenizer_config.get("eos_token"))
    eos_id = _token_id(folder, eos_token) if eos_token is not None else None
    generation = _read_json(folder / "generation_config.json")
    gen_eos = generation.get("eos_token_id")
    gen_ids = set(gen_eos if isinstance(gen_eos, list) else [gen_eos] if gen_eos is not None else [])
    turn_id = _token_id(folder, end_of_turn) if end_of_turn is not None else None
    if not (folder / "generation_config.json").is_file():
        gates.fail("generation_eos", "no generation_config.json", "a generation config whose eos stops a chat turn")
    elif eos_id is None:
        gates.fail("generation_eos", f"tokenizer eos_token {eos_token!r} with no id", "an eos token in the vocabulary")
    elif eos_id not in gen_ids:
        gates.fail(
            "generation_eos",
            f"generation eos_token_id {gen_eos!r}",
            f"to include the tokenizer's eos {eos_token!r} (id {eos_id})",
        )
    elif turn_id is not None and turn_id not in gen_ids:
        # Llama 3's first release: eos <|end_of_text|> in the generation config, turns closed by <|eot_id|>,
        # so generate() ran past the end of the answer.
        gates.fail(
            "generation_eos",
            f"generation eos_token_id {gen_eos!r}",
            f"to include the chat template's end-of-turn token {end_of_turn!r} (id {turn_id})",
        )


def _chat_template(folder: Path, tokenizer_config: dict[str, Any]) -> str | None:
    """The default chat template as transformers loads it: chat_template.jinja first, then the JSON configs."""
    jinja_file = folder / "chat_template.jinja"
    if jinja_file.is_file():
        return jinja_file.read_text(encoding="utf-8")
    template = tokenizer_config.get("chat_template") or _read_json(folder / "chat_template.json").get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": "default", "template": "..."}, ...]
        template = next(
            (t.get("template") for t in template if isinstance(t, dict) and t.get("name") == "default"), None
        )
    return template if isinstance(template, str) and template.strip() else None


# Stands in for an answer's text: what the template writes right after it closes the assistant turn.
_ANSWER = "pubctl-answer-7f3a"


def _end_of_turn(template: str, tokenizer_config: dict[str, Any], tokens: list[str]) -> str | None:
    """The token the chat template writes right after an assistant answer, before the next turn.

    Rendered the way transformers renders chat templates (immutable sandbox, trim/lstrip blocks,
    loop controls, its tojson, raise_exception and strftime_now, the {% generation %} tag, the
    special tokens as variables). First with the answer last, as in training data (gpt-oss closes a
    final answer with <|return|>, an earlier one with <|end|>); when nothing follows it there, with
    a user turn after it (GLM closes a turn only by opening the next, with <|user|>). None when the
    answer is not in the text or no added token follows it; raises jinja2.TemplateError when the
    template cannot render the conversation.
    """
    import datetime

    import jinja2
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(Extension):
        # transformers tracks {% generation %} blocks for assistant masks; their text is the output.
        tags = frozenset({"generation"})

        def parse(self, parser: Any) -> Any:
            next(parser.stream)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    def raise_exception(message: str) -> None:
        raise jinja2.TemplateError(message)

    def tojson(
        value: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None, sort_keys: bool = False
    ) -> str:
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    special = {key: _token_text(value) for key, value in tokenizer_config.items() if key.endswith("_token")}
    compiled = env.from_string(template)
    answer = [{"role": "user", "content": "Hello."}, {"role": "assistant", "content": _ANSWER}]
    for messages in (answer, [*answer, {"role": "user", "content": "Thanks."}]):
        text = compiled.render(
            messages=messages, add_generation_prompt=False, **{k: v for k, v in special.items() if v is not None}
        )
        if _ANSWER not in text:
            return None
        rest = text.split(_ANSWER, 1)[1].lstrip(" \n")
        token = max((token for token in tokens if token and rest.startswith(token)), key=len, default=None)
        if token is not None:
            return token
    return None


def _token_text(token: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or an AddedToken dict."""
    if isinstance(token, dict):
        token = token.get("content")
    return token if isinstance(token, str) else None


def _token_contents(folder: Path, tokenizer_config: dict[str, Any]) -> list[str]:
    """Tokens a template can close a turn with: tokenizer.json's added tokens and the configured eos."""
    tokenizer = _read_json(folder / "tokenizer.json")
    tokens = [t.get("content") for t in tokenizer.get("added_tokens", []) if isinstance(t, dict)]
    eos = _token_text(tokenizer_config.get("eos_token"))
    return [t for t in [*tokens, eos] if isinstance(t, str)]


class _UnreadableWeights(ValueError):
    """A *.safetensors file whose header cannot be read."""


def _safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (8-byte little-endian length, then JSON): no torch needed."""
    with path.open("rb") as handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise _UnreadableWeights(f"{path.name} is not a safetensors file (shorter than its 8-byte header length)")
        (length,) = struct.unpack("<Q", raw)
        if length > 100 * 1024 * 1024:
            raise _UnreadableWeights(f"{path.name} is not a safetensors file (header length {length} bytes)")
        try:
            header = json.loads(handle.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _UnreadableWeights(f"{path.name} has a corrupt safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise _UnreadableWeights(f"{path.name} has a safetensors header that is not a JSON object")
    return header


def _token_id(folder: Path, token: str) -> int | None:
    tokenizer = _read_json(folder / "tokenizer.json")
    for added in tokenizer.get("added_tokens", []):
        if added.get("content") == token:
            return added.get("id")
    vocab = (tokenizer.get("model") or {}).get("vocab")
    return vocab.get(token) if isinstance(vocab, dict) else None


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: invalid JSON: {exc}.") from None
    return data if isinstance(data, dict) else {}


# --------------------------------------------------------------------- evaluation
def _evaluation_checks(gates: _Gates, config: ReleaseConfig, results: Results) -> None:
    for check in ("benchmark_fields", "metric_range", "near_chance", "eval_not_train", "throughput_device"):
        gates.run(check)
    evaluation = results.evaluation
    if evaluation is None or not evaluation.results:
        gates.fail("benchmark_fields", "no benchmark results in results.json", "lm-eval results (pubctl evaluate)")
    if evaluation is None:
        gates.skip("throughput_device", "no evaluation section", "a throughput measurement")
        return
    gates.run("eval_subset")
    limit = evaluation_limit(evaluation)
    if limit is not None:
        gates.fail("eval_subset", f"lm-eval limit {limit} items per task", "full benchmark sets for published scores")
    if not evaluation.harness_version:
        gates.fail("benchmark_fields", "no harness version", f"the {evaluation.harness} version that scored them")
    k = config.checks.near_chance_stderr
    for row in evaluation.results:
        missing = [name for name in ("dataset_id", "split", "stderr") if getattr(row, name) is None]
        if row.n <= 0:
            missing.append("n")
        if missing:
            gates.fail("benchmark_fields", f"{row.task}: no {', '.join(missing)}", "dataset, split, n and stderr")
        bounds = metric_range(row.metric)
        for label, value in (("value", row.value), ("base_value", row.base_value), ("chance", row.chance)):
            if value is None:
                continue
            if not math.isfinite(value) or (bounds is not None and not bounds[0] <= value <= bounds[1]):
                gates.fail(
                    "metric_range",
                    f"{row.task} {row.metric} {label} {value!r}",
                    f"a value in [{bounds[0]:g}, {bounds[1]:g}]" if bounds is not None else "a finite number",
                )
        if row.stderr is not None and (not math.isfinite(row.stderr) or row.stderr < 0):
            gates.fail("metric_range", f"{row.task} stderr {row.stderr!r}", "a finite stderr >= 0")
        if is_near_chance(row, k):
            gates.fail(
                "near_chance",
                f"{row.task} {row.metric} {row.value:g} ± {row.stderr:g}, chance {row.chance:g}",
                f"more than {k:g} stderr from chance",
            )

    trained = {_dataset_key(ds.id) for ds in results.training.datasets} if results.training else set()
    for row in evaluation.results:
        if row.dataset_id is not None and _dataset_key(row.dataset_id) in trained:
            gates.fail(
                "eval_not_train",
                f"{row.task} scored on {row.dataset_id}, also a training dataset",
                "benchmarks held out from training",
            )

    throughput = evaluation.throughput
    if throughput is None:
        gates.skip("throughput_device", "no throughput measurement", "a throughput measurement")
        return
    device = throughput.device.strip()
    if device.lower() in GENERIC_DEVICES:
        gates.fail(
            "throughput_device", f"device {throughput.device!r}", "the device's name (e.g. NVIDIA H100, the CPU model)"
        )
    if not throughput.tokens_per_second_min <= throughput.tokens_per_second_median <= throughput.tokens_per_second_max:
        gates.fail(
            "throughput_device",
            f"median {throughput.tokens_per_second_median:g} outside min {throughput.tokens_per_second_min:g}"
            f"..max {throughput.tokens_per_second_max:g}",
            "min <= median <= max",
        )


def _dataset_key(dataset: str) -> str:
    return dataset.strip().lower().removeprefix("datasets/")


# --------------------------------------------------------------------------- card
def _card_checks(gates: _Gates, config: ReleaseConfig, layout: Layout, results: Results) -> None:
    for check in ("model_index_parses", "no_template_syntax", "card_current"):
        gates.run(check)
    if not layout.readme.is_file():
        for check in ("model_index_parses", "no_template_syntax", "card_current"):
            gates.fail(check, f"no {layout.readme}", f"a rendered card (pubctl card {layout.name})")
        return
    text = layout.readme.read_text(encoding="utf-8")
    _check_model_index(gates, text, results)

    body = _body(text)
    leftovers = sorted(set(TEMPLATE_SYNTAX.findall(body)))
    if leftovers:
        gates.fail("no_template_syntax", f"{', '.join(repr(s) for s in leftovers)} in README.md", "rendered text only")

    from pipeline.stages.card import card_differences

    problems = card_differences(config, layout)
    if problems:
        first = problems[0].splitlines()[0]
        gates.fail(
            "card_current",
            f"{len(problems)} difference(s), first: {first}",
            f"the committed card to equal a fresh render (pubctl card {layout.name})",
        )


def _body(text: str) -> str:
    """README.md without its YAML front matter (the library dumps that as data, never a template)."""
    match = re.match(r"^---\r?\n.*?\r?\n---\r?\n", text, re.S)
    return text[match.end() :] if match else text


def _check_model_index(gates: _Gates, text: str, results: Results) -> None:
    import yaml
    from huggingface_hub import ModelCard

    try:
        data = ModelCard(text, ignore_metadata_errors=False).data
        eval_results = list(data.eval_results or [])
    except (ValueError, KeyError, TypeError, yaml.YAMLError) as exc:  # what the library raises on a bad header
        gates.fail(
            "model_index_parses",
            f"front matter that does not parse ({type(exc).__name__}: {exc})",
            "YAML and a model-index huggingface_hub can read",
        )
        return
    # The n-shot is part of a result's identity: the same task may be recorded 0-shot and 5-shot.
    recorded = {
        (row.task, row.metric, row.num_fewshot, row.split, row.value)
        for row in (results.evaluation.results if results.evaluation else [])
    }
    found = set()
    for result in eval_results:
        shots = (result.metric_args or {}).get("num_fewshot")
        key = (result.dataset_name, result.metric_type, shots, result.dataset_split, result.metric_value)
        found.add(key)
        if NOT_BENCHMARKS.search(f"{result.metric_type} {result.metric_name or ''}"):
            gates.fail(
                "model_index_parses",
                f"non-benchmark metric {result.metric_type!r} in the model-index",
                "benchmark metrics only",
            )
        elif key not in recorded:
            gates.fail(
                "model_index_parses",
                f"model-index result {key} not in results.json",
                "only the recorded benchmark results",
            )
    for key in sorted(recorded - found, key=str):
        gates.fail("model_index_parses", f"recorded result {key} missing from the model-index", "every recorded result")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


__all__ = ["CHECKS", "CheckFailed", "CheckItem", "CheckReport", "run_checks", "run_checks_command"]
