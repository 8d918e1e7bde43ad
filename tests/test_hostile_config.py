"""Hostile release configs and names (issue #14): each is exit 2 with one short message naming file, field and
line, in bounded time, and nothing is written anywhere: not the project's README.md, not runs/ or cards/."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.errors import UsageError
from pipeline.layout import Layout

runner = CliRunner()
MESSAGE_MAX = 2000
README = "# The project's own README: a release must never overwrite it.\n"


@pytest.fixture
def root(project: Path) -> Path:
    """The test project, with a README.md of its own beside configs/ (what a release named '..' overwrote)."""
    (project / "README.md").write_text(README, encoding="utf-8")
    return project


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` (the project and what lies beside it), with its size and mtime."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames + [d for d in dirnames if Path(dirpath, d).is_symlink()]:
            info = os.lstat(Path(dirpath, name))
            found[str(Path(dirpath, name).relative_to(folder))] = (info.st_size, info.st_mtime_ns)
    return found


def refused(root: Path, args: list[str], *, seconds: float = 10.0) -> str:
    """Run ``pubctl ARGS``: exit 2, no traceback, a short message, done in time, and nothing written."""
    before = snapshot(root.parent)
    start = time.monotonic()
    result = runner.invoke(app, args)
    elapsed = time.monotonic() - start
    assert result.exc_info is None or result.exc_info[0] is SystemExit, result.exc_info
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(result.output) < MESSAGE_MAX, result.output[:MESSAGE_MAX]
    assert elapsed < seconds, f"{args} took {elapsed:.1f} s"
    assert snapshot(root.parent) == before
    assert (root / "README.md").read_text(encoding="utf-8") == README
    assert not (root / "runs").exists() and not (root / "cards").exists()
    return result.output


def bad_config(root: Path, text: str, **kwargs: float) -> str:
    """Write configs/bad.yaml and run ``pubctl check bad`` on it, expecting a refusal (see ``refused``)."""
    (root / "configs" / "bad.yaml").write_text(text, encoding="utf-8")
    message = refused(root, ["check", "bad"], **kwargs)
    assert str(root / "configs" / "bad.yaml") in message
    return message


def hub_and(section: str) -> str:
    return f"hub: {{repo_id: me/model}}\n{section}\n"


# ----------------------------------------------------------------------------- release names
@pytest.mark.parametrize(
    "name",
    ["..", ".", "-x", ".hidden", "_cache", "a b", "x" * 101, "ü"],
    ids=["dotdot", "dot", "dash", "hidden", "cache", "space", "101-chars", "non-ascii"],
)
def test_invalid_release_name_as_a_config_file(root: Path, name: str) -> None:
    """configs/NAME.yaml with a name that is not a folder name pubctl may create: refused by name and by path."""
    (root / "configs" / f"{name}.yaml").write_text("hub: {repo_id: me/model}\n", encoding="utf-8")
    message = refused(root, ["card", "--", name])
    assert "release name" in message.lower()
    message = refused(root, ["card", f"configs/{name}.yaml"])
    assert "release name" in message and "named after its config file" in message


def test_dot_dot_release_from_a_path_elsewhere(root: Path, tmp_path: Path) -> None:
    """A path to '...yaml' names the release '..': it once wrote the card into the project root."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "...yaml").write_text("hub: {repo_id: me/model}\n", encoding="utf-8")
    for command in (["card"], ["check"], ["push", "--dry-run"]):
        message = refused(root, [*command, str(elsewhere / "...yaml")])
        assert "invalid release name '..'" in message


def test_name_with_a_slash_is_a_path(root: Path) -> None:
    assert "no such config file" in refused(root, ["check", "a/b"])
    # a path whose last part is '..' names the release '..'
    assert "invalid release name '..'" in refused(root, ["check", "configs/.."])


def test_list_shows_an_invalid_name_as_an_invalid_config(root: Path) -> None:
    (root / "configs" / "...yaml").write_text("hub: {repo_id: me/model}\n", encoding="utf-8")
    result = runner.invoke(app, ["list"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "│ .. " in line)
    assert "invalid config" in row  # (the list shows the message's first 60 characters: here, the path)
    assert not (root / "runs").exists() and not (root / "cards").exists()


def test_layout_refuses_an_invalid_name(root: Path) -> None:
    """Defence in depth: a Layout built without the config loader refuses the same names."""
    for name in ("..", "a/b", "-x", "x" * 101):
        with pytest.raises(UsageError, match=r"(?i)release name"):
            Layout.for_release(name, root)
    with pytest.raises(UsageError, match="release name"):
        Layout(root=root, name="..")
    with pytest.raises(UsageError, match=r"card\.compare_with"):
        Layout.for_release("demo", root).card_dir_of("../..")


def test_a_symlinked_card_folder_is_refused(root: Path, tmp_path: Path) -> None:
    """cards/demo -> a folder outside: every path of the release is checked after resolving links."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "cards").mkdir()
    (root / "cards" / "demo").symlink_to(outside)
    before = snapshot(tmp_path)
    for args in (["card", "demo"], ["check", "demo"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "outside" in result.output and "cards/ folder" in result.output
    assert list(outside.iterdir()) == []
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("project/runs/")} == before
    with pytest.raises(UsageError, match="outside"):
        _ = Layout.for_release("demo", root).readme


# ------------------------------------------------------------------------------------ YAML
def test_alias_bomb_is_refused_at_once(root: Path) -> None:
    """Nine levels of nine aliases: 9^9 leaves once expanded. Refused before anything is expanded."""
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        name, prev = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    text = "\n".join(lines) + "\nhub: {repo_id: me/model}\ncard: {tags: *i}\n"
    message = bad_config(root, text, seconds=2.0)
    assert "aliases" in message and "line 2" in message


@pytest.mark.parametrize("opening", ["[", "{a: "])
def test_50000_deep_nesting(root: Path, opening: str) -> None:
    closing = "]" if opening == "[" else "}"
    message = bad_config(root, hub_and(f"card: {{tags: {opening * 50_000}x{closing * 50_000}}}"))
    assert "nested deeper than 50 levels" in message and "line 2" in message


def test_oversized_and_overlong_documents(root: Path) -> None:
    assert "larger than 256 KiB" in bad_config(root, hub_and("# " + "x" * (300 * 1024)))
    many = ", ".join(["1"] * 6000)
    assert "more than 5,000 values" in bad_config(root, hub_and(f"card: {{tags: [{many}]}}"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("training: {seed: " + "9" * 5000 + "}", "invalid YAML value"),  # int() refuses 4,300+ digits
        ("training: {seed: 2024-13-45}", "invalid YAML value: month must be in 1..12"),
        ("? [a, b]\n: 1", "a key that is a list or mapping"),
        ("card: {summary: \x01}", "line 2: character #x0001 is not allowed"),
        ("x: !!python/object/apply:os.system ['true']", "could not determine a constructor"),
        ("hub: {repo_id: c/d}", "duplicate key 'hub'"),
    ],
)
def test_yaml_python_cannot_build(root: Path, text: str, expected: str) -> None:
    assert expected in bad_config(root, hub_and(text))


def test_long_unknown_key_is_quoted_short(root: Path) -> None:
    message = bad_config(root, hub_and(f"card:\n  ? {'k' * 100_000}\n  : 1"))
    assert "unknown key 'kkkk" in message and "k" * 61 not in message


# -------------------------------------------------------------------------------- values
@pytest.mark.parametrize(
    ("section", "field", "expected"),
    [
        ("training: {seed: " + str(10**40) + "}", "training.seed (line 2)", "less than or equal to 4294967295"),
        ("training: {seed: -1}", "training.seed (line 2)", "greater than or equal to 0"),
        ("evaluation: {seed: " + str(2**32) + "}", "evaluation.seed (line 2)", "less than or equal to 4294967295"),
        ("training: {per_device_batch_size: " + str(10**30) + "}", "training.per_device_batch_size", "65536"),
        ("training: {gradient_accumulation_steps: 100000}", "training.gradient_accumulation_steps", "65536"),
        ("training: {max_steps: " + str(10**30) + "}", "training.max_steps", "less than or equal to"),
        ("training: {max_length: " + str(1 << 30) + "}", "training.max_length", "1048576"),
        ("training: {learning_rate: .nan}", "training.learning_rate (line 2)", "finite number"),
        ("training: {epochs: .inf}", "training.epochs (line 2)", "finite number"),
        ("evaluation: {throughput: {new_tokens: " + str(10**12) + "}}", "evaluation.throughput.new_tokens", "less"),
        ("evaluation: {device: 'cuda; rm -rf'}", "evaluation.device (line 2)", "pattern"),
        ("card: {summary: " + "x" * 20_000 + "}", "card.summary (line 2)", "at most 10000 characters"),
        ("card: {tags: [" + "x" * 2000 + "]}", "card.tags.0 (line 2)", "at most 1000 characters"),
        ("card: {tags: [" + ", ".join(["t"] * 101) + "]}", "card.tags (line 2)", "at most 100 items"),
        ("card: {license: '../../etc/passwd'}", "card.license (line 2)", "pattern"),
        ("training: {seed: true}", "training.seed (line 2)", "expected a number, found true"),
        ("evaluation: {limit: yes}", "evaluation.limit (line 2)", "expected a number, found true"),
        ('data: {split: "a\\0b"}', "data.split (line 2)", "a NUL character"),
        ('card: {tags: [ok, "a\\0b"]}', "card.tags (line 2)", "a NUL character"),
    ],
)
def test_bounded_values(root: Path, section: str, field: str, expected: str) -> None:
    message = bad_config(root, hub_and(section))
    assert field in message and expected in message
    assert "x" * 100 not in message  # the value is quoted short, if at all


@pytest.mark.parametrize(
    ("section", "field", "expected"),
    [
        ("model: {base_model: ''}", "model.base_model (line 2)", "an empty reference"),
        ("model: {base_model: '   '}", "model.base_model (line 2)", "an empty reference"),
        ("model: {base_model: " + "m" * 300 + "}", "model.base_model (line 2)", "too long (300 characters"),
        ("model: {base_model: ./" + "m" * 300 + "}", "model.base_model (line 2)", "too long (302 characters"),
        ("data: {train: " + "d" * 300 + ".jsonl}", "data.train (line 2)", "too long (306 characters"),
        ("model: {base_model: '~nosuchuser-pubctl/x'}", "model.base_model (line 2)", "no folder exists"),
        ('model: {base_model: "a\\0b"}', "model.base_model (line 2)", "a NUL character"),
        ("card: {template: " + "t" * 300 + "}", "card.template (line 2)", "at most 255 characters"),
        ("card: {compare_with: [" + "c" * 300 + "]}", "card.compare_with (line 2)", "too long (300 characters"),
        ("card: {compare_with: ['../other']}", "card.compare_with (line 2)", "invalid release name '../other'"),
        ("evaluation: {include_path: /proc}", "evaluation.include_path (line 2)", "outside the project"),
        ("evaluation: {include_path: ../..}", "evaluation.include_path (line 2)", "outside the project"),
        ("evaluation: {include_path: configs/bad.yaml}", "evaluation.include_path (line 2)", "is not a folder"),
        ("evaluation: {include_path: " + "i" * 300 + "}", "evaluation.include_path (line 2)", "at most 255"),
        ("training: {launcher: {config_file: " + "a" * 300 + "}}", "training.launcher.config_file", "at most 255"),
        ("training: {launcher: {config_file: /etc/passwd}}", "training.launcher.config_file", "outside the project"),
        ("training: {launcher: {config_file: configs}}", "training.launcher.config_file", "is not a file"),
        ("evaluation: {include_path: ''}", "evaluation.include_path (line 2)", "at least 1 character"),
    ],
)
def test_references_and_paths(root: Path, section: str, field: str, expected: str) -> None:
    message = bad_config(root, hub_and(section))
    assert field in message and expected in message
    assert "m" * 100 not in message and "c" * 100 not in message


def test_include_path_through_a_link_out_of_the_project(root: Path, tmp_path: Path) -> None:
    (tmp_path / "tasks").mkdir()
    (root / "tasks").symlink_to(tmp_path / "tasks")
    message = bad_config(root, hub_and("evaluation: {include_path: tasks}"))
    assert "evaluation.include_path (line 2)" in message and "outside the project" in message


@pytest.mark.parametrize(
    ("revision", "expected"),
    [
        ("a..b", "not a git ref name"),
        ("has space", "no spaces"),
        ("r" * 300, "too long (300 characters"),
        ("-x", "not a git ref name"),
        ("a/.hidden", "starts with '.'"),
        ("x.lock", "ends with '.lock'"),
        ("", "an empty revision"),
        ("main?x=1", "ASCII letters"),
    ],
)
def test_hub_revision_is_a_ref_name(root: Path, revision: str, expected: str) -> None:
    text = yaml.safe_dump({"hub": {"repo_id": "me/model", "revision": revision}})
    message = bad_config(root, text)
    assert "hub.revision (line" in message and expected in message
    assert "r" * 100 not in message


@pytest.mark.parametrize("field", ["model", "data", "tag"])
def test_other_revisions_are_ref_names(root: Path, field: str) -> None:
    section = "hub: {repo_id: me/model, tag: 'v 1'}\n" if field == "tag" else hub_and(f"{field}: {{revision: 'a..b'}}")
    message = bad_config(root, section)
    assert ("hub.tag" if field == "tag" else f"{field}.revision") in message


def test_valid_revisions_still_load(root: Path) -> None:
    for revision in ("main", "refs/pr/1", "v1.0.0", "release-2024.01", "6882f6c2bbd5346c1e23c327e2a6412b3c23ea26"):
        (root / "configs" / "ok.yaml").write_text(
            yaml.safe_dump({"hub": {"repo_id": "me/model", "revision": revision, "tag": revision}}), encoding="utf-8"
        )
        assert load_config("ok").hub.revision == revision


# ------------------------------------------------------------------------ method parameters
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"abc"', "valid number"),
        ("[1, 2]", "valid number"),
        ("{a: 1}", "valid number"),
        (".inf", "finite number"),
        ("1e400", "finite number"),  # PyYAML reads it as a string; float('1e400') is inf
        ("-0.5", "greater than 0"),
        ("on", "beta: expected a number, found true"),  # YAML 1.1 reads on/yes/true as a boolean
    ],
)
def test_wrong_method_parameter_is_refused(root: Path, value: str, expected: str) -> None:
    message = bad_config(root, hub_and(f"method: {{name: dpo, beta: {value}}}"))
    assert ("method.beta (line 2)" if value != "on" else "method (line 2)") in message and expected in message


def test_enhanced_kto_parameters_are_finite(root: Path) -> None:
    message = bad_config(root, hub_and("method: {name: enhanced_kto, loss_aversion: .nan, bco_shift_start_step: 1e40}"))
    assert "method.loss_aversion" in message and "method.bco_shift_start_step" in message


def test_quoted_number_is_read_as_a_number(root: Path) -> None:
    """Lax on purpose: PyYAML reads 2e-4 (no dot) as a string, so a quoted number is its number, not a crash."""
    (root / "configs" / "quoted.yaml").write_text(
        hub_and('method: {name: dpo, beta: "0.1"}\ntraining: {learning_rate: 2e-4}'), encoding="utf-8"
    )
    config = load_config("quoted")
    assert config.method.beta == 0.1 and isinstance(config.method.beta, float)
    assert config.training.learning_rate == 2e-4
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0 and "invalid config" not in result.output, result.output


# ------------------------------------------------------------------------------- waivers
def test_unknown_check_in_allow_is_refused_at_load(root: Path) -> None:
    message = bad_config(root, hub_and("checks:\n  allow:\n    near_chance: ok\n    near_chanse: typo"))
    assert "checks.allow.near_chanse (line 5)" in message
    assert "unknown check 'near_chanse'; known: training_ran" in message and "Did you mean 'near_chance'?" in message


def test_unwaivable_check_and_empty_reason_are_refused_at_load(root: Path) -> None:
    message = bad_config(root, hub_and("checks: {allow: {lineage: because, near_chance: '  '}}"))
    assert "checks.allow.lineage" in message and "'lineage' cannot be waived" in message
    assert "checks.allow.near_chance" in message and "needs a reason" in message


def test_long_unknown_check_id_is_quoted_short(root: Path) -> None:
    message = bad_config(root, hub_and(f"checks: {{allow: {{{'z' * 900}: r}}}}"))
    assert "unknown check" in message and "z" * 61 not in message


def test_many_problems_are_listed_briefly(root: Path) -> None:
    tags = ", ".join(["[1]"] * 90)
    message = bad_config(root, hub_and(f"card: {{limitations: [{tags}]}}"))
    assert "90 problems" in message and "... and 70 more" in message
    assert message.count("card.limitations.") == 20


def test_schema_still_describes_the_bounds() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = yaml.safe_load(result.output)
    training = schema["$defs"]["TrainingSection"]["properties"]
    assert training["seed"]["maximum"] == 2**32 - 1 and training["per_device_batch_size"]["maximum"] == 65536
