"""The Jinja environment every card is rendered in: the model card and the adapter repository's card.

A SandboxedEnvironment (a user's template cannot reach Python internals) with
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

from pipeline.errors import UsageError
from pipeline.layout import Layout, templates_dir
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
from pipeline.refs import project_path

if TYPE_CHECKING:
    from jinja2.bccache import FileSystemBytecodeCache
    from jinja2.sandbox import SandboxedEnvironment

DEFAULT_TEMPLATE = "model_card.md.j2"
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


def default_templates(layout: Layout) -> Path:
    """The templates/ folder pubctl's own templates are read from (a user template may extend them)."""
    folder = templates_dir(layout.root)
    if not (folder / DEFAULT_TEMPLATE).is_file():
        raise UsageError(f"No card templates: {folder / DEFAULT_TEMPLATE} does not exist.")
    return folder


def card_environment(template: str, layout: Layout) -> tuple[SandboxedEnvironment, str]:
    """The environment for the model card and the name of the template to render (card.template)."""
    default_dir = default_templates(layout)
    if (default_dir / template).is_file():
        return sandboxed(layout, [default_dir]), template
    user = user_template(template, default_dir, layout.root)
    return sandboxed(layout, [user.parent, default_dir]), user.name


def user_template(name: str, default_dir: Path, root: Path) -> Path:
    """card.template as a path outside templates/; it must exist and must not shadow the default it extends."""
    user = project_path(name, root)
    if not user.is_file():
        raise UsageError(
            f"card.template {name!r}: no template at {default_dir / name} or {user}. Name a file in "
            f"{default_dir} or a path to a Jinja template."
        )
    if user.name == DEFAULT_TEMPLATE and user.parent.resolve() != default_dir.resolve():
        raise UsageError(
            f"card.template {name!r}: a user template must not be called {DEFAULT_TEMPLATE}, the name it extends."
        )
    return user


def sandboxed(layout: Layout, search: list[Path]) -> SandboxedEnvironment:
    """A sandboxed, strict environment loading templates from ``search`` (first match wins)."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader([str(path) for path in search]),
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        bytecode_cache=_bytecode_cache(layout),
        **OPTIONS,
    )
    env.filters.update(FILTERS)
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
    the folder name carries the options and the jinja version. Output never depends on the cache.
    """
    import jinja2
    from jinja2.bccache import FileSystemBytecodeCache

    signature = hashlib.sha256(f"{jinja2.__version__} {sorted(OPTIONS.items())} finalize".encode()).hexdigest()[:12]
    folder = layout.cache_dir / "card-templates" / signature
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only checkout renders the same card, only without the cache
    return FileSystemBytecodeCache(str(folder))


def method_partial(env: SandboxedEnvironment, method: str) -> str:
    """The partial describing ``method``; every training method must have one."""
    import jinja2

    name = f"partials/method_{method}.md.j2"
    try:
        env.get_template(name)
    except jinja2.TemplateNotFound:
        raise UsageError(
            f"No card partial for method '{method}': templates/{name} is missing. Every training method needs "
            "one (what it optimises, its objective in words, its citations)."
        ) from None
    return name


def render_body(env: SandboxedEnvironment, template_name: str, context: dict[str, Any]) -> str:
    """The Markdown body: template errors become usage errors naming the template and line."""
    import jinja2

    try:
        text = env.get_template(template_name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise UsageError(f"Card template {exc.filename or exc.name}, line {exc.lineno}: {exc.message}.") from None
    except jinja2.TemplateError as exc:
        raise UsageError(f"Rendering the card with template {template_name!r} failed: {exc}.") from None
    # Block tags leave runs of blank lines where optional sections are absent; Markdown ignores them,
    # a reviewer reading the diff does not.
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"
