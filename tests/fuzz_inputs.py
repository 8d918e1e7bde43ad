"""Hostile mutations of a release's inputs (its config and its record) and one CLI run on each.

Shared by tests/test_fuzz.py (a short, derandomized run in CI) and benchmarks/fuzz.py (a long
run that counts outcomes for the hostile-inputs report). A mutation is drawn by hypothesis:
one place in the demo config or the demo card's results.json (any key or list item, at any
depth) and one operation on it (replace with a hostile value, delete, add an unknown key, nest
deeply), or a raw byte-level edit of the file. The run is in-process through typer's CliRunner
with a wall-clock alarm, so a traceback (an exception that is not SystemExit) and a hang are
both caught and told apart from pubctl's own exit codes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

REPO_ROOT = Path(__file__).resolve().parent.parent
SECRET = "hf_FUZZSECRETdoNotPublish0123456789"
"""The content of a token-like file outside the project; it must never appear in anything pubctl writes."""
COMMANDS = (["card", "demo"], ["check", "demo"], ["list"])
HANG_SECONDS = 60


def hostile_strings(outside: Path) -> st.SearchStrategy[str]:
    """Strings that have broken tools before: paths out of the project, huge, empty, markup, control bytes."""
    known = [
        "",
        " ",
        "..",
        ".",
        "-x",
        "x" * 300,
        "x" * 5000,
        "../../../../etc/passwd",
        "/etc/passwd",
        "/proc",
        "/dev/zero",
        "~/.cache/huggingface/token",
        str(outside),
        f"../{outside.name}",
        "{{ 7 * 7 }}",
        "{% for i in range(10**9) %}x{% endfor %}",
        "<script>alert(1)</script>",
        "a\nb: c\n---\n",
        "*alias",
        "\x00\x1b[31m",
        "builtin:nope",
        "NaN",
        "1e309",
        "0.1",
        "sha256:" + "0" * 64,
        "user/repo",
        "a..b",
    ]
    return st.one_of(st.sampled_from(known), st.text(max_size=40))


def hostile_values(outside: Path) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.sampled_from([0, -1, 1, 2**31, 2**63, 10**30, 10**40, -(10**40)]),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        hostile_strings(outside),
    )
    return st.one_of(
        scalars,
        st.lists(scalars, max_size=3),
        st.dictionaries(st.text(max_size=8), scalars, max_size=3),
    )


def paths_in(tree: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every key path in a JSON-like tree, parents before children."""
    yield prefix
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from paths_in(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from paths_in(value, (*prefix, index))


def _parent(tree: Any, path: tuple) -> Any:
    for part in path[:-1]:
        tree = tree[part]
    return tree


@st.composite
def tree_mutation(draw: st.DrawFn, tree: Any, outside: Path) -> tuple[str, Any]:
    """(description, mutated copy) of ``tree``: one operation at one drawn place."""
    mutated = json.loads(json.dumps(tree))
    places = [p for p in paths_in(mutated) if p]
    path = draw(st.sampled_from(places))
    parent = _parent(mutated, path)
    operation = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add_key", "nest"]))
    if operation == "replace":
        value = draw(hostile_values(outside))
        parent[path[-1]] = value
        return f"{'.'.join(map(str, path))} = {value!r:.80}", mutated
    if operation == "delete":
        del parent[path[-1]]
        return f"delete {'.'.join(map(str, path))}", mutated
    if operation == "add_key":
        target = parent[path[-1]] if isinstance(parent[path[-1]], dict) else parent
        if not isinstance(target, dict):
            target = mutated
        key = draw(st.text(min_size=1, max_size=12))
        target[key] = draw(hostile_values(outside))
        return f"add key {key!r} near {'.'.join(map(str, path))}", mutated
    depth = draw(st.sampled_from([2, 60, 500]))
    value = parent[path[-1]]
    for _ in range(depth):
        value = [value]
    parent[path[-1]] = value
    return f"nest {'.'.join(map(str, path))} {depth} deep", mutated


@st.composite
def byte_mutation(draw: st.DrawFn, text: str) -> tuple[str, str]:
    """(description, text) with a raw edit: truncated, a span replaced, or hostile text inserted."""
    cut = draw(st.integers(min_value=0, max_value=len(text)))
    operation = draw(st.sampled_from(["truncate", "insert", "replace"]))
    insert = draw(
        st.sampled_from(
            ["&a [1, 2]\nx: *a\n", "[" * 5000, "{" * 5000, "\x00", "\ufeff", "!!python/object:os.system {}"]
        )
        | st.text(max_size=20)
    )
    if operation == "truncate":
        return f"truncate at byte {cut}", text[:cut]
    if operation == "insert":
        return f"insert {insert!r:.40} at {cut}", text[:cut] + insert + text[cut:]
    end = draw(st.integers(min_value=cut, max_value=min(len(text), cut + 40)))
    return f"replace {cut}:{end} with {insert!r:.40}", text[:cut] + insert + text[end:]


@dataclass
class Outcome:
    mutation: str
    command: str
    exit_code: int | None
    """pubctl's exit code; None for a traceback or a hang."""
    traceback: str | None = None
    hang: bool = False
    leaked: list[str] | None = None
    """Files under the project holding the outside secret."""


class Hang(Exception):
    """Raised by the alarm: the command ran past HANG_SECONDS."""


@contextmanager
def alarm(seconds: int) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signals only reach the main thread; the test's own timeout bounds it then
        return

    def ring(signum: int, frame: Any) -> None:
        raise Hang

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def make_project(base: Path) -> tuple[Path, Path]:
    """A project with the demo config, templates and card bundle, and a secret file beside it."""
    if base.exists():
        shutil.rmtree(base)
    root = base / "project"
    shutil.copytree(REPO_ROOT / "configs", root / "configs")
    shutil.copytree(REPO_ROOT / "templates", root / "templates")
    shutil.copytree(REPO_ROOT / "cards" / "demo", root / "cards" / "demo")
    (root / "README.md").write_text("the project's own README\n", encoding="utf-8")
    outside = base / "token"
    outside.write_text(SECRET, encoding="utf-8")
    return root, outside


def demo_config() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "configs" / "demo.yaml").read_text(encoding="utf-8"))


def demo_record() -> dict[str, Any]:
    return json.loads((REPO_ROOT / "cards" / "demo" / "results.json").read_text(encoding="utf-8"))


def run_pubctl(root: Path, args: list[str], mutation: str) -> Outcome:
    """One CLI command in-process on ``root``; the outcome says exit code, traceback, hang and leaks."""
    from typer.testing import CliRunner

    from pipeline.cli import app

    previous = {key: os.environ.get(key) for key in ("PUBCTL_ROOT", "COLUMNS")}
    os.environ["PUBCTL_ROOT"] = str(root)
    os.environ["COLUMNS"] = "120"
    outcome = Outcome(mutation=mutation, command=" ".join(args), exit_code=None)
    try:
        with alarm(HANG_SECONDS):
            result = CliRunner().invoke(app, args, catch_exceptions=True)
        if result.exception is None or isinstance(result.exception, SystemExit):
            outcome.exit_code = result.exit_code
        elif isinstance(result.exception, Hang):
            outcome.hang = True
        else:
            outcome.traceback = "".join(traceback.format_exception(result.exception))
        if "Traceback (most recent call last)" in result.output and outcome.traceback is None:
            outcome.traceback = result.output
    except Hang:
        outcome.hang = True
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    outcome.leaked = leaks(root)
    return outcome


def leaks(root: Path) -> list[str]:
    """Files pubctl may write (cards/, runs/, the project README) that hold the outside secret."""
    found = []
    for folder in (root / "cards", root / "runs"):
        for path in folder.rglob("*") if folder.is_dir() else []:
            if path.is_file() and not path.is_symlink() and SECRET.encode() in path.read_bytes():
                found.append(str(path.relative_to(root)))
    readme = root / "README.md"
    if not readme.is_file() or readme.read_text(encoding="utf-8") != "the project's own README\n":
        found.append("README.md (the project's own, overwritten)")
    return found


def write_config(root: Path, data: Any) -> None:
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    (root / "configs" / "demo.yaml").write_text(text, encoding="utf-8")


def write_record(root: Path, data: Any) -> None:
    (root / "cards" / "demo" / "results.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
