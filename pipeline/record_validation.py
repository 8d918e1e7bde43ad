"""Reading a results record as untrusted input: bounded in size and depth, every number finite, every error a line.

results.json is committed, so anyone can hand pubctl one. Before the typed models of
pipeline.results see it, the text is parsed here with bounds a hostile file cannot get
around: a size cap, a nesting cap, integers that fit in 64 bits and no NaN or Infinity
anywhere (pubctl never writes them, and matplotlib and the card's number filters choke on
them). Every refusal is a ResultsError naming the file, the field and a short quote of the value.
"""

from __future__ import annotations

import json
import math
import operator
import os
import reprlib
import stat
from bisect import bisect_right
from collections.abc import Iterable
from itertools import accumulate, chain, compress, count, islice, repeat
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from pipeline.errors import ResultsError

M = TypeVar("M", bound=BaseModel)

MAX_RECORD_BYTES = 64 * 1024 * 1024
"""A real record is kilobytes; log_history of a very long run is a few megabytes."""
MAX_DEPTH = 64
"""A real record nests about eight levels; json.loads itself gives up near a thousand, with a RecursionError."""
MAX_INT = 2**63 - 1
"""numpy, matplotlib and torch hold integers in 64 bits; a larger one overflows there."""
MAX_FLOAT = 1e300
"""No measurement is larger; near the largest float (1.8e308) matplotlib's axis arithmetic overflows."""
MAX_INT_DIGITS = 20
MAX_LOG_STEP = 10**12
"""An optimizer step beyond this is no real run, and matplotlib's axis ticks overflow near 1e30."""
MAX_BENCHMARKS = 100
"""evaluation.tasks holds at most this many (pipeline.config.base.LIST_MAX); the card draws a bar for each."""
QUOTE_CHARS = 60
MAX_PROBLEMS = 5

_quoter = reprlib.Repr()
_quoter.maxother = QUOTE_CHARS
_quoter.maxlist = _quoter.maxdict = 4
_quoter.maxlevel = 2


def quote(value: Any) -> str:
    """A short, one-line, ASCII rendering of a record value for an error message."""
    if isinstance(value, str) and len(value) > QUOTE_CHARS:
        # A prefix only (reprlib would keep the tail too): never more of a hostile value than needed.
        text = repr(value[: QUOTE_CHARS - 5]) + "..."
    else:
        text = _quoter.repr(value)
    text = text.encode("ascii", "backslashreplace").decode("ascii")
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 3] + "..."


def field_path(loc: Iterable[Any]) -> str:
    """A pydantic loc or a walk path as the dotted name a reader finds in the file: training.log_history[3].step."""
    text = ""
    for part in loc:
        # A key with a control character or a lone surrogate is named with escapes: the message stays one
        # printable line (no newline, no terminal escape sequence from a hostile record).
        name = str(part)
        name = name if name.isprintable() else name.encode("unicode_escape").decode("ascii")
        text += f"[{part}]" if isinstance(part, int) else (f".{name}" if text else name)
    return text or "the top level"


class _OversizedInt:
    """An integer literal too long to be a real measurement, kept as text until the walk can name its field."""

    def __init__(self, digits: str) -> None:
        self.digits = digits


def _parse_int(text: str) -> int | _OversizedInt:
    return int(text) if len(text.lstrip("-")) <= MAX_INT_DIGITS else _OversizedInt(text)


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError:
        # An integer literal past Python's 4,300-digit limit fails without a position. Parse again, keeping
        # long literals as text (a Python call per integer: slower, so only now) for the walk to name the field.
        return json.loads(text, parse_int=_parse_int)


def parse_record(path: Path, model: type[M], schema_version: int) -> M:
    """The record at ``path`` as ``model``, validated strictly, or a ResultsError naming the file and the field."""
    data = load_record_json(path)
    version = data.get("schema_version")
    if version != schema_version:
        newer = isinstance(version, int) and version > schema_version
        why = "written by a newer pubctl; upgrade pubctl to read it" if newer else "not a version pubctl knows"
        raise ResultsError(
            f"{path}: schema_version {quote(version)} is {why} (this pubctl reads schema_version {schema_version})."
        )
    try:
        record = model.model_validate(data, strict=True)
    except ValidationError as exc:
        raise ResultsError(
            f"{path}: invalid results record: {describe_errors(exc.errors(include_url=False))}."
        ) from None
    training = data.get("training")
    if isinstance(training, dict):
        errors = method_param_errors(training["method"], training.get("method_params") or {})
        if errors:
            raise ResultsError(f"{path}: invalid results record: {describe_errors(errors)}.")
    return record


def load_record_json(path: Path) -> dict[str, Any]:
    """The parsed JSON object of the record at ``path``, or a ResultsError saying what is wrong with the file."""
    refused = ResultsError(f"{path}: not a regular file; a results record is a plain file in the card folder.")
    if path.is_symlink() or not path.is_file():
        raise refused
    try:
        # Checked again on the open file: a FIFO swapped in after the check above must not block the read.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise ResultsError(f"{path}: the results record cannot be read: {exc.strerror or exc}.") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise refused
        raw = handle.read(MAX_RECORD_BYTES + 1)
    if len(raw) > MAX_RECORD_BYTES:
        raise ResultsError(
            f"{path}: results record larger than {MAX_RECORD_BYTES // (1024 * 1024)} MiB; no real record is that big."
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{path}: corrupt results record, not UTF-8 at byte {exc.start}.") from None
    try:
        data = _loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(
            f"{path}: corrupt results record, invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from None
    except RecursionError:
        raise ResultsError(
            f"{path}: results record nested deeper than {MAX_DEPTH} levels; no real record is."
        ) from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: a results record is a JSON object, found {type(data).__name__}.")
    problem = _first_problem(data)
    if problem:
        raise ResultsError(f"{path}: invalid results record: {problem}.")
    return data


def sections_problem(sections: dict[str, BaseModel]) -> str | None:
    """What reading the record back would refuse in ``sections`` once written, as 'field: why'; None if nothing.

    For a writer whose numbers come from files made elsewhere (pubctl import): a record it could write but no
    command could read would turn one bad input file into a broken release.
    """
    data: dict[str, Any] = {}
    for name, section in sections.items():
        try:
            data[name] = section.model_dump(mode="json")
        except ValueError as exc:  # pydantic's serializer stops at its own nesting limit
            return f"{name}: {exc}"
    problem = _first_problem(data)
    if problem:
        return problem
    for name, section in sections.items():
        try:
            type(section).model_validate(data[name], strict=True)
        except ValidationError as exc:
            return f"{name}: {describe_errors(exc.errors(include_url=False))}"
    return None


def _first_problem(data: dict[str, Any]) -> str | None:
    """A value anywhere in ``data`` that no record may hold, as 'field: why', or None.

    A 64 MiB record can hold millions of values, too many for a Python loop over each: the record is
    checked a depth at a time, every value of a depth at once with C-level iteration (map, compress,
    chain), and the path is worked out only for the value reported.
    """
    levels: list[_Level] = [([data], [])]
    while True:
        values = _contents(levels[-1])
        types = list(map(type, values))
        bad = _first_bad(values, types)
        if bad is not None:
            return f"{field_path(_path(levels, bad))}: {_value_problem(values[bad])}"
        # The keys of this depth's dicts, in the order _contents lists the values under them.
        bad = _first_unencodable(list(chain.from_iterable(map(dict.keys, levels[-1][0]))))
        if bad is not None:
            return f"{field_path(_path(levels, bad))}: the key is not Unicode text (a lone surrogate)"
        dicts = list(compress(values, map(_is_dict, types)))
        lists = list(compress(values, map(_is_list, types)))
        if not dicts and not lists:
            return None
        if len(levels) >= MAX_DEPTH:
            deep = _identity_index(values, (dicts or lists)[0])
            return f"{field_path(_path(levels, deep))}: nested deeper than {MAX_DEPTH} levels"
        levels.append((dicts, lists))


_Level = tuple[list[dict[str, Any]], list[list[Any]]]
"""The containers at one depth: its dicts, then its lists (the order _contents lists their values in)."""
_is_dict = frozenset({dict}).__contains__
_is_list = frozenset({list}).__contains__
_is_float = frozenset({float}).__contains__
_is_int = frozenset({int}).__contains__  # type(True) is bool: a bool is no int here
_is_oversized = frozenset({_OversizedInt}).__contains__
_is_str = frozenset({str}).__contains__


def _contents(level: _Level) -> list[Any]:
    """Every value directly inside the level's containers: each dict's values, then each list's items."""
    dicts, lists = level
    return list(chain(chain.from_iterable(map(dict.values, dicts)), chain.from_iterable(lists)))


def _first_bad(values: list[Any], types: list[type]) -> int | None:
    """Index of a float that is not finite or beyond ±MAX_FLOAT, an integer beyond 64 bits, an oversized
    literal or a string that is not Unicode text in ``values``, or None."""
    kinds = set(types)
    if float in kinds:
        # abs(nan) compares False with anything, so one comparison refuses NaN, infinities and the huge.
        drawable = list(map(MAX_FLOAT.__ge__, map(abs, compress(values, map(_is_float, types)))))
        if not all(drawable):
            return list(compress(count(), map(_is_float, types)))[drawable.index(False)]
    if int in kinds:
        too_big = list(map(MAX_INT.__lt__, map(abs, compress(values, map(_is_int, types)))))
        if any(too_big):
            return list(compress(count(), map(_is_int, types)))[too_big.index(True)]
    if _OversizedInt in kinds:
        return list(map(_is_oversized, types)).index(True)
    if str in kinds:
        strings = list(compress(values, map(_is_str, types)))
        unencodable = _first_unencodable(strings)
        if unencodable is not None:
            return list(compress(count(), map(_is_str, types)))[unencodable]
    return None


def _first_unencodable(strings: list[str]) -> int | None:
    """Index of a string holding a lone surrogate (JSON's "\\ud800" escape), which no file or terminal can hold."""
    try:
        "".join(strings).encode("utf-8")
    except UnicodeEncodeError:
        return next(index for index, text in enumerate(strings) if not _encodes(text))
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _identity_index(values: list[Any], target: Any) -> int:
    return next(compress(count(), map(operator.is_, values, repeat(target))))


def _path(levels: list[_Level], index: int) -> list[Any]:
    """The keys from the top of the record to value ``index`` of _contents(levels[-1])."""
    keys: list[Any] = []
    for depth in range(len(levels) - 1, -1, -1):
        containers = levels[depth][0] + levels[depth][1]
        ends = list(accumulate(map(len, containers)))
        position = bisect_right(ends, index)
        offset = index - (ends[position - 1] if position else 0)
        container = containers[position]
        keys.append(next(islice(container, offset, None)) if isinstance(container, dict) else offset)
        if depth:
            index = _identity_index(_contents(levels[depth - 1]), container)
    return keys[::-1]


def _value_problem(value: Any) -> str:
    if isinstance(value, _OversizedInt):
        digits = len(value.digits.lstrip("-"))
        return f"an integer of {digits} digits does not fit in 64 bits ({quote(value.digits)})"
    if isinstance(value, float):
        if math.isfinite(value):
            return f"{value} is beyond ±{MAX_FLOAT:.0e}; no measurement is that large"
        # 1e309 parses to inf, and NaN/Infinity are literals Python's json accepts: neither is a measurement.
        return f"{value} is not a finite number"
    if isinstance(value, str):
        return f"{quote(value)} is not Unicode text (a lone surrogate, from a \\ud800-style escape)"
    return f"{quote(value)} does not fit in 64 bits"


def describe_errors(errors: list[dict[str, Any]]) -> str:
    """pydantic's errors as 'field: message (found VALUE)', the first few of them."""
    parts = []
    for error in errors[:MAX_PROBLEMS]:
        found = "" if error["type"] == "missing" else f" (found {quote(error.get('input'))})"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{field_path(error['loc'])}: {message}{found}")
    more = f"; and {len(errors) - MAX_PROBLEMS} more" if len(errors) > MAX_PROBLEMS else ""
    return "; ".join(parts) + more


def check_log_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A Trainer log_history entry: its step, when present, is a whole number a plot axis can hold."""
    step = entry.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_LOG_STEP):
        raise ValueError(f"step must be a whole number from 0 to {MAX_LOG_STEP:.0e}, found {quote(step)}")
    epoch = entry.get("epoch")
    if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, (int, float)) or epoch < 0):
        raise ValueError(f"epoch must be a non-negative number, found {quote(epoch)}")
    return entry


def not_negative(value: float | None) -> float | None:
    """A measurement that cannot be below zero (a standard error); NaN passes, for to_json to refuse."""
    if value is not None and value < 0:
        raise ValueError("must not be negative")
    return value


def method_param_errors(method: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Errors of the recorded method parameters against the method's declared types (none for an unknown method).

    The record keeps them as free JSON (a newer pubctl may add some), but the card prints the declared
    ones with its number filters: a string where the method declares a number must stop here.
    """
    from pipeline.methods import METHODS

    spec = METHODS.get(method)
    if spec is None:
        return []
    declared = {key: value for key, value in params.items() if key in spec.params.model_fields and key != "name"}
    try:
        spec.params.model_validate_json(json.dumps({"name": method, **declared}), strict=True)
    except ValidationError as exc:
        # Parameters the record lacks and cross-field rules belong to the config, which was checked when it ran.
        return [
            {**error, "loc": ("training", "method_params", *error["loc"])}
            for error in exc.errors(include_url=False)
            if error["type"] != "missing" and error["loc"] and error["loc"][0] in declared
        ]
    return []
