"""The card stage: front matter round-trips, hostile values stay literal, renders are byte-identical."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard
from markdown_it import MarkdownIt
from test_card_records import HOSTILE, HOSTILE_TEXT, bad_card_record, hostile_record, realistic_record, write_record

from pipeline.config import load_config
from pipeline.errors import CheckFailed, UsageError
from pipeline.results import DatasetRecord, read_results, write_results
from pipeline.stages.card import check_card, render_card

KTO = {"model": {"base_model": "Qwen/Qwen3-0.6B", "dtype": "bfloat16"}, "method": {"name": "kto", "beta": 0.1}}


def _release(make_config: Callable[..., str], project: Path, record, **overrides) -> tuple:
    name = make_config(record.release, {**KTO, **overrides})
    layout = write_record(project, record)
    return load_config(name), layout


def _with_method(make_config: Callable[..., str], project: Path, name: str, method: str) -> str:
    """The demo config with its method replaced (deep-merging would keep enhanced_kto's parameters)."""
    make_config(name)
    path = project / "configs" / f"{name}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["method"] = {"name": method}
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return name


def _body(text: str) -> str:
    return text.split("\n---\n", 1)[1]


def _tables(text: str) -> list[list[list[str]]]:
    """Every table of the Markdown body as rows of cell texts (GitHub-flavoured tables, HTML on)."""
    tokens = MarkdownIt("commonmark", {"html": True}).enable("table").parse(_body(text))
    tables, rows, row, cell = [], [], None, None
    for token in tokens:
        if token.type == "table_open":
            rows = []
        elif token.type == "table_close":
            tables.append(rows)
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close":
            rows.append(row)
        elif token.type in ("th_open", "td_open"):
            cell = []
        elif token.type in ("th_close", "td_close"):
            row.append("".join(cell))
        elif token.type == "inline" and cell is not None:
            cell.append(_inline_text(token))
    return tables


def _inline_text(token) -> str:
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "html_inline" and child.content == "<br>":
            parts.append("\n")
        elif child.type == "html_inline":
            raise AssertionError(f"raw HTML from a record value reached the card: {child.content!r}")
    return "".join(parts)


def test_realistic_card_round_trips_through_huggingface_hub(make_config, project):
    record = realistic_record("real")
    config, layout = _release(make_config, project, record, card={"tags": ["unit-test"]})

    readme = render_card(config, layout)

    text = readme.read_text(encoding="utf-8")
    card = ModelCard.load(readme)
    data = card.data
    assert data.base_model == "Qwen/Qwen3-0.6B"
    assert data.base_model_relation == "finetune"
    assert data.license == "apache-2.0"
    assert data.language == ["en", "ar"]
    assert data.library_name == "transformers"
    assert data.pipeline_tag == "text-generation"
    assert data.datasets == ["HuggingFaceH4/ultrafeedback_binarized"]
    assert {"pubctl", "trl", "kto", "lora", "unit-test"} <= set(data.tags)
    recorded = record.evaluation.results
    assert len(data.eval_results) == len(recorded)
    for result, row in zip(data.eval_results, recorded, strict=True):
        assert result.metric_value == row.value
        assert result.dataset_name == row.task
        assert result.dataset_type == row.dataset_id
        assert result.dataset_split == row.split
        assert result.metric_type == row.metric
        assert f"{row.num_fewshot}-shot" in result.metric_name
        assert "pubctl" in result.source_name and "lm-eval 0.4.13" in result.source_name
    for leftover in ("{{", "{%", "None"):
        assert leftover not in text
    # Every plot the card names exists beside it, with alt text.
    images = re.findall(r"!\[([^\]]+)\]\((plots/[^)]+\.png)\)", text)
    assert {Path(path).name for _, path in images} == {p.name for p in layout.plots_dir.glob("*.png")}
    assert {"loss.png", "rewards.png", "kl.png", "learning_rate.png", "evaluation.png"} <= {
        Path(path).name for _, path in images
    }
    assert all(len(alt) > 20 for alt, _ in images)
    # The body shows the record's numbers with their context.
    assert "10,042" in text and "0.4213" in text and "NVIDIA H100 80GB HBM3" in text
    assert "arXiv" in text and "2402.01306" in text and "2106.09685" in text


def test_second_render_is_byte_identical_and_check_detects_staleness(make_config, project):
    config, layout = _release(make_config, project, realistic_record("twice"))
    render_card(config, layout)
    first = {p.name: p.read_bytes() for p in [layout.readme, *layout.plots_dir.glob("*.png")]}

    render_card(config, layout)
    second = {p.name: p.read_bytes() for p in [layout.readme, *layout.plots_dir.glob("*.png")]}
    assert first == second
    check_card(config, layout)  # fresh: no error

    record = read_results(layout.results)
    record.training.final_loss = 0.25
    record.evaluation.results[0].value = 0.5
    write_results(layout.results, record)
    with pytest.raises(CheckFailed) as stale:
        check_card(config, layout)
    message = str(stale.value)
    assert "--- committed/README.md" in message and "+++ fresh/README.md" in message
    assert "+| final training loss | 0.25 |" in message
    assert "plots/evaluation.png: differs" in message


def test_hostile_values_appear_literally_and_break_nothing(make_config, project):
    record = hostile_record("hostile")
    config, layout = _release(make_config, project, record, card={"summary": HOSTILE_TEXT})

    text = render_card(config, layout).read_text(encoding="utf-8")

    # Front matter: the library dumped it; every hostile value parses back unchanged.
    data = ModelCard(text).data
    hostile_result = data.eval_results[-1]
    assert hostile_result.dataset_name == HOSTILE["jinja"]
    # Not a Hub id: model-index names the lm-eval task instead (the hostile value stays literal in the body).
    assert hostile_result.dataset_type == HOSTILE["jinja"]
    assert hostile_result.dataset_config == HOSTILE["arabic"]
    assert hostile_result.dataset_split == HOSTILE["newlines"]
    assert hostile_result.metric_value == 0.3125
    # Body: Jinja in a value was never evaluated, and no table lost or gained a column.
    assert "\\{\\{ 7\\*7 \\}\\}" in text
    tables = _tables(text)
    assert tables
    for table in tables:
        widths = {len(row) for row in table}
        assert len(widths) == 1, f"ragged table: {table}"
    cells = [cell for table in tables for row in table for cell in row]
    newline = HOSTILE["newlines"].replace("\r\n", "\n")
    assert HOSTILE["jinja"] in cells
    assert HOSTILE["markdown"] in cells  # dataset id and throughput device, rendered as typed
    assert newline in cells  # the split, line breaks kept as <br>
    assert HOSTILE["arabic"] in " ".join(cells)
    # The hostile waiver reason is shown in the waiver table, literally.
    assert HOSTILE_TEXT.replace("\r\n", "\n") in cells


def test_local_base_model_and_data_stay_out_of_the_front_matter(make_config, project):
    """``models/base`` and ``data/prefs.jsonl`` are valid repo ids too: the front matter must not link them."""
    record = realistic_record("local")
    record.model.base_model = "models/base"
    (project / "models" / "base").mkdir(parents=True)
    record.training.datasets = [
        DatasetRecord(id="data/prefs.jsonl", split="train", revision="sha256:" + "e" * 64, rows=96)
    ]
    config, layout = _release(make_config, project, record)

    text = render_card(config, layout).read_text(encoding="utf-8")

    data = ModelCard(text).data
    assert data.base_model is None and getattr(data, "base_model_relation", None) is None
    assert data.datasets is None
    assert "huggingface.co/datasets/data/prefs.jsonl" not in text
    assert "huggingface.co/models/base" not in text


def test_publication_metadata_comes_from_the_config_not_the_record(make_config, project):
    """Records written before kept model.license/language/repo_id: the card reads the config's at card time."""
    from pipeline.results import ModelRecord

    record = realistic_record("meta")
    old = {**record.model.model_dump(), "license": "mit", "language": ["fr"], "repo_id": "old-owner/old-name"}
    record.model = ModelRecord.model_validate(old)
    config, layout = _release(make_config, project, record, card={"license": "cc-by-4.0", "language": ["ar"]})

    text = render_card(config, layout).read_text(encoding="utf-8")

    data = ModelCard(text).data
    assert (data.license, data.language) == ("cc-by-4.0", ["ar"])
    assert "old-owner" not in text
    assert f"model_id = {json.dumps(config.hub.repo_id)}" in text
    assert "\\u0623\\u0639\\u0637\\u0646\\u064a" in text  # the usage prompt is in the config's first language


@pytest.mark.parametrize("conversational", [True, False, None])
def test_usage_says_how_the_model_was_trained_to_be_prompted(make_config, project, conversational):
    """TRL applies the chat template to conversations only: the card must not claim it for plain-text data."""
    record = realistic_record(f"usage-{conversational}")
    if conversational is not None:
        record.training.datasets[0].conversational = conversational  # what the train stage records
    config, layout = _release(make_config, project, record)

    usage = render_card(config, layout).read_text(encoding="utf-8").split("## How to use", 1)[1].split("## ", 1)[0]

    assert ("exactly as in training" in usage) is (conversational is True)
    assert ("apply_chat_template(messages" in usage) is (conversational is not False)
    assert ('tokenizer("Give me' in usage) is (conversational is False)
    if conversational is None:
        assert "does not say whether the training data were conversations" in usage


def test_limitations_name_the_kind_of_tuning(make_config, project):
    record = realistic_record("sft-lim", method="sft", method_params={})
    name = _with_method(make_config, project, record.release, "sft")
    layout = write_record(project, record)

    text = render_card(load_config(name), layout).read_text(encoding="utf-8")

    assert "Supervised fine-tuning teaches the model to imitate" in text
    assert "Preference tuning" not in text


def test_a_card_without_waivers_does_not_claim_the_gates_passed(make_config, project):
    """The card is rendered from the record alone: it cannot know that the gates pass (the bad card fails them)."""
    config, layout = _release(make_config, project, bad_card_record("nowaiver"), checks={"allow": None})

    text = render_card(config, layout).read_text(encoding="utf-8")

    waivers = text.split("## Waived checks", 1)[1].split("## ", 1)[0]
    assert "no honesty gate was waived" in waivers and "`pubctl check nowaiver`" in waivers
    assert "passed" not in waivers


def test_merge_parity_sentence_names_its_compute_dtype_and_the_adapter_effect(make_config, project):
    record = realistic_record("parity")
    record.merge.parity_compute_dtype = "float32"  # what the merge stage adds
    config, layout = _release(make_config, project, record)

    text = render_card(config, layout).read_text(encoding="utf-8")

    assert (
        "differ from adapter-on-base by at most 1.200e-06 on 4 probe prompts, both computed in float32 "
        "(what the merge itself lost, without the noise of lower-precision arithmetic); the adapter itself "
        "moves the base's logits by up to 0.8." in text
    )


@pytest.mark.parametrize(
    ("warmup", "sentence"),
    [
        (None, "5 timed runs."),
        (0, "5 timed runs, with no untimed warm-up run."),
        (2, "5 timed runs after 2 untimed warm-up runs."),
    ],
)
def test_throughput_states_the_recorded_warm_up(make_config, project, warmup, sentence):
    record = realistic_record(f"warm-{warmup}")
    if warmup is not None:
        record.evaluation.throughput.warmup_runs = warmup  # what the evaluate stage adds
    config, layout = _release(make_config, project, record)

    text = render_card(config, layout).read_text(encoding="utf-8")

    assert f"128 new tokens each, {sentence}\n\n| device |" in text


def test_a_score_far_below_chance_is_named_in_the_limitations(make_config, project):
    record = realistic_record("below")
    record.evaluation.results[0].value = 0.20  # hellaswag: chance 0.25, stderr 0.0049
    config, layout = _release(make_config, project, record)

    text = render_card(config, layout).read_text(encoding="utf-8")

    assert (
        "- Scores more than 2 standard errors below chance on: hellaswag: the model favours wrong answers there "
        "more than random guessing would." in text
    )
    assert "Within 2 standard errors of chance" not in text


def test_a_limited_evaluation_is_called_a_subset(make_config, project):
    record = realistic_record("limited")
    record.evaluation.settings = {"limit": 20, "batch_size": 8, "device": "cpu"}  # what the evaluate stage adds
    config, layout = _release(make_config, project, record)

    text = render_card(config, layout).read_text(encoding="utf-8")

    assert "**Subset only:** at most 20 items per task were scored" in text
    assert "scored on at most 20 items per task \\(lm\\-eval limit\\)" in text


def test_missing_sections_render_what_exists_and_say_what_is_missing(make_config, project):
    record = realistic_record("partial")
    record.model = None
    record.merge = None
    record.evaluation = None
    config, layout = _release(make_config, project, record)

    text = render_card(config, layout).read_text(encoding="utf-8")

    assert "pubctl merge partial" in text and "pubctl evaluate partial" in text
    assert "Not recorded yet" in text
    data = ModelCard(text).data
    assert data.eval_results is None and "model-index" not in text
    assert data.base_model == "Qwen/Qwen3-0.6B" and getattr(data, "base_model_relation", None) is None
    assert not (layout.plots_dir / "evaluation.png").exists()
    assert (layout.plots_dir / "loss.png").exists()
    assert "None" not in _body(text)


@pytest.mark.parametrize("method", ["sft", "dpo", "ipo", "kto", "cpo", "simpo", "orpo"])
def test_each_method_partial_renders_with_its_citation(make_config, project, method):
    from pipeline.citations import CITATIONS
    from pipeline.methods import METHODS

    record = realistic_record(f"m-{method}", method=method, method_params={"beta": 0.2})
    name = _with_method(make_config, project, record.release, method)
    layout = write_record(project, record)

    text = render_card(load_config(name), layout).read_text(encoding="utf-8")

    assert "### Method: " in text and "**Objective in words.**" in text
    for key in METHODS[method].citations:
        assert CITATIONS[key].bibtex in text
    assert "| `beta` | 0.2 |" in text or method == "sft"


def test_kto_partial_describes_the_loss_the_run_used(make_config, project):
    record = realistic_record("apo", method="kto", method_params={"beta": 0.1, "loss_type": "apo_zero_unpaired"})
    config, layout = _release(make_config, project, record)

    text = render_card(config, layout).read_text(encoding="utf-8")

    assert "`apo_zero_unpaired` loss, not the KTO loss" in text and "there is no KL reference point" in text
    assert "A reference point z₀" not in text
    assert "| `loss_type` | apo\\_zero\\_unpaired |" in text


def test_missing_method_partial_is_a_clear_error(make_config, project):
    (project / "templates" / "partials" / "method_dpo.md.j2").unlink()
    record = realistic_record("nopartial", method="dpo", method_params={"beta": 0.1})
    name = _with_method(make_config, project, record.release, "dpo")
    layout = write_record(project, record)

    with pytest.raises(UsageError, match=r"templates/partials/method_dpo\.md\.j2 is missing"):
        render_card(load_config(name), layout)
    assert not layout.readme.exists()


def test_user_template_extends_the_default_and_overrides_one_block(make_config, project):
    (project / "templates" / "house.md.j2").write_text(
        '{% extends "model_card.md.j2" %}\n'
        "{% block limitations %}\n## Limitations\n\nHouse rules: {{ release | md }} is for research only.\n"
        "{% endblock %}\n",
        encoding="utf-8",
    )
    config, layout = _release(make_config, project, realistic_record("house"), card={"template": "house.md.j2"})

    text = render_card(config, layout).read_text(encoding="utf-8")

    assert "House rules: house is for research only." in text
    assert "## Evaluation" in text and "## Provenance" in text  # the other blocks are the default's
    assert "inherits the base model's biases" not in text  # the overridden block is gone

    # A template outside templates/, named by its path, extends the default the same way.
    (project / "house").mkdir()
    (project / "templates" / "house.md.j2").rename(project / "house" / "mine.md.j2")
    config, layout = _release(make_config, project, realistic_record("path"), card={"template": "house/mine.md.j2"})
    assert "House rules: path is for research only." in render_card(config, layout).read_text(encoding="utf-8")


def test_user_template_errors_are_usage_errors(make_config, project):
    (project / "templates" / "broken.md.j2").write_text("{% extends 'model_card.md.j2' %}{% block x %}", "utf-8")
    config, layout = _release(make_config, project, realistic_record("broken"), card={"template": "broken.md.j2"})
    with pytest.raises(UsageError, match=r"broken\.md\.j2, line 1"):
        render_card(config, layout)

    (project / "templates" / "undef.md.j2").write_text("{{ no_such_value }}", "utf-8")
    config, layout = _release(make_config, project, realistic_record("undef"), card={"template": "undef.md.j2"})
    with pytest.raises(UsageError, match="no_such_value"):
        render_card(config, layout)

    (project / "templates" / "escape.md.j2").write_text("{{ record.__class__.__mro__ }}", "utf-8")
    config, layout = _release(make_config, project, realistic_record("escape"), card={"template": "escape.md.j2"})
    with pytest.raises(UsageError, match=r"unsafe|__class__"):
        render_card(config, layout)


def test_compare_with_tabulates_recorded_facts_of_other_releases(make_config, project):
    other = bad_card_record("other")
    write_record(project, other)
    config, layout = _release(make_config, project, realistic_record("main"), card={"compare_with": ["other"]})

    text = render_card(config, layout).read_text(encoding="utf-8")

    table = next(
        t for t in _tables(text) if t[0][:6] == ["release", "method", "samples", "steps", "runtime", "final loss"]
    )
    header, current, compared = table
    assert "hellaswag acc_norm 10-shot" in header
    assert current[0] == "main (this card)" and current[1] == "kto" and current[3] == "12"
    assert compared[0] == "other" and compared[1] == "cpo" and compared[2] == "3" and compared[3] == "0"
    assert compared[4] == "0.005 s" and compared[5] == "0"
    assert "rank" not in " ".join(header).lower()

    config, layout = _release(make_config, project, realistic_record("lonely"), card={"compare_with": ["ghost"]})
    with pytest.raises(UsageError, match=r"card\.compare_with names 'ghost'"):
        render_card(config, layout)


def test_pubctl_card_imports_no_heavy_library(make_config, project):
    _, layout = _release(make_config, project, realistic_record("light"))
    script = (
        "import sys, json\n"
        "from pipeline.cli import app\n"
        "try:\n"
        "    app(['card', 'light'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "heavy = ('torch', 'transformers', 'trl', 'peft', 'datasets', 'lm_eval', 'accelerate')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=project, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    assert layout.readme.is_file()


def test_markdown_helpers_render_values_as_themselves():
    from pipeline.markdown import code_span, escape_cell, escape_inline

    md = MarkdownIt("commonmark", {"html": True}).enable("table")

    def cell_text(value: str) -> str:
        table = md.parse(f"| a |\n|---|\n| {value} |\n")
        return _inline_text(next(t for t in table if t.type == "inline" and t.map and t.map[0] == 2))

    for value in ("a|b", "x `y` z", "``", "snake_case_id", "{{ 7*7 }}", "two\nlines", "عربي | *", ""):
        assert cell_text(code_span(value)) == (value or "\xa0")
        assert cell_text(escape_cell(value)) == (value or "\xa0")
        assert "{{" not in escape_inline(value) and "{{" not in code_span(value)


def test_author_prose_stays_markdown_but_never_looks_like_template_syntax(make_config, project):
    summary = "Tuned for **Arabic** chat; see [the paper](https://arxiv.org/abs/2402.01306). {{ not a template }}"
    config, layout = _release(
        make_config, project, realistic_record("prose"), card={"summary": summary, "limitations": ["Only *tiny*."]}
    )

    text = render_card(config, layout).read_text(encoding="utf-8")

    assert "Tuned for **Arabic** chat; see [the paper](https://arxiv.org/abs/2402.01306)." in text
    assert "\\{\\{ not a template \\}\\}" in text and "{{" not in text
    assert "- Only *tiny*." in text


def test_cli_card_check_exit_codes(make_config, project):
    from typer.testing import CliRunner

    from pipeline.cli import app

    runner = CliRunner()
    _, layout = _release(make_config, project, realistic_record("cli"))
    assert runner.invoke(app, ["card", "cli", "--check"]).exit_code == 1  # never rendered
    assert runner.invoke(app, ["card", "cli"]).exit_code == 0
    current = runner.invoke(app, ["card", "cli", "--check"])
    assert current.exit_code == 0 and "card cli: up to date" in current.output

    layout.readme.write_text(layout.readme.read_text(encoding="utf-8").replace("0.4213", "0.9999"), encoding="utf-8")
    stale = runner.invoke(app, ["card", "cli", "--check"])
    assert stale.exit_code == 1
    assert "-| hellaswag |" in stale.output and "+| hellaswag |" in stale.output
