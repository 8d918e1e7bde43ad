"""Hostile card templates (issue #14): nothing outside the project is read, nothing renders without bounds.

Each case runs `pubctl card NAME` on a temp project whose config names the template.
A file outside the project holds a fake token; it must never reach README.md or the
compiled-template cache under runs/_cache. Every refusal and every runaway template
ends with exit 2, a message naming the template (and, for a render, its line), fast.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_card_records import realistic_record, write_record
from typer.testing import CliRunner

from pipeline.cli import app

runner = CliRunner()
TOKEN = "hf_FAKEtoken1234567890abcdefSECRET"
HANG_GUARD_S = 30
"""A case that hangs dumps its stack and ends the test process instead of blocking the run."""


@contextlib.contextmanager
def hang_guard() -> Iterator[None]:
    faulthandler.dump_traceback_later(HANG_GUARD_S, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def release(
    make_config: Callable[..., str], project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[[str], str]:
    """A release NAME whose card.template is the given string; the compiled-template cache lives in the project."""
    monkeypatch.setenv("PUBCTL_CACHE", str(project / "runs" / "_cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def make(template: str, name: str = "hostile") -> str:
        make_config(name, {"card": {"template": template}})
        write_record(project, realistic_record(name))
        return name

    return make


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A token file outside the project, where ~/.cache/huggingface/token would be."""
    path = tmp_path / "home" / ".cache" / "huggingface" / "token"
    path.parent.mkdir(parents=True)
    path.write_text(f"{TOKEN}\n{{{{ 'and a template' }}}}\n", encoding="utf-8")
    return path


def card(name: str) -> tuple[int, str, float]:
    started = time.monotonic()
    with hang_guard():
        result = runner.invoke(app, ["card", name])
    return result.exit_code, result.output, time.monotonic() - started


def assert_nothing_leaked(project: Path) -> None:
    for path in [project / "cards", project / "runs"]:
        for file in path.rglob("*") if path.is_dir() else []:
            if file.is_file() and not file.is_symlink():
                assert TOKEN.encode() not in file.read_bytes(), f"the token reached {file}"


# ---------------------------------------------------------------- files outside the project
@pytest.mark.parametrize(
    "spelling",
    [
        lambda secret, project: str(secret),  # absolute
        lambda secret, project: "~/.cache/huggingface/token",  # HOME points at the folder above the secret
        lambda secret, project: os.path.relpath(secret, project),  # ../home/... climbing out of the project
        lambda secret, project: "configs/../../home/.cache/huggingface/token",
    ],
    ids=["absolute", "tilde", "dotdot", "dotdot-inside"],
)
def test_a_template_outside_the_project_is_refused(release, project, secret, spelling):
    name = release(spelling(secret, project))

    code, output, _ = card(name)

    assert code == 2, output
    assert "card.template" in output and "outside the project" in output and str(secret) in output
    assert "not found in search path" not in output
    assert TOKEN not in output
    assert not (project / "cards" / name / "README.md").exists()
    assert_nothing_leaked(project)


def test_a_symlink_in_templates_pointing_out_is_refused(release, project, secret):
    (project / "templates" / "house.md.j2").symlink_to(secret)
    name = release("house.md.j2")

    code, output, _ = card(name)

    assert code == 2, output
    assert "house.md.j2" in output and "symbolic link" in output and "outside" in output
    assert TOKEN not in output
    assert_nothing_leaked(project)


def test_a_symlinked_folder_in_the_project_pointing_out_is_refused(release, project, secret):
    (project / "shared").symlink_to(secret.parent)
    name = release("shared/token")

    code, output, _ = card(name)

    assert code == 2, output
    assert "outside the project" in output
    assert_nothing_leaked(project)


def test_an_include_of_a_symlink_pointing_out_is_refused(release, project, secret):
    (project / "templates" / "partials" / "leak.md.j2").symlink_to(secret)
    (project / "templates" / "house.md.j2").write_text(
        '{% extends "model_card.md.j2" %}\n{% block limitations %}\n{% include "partials/leak.md.j2" %}\n'
        "{% endblock %}\n",
        encoding="utf-8",
    )
    name = release("house.md.j2")

    code, output, _ = card(name)

    assert code == 2, output
    assert "Card template house.md.j2, line 3" in output
    assert "partials/leak.md.j2" in output and "symbolic link" in output
    assert TOKEN not in output
    assert_nothing_leaked(project)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.parametrize("how", ["named", "included"])
def test_a_fifo_template_is_refused_without_opening_it(release, project, how):
    os.mkfifo(project / "templates" / "pipe.md.j2")
    if how == "included":
        (project / "templates" / "house.md.j2").write_text('{% include "pipe.md.j2" %}\n', encoding="utf-8")
    name = release("pipe.md.j2" if how == "named" else "house.md.j2")

    code, output, seconds = card(name)

    assert code == 2, output
    assert "pipe.md.j2" in output and "FIFO" in output
    assert seconds < 10


def test_a_hidden_file_inside_the_project_is_refused(release, project):
    (project / ".git").mkdir()
    (project / ".git" / "config").write_text(f"url = https://user:{TOKEN}@github.com/x/y\n", encoding="utf-8")
    name = release(".git/config")

    code, output, _ = card(name)

    assert code == 2, output
    assert "hidden" in output and ".git" in output
    assert_nothing_leaked(project)


def test_an_oversized_template_and_an_overlong_name_are_refused(release, project):
    (project / "templates" / "big.md.j2").write_text("x" * (300 * 1024), encoding="utf-8")
    code, output, _ = card(release("big.md.j2", name="big"))
    assert code == 2, output
    assert "big.md.j2" in output and "at most 262,144" in output

    for spelling in ["t" * 300 + ".md.j2", "../" * 80 + "x.md.j2"]:  # the config or the card stage refuses it
        code, output, _ = card(release(spelling, name="long"))
        assert code == 2, output
        assert "card.template" in output and "Traceback" not in output


def test_a_user_template_beside_the_config_or_in_the_project_renders(release, project):
    (project / "house").mkdir()
    (project / "house" / "mine.md.j2").write_text(
        '{% extends "model_card.md.j2" %}\n{% block limitations %}\nHouse rules for {{ release | md }}.\n'
        "{% endblock %}\n",
        encoding="utf-8",
    )
    for spelling, name in [("../house/mine.md.j2", "beside"), ("house/mine.md.j2", "rooted")]:
        code, output, _ = card(release(spelling, name=name))
        assert code == 0, output
        text = (project / "cards" / name / "README.md").read_text(encoding="utf-8")
        assert f"House rules for {name}." in text and "## Evaluation" in text


def test_the_card_stamp_hashes_the_file_that_is_rendered(release, project, secret):
    from pipeline.config import load_config
    from pipeline.layout import Layout
    from pipeline.stages.hashes import card_files
    from pipeline.stamps import FileHasher

    (project / "house").mkdir()
    mine = project / "house" / "mine.md.j2"
    mine.write_text('{% extends "model_card.md.j2" %}\n', encoding="utf-8")
    name = release("../house/mine.md.j2")  # beside the config: configs/../house/mine.md.j2

    def template_hash(name: str) -> str:
        return card_files(load_config(name), Layout.for_release(name, project), FileHasher(None))["template"]

    before = template_hash(name)
    mine.write_text('{% extends "model_card.md.j2" %}\n{# edited #}\n', encoding="utf-8")
    assert template_hash(name) != before
    assert template_hash(release(str(secret), name="outside")) == "refused"  # and the token file is never hashed


def test_pubctl_list_does_not_read_a_refused_template(release, project, secret):
    release(str(secret))

    with hang_guard():
        result = runner.invoke(app, ["list"])

    assert result.exit_code == 0, result.output
    assert TOKEN not in result.output
    assert_nothing_leaked(project)


# ---------------------------------------------------------------- runaway templates
RUNAWAY = {
    "range": ("{% for i in range(10**9) %}{{ i }}{% endfor %}", "range(1000000000) has more than 10,000 items"),
    "repeat": ("{{ 'x' * 10**9 }}", "would build 1,000,000,000 characters"),
    "doubling": (
        "{% set ns = namespace(text='x') %}{% for i in range(64) %}{% set ns.text = ns.text ~ ns.text %}{% endfor %}"
        "{{ ns.text }}",
        "more than 1,048,576 characters",
    ),
    "doubling-plus": (
        "{% set ns = namespace(text='x') %}{% for i in range(64) %}{% set ns.text = ns.text + ns.text %}{% endfor %}"
        "{{ ns.text }}",
        "at most 1,048,576",
    ),
    "recursive-macro": ("{% macro deeper(n) %}{{ deeper(n + 1) }}{% endmacro %}{{ deeper(0) }}", "recursion too deep"),
    "nested-ranges": (
        "{% for i in range(99999) %}{% for j in range(99999) %}{{ j }}{% endfor %}{% endfor %}",
        "range(99999) has more than 10,000 items",
    ),
    "lipsum": ("{{ lipsum(10**7) }}", "'lipsum' is undefined"),
    "power": ("{{ 10 ** (10 ** 10) }}", "larger than 4096-bit integers"),
    "padding": ("{{ '{:>1000000000}'.format('x') }}", "format width"),
    "output": ("{% for i in range(10000) %}{{ 'x' * 1000000 }}{% endfor %}", "output would be more than"),
    "error": ("{{ 1 / 0 }}", "division by zero"),
}


@pytest.mark.parametrize("case", sorted(RUNAWAY))
def test_a_runaway_template_stops_with_its_name_and_line(release, project, case):
    source, reason = RUNAWAY[case]
    (project / "templates" / "runaway.md.j2").write_text(f"# A card\n\n{source}\n", encoding="utf-8")

    code, output, seconds = card(release("runaway.md.j2"))

    assert code == 2, output
    assert "Card template runaway.md.j2, line 3:" in output and reason in output
    assert "Traceback" not in output
    assert seconds < 5


def test_a_loop_with_no_output_stops_at_the_time_limit(release, project, monkeypatch):
    monkeypatch.setattr("pipeline.stages.card.sandbox.RENDER_SECONDS", 1.0)
    (project / "templates" / "slow.md.j2").write_text(
        "{% set text = 'x' * 100000 %}\n{% for a in text %}{% for b in text %}{% endfor %}{% endfor %}\n",
        encoding="utf-8",
    )

    code, output, seconds = card(release("slow.md.j2"))

    assert code == 2, output
    assert "Card template slow.md.j2, line 2: rendering took longer than 1 s" in output
    assert seconds < 5
