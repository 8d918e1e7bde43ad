"""Hostile training data and rehearsal inputs: each ends in exit 2 naming the file and what is wrong, never a
traceback or a hang, and before anything is trained or built.

The training-data cases run `pubctl train` on the demo config (the built-in tiny model) pointed at a local file;
the rehearsal cases run `pubctl release NAME --rehearse --offline` on tests/qwen3_fixture.py's Qwen3 files,
refused by the checks that come before lm-eval is indexed or a random base is built.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hub_schemas import h4_ultrafeedback_rows, write_parquet
from qwen3_fixture import write_qwen3_files
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.data_files import MAX_DATA_FILE_BYTES, MAX_JSON_ARRAY_BYTES

runner = CliRunner()
REHEARSE = ["release", "qwen3-0.6b-kto", "--rehearse", "--offline", "--rows", "4", "--max-length", "64"]


def _said(result: Any) -> str:
    return " ".join(result.output.split())


@pytest.fixture
def no_hang() -> Iterator[None]:
    """Fail the test (instead of blocking the run) when a command waits on a FIFO for 20 s."""

    def stop(signum: int, frame: object) -> None:
        raise TimeoutError("the command blocked for 20 s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(20)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def qwen_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_qwen3_files(tmp_path_factory.mktemp("qwen") / "Qwen3-0.6B", "0.6B")


@pytest.fixture
def model_files(qwen_files: Path, tmp_path: Path) -> Path:
    """A copy of the Qwen3 files the test may damage."""
    return Path(shutil.copytree(qwen_files, tmp_path / "model-files"))


@pytest.fixture
def good_data(tmp_path: Path) -> Path:
    return write_parquet(h4_ultrafeedback_rows(4), tmp_path / "rows.parquet")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def _nothing_built(project: Path) -> None:
    rehearsal = project / "runs" / "qwen3-0.6b-kto-rehearsal"
    assert not (rehearsal / "base").exists() and not (rehearsal / "data").exists()
    assert not (project / "cards" / "qwen3-0.6b-kto-rehearsal").exists()
    assert not (project / "runs" / "qwen3-0.6b-kto").exists() and not (project / "cards" / "qwen3-0.6b-kto").exists()


def _rehearse(model_files: Path, data: Path, *extra: str) -> Any:
    return runner.invoke(app, [*REHEARSE, "--model-files", str(model_files), "--data", str(data), *extra])


# --------------------------------------------------------------------- 1. corrupt model files (rehearsal)
def _edit_config(**change: Any) -> Callable[[Path], None]:
    """config.json with keys changed (a value of None removes the key)."""

    def write(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        config.update(change)
        config = {key: value for key, value in config.items() if value is not None}
        (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")

    return write


def _write(name: str, text: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_write("config.json", "{not json"), "config.json is not valid JSON (Expecting property name"),
        (_write("config.json", "[1, 2]"), "config.json holds a list ([1, 2]), not a JSON object"),
        (_write("config.json", '"qwen3"'), "config.json holds a string ('qwen3'), not a JSON object"),
        (_edit_config(model_type=None), "config.json names no architecture: its 'model_type'"),
        (_edit_config(model_type=7), 'its \'model_type\' (e.g. "qwen3", "llama") has 7'),
        (_edit_config(architectures="Qwen3"), "config.json's 'architectures' is 'Qwen3'"),
        (_edit_config(num_hidden_layers="28"), "config.json's 'num_hidden_layers' is '28'"),
        (_write("tokenizer.json", "garbage"), "tokenizer.json is not valid JSON (Expecting value at line 1, column 1)"),
        (_write("tokenizer_config.json", "{nope"), "tokenizer_config.json is not valid JSON"),
        (_write("generation_config.json", "[]"), "generation_config.json holds a list ([]), not a JSON object"),
    ],
    ids=[
        "config-not-json",
        "config-a-list",
        "config-a-string",
        "no-model-type",
        "model-type-a-number",
        "architectures-a-string",
        "layers-a-string",
        "tokenizer-garbage",
        "tokenizer-config-not-json",
        "generation-config-a-list",
    ],
)
def test_corrupt_model_files_are_refused_before_anything_is_built(
    project: Path, model_files: Path, good_data: Path, damage: Callable[[Path], None], message: str
) -> None:
    damage(model_files)
    before = _snapshot(model_files)
    result = _rehearse(model_files, good_data)
    assert result.exit_code == 2, result.output
    said = _said(result)
    assert said.startswith(f"error: --model-files {model_files}: "), said
    assert message in said
    assert "Traceback" not in result.output
    assert _snapshot(model_files) == before
    _nothing_built(project)


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json", "merges.txt"])
def test_a_fifo_among_the_model_files_is_refused_without_blocking(
    project: Path, model_files: Path, good_data: Path, no_hang: None, name: str
) -> None:
    (model_files / name).unlink()
    os.mkfifo(model_files / name)
    result = _rehearse(model_files, good_data)
    assert result.exit_code == 2, result.output
    assert f"--model-files {model_files}: {name} is a FIFO (named pipe), not a regular file." in _said(result)
    _nothing_built(project)


def test_model_files_without_a_tokenizer_are_refused(project: Path, model_files: Path, good_data: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json"):
        (model_files / name).unlink()
    result = _rehearse(model_files, good_data)
    assert result.exit_code == 2, result.output
    assert f"--model-files {model_files}: no tokenizer files in {model_files}" in _said(result)
    _nothing_built(project)


def test_a_tokenizer_that_parses_but_does_not_load_is_named(qwen_files: Path, tmp_path: Path) -> None:
    """Valid JSON of the wrong structure: only the tokenizers library can tell, before the base is built."""
    from pipeline.errors import UsageError
    from pipeline.rehearsal.model_checks import check_tokenizer

    folder = Path(shutil.copytree(qwen_files, tmp_path / "m"))
    (folder / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "Nope"}}', encoding="utf-8")
    with pytest.raises(UsageError, match=rf"the base's tokenizer in {folder} does not load: data did not match"):
        check_tokenizer(folder, trust_remote_code=False)


def test_a_config_too_large_for_memory_is_refused_without_allocating(qwen_files: Path, tmp_path: Path) -> None:
    from pipeline.errors import UsageError
    from pipeline.rehearsal.model_files import ModelFiles, build_random_base

    folder = Path(shutil.copytree(qwen_files, tmp_path / "m"))
    _edit_config(vocab_size=10**9, hidden_size=4096)(folder)
    target = tmp_path / "base"
    files = ModelFiles(folder, "local folder", None)
    with pytest.raises(UsageError, match=r"would have [\d,]+ parameters \([\d.]+ GiB\), more than this machine's"):
        build_random_base(files, target, layers=1, dtype="float32", trust_remote_code=False)
    assert not target.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_size": -1}, "does not build a model: Trying to create tensor with negative dimension"),
        ({"num_attention_heads": 0}, "does not build a model: integer division or modulo by zero"),
        ({"hidden_size": "wide"}, "does not load: Validation error for field 'hidden_size'"),
    ],
    ids=["negative-width", "no-heads", "width-a-string"],
)
def test_a_config_that_does_not_build_is_named(
    qwen_files: Path, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    from pipeline.errors import UsageError
    from pipeline.rehearsal.model_files import ModelFiles, build_random_base

    folder = Path(shutil.copytree(qwen_files, tmp_path / "m"))
    _edit_config(**change)(folder)
    with pytest.raises(UsageError, match=rf"the base's config.json in {folder} {message}") as raised:
        build_random_base(ModelFiles(folder, "x", None), tmp_path / "base", layers=1, dtype="float32",
                          trust_remote_code=False)  # fmt: skip
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "base").exists()


# ------------------------------------------------------------------------------------------ 3. --layers
def test_more_layers_than_the_base_has_are_refused_at_the_start(
    project: Path, qwen_files: Path, good_data: Path
) -> None:
    result = _rehearse(qwen_files, good_data, "--layers", "99")
    assert result.exit_code == 2, result.output
    assert (
        f"--layers 99: the base model has 28 decoder layers (config.json in {qwen_files}); give --layers 1 to 28."
        in (_said(result))
    )
    assert "rehearsal:" not in result.output  # refused before the first step of the rehearsal was taken
    _nothing_built(project)


@pytest.mark.parametrize("layers", ["0", "-3"])
def test_zero_or_negative_layers_are_refused(project: Path, qwen_files: Path, good_data: Path, layers: str) -> None:
    result = _rehearse(qwen_files, good_data, "--layers", layers)
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--layers'" in _said(result) and "greater than or equal to 1" in _said(result)
    _nothing_built(project)


def test_layers_below_one_are_refused_by_the_check_itself(qwen_files: Path) -> None:
    from pipeline.errors import UsageError
    from pipeline.rehearsal.model_checks import check_model_files

    with pytest.raises(UsageError, match="--layers 0: a rehearsal base needs at least 1 decoder layer"):
        check_model_files(qwen_files, "--model-files x", 0)
    assert check_model_files(qwen_files, "--model-files x", 28) == 28


# ------------------------------------------------------------------------------- 2. --data / data.train
def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _sparse(path: Path, size: int, head: bytes = b"") -> Path:
    """A file of ``size`` bytes that takes no disk space (a hole after ``head``)."""
    with path.open("wb") as handle:
        handle.write(head)
        handle.truncate(size)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: _fifo(path), "is a FIFO (named pipe), not a regular file"),
        (lambda path: path.mkdir() or path, "is a folder; point it at a .json, .jsonl or .parquet file"),
        (lambda path: path, "no such file"),
        (lambda path: _sparse(path, 0), "is empty: the training split has no rows"),
        (lambda path: path.write_text("\n \n\t\n") and path, "is empty: the training split has no rows"),
        (lambda path: _sparse(path, MAX_DATA_FILE_BYTES + 1, b'{"prompt": "a"}\n'), "is 2.0 GiB; pubctl loads"),
        (lambda path: _sparse(path, MAX_JSON_ARRAY_BYTES + 1, b"[{}"), "is a JSON array of 0.3 GiB, which is parsed"),
    ],
    ids=["fifo", "folder", "missing", "empty", "blank", "over-2-GiB", "large-json-array"],
)
def test_unreadable_data_for_a_rehearsal_is_refused_at_the_start(
    project: Path, qwen_files: Path, tmp_path: Path, no_hang: None, make: Callable[[Path], Path], message: str
) -> None:
    data = tmp_path / "rows.jsonl"
    make(data)
    result = _rehearse(qwen_files, data)
    assert result.exit_code == 2, result.output
    said = _said(result)
    assert said.startswith(f"error: --data {data}: "), said
    assert message in said
    assert "rehearsal:" not in result.output
    _nothing_built(project)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: _fifo(path), "is a FIFO (named pipe), not a regular file"),
        (lambda path: path.mkdir() or path, "is a folder; point it at a .json, .jsonl or .parquet file"),
        (lambda path: _sparse(path, MAX_DATA_FILE_BYTES + 1, b'{"prompt": "a"}\n'), "is 2.0 GiB; pubctl loads"),
    ],
    ids=["fifo", "folder", "over-2-GiB"],
)
def test_unreadable_training_data_is_refused_by_train(
    project: Path, make_config: Callable[..., str], no_hang: None, make: Callable[[Path], Path], message: str
) -> None:
    make(project / "rows.jsonl")
    result = runner.invoke(app, ["train", _config(make_config, "rows.jsonl")])
    assert result.exit_code == 2, result.output
    assert "rows.jsonl" in _said(result) and message in _said(result)
    _not_trained(project)


# --------------------------------------------------------------------- 4, 5, 7. rows of a local data file
def _config(make_config: Callable[..., str], file: str, **data: Any) -> str:
    overrides = {
        "method": {"name": "dpo", "beta": None},
        "data": {"train": file, "eval_fraction": None, **data},
        "training": {"max_length": 256, "max_prompt_length": None},
    }
    return make_config("hostile", overrides)


def _not_trained(project: Path) -> None:
    assert not (project / "runs" / "hostile" / "train").exists()
    assert not (project / "cards" / "hostile").exists()


def _train_on(project: Path, make_config: Callable[..., str], text: str, **data: Any) -> Any:
    (project / "rows.jsonl").write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["train", _config(make_config, "rows.jsonl", **data)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    _not_trained(project)
    return result


def _lines(*rows: Any) -> str:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


PAIR = {"prompt": "What is 2 + 2?", "chosen": "4.", "rejected": "5."}


def test_a_malformed_jsonl_line_is_named_with_its_number_and_a_short_quote(
    project: Path, make_config: Callable[..., str]
) -> None:
    broken = '{"prompt": "' + "x" * 200 + '", "chosen": '
    result = _train_on(project, make_config, _lines(PAIR, "", PAIR, broken, PAIR))
    said = _said(result)
    assert "data.train: could not read rows.jsonl" in said
    assert "line 4 is not valid JSON (Expecting value at column" in said
    assert '\'{"prompt": "xxxxxxxxxxxxxxxx' in said and "x" * 100 not in said  # a prefix, not the line


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('"just a string"', "line 2 holds a string, not an object {column: value}: '\"just a string\"'"),
        ("[1, 2]", "line 2 holds a list, not an object {column: value}: '[1, 2]'"),
        ("7", "line 2 holds a number, not an object"),
    ],
    ids=["string", "list", "number"],
)
def test_a_jsonl_line_that_is_not_an_object_is_named(
    project: Path, make_config: Callable[..., str], line: str, message: str
) -> None:
    said = _said(_train_on(project, make_config, _lines(PAIR, line, PAIR)))
    assert "could not read rows.jsonl" in said and message in said


def test_a_json_array_item_that_is_not_an_object_is_named(project: Path, make_config: Callable[..., str]) -> None:
    (project / "rows.json").write_text(json.dumps([PAIR, PAIR, 5]), encoding="utf-8")
    result = runner.invoke(app, ["train", _config(make_config, "rows.json")])
    assert result.exit_code == 2, result.output
    assert "item 3 of the JSON array is a number, not an object {column: value}" in _said(result)
    _not_trained(project)


@pytest.mark.parametrize(
    ("rows", "data", "message"),
    [
        (
            [PAIR, PAIR, {**PAIR, "chosen": 5}],
            {},
            "row 2 of the training split of rows.jsonl (line 3): column 'chosen' must hold text or conversations "
            "(lists of {role, content} messages), found a number 5",
        ),
        (
            [PAIR, {**PAIR, "rejected": {"text": "5."}}],
            {},
            "row 1 of the training split of rows.jsonl (line 2): column 'rejected' must hold text or conversations",
        ),
        (
            [PAIR, {**PAIR, "chosen": None}],
            {},
            "row 1 of the training split of rows.jsonl has a null 'chosen' value (line 2)",
        ),
        (
            [PAIR, {**PAIR, "chosen": [{"role": "assistant", "content": "4."}]}],
            {},
            "row 1 of the training split of rows.jsonl (line 2): column 'chosen' holds a conversation where row 0 "
            "holds text",
        ),
        (
            [{"q": "Q?", "good": "A.", "bad": "B."}, {"q": 3, "good": "A.", "bad": "B."}],
            {"columns": {"prompt": "q", "chosen": "good", "rejected": "bad"}},
            "row 1 of the training split of rows.jsonl (line 2): column 'q' must hold text or conversations",
        ),
        (
            [{**PAIR, "system": "Be brief."}, {**PAIR, "system": 12}],
            {"columns": {"system": "system"}},
            "row 1 of the training split of rows.jsonl (line 2): column 'system' must hold text, found a number 12",
        ),
    ],
    ids=["number-chosen", "object-rejected", "null-chosen", "text-then-conversation", "mapped-column", "system"],
)
def test_a_value_of_the_wrong_type_is_named_by_line_and_column(
    project: Path, make_config: Callable[..., str], rows: list[Any], data: dict[str, Any], message: str
) -> None:
    said = _said(_train_on(project, make_config, _lines(*rows), **data))
    assert "error: data: " in said, said
    assert message in said


def test_blank_lines_beside_mixed_types_are_named(project: Path, make_config: Callable[..., str]) -> None:
    said = _said(_train_on(project, make_config, _lines(PAIR, "", {**PAIR, "chosen": 5})))
    assert "could not read rows.jsonl" in said and "line 2 is blank, and datasets cannot read a file" in said


def test_labels_of_the_wrong_type_are_named_by_line(project: Path, make_config: Callable[..., str]) -> None:
    rows = [{"prompt": "Q?", "completion": "A.", "label": True}, {"prompt": "Q?", "completion": "B.", "label": "no"}]
    (project / "rows.jsonl").write_text(_lines(*rows), encoding="utf-8")
    name = make_config(
        "hostile", {"method": {"name": "kto", "beta": None}, "data": {"train": "rows.jsonl", "eval_fraction": None}}
    )
    result = runner.invoke(app, ["train", name])
    assert result.exit_code == 2, result.output
    assert (
        "row 1 of the training split of rows.jsonl (line 2): column 'label' must hold booleans (true = desirable "
        "completion), found text 'no'; convert the column" in _said(result)
    )
    _not_trained(project)


HH = "\n\nHuman: How do I boil an egg?\n\nAssistant: "


def _hh(answer: str) -> dict[str, str]:
    return {"chosen": HH + answer, "rejected": HH + "No idea."}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        # row 0 alone used to decide the schema: an odd first row hid it, and the rows were not parsed at all
        (
            [{"chosen": "Boil it.", "rejected": "No."}, _hh("Ten minutes."), _hh("Nine minutes."), _hh("Eight.")],
            "row 0 of the training split of rows.jsonl is not a Human/Assistant dialogue (line 1): its 'chosen' text",
        ),
        (
            [_hh("Ten minutes."), _hh("Nine minutes."), "", "  ", {"chosen": "Eight.", "rejected": "No."}],
            "row 2 of the training split of rows.jsonl is not a Human/Assistant dialogue (line 5): its 'chosen' text",
        ),
    ],
    ids=["first-row", "after-blank-lines"],
)
def test_hh_rlhf_rows_are_all_checked_and_the_odd_one_named_by_line(
    project: Path, make_config: Callable[..., str], rows: list[Any], message: str
) -> None:
    said = _said(_train_on(project, make_config, _lines(*rows)))
    assert message in said


def test_a_bad_row_in_rehearsal_data_is_named_before_the_base_is_built(
    project: Path, qwen_files: Path, tmp_path: Path
) -> None:
    rows = [{"prompt": "Q?", "chosen": "A.", "rejected": "B."}] * 2 + [{"prompt": "Q?", "chosen": 4, "rejected": "B."}]
    data = tmp_path / "rows.jsonl"
    data.write_text(_lines(*rows), encoding="utf-8")
    result = _rehearse(qwen_files, data)
    assert result.exit_code == 2, result.output
    assert f"row 2 of the training split of {data} (line 3): column 'chosen' must hold text" in _said(result)
    _nothing_built(project)


# ----------------------------------------------------------------------------------- 6. a system column
@pytest.fixture
def tokenizer(tiny_model_path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_path))


def _prepare(project: Path, make_config: Callable[..., str], tokenizer: Any, rows: list[Any], **data: Any) -> Any:
    from pipeline.config import load_config
    from pipeline.layout import Layout
    from pipeline.training_data import prepare_data

    (project / "rows.jsonl").write_text(_lines(*rows), encoding="utf-8")
    name = _config(make_config, "rows.jsonl", **data)
    return prepare_data(load_config(name, project), Layout.for_release(name, project), tokenizer)


def test_an_unmapped_system_column_is_not_dropped_silently(
    project: Path, make_config: Callable[..., str], tokenizer: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [{**PAIR, "system": "Answer in French."}, {**PAIR, "system": ""}, {**PAIR, "system": "Be brief."}]
    data = _prepare(project, make_config, tokenizer, rows)
    warning = " ".join(capsys.readouterr().err.split())
    assert (
        "warning: data: column 'system' of rows.jsonl holds a system message in 2 of 3 rows, and pubctl is not "
        "training on it." in warning
    )
    assert "add data.columns: {system: system}" in warning
    assert data.train.column_names == ["prompt", "chosen", "rejected"] and not data.conversational
    # with the mapping it becomes the system turn of the prompt, and nothing is said
    data = _prepare(project, make_config, tokenizer, rows, columns={"system": "system"})
    assert capsys.readouterr().err.count("warning") == 0
    assert data.train[0]["prompt"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": PAIR["prompt"]},
    ]


def test_a_system_column_that_contradicts_the_conversation_is_refused(
    project: Path, make_config: Callable[..., str], tokenizer: Any
) -> None:
    from pipeline.errors import UsageError

    conversation = [{"role": "system", "content": "Be rude."}, {"role": "user", "content": "Hi?"}]
    rows = [
        {"prompt": conversation, "chosen": [{"role": "assistant", "content": "Hello."}], "system": "Be rude."},
        {"prompt": conversation, "chosen": [{"role": "assistant", "content": "Hey."}], "system": "Be kind."},
    ]
    rows = [{**row, "rejected": [{"role": "assistant", "content": "Go."}]} for row in rows]
    with pytest.raises(UsageError) as raised:
        _prepare(project, make_config, tokenizer, rows, columns={"system": "system"})
    message = str(raised.value)
    assert "row 1 of the training split of rows.jsonl (line 2): column 'system' holds the system message" in message
    assert "'Be kind.'" in message and "'Be rude.'" in message and "keep one of them" in message
