"""Hostile results records and a full disk: exit 2 (record) or 1 (disk) with one line, never a traceback.

A results.json is committed, so anyone can hand pubctl one: a string where a number belongs, a
score of Infinity or 1e309, a negative stderr, a log step of 1e30, JSON nested 100,000 deep. Each
is refused by `pubctl card`, `pubctl check` (and shown by `pubctl list`) naming the field, before
anything is written. A write that fails for want of space names the file and leaves the old one.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_card_records import realistic_record, write_record
from typer.testing import CliRunner

from pipeline import record_validation
from pipeline.cli import app
from pipeline.errors import os_error_message, wrapped_os_error
from pipeline.layout import Layout

KTO = {"model": {"base_model": "Qwen/Qwen3-0.6B", "dtype": "bfloat16"}, "method": {"name": "kto", "beta": 0.1}}
runner = CliRunner()
NO_SPACE = os.strerror(errno.ENOSPC)


@pytest.fixture
def card_release(make_config: Callable[..., str], project: Path) -> Layout:
    """Release 't' with a realistic record and a card already in its folder (that no failure may touch)."""
    make_config("t", KTO)
    layout = write_record(project, realistic_record("t"))
    layout.readme.write_text("---\nlicense: apache-2.0\n---\nThe card as committed.\n", encoding="utf-8")
    return layout


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (temp files included) with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_one_line_error(output: str, *needles: str) -> None:
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, output
    for needle in needles:
        assert needle in errors[0], output


# ----------------------------------------------------------------------------- hostile values
def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], str]:
    def edit(record: dict[str, Any]) -> str:
        node = record
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return json.dumps(record)

    return edit


def _literal(path: tuple[Any, ...], literal: str) -> Callable[[dict[str, Any]], str]:
    """A value json.dumps would not write (Infinity, 1e309, a 5,000-digit integer), spliced in as text."""
    marker = "__HOSTILE__"

    def edit(record: dict[str, Any]) -> str:
        return _set(path, marker)(record).replace(json.dumps(marker), literal)

    return edit


def _nested(depth: int) -> Callable[[dict[str, Any]], str]:
    def edit(record: dict[str, Any]) -> str:
        text = json.dumps(record)
        return text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"

    return edit


def _many_benchmarks(record: dict[str, Any]) -> str:
    """101 results: the evaluation figure draws a bar for each, minutes of matplotlib for thousands."""
    row = record["evaluation"]["results"][0]
    record["evaluation"]["results"] = [{**row, "task": f"task{i}"} for i in range(101)]
    return json.dumps(record)


SCORE = ("evaluation", "results", 0, "value")
HOSTILE = {
    "beta as a string": (_set(("training", "method_params", "beta"), "0.1"), "training.method_params.beta", "'0.1'"),
    "learning rate as a string": (
        _set(("training", "hyperparameters", "learning_rate"), "0.1"),
        "training.hyperparameters.learning_rate",
        "'0.1'",
    ),
    "score Infinity": (_literal(SCORE, "Infinity"), "evaluation.results[0].value", "inf is not a finite number"),
    "score -Infinity": (_literal(SCORE, "-Infinity"), "evaluation.results[0].value", "not a finite number"),
    "score NaN": (_literal(SCORE, "NaN"), "evaluation.results[0].value", "nan is not a finite number"),
    "score 1e309": (_literal(SCORE, "1e309"), "evaluation.results[0].value", "inf is not a finite number"),
    "stderr -1": (_set(("evaluation", "results", 0, "stderr"), -1), "evaluation.results[0].stderr", "(found -1)"),
    "log step 1e30": (_set(("training", "log_history", 2, "step"), 1e30), "training.log_history[2]", "step must be"),
    "log step -3": (_set(("training", "log_history", 2, "step"), -3), "training.log_history[2]", "found -3"),
    "integer of 5000 digits": (
        _literal(("training", "hyperparameters", "seed"), "9" * 5000),
        "training.hyperparameters.seed",
        "5000 digits",
    ),
    "integer beyond 64 bits": (_set(("model", "parameters"), 2**70), "model.parameters", "64 bits"),
    "batch size 0": (
        _set(("training", "hyperparameters", "per_device_batch_size"), 0),
        "training.hyperparameters.per_device_batch_size",
        "greater than or equal to 1",
    ),
    "throughput as text": (
        _set(("evaluation", "throughput", "tokens_per_second_median"), "fast"),
        "evaluation.throughput.tokens_per_second_median",
        "'fast'",
    ),
    "file size negative": (_set(("model", "files", 0, "size"), -1), "model.files[0].size", "greater than or equal"),
    "101 benchmarks": (_many_benchmarks, "evaluation.results", "at most 100 items"),
    "stderr 1e308": (
        _set(("evaluation", "results", 0, "stderr"), 1e308),
        "evaluation.results[0].stderr",
        "1e+308 is beyond ±1e+300",
    ),
    "loss -1.7e308": (
        _set(("training", "log_history", 2, "loss"), -1.7e308),
        "training.log_history[2].loss",
        "beyond ±1e+300",
    ),
    "task with a lone surrogate": (
        _set(("evaluation", "results", 0, "task"), "x\ud800"),
        "evaluation.results[0].task",
        "is not Unicode text",
    ),
    "log key with a lone surrogate": (
        _set(("training", "log_history", 2, "lo\udc00ss"), 1.0),
        "training.log_history[2].lo\\udc00ss",
        "the key is not Unicode text",
    ),
    "log key with a newline and an escape sequence": (
        _set(("training", "log_history", 2, "a\nb\x1b[31mRED"), 1e301),
        "training.log_history[2].a\\nb\\x1b[31mRED",
        "beyond ±1e+300",
    ),
    "nested 100,000 deep": (_nested(100_000), "nested deeper than 64", ""),
    "nested 100 deep": (_nested(100), "deep" + "[0]" * 63, "nested deeper than 64"),
}


@pytest.fixture(params=list(HOSTILE), ids=list(HOSTILE))
def hostile(request: pytest.FixtureRequest, card_release: Layout) -> Iterator[tuple[Layout, str, str]]:
    edit, field, detail = HOSTILE[request.param]
    record = json.loads(card_release.results.read_text(encoding="utf-8"))
    card_release.results.write_text(edit(record), encoding="utf-8")
    yield card_release, field, detail


@pytest.mark.parametrize("command", [["card", "t"], ["card", "t", "--check"], ["check", "t"]])
def test_hostile_record_value_is_exit_2_naming_the_field(hostile: tuple[Layout, str, str], command: list[str]) -> None:
    layout, field, detail = hostile
    before = snapshot(layout.card_dir)
    result = runner.invoke(app, command)
    assert result.exit_code == 2, result.output
    assert_one_line_error(result.output, str(layout.results), field, detail)
    assert snapshot(layout.card_dir) == before  # README.md, plots and the record untouched, no temp file left


def test_list_shows_a_hostile_record_as_unreadable(hostile: tuple[Layout, str, str]) -> None:
    layout, field, _ = hostile
    before = snapshot(layout.card_dir)
    result = runner.invoke(app, ["list"], env={"COLUMNS": "2000"})
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    row = next(line for line in result.output.splitlines() if "│ t " in line)
    assert "unreadable results" in row and field in row
    assert snapshot(layout.card_dir) == before


def test_error_quotes_a_long_value_short(card_release: Layout) -> None:
    record = json.loads(card_release.results.read_text(encoding="utf-8"))
    card_release.results.write_text(
        _set(("training", "hyperparameters", "learning_rate"), "x" * 10_000 + "\nTRAILER")(record), encoding="utf-8"
    )
    result = runner.invoke(app, ["card", "t"])
    assert result.exit_code == 2
    assert_one_line_error(result.output, "training.hyperparameters.learning_rate")
    assert "x" * 61 not in result.output and "TRAILER" not in result.output


def test_record_over_the_size_bound_is_refused_unread(card_release: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(record_validation, "MAX_RECORD_BYTES", 1024)
    result = runner.invoke(app, ["card", "t"])
    assert result.exit_code == 2
    assert_one_line_error(result.output, str(card_release.results), "larger than")


def test_record_not_utf8_is_exit_2(card_release: Layout) -> None:
    raw = b'{"schema_version": 1, "release": "t\xff"}'
    card_release.results.write_bytes(raw)
    result = runner.invoke(app, ["check", "t"])
    assert result.exit_code == 2
    assert_one_line_error(result.output, f"not UTF-8 at byte {raw.index(0xFF)}")


def test_record_that_is_a_link_is_refused(card_release: Layout, tmp_path: Path) -> None:
    record, outside = card_release.results, tmp_path / "elsewhere.json"
    readme = card_release.readme.read_bytes()
    outside.write_bytes(record.read_bytes())
    record.unlink()
    record.symlink_to(outside)
    result = runner.invoke(app, ["card", "t"])
    assert result.exit_code == 2
    assert_one_line_error(result.output, str(record))  # pubctl's layout or the record reader refuses it
    assert card_release.readme.read_bytes() == readme


def test_record_that_is_a_fifo_is_refused_without_blocking(card_release: Layout) -> None:
    record = card_release.results
    record.unlink()
    os.mkfifo(record)
    result = runner.invoke(app, ["check", "t"])
    assert result.exit_code == 2
    assert_one_line_error(result.output, str(record), "not a regular file")


def test_card_num_filter_refuses_text() -> None:
    from pipeline.errors import UsageError
    from pipeline.markdown import number

    with pytest.raises(UsageError, match=r"prints '0\.1' \(str\) as a number"):
        number("0.1")


# ---------------------------------------------------------------------------------- disk full
@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path, str], None]:
    """``fail(target, at)``: the next atomic write of ``target`` runs out of space, half-way through its write()
    (``at="write"``) or when its data reaches the disk (``at="fsync"``). Other files are written normally."""
    real_mkstemp, real_fdopen, real_fsync = tempfile.mkstemp, os.fdopen, os.fsync
    doomed: dict[int, str] = {}
    targets: dict[str, str] = {}

    def mkstemp(*args: Any, **kwargs: Any) -> tuple[int, str]:
        fd, name = real_mkstemp(*args, **kwargs)
        temp = Path(name)
        for target, at in targets.items():
            if temp.parent == Path(target).parent and temp.name.startswith(f".{Path(target).name}."):
                doomed[fd] = at
        return fd, name

    class HalfWritten:
        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __enter__(self) -> HalfWritten:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, data: bytes) -> int:
            self.handle.write(data[: len(data) // 2])
            self.handle.flush()
            raise OSError(errno.ENOSPC, NO_SPACE)  # as a buffered write() reports it: no file name

        def __getattr__(self, name: str) -> Any:
            return getattr(self.handle, name)

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        handle = real_fdopen(fd, *args, **kwargs)
        return HalfWritten(handle) if doomed.get(fd) == "write" else handle

    def fsync(fd: int) -> None:
        if doomed.get(fd) == "fsync":
            raise OSError(errno.ENOSPC, NO_SPACE)
        real_fsync(fd)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(os, "fdopen", fdopen)
    monkeypatch.setattr(os, "fsync", fsync)

    def fail(target: Path, at: str) -> None:
        targets[str(target)] = at

    return fail


@pytest.mark.parametrize("at", ["write", "fsync"])
def test_disk_full_during_card_names_the_file_and_keeps_the_old_card(
    card_release: Layout, full_disk: Callable[[Path, str], None], at: str
) -> None:
    layout = card_release
    record = json.loads(layout.results.read_text(encoding="utf-8"))
    record["evaluation"]["results"][0]["value"] = 0.4321  # a render now would change README.md
    layout.results.write_text(json.dumps(record), encoding="utf-8")
    before = snapshot(layout.card_dir)
    full_disk(layout.readme, at)
    result = runner.invoke(app, ["card", "t"])
    assert result.exit_code == 1, result.output
    assert_one_line_error(result.output, f"could not write {layout.readme}: {NO_SPACE}.")
    after = snapshot(layout.card_dir)
    assert after["README.md"] == before["README.md"]
    assert [name for name in after if name.endswith(".tmp")] == []


def test_disk_full_during_check_allow_keeps_the_record(
    card_release: Layout, full_disk: Callable[[Path, str], None]
) -> None:
    layout = card_release
    before = layout.results.read_bytes()
    full_disk(layout.results, "write")
    result = runner.invoke(app, ["check", "t", "--allow", "near_chance=accepted by a person"])
    assert result.exit_code == 1, result.output
    assert_one_line_error(result.output, f"could not write {layout.results}: {NO_SPACE}.")
    assert layout.results.read_bytes() == before
    assert list(layout.card_dir.glob(".*.tmp")) == []


@pytest.mark.slow
def test_disk_full_during_merge_is_one_line_and_leaves_nothing(
    make_config: Callable[..., str], project: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """safetensors reports ENOSPC as its own exception; the merged model is never half in place."""
    import safetensors.torch
    from safetensors import SafetensorError
    from test_merge import ATTN, make_adapter

    make_config("m")
    layout = Layout.for_release("m", project)
    make_adapter(tiny_model_path, layout.adapter_dir, r=4, lora_alpha=8, target_modules=ATTN)

    def full(*args: Any, **kwargs: Any) -> None:
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    result = runner.invoke(app, ["merge", "m"])
    assert result.exit_code == 1, result.output
    assert_one_line_error(result.output, f"model.safetensors: {NO_SPACE}.")
    assert not layout.merge_dir.exists() and not layout.results.exists()
    assert list(layout.run_dir.glob(".merge-*")) == []


# --------------------------------------------------------------------- which OS errors are one line
@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (OSError(errno.ENOSPC, NO_SPACE, "/p/README.md"), f"could not write /p/README.md: {NO_SPACE}."),
        (OSError(errno.EROFS, "Read-only file system", "/p/x"), "could not write /p/x: Read-only file system."),
        (PermissionError(errno.EACCES, "Permission denied", "/p/x"), "could not access /p/x: Permission denied."),
        (OSError(errno.ENAMETOOLONG, "File name too long", "/p/" + "n" * 300), "could not access /p/nnn"),
        (OSError(errno.ENOSPC, NO_SPACE), f"a write failed: {NO_SPACE}."),
        (OSError(errno.EACCES, "Permission denied", "/p/a\nb"), r"/p/a\nb"),
        (RuntimeError("I/O error: Disk quota exceeded (os error 122)"), "a write failed: Disk quota exceeded."),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "/p/x"), None),  # a bug: keeps its traceback
        (OSError(errno.EACCES, "Permission denied"), None),
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), None),
        (ValueError("no os error here"), None),
    ],
)
def test_os_error_message(exc: BaseException, line: str | None) -> None:
    message = os_error_message(exc)
    if line is None:
        assert message is None
    else:
        assert message is not None and line in message and "\n" not in message and len(message) < 400


def test_wrapped_os_error_names_the_file() -> None:
    named = wrapped_os_error(
        RuntimeError("Error while serializing: I/O error: (os error 28)"), Path("/p/m.safetensors")
    )
    assert isinstance(named, OSError) and named.errno == errno.ENOSPC and named.filename == "/p/m.safetensors"
    assert os_error_message(named) == f"could not write /p/m.safetensors: {NO_SPACE}."
    assert wrapped_os_error(ValueError("nothing"), "/p") is None
