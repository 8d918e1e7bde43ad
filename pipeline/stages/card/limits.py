"""The size bounds a card template renders under, checked before an operation allocates its result.

A template is code from the config's author: without bounds, ``'x' * 10**9``, a
string doubled in a loop or ``10**10**10`` takes the machine's memory or CPU in one
C call that no time limit interrupts. Each check here estimates what an operation
would build (text, items, integer bits) from its operands, cheaply, and refuses
it with TemplateLimit before Python builds it. pipeline.stages.card.sandbox calls
them from the sandbox's hooks (operators, calls, filters, ``~``, output).
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterable, Mapping, MappingView, Sequence, Sized
from collections.abc import Set as AbstractSet
from typing import Any

from jinja2.exceptions import TemplateRuntimeError
from jinja2.runtime import Undefined

MAX_RANGE = 10_000
"""Items one range() may hold (jinja2's sandbox allows 100,000; a card loops over tens)."""
MAX_TEXT = 1 << 20
"""Characters in any text a template builds, the rendered card included (the default card is ~10 KiB)."""
MAX_ITEMS = 100_000
"""Items in a list or tuple a template builds."""
MAX_INT_BITS = 4096
"""Bits of an integer a template computes (10**40 needs 133)."""
MAX_NESTING = 100
"""Depth of nested lists and dicts whose printed size is estimated."""

WIDTH_FILTERS = frozenset({"center", "indent", "wordwrap", "truncate", "batch", "slice"})
WIDTH_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})
TEXT_FILTERS = frozenset(
    {
        "string", "pprint", "tojson", "join", "format", "e", "escape", "forceescape", "safe", "urlize",
        "capitalize", "upper", "lower", "title", "trim", "striptags", "truncate", "wordwrap", "indent",
        "center", "replace", "urlencode", "xmlattr", "wordcount",
    }
)  # fmt: skip
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


class TemplateLimit(TemplateRuntimeError):
    """A template went past one of the bounds above."""


def text_size(value: Any, budget: int = MAX_TEXT, depth: int = 0) -> int:
    """Characters ``str(value)`` would have, counted without building it; stops once past ``budget``."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Undefined) or value is None:
        return 0
    if isinstance(value, int):
        return value.bit_length() // 3 + 2  # decimal digits, generously
    if isinstance(value, (float, range)):
        return 32
    if isinstance(value, (Mapping, Sequence, AbstractSet, MappingView)):
        if depth > MAX_NESTING:
            return budget + 1  # a list holding itself, or data nested past anything a card shows
        items: Iterable[Any] = value.items() if isinstance(value, Mapping) else value
        total = 2
        for item in items:
            total += text_size(item, budget - total, depth + 1) + 2
            if total > budget:
                break
        return total
    return len(str(value))


def check_text(value: Any, what: str) -> None:
    if text_size(value) > MAX_TEXT:
        raise TemplateLimit(f"{what} would be more than {MAX_TEXT:,} characters; a card template builds less")


def check_result(value: Any, what: str) -> Any:
    """``value`` when it is within bounds (a last check after an operation)."""
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise TemplateLimit(f"{what} is {len(value):,} characters; a card template may build at most {MAX_TEXT:,}")
    if isinstance(value, (list, tuple)) and len(value) > MAX_ITEMS:
        raise TemplateLimit(f"{what} has {len(value):,} items; a card template may build at most {MAX_ITEMS:,}")
    return value


def bounded_range(*args: int) -> range:
    """range() with at most MAX_RANGE items."""
    items = range(*args)
    try:
        count = len(items)
    except OverflowError:  # more items than a C size_t holds
        count = MAX_RANGE + 1
    if count > MAX_RANGE:
        shown = ", ".join(_short(arg) for arg in args)
        raise TemplateLimit(f"range({shown}) has more than {MAX_RANGE:,} items, the most a card template may loop over")
    return items


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse ``left OPERATOR right`` when its result would be too large to build."""
    if operator == "*":
        for sequence, times in ((left, right), (right, left)):
            if isinstance(sequence, (str, list, tuple)) and isinstance(times, int):
                _check_length(sequence, len(sequence) * max(times, 0), f"{_short(sequence)} * {_short(times)}")
        if _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateLimit(f"{_short(left)} * {_short(right)} is larger than {MAX_INT_BITS}-bit integers")
    elif operator == "**":
        growing = _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1
        # |left| >= 2: an exponent past MAX_INT_BITS is too large without the float product (which can overflow).
        if growing and (right > MAX_INT_BITS or right * math.log2(abs(left)) > MAX_INT_BITS):
            raise TemplateLimit(f"{_short(left)} ** {_short(right)} is larger than {MAX_INT_BITS}-bit integers")
    elif operator == "+":
        if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            _check_length(left, len(left) + len(right), f"{_short(left)} + {_short(right)}")
    elif operator == "%" and isinstance(left, str):
        check_percent_format(left)


def check_percent_format(text: str) -> None:
    """Refuse a printf-style format whose width or precision would pad past MAX_TEXT."""
    for match in _PERCENT_SPEC.finditer(text):
        for number in match.groups():
            if number == "*":
                raise TemplateLimit("a '%*' width taken from the arguments is not allowed in a card template")
            if number and (len(number) > 7 or int(number) > MAX_TEXT):
                raise TemplateLimit(f"the format width {_short(number)} is larger than {MAX_TEXT:,}")


def check_str_format(text: str) -> None:
    """Refuse a str.format pattern that pads past MAX_TEXT or takes its width from a field."""
    for _, _, spec, _ in string.Formatter().parse(text):
        if not spec:
            continue
        if "{" in spec:
            raise TemplateLimit("a format width taken from another field is not allowed in a card template")
        for number in re.findall(r"\d+", spec):
            if len(number) > 7 or int(number) > MAX_TEXT:
                raise TemplateLimit(f"the format width {_short(number)} is larger than {MAX_TEXT:,}")


def check_filter(name: str, value: Any, extra: list[Any], keywords: dict[str, Any]) -> None:
    """Refuse a filter call whose output would be too large (extra: its positional arguments after the value)."""
    if name in WIDTH_FILTERS:
        _check_widths(f"the filter {name!r}", [*extra, *keywords.values()])
    if name in TEXT_FILTERS:
        check_text(value, f"the input of the filter {name!r}")
    if name == "replace" and isinstance(value, str) and len(extra) >= 2:
        _check_replace(value, extra[0], extra[1])
    elif name == "join":
        separator = extra[0] if extra else keywords.get("d", "")
        _check_join(value, separator)
    elif name == "indent" and isinstance(value, str):
        width = extra[0] if extra else keywords.get("width", 4)
        pad = len(width) if isinstance(width, str) else width if _is_int(width) else 0
        _check_length(value, len(value) + (value.count("\n") + 1) * pad, "the filter 'indent'")
    elif name == "wordwrap" and isinstance(value, str):
        width = extra[0] if extra else keywords.get("width", 79)
        wrap = extra[2] if len(extra) > 2 else keywords.get("wrapstring") or "\n"
        lines = len(value) // max(width if _is_int(width) else 1, 1) + 1
        _check_length(value, len(value) + lines * text_size(wrap), "the filter 'wordwrap'")
    elif name == "format" and isinstance(value, str):
        check_percent_format(value)


def check_call(function: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a call of a str method that would build too large a text."""
    owner = getattr(function, "__self__", None)
    if not isinstance(owner, str):
        return
    name = getattr(function, "__name__", "")
    if name in WIDTH_METHODS:
        _check_widths(f"str.{name}", [*args, *kwargs.values()])
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1])
    elif name == "join" and args:
        _check_join(args[0], owner)


def _check_widths(what: str, arguments: list[Any]) -> None:
    for argument in arguments:
        if _is_int(argument) and abs(argument) > MAX_TEXT:
            raise TemplateLimit(f"{what} with {_short(argument)}: a width or count over {MAX_TEXT:,} is not allowed")


def _check_replace(text: str, old: Any, new: Any) -> None:
    if isinstance(old, str) and isinstance(new, str):
        count = text.count(old) if old else len(text) + 1
        _check_length(text, len(text) + count * max(len(new) - len(old), 0), "replace()")


def _check_join(items: Any, separator: Any) -> None:
    if isinstance(items, (list, tuple, set, frozenset, dict, str)):
        size = text_size(list(items)) + len(items) * text_size(separator)
        if size > MAX_TEXT:
            raise TemplateLimit(f"joining would build more than {MAX_TEXT:,} characters")


def _check_length(sequence: Any, length: int, what: str) -> None:
    limit = MAX_TEXT if isinstance(sequence, str) else MAX_ITEMS
    if length > limit:
        unit = "characters" if isinstance(sequence, str) else "items"
        raise TemplateLimit(f"{what} would build {length:,} {unit}; a card template may build at most {limit:,}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: Any) -> str:
    if _is_int(value) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    if not isinstance(value, (str, int, float)):
        return f"a {type(value).__name__} of {len(value):,} items" if isinstance(value, Sized) else type(value).__name__
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else f"{text[:30]}... ({len(text):,} characters)"
