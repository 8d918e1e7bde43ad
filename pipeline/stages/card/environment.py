"""The Jinja environment every card is rendered in: the model card and the adapter repository's card.

A bounded sandbox (pipeline.stages.card.sandbox: no Python internals, bounded sizes,
a time limit) loading only checked files (pipeline.stages.card.template_files), with
StrictUndefined (a missing value is an error, never a blank) and a finalize hook
that refuses to print None (a template must say what is missing instead).
Autoescaping is off because the output is Markdown, not HTML; every record or
config value goes through a Markdown filter from pipeline.markdown instead.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import PubctlError, UsageError
from pipeline.layout import Layout
from pipeline.markdown import (
    code_span,
    duration,
    escape_cell,
    escape_inline,
    escape_url,
    number,
    prose,
    py_string,
    show,
    signed,
    size,
)
from pipeline.stages.card.template_files import card_template

if TYPE_CHECKING:
    from jinja2.bccache import FileSystemBytecodeCache

    from pipeline.config import ReleaseConfig
    from pipeline.stages.card.sandbox import BoundedSandbox

OPTIONS = {"autoescape": False, "trim_blocks": True, "lstrip_blocks": True, "keep_trailing_newline": True}
"""autoescape off: Markdown, not HTML; the filters escape instead."""
FILTERS = {
    "md": escape_inline,
    "prose": prose,
    "code": code_span,
    "cell": escape_cell,
    "url": escape_url,
    "py": py_string,
    "num": number,
    "signed": signed,
    "duration": duration,
    "filesize": size,
    "show": show,
}


def card_environment(config: ReleaseConfig, layout: Layout) -> tuple[BoundedSandbox, str]:
    """The environment for the model card and the name of the template to render (card.template)."""
    choice = card_template(config, layout)
    return sandboxed(layout, list(choice.search)), choice.name


def sandboxed(layout: Layout, search: list[Path]) -> BoundedSandbox:
    """A bounded, sandboxed, strict environment loading checked templates from ``search`` (first match wins)."""
    import jinja2

    from pipeline.stages.card.sandbox import BoundedSandbox, ProjectLoader

    env = BoundedSandbox(
        loader=ProjectLoader(search),
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        bytecode_cache=_bytecode_cache(layout),
        **OPTIONS,
    )
    env.add_filters(FILTERS)
    return env


def _finalize(value: Any) -> Any:
    # StrictUndefined catches missing names; this catches present-but-None values,
    # which would otherwise print as the word "None" on a published card.
    if value is None:
        import jinja2

        raise jinja2.TemplateError("a template printed None: test the value with 'is not none' and say what is missing")
    return value


def _bytecode_cache(layout: Layout) -> FileSystemBytecodeCache | None:
    """Compiled templates cached under runs/_cache: compiling them is a third of a re-render's time.

    Jinja keys the cache by template name and source checksum, not by environment options, so
    the folder name carries the options, the jinja version and the sandbox's code generator. Output
    never depends on the cache, and only files the loader accepted (inside the project) reach it.
    """
    import jinja2
    from jinja2.bccache import FileSystemBytecodeCache

    from pipeline.stages.card.sandbox import SANDBOX_VERSION

    key = f"{jinja2.__version__} {sorted(OPTIONS.items())} finalize {SANDBOX_VERSION}"
    signature = hashlib.sha256(key.encode()).hexdigest()[:12]
    folder = layout.cache_dir / "card-templates" / signature
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only checkout renders the same card, only without the cache
    return FileSystemBytecodeCache(str(folder))


def method_partial(env: BoundedSandbox, method: str) -> str:
    """The partial describing ``method``; every training method must have one."""
    import jinja2

    name = f"partials/method_{method}.md.j2"
    try:
        # Found, not compiled: a syntax error in it is reported by render_body with its line.
        env.loader.get_source(env, name)  # type: ignore[union-attr]  # sandboxed() always sets a loader
    except jinja2.TemplateNotFound:
        raise UsageError(
            f"No card partial for method '{method}': templates/{name} is missing. Every training method needs "
            "one (what it optimises, its objective in words, its citations)."
        ) from None
    return name


def render_body(env: BoundedSandbox, template_name: str, context: dict[str, Any]) -> str:
    """The Markdown body, rendered within the sandbox's bounds; any failure is a UsageError naming template and line."""
    from pipeline.stages.card.sandbox import RENDER_SECONDS

    try:
        with env.time_limit(RENDER_SECONDS):
            text = env.get_template(template_name).render(context)
    except PubctlError as exc:
        if not isinstance(exc, UsageError):
            raise
        raise UsageError(f"{_where(exc, env, template_name)}: {exc}") from None
    except Exception as exc:  # the template is code from the config's author: whatever it raises is its error
        raise UsageError(f"{_where(exc, env, template_name)}: {_reason(exc)}.") from None
    # Block tags leave runs of blank lines where optional sections are absent; Markdown ignores them,
    # a reviewer reading the diff does not.
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


def _where(exc: BaseException, env: BoundedSandbox, template_name: str) -> str:
    from pipeline.stages.card.sandbox import ProjectLoader, template_line

    found = template_line(exc, env.loader) if isinstance(env.loader, ProjectLoader) else None
    if found is None:
        return f"Card template {template_name}"
    name, line = found
    via = f" (rendering {template_name})" if name != template_name else ""
    return f"Card template {name}, line {line}{via}"


def _reason(exc: BaseException) -> str:
    import jinja2

    if isinstance(exc, RecursionError):
        return (
            "recursion too deep: a macro, include or recursive loop calls itself without end, or an expression "
            "is nested too deeply"
        )
    if isinstance(exc, MemoryError):
        return "out of memory while rendering"
    if isinstance(exc, jinja2.TemplateSyntaxError):
        text = exc.message or str(exc)
    elif isinstance(exc, jinja2.TemplateError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    text = text.rstrip(".")
    return text if len(text) <= 300 else text[:297] + "..."
