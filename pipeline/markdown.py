"""Escaping record values for Markdown: inline text, table cells, link targets, code.

jinja2's autoescape targets HTML, which is the wrong language for a model card
(it would turn ``<`` into ``&lt;`` inside code blocks and leave ``|`` and ``*``
alone), so the card template applies these filters to every value that comes
from the record. No library escapes CommonMark text, so this is written here.

The rule: a backslash before any ASCII punctuation is a literal character in
CommonMark and in GitHub-flavoured Markdown (the Hub's renderer), so escaping
punctuation that could start syntax makes any string render as itself. Braces
are escaped too, so a value holding ``{{ ... }}`` or ``{% ... %}`` never looks
like leftover template syntax in the card. Line breaks become ``<br>``, the one
line break a table cell can hold.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from urllib.parse import quote

from pipeline.errors import UsageError

# Every ASCII punctuation character that can open or close inline Markdown, HTML,
# an autolink, a table cell, a heading, a list or the Hub's $...$ math; '.', ',',
# ':', ';', '/', '=', '?', '%', '@', '"', "'" cannot, so they stay readable.
_INLINE_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-!|~&^$])")
_LINE_BREAK = re.compile(r"\r\n|\r|\n|\u2028|\u2029")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def escape_inline(value: object) -> str:
    """``value`` as Markdown text that renders as exactly that text, on one line."""
    text = _CONTROL.sub("\ufffd", str(value))
    text = _INLINE_SPECIAL.sub(r"\\\1", text)
    return _LINE_BREAK.sub("<br>", text)


def prose(value: object) -> str:
    """Markdown the release author wrote in the config (summary, limitations): kept as Markdown.

    Braces are escaped (they mean nothing in Markdown, and ``\\{`` shows as ``{``), so the text
    never reads as leftover template syntax; line breaks become ``<br>`` to keep list items whole.
    """
    text = _CONTROL.sub("\ufffd", str(value))
    text = re.sub(r"([{}])", r"\\\1", text)
    return _LINE_BREAK.sub("<br>", text)


def escape_cell(value: object) -> str:
    """A table cell: inline escaping (which covers ``|``) and never empty, so columns stay aligned."""
    text = escape_inline(value)
    return text if text.strip() else "&nbsp;"


def code_span(value: object) -> str:
    """``value`` as inline code: backslash escapes do not work in code, so fence it instead.

    The fence is one backtick longer than the longest run inside; ``|`` is escaped because
    GitHub-flavoured tables split cells on it even inside code (a value with ``|`` outside a
    table then shows the backslash: release names and check ids have none). A value holding template-like
    braces or a line break is printed as escaped text instead, which the card gates accept.
    """
    text = str(value)
    if not text.strip() or _LINE_BREAK.search(text) or _CONTROL.search(text) or re.search(r"\{[{%#]|[}%]\}", text):
        return escape_cell(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"


def escape_url(value: object) -> str:
    """A link target: percent-encode everything but the characters URLs and Hub ids need."""
    return quote(str(value), safe="/:@-._~?=&#%+")


def py_string(value: object) -> str:
    """A Python string literal for code samples (JSON strings are valid Python literals)."""
    # ensure_ascii keeps bidi and control characters out of a code block.
    return json.dumps(str(value), ensure_ascii=True)


def number(value: float | int | None, digits: int = 4) -> str:
    """A number as the card prints it: ``digits`` significant digits, integers with thousands separators."""
    if value is None:
        raise ValueError("number() got None: the template must test for a missing value first")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        # A record or config value typed loosely (method parameters are free JSON) can hold text: say which
        # value, instead of a TypeError from deep inside the formatting.
        shown = repr(value).encode("ascii", "backslashreplace").decode("ascii")
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise UsageError(
            f"The card prints {shown} ({type(value).__name__}) as a number: a value in the results record "
            "or the config that should be a number is not one."
        )
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 10 ** (digits + 2) or magnitude < 10**-(digits):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}" if magnitude < 10**digits else f"{value:,.0f}"


def signed(value: float, digits: int = 3) -> str:
    """A difference with its sign (+0.005, -0.012)."""
    return ("+" if value > 0 else "") + number(value, digits)


def duration(seconds: float) -> str:
    """Seconds as a human duration that keeps the recorded precision for short runs."""
    if seconds < 60:
        return f"{number(seconds, 3)} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def show(value: object) -> str:
    """A config or hyperparameter value as text (None, booleans and floats spelt as a user would)."""
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return number(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(show(item) for item in value)
    return str(value)


def size(num_bytes: int) -> str:
    """Bytes in decimal units (kB, MB, GB), as the Hub's file browser shows them."""
    value = float(num_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
