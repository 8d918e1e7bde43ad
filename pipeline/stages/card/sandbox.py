"""The bounded Jinja sandbox card templates render in, and the loader that reads only checked files.

jinja2's SandboxedEnvironment keeps a template away from Python internals but not
from the machine's memory and time: ``range(10**9)``, ``'x' * 10**9``, a string
doubled in a loop, nested loops or ``lipsum(10**7)`` run until the machine gives
up. BoundedSandbox adds, on top of it:

- sizes: every operator, call, filter, ``~`` and output join goes through a check
  of pipeline.stages.card.limits before it builds its result; ``lipsum`` is gone;
- time: rendering has a wall-clock limit, checked at each of those hooks and, in
  the main thread, by SIGALRM (a loop with an empty body passes no hook);
- recursion: Python's own limit; the card stage reports the RecursionError.

ProjectLoader serves a template, an include or an extends only when
pipeline.stages.card.template_files accepts its resolved file: inside its search
folder, regular, small, not hidden. jinja2's FileSystemLoader follows a symbolic
link anywhere and opens a FIFO.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sized
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.loaders import split_template_path
from jinja2.sandbox import SandboxedEnvironment

from pipeline.stages.card.limits import (
    MAX_TEXT,
    TemplateLimit,
    bounded_range,
    check_binop,
    check_call,
    check_filter,
    check_result,
    check_str_format,
    check_text,
)
from pipeline.stages.card.template_files import checked_template, read_template

RENDER_SECONDS = 10.0
"""Wall-clock limit of one render (the default card takes milliseconds)."""
SANDBOX_VERSION = "bounded-1"
"""Part of the compiled-template cache's key: code compiled without the bounds must never be reused."""


class RenderTimeout(TemplateLimit):
    """A render went past RENDER_SECONDS."""


class ProjectLoader(jinja2.FileSystemLoader):
    """A FileSystemLoader that reads a file only when its resolved path is a checked template in its folder."""

    def __init__(self, search: list[Path]) -> None:
        super().__init__([str(folder) for folder in search])
        self.names: dict[str, str] = {}
        """Template file -> template name, for naming the template and line of a failure."""

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        pieces = split_template_path(template)  # TemplateNotFound for '..'
        for folder in self.searchpath:
            candidate = Path(folder, *pieces)
            if not os.path.lexists(candidate):
                continue
            file = checked_template(candidate, Path(folder), f"template {template!r}")
            source = read_template(file, f"template {template!r}")
            mtime = file.stat().st_mtime
            self.names[str(file)] = template

            def uptodate(file: Path = file, mtime: float = mtime) -> bool:
                try:
                    return file.stat().st_mtime == mtime
                except OSError:
                    return False

            return source, str(file), uptodate
        folders = ", ".join(self.searchpath)
        raise jinja2.TemplateNotFound(template, f"no template {template!r} in {folders}")


class BoundedCodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` through BoundedSandbox.joined, so a doubled string is refused before it is built."""

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        else:
            join = "markup_join" if frame.eval_ctx.autoescape else "str_join"
        self.write(f"environment.joined({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(SandboxedEnvironment):
    """SandboxedEnvironment with bounded sizes and a time limit (see the module docstring)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = BoundedCodeGenerator

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.deadline: float | None = None
        self.globals.pop("lipsum", None)
        self.globals["range"] = self.range
        self.filters = {name: self._bounded_filter(name, function) for name, function in self.filters.items()}
        if self.finalize is not None:
            self.finalize = self._bounded_finalize(self.finalize)

    def add_filters(self, filters: dict[str, Callable[..., Any]]) -> None:
        """Register pubctl's filters: each prints its value, so the value's printed size is bounded first."""
        self.filters.update(
            {name: self._bounded_filter(name, function, prints=True) for name, function in filters.items()}
        )

    # ------------------------------------------------------------------ time
    def tick(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise RenderTimeout(f"rendering took longer than {RENDER_SECONDS:g} s")

    @contextlib.contextmanager
    def time_limit(self, seconds: float) -> Iterator[None]:
        """Raise RenderTimeout in the rendering code once ``seconds`` have passed."""
        self.deadline = time.monotonic() + seconds
        try:
            with _alarm(seconds):
                yield
        finally:
            self.deadline = None

    # ------------------------------------------------------------------ hooks
    def range(self, *args: int) -> range:
        self.tick()
        return bounded_range(*args)

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        self.tick()
        check_binop(operator, left, right)
        return check_result(super().call_binop(context, operator, left, right), f"the result of {operator!r}")

    def call(self, context: jinja2.runtime.Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.tick()
        if getattr(obj, "__name__", "") == "join" and args and not isinstance(args[0], Sized):
            args = (list(args[0]), *args[1:])  # a generator: counted before the join consumes it
        check_call(obj, args, kwargs)
        return check_result(super().call(context, obj, *args, **kwargs), "the result of a call")

    def getattr(self, obj: Any, attribute: str) -> Any:
        self.tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        self.tick()
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is not None:
            check_str_format(value.__self__)
        return wrapper

    def concat(self, parts: Any) -> str:  # type: ignore[override]  # jinja2 declares it as "".join
        """The output of the template, a block, a macro or a {% set %} block, up to MAX_TEXT characters."""
        pieces = []
        total = 0
        for piece in parts:
            total += len(piece)
            if total > MAX_TEXT:
                limit = TemplateLimit(f"the output would be more than {MAX_TEXT:,} characters")
                if hasattr(parts, "throw"):
                    parts.throw(limit)  # raised at the template line that yielded the piece, so it is named
                raise limit
            pieces.append(piece)
            self.tick()
        return "".join(pieces)

    def joined(self, join: Callable[[Any], str], parts: tuple[Any, ...]) -> str:
        """``a ~ b ~ ...``: refused before joining when the text would be too large."""
        self.tick()
        check_text(list(parts), "the '~' concatenation")
        return join(parts)

    def _bounded_filter(self, name: str, function: Callable[..., Any], prints: bool = False) -> Callable[..., Any]:
        # jinja2 passes a context, eval context or environment first to filters marked for it.
        skip = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0

        @functools.wraps(function)
        def bounded(*args: Any, **kwargs: Any) -> Any:
            self.tick()
            if len(args) > skip:
                if name == "join" and not isinstance(args[skip], Sized):
                    args = (*args[:skip], list(args[skip]), *args[skip + 1 :])
                if prints:
                    check_text(args[skip], f"the input of the filter {name!r}")
                check_filter(name, args[skip], list(args[skip + 1 :]), kwargs)
            return check_result(function(*args, **kwargs), f"the filter {name!r}")

        return bounded

    def _bounded_finalize(self, finalize: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def bounded(value: Any) -> Any:
            check_text(value, "a printed value")
            return finalize(value)

        return bounded


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """SIGALRM every second after ``seconds`` while inside (main thread only, and only with no timer set).

    It repeats because jinja2's compiler swallows exceptions while folding constants; a later one lands.
    """
    usable = (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    )
    if not usable:
        yield
        return
    armed = True

    def on_alarm(signum: int, frame: Any) -> None:
        if armed:
            raise RenderTimeout(f"rendering took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        if previous is not None:  # None: a handler installed outside Python, which signal cannot restore
            signal.signal(signal.SIGALRM, previous)


def template_line(exc: BaseException, loader: ProjectLoader) -> tuple[str, int] | None:
    """(template name, line) of the innermost template frame of ``exc``'s traceback, when it has one.

    jinja2 rewrites a render's traceback so that template frames carry the template file and line.
    """
    if isinstance(exc, jinja2.TemplateSyntaxError) and exc.lineno:
        return exc.name or loader.names.get(exc.filename or "", "?"), exc.lineno
    found = None
    trace = exc.__traceback__
    while trace is not None:
        name = loader.names.get(trace.tb_frame.f_code.co_filename)
        if name is not None:
            found = (name, trace.tb_lineno)
        trace = trace.tb_next
    return found
