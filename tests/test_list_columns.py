"""``pubctl list`` fits an 80-column terminal without cutting a name a user types; a bad config's problem is whole."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.status import first_problem, stages_in_brief

runner = CliRunner()
LONG = "a-release-name-long-enough-to-crowd-the-table"
SIMPO = "method (line 2): unknown method 'SimPO'; known methods: sft, dpo, ipo, kto, cpo, simpo, orpo, enhanced_kto; "


def _configs(project: Path) -> None:
    demo = (project / "configs" / "demo.yaml").read_text(encoding="utf-8")
    (project / "configs" / f"{LONG}.yaml").write_text(demo, encoding="utf-8")
    (project / "configs" / "typo.yaml").write_text("hub: {repo_id: me/model}\nmethod: {name: SimPO}\n", "utf-8")
    card = project / "cards" / "demo"
    card.mkdir(parents=True)
    record = {"schema_version": 1, "release": "demo", "merge": {"strategy": "streaming", "parity_max_abs_diff": 0.0}}
    record["merge"]["probe_prompts"] = 4
    (card / "results.json").write_text(json.dumps(record), encoding="utf-8")


def _words(text: str) -> str:
    return " ".join(text.split())


def test_list_fits_80_columns_and_cuts_no_name(project: Path) -> None:
    _configs(project)

    result = runner.invoke(app, ["list"], env={"COLUMNS": "80"})

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80, result.output
    for name in ("demo", "qwen3-0.6b-kto", "qwen3-1.7b-arabic-cpo", LONG, "typo"):
        assert any(line.split()[:1] == [name] for line in lines), f"{name} cut or missing:\n{result.output}"
    for method in ("enhanced_kto", "cpo"):
        assert any(method in line.split() for line in lines)
    assert next(line for line in lines if line.startswith("demo ")).split()[-1] == "done:"
    # The bad config's first problem, whole (not its header line, not 60 characters of it).
    assert SIMPO + "did you mean 'simpo'?" in _words(result.output)
    assert "problem in the config" not in result.output


def test_wide_terminal_keeps_one_column_per_stage(project: Path) -> None:
    _configs(project)

    result = runner.invoke(app, ["list"], env={"COLUMNS": "250"})

    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if "release" in line)
    for column in ("method", "base model", "train", "merge", "evaluate", "card", "check", "push"):
        assert f" {column} " in header
    row = next(line for line in result.output.splitlines() if "│ typo " in line)
    assert "invalid config" in row and "method (line 2): unknown method 'SimPO'" in row


def test_first_problem_and_stage_summary_words() -> None:
    assert first_problem("configs/x.yaml: 2 problems in the config:\n  a (line 1): bad\n  b (line 2): worse") == (
        "a (line 1): bad (and 1 more: pubctl check NAME lists them)"
    )
    assert first_problem("one line only") == "one line only"
    state = {"train": "done", "merge": "done (out of date)", "evaluate": "—", "card": "—", "check": "—", "push": "—"}
    assert stages_in_brief(state) == "done: train; out of date: merge; not run: evaluate, card, check, push"
    assert stages_in_brief(dict.fromkeys(state, "—")) == "nothing run yet"
