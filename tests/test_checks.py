"""The honesty gates: the published bad card fails with every reason named; an honest bundle passes."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_card_records import bad_card_record, link, realistic_record, write_record
from typer.testing import CliRunner

from pipeline.checks import CHECKS, check, run_checks
from pipeline.checks.chat_template import turn_end
from pipeline.cli import app
from pipeline.config import load_config
from pipeline.results import FileEntry, RehearsalRecord, Waiver, read_results, write_results
from pipeline.stages.card import render_card
from pipeline.stages.check import run as run_check_stage

KTO = {"model": {"base_model": "Qwen/Qwen3-0.6B", "dtype": "bfloat16"}, "method": {"name": "kto", "beta": 0.1}}
runner = CliRunner()


def _bundle(make_config, project, record, overrides=None, *, render: bool = True):
    name = make_config(record.release, {**KTO, **(overrides or {})})
    layout = write_record(project, record)
    config = load_config(name)
    if render:
        render_card(config, layout)
    return config, layout


def _ids(items) -> set[str]:
    return {item.id for item in items}


def test_the_published_bad_card_fails_with_every_reason_named(make_config, project):
    config, layout = _bundle(make_config, project, bad_card_record("bad"), {"checks": {"allow": None}})

    result = runner.invoke(app, ["check", "bad"])

    assert result.exit_code == 1
    out = result.output
    for line in (
        "training_ran: found 0 optimizer steps, expected more than 0 optimizer steps",
        "samples_min: found 3 training samples, expected at least 50",
        "loss_not_zero: found final loss exactly 0.0",
        "runtime_consistent: found 0.005 s for 0 optimizer steps",
        "throughput_device: found device ''",
        "parameter_count: found 500,000,000 parameters recorded but 3,441,185,608 bytes of bfloat16 weights",
        "eval_not_train: found hellaswag scored on Rowan/hellaswag, also a training dataset",
    ):
        assert line in out, f"missing {line!r} in:\n{out}"
    assert "Failed: training_ran, samples_min, loss_not_zero, runtime_consistent" in out
    # Its model-index was rendered from the record, so it holds only benchmarks and parses.
    report = run_checks(config, layout)
    assert "model_index_parses" in report.passed and "no_template_syntax" in report.passed


def test_an_honest_bundle_passes_with_model_checks_skipped(make_config, project):
    _bundle(make_config, project, realistic_record("good"))

    result = runner.invoke(app, ["check", "good"])

    assert result.exit_code == 0, result.output
    assert "FAILED" not in result.output
    assert "skipped  parameter_count: checks on the model files skipped, no merged model at" in result.output
    assert "waived   " not in result.output  # the demo config waives base_model_hub_id, which only a push checks


def test_near_chance_is_a_warning_and_exit_zero(make_config, project):
    record = realistic_record("chance")
    record.evaluation.results[0].value = 0.2550  # 0.005 above chance, stderr 0.0049
    _bundle(make_config, project, record)

    result = runner.invoke(app, ["check", "chance"])

    assert result.exit_code == 0, result.output
    assert "warning  near_chance: found hellaswag acc_norm 0.255 ± 0.0049, chance 0.25" in result.output


def test_metric_range_uses_each_metrics_own_range(make_config, project):
    """MCC lies in [-1, 1] and lm-eval's multi-class brier_score in [0, 2]; accuracies in [0, 1]."""
    from pipeline.results import BenchmarkResult

    record = realistic_record("ranges")
    row = {"dataset_id": "nyu-mll/glue", "split": "validation", "num_fewshot": 0, "stderr": 0.03, "n": 1043}
    record.evaluation.results += [
        BenchmarkResult(task="cola", metric="mcc", value=-0.04, base_value=0.01, chance=0.0, **row),
        BenchmarkResult(task="mc_brier", metric="brier_score", value=1.35, **row),
        BenchmarkResult(task="bad_acc", metric="acc", value=1.2, **row),
        BenchmarkResult(task="bad_mcc", metric="mcc", value=-1.5, **row),
    ]
    config, layout = _bundle(make_config, project, record)

    report = run_checks(config, layout)

    assert [item.line() for item in report.failures if item.id == "metric_range"] == [
        "metric_range: found bad_acc acc value 1.2, expected a value in [0, 1]",
        "metric_range: found bad_mcc mcc value -1.5, expected a value in [-1, 1]",
    ]


def test_a_limited_evaluation_is_a_warning(make_config, project):
    record = realistic_record("subset")
    record.evaluation.settings = {"limit": 20}
    config, layout = _bundle(make_config, project, record)

    report = run_checks(config, layout)

    assert [item.line() for item in report.warnings] == [
        "eval_subset: found lm-eval limit 20 items per task, expected full benchmark sets for published scores"
    ]
    assert report.ok


def test_allow_records_a_waiver_and_the_card_shows_it(make_config, project):
    record = realistic_record("waive")
    record.training.samples = 10
    _, layout = _bundle(make_config, project, record)
    assert runner.invoke(app, ["check", "waive"]).exit_code == 1

    result = runner.invoke(app, ["check", "waive", "--allow", "samples_min=smoke run on 10 rows, see limitations"])

    assert result.exit_code == 0, result.output
    assert "waived   samples_min: found 10 training samples" in result.output
    waivers = read_results(layout.results).waivers
    assert [(w.check, w.reason) for w in waivers] == [("samples_min", "smoke run on 10 rows, see limitations")]
    card = layout.readme.read_text(encoding="utf-8")
    assert "| `samples_min` | smoke run on 10 rows, see limitations | results.json |" in card
    assert "| `base_model_hub_id` |" in card  # the config's waiver is listed too
    # The waiver persists: a plain check passes, and the card is current.
    assert runner.invoke(app, ["check", "waive"]).exit_code == 0


def test_unknown_check_id_in_allow_is_a_usage_error(make_config, project):
    _bundle(make_config, project, realistic_record("typo"))
    result = runner.invoke(app, ["check", "typo", "--allow", "sample_min=oops"])
    assert result.exit_code == 2
    assert "did you mean 'samples_min'" in result.output


def test_card_gates_catch_edits_leftovers_and_loss_in_model_index(make_config, project):
    config, layout = _bundle(make_config, project, realistic_record("edited"))
    text = layout.readme.read_text(encoding="utf-8")
    edited = text.replace(
        "    source:\n",
        "    - type: training_loss\n      value: 0.0\n      name: Final Training Loss\n    source:\n",
        1,
    ).replace("## Limitations", "## Limitations\n\nScore: {{ score }} None", 1)
    layout.readme.write_text(edited, encoding="utf-8")

    report = run_checks(config, layout)

    failed = {item.id: item for item in report.failures}
    assert "non-benchmark metric 'training_loss'" in failed["model_index_parses"].found
    assert "'{{'" in failed["no_template_syntax"].found and "'None'" in failed["no_template_syntax"].found
    assert "card_current" in failed

    layout.readme.write_text("---\nmodel-index: [unclosed\n---\nbody\n", encoding="utf-8")
    report = run_checks(config, layout)
    assert "front matter that does not parse" in {i.id: i for i in report.failures}["model_index_parses"].found


def test_english_none_in_the_authors_text_is_not_template_leftover(make_config, project):
    summary = "None of these benchmarks measures Arabic fluency."
    config, layout = _bundle(make_config, project, realistic_record("english"), {"card": {"summary": summary}})
    assert summary in layout.readme.read_text(encoding="utf-8")

    report = run_checks(config, layout)

    assert "no_template_syntax" in report.passed, [item.line() for item in report.failures]
    layout.readme.write_text(layout.readme.read_text(encoding="utf-8") + "\n| base | None |\n", encoding="utf-8")
    leftover = {item.id: item.found for item in run_checks(config, layout).failures}["no_template_syntax"]
    assert leftover == "'None' in README.md"


def test_model_index_results_are_matched_with_their_n_shot(make_config, project):
    config, layout = _bundle(make_config, project, realistic_record("shots"))
    text = layout.readme.read_text(encoding="utf-8")
    assert text.count("        num_fewshot: 10\n") == 1
    layout.readme.write_text(text.replace("        num_fewshot: 10\n", "        num_fewshot: 25\n"), encoding="utf-8")

    found = [item.found for item in run_checks(config, layout).failures if item.id == "model_index_parses"]

    assert "model-index result ('hellaswag', 'acc_norm', 25, 'validation', 0.4213) not in results.json" in found
    assert "recorded result ('hellaswag', 'acc_norm', 10, 'validation', 0.4213) missing from the model-index" in found


def test_missing_sections_fail_their_gates(make_config, project):
    record = realistic_record("empty")
    record.training = None
    record.model = None
    record.merge = None
    record.evaluation = None
    config, layout = _bundle(make_config, project, record)

    report = run_checks(config, layout)

    assert {"training_ran", "samples_min", "model_files", "merge_parity", "benchmark_fields"} <= _ids(report.failures)


def test_push_needs_the_model_files_unless_card_only(make_config, project):
    config, layout = _bundle(make_config, project, realistic_record("push"), {"checks": {"allow": None}})

    push = run_checks(config, layout, for_push=True)
    card_only = run_checks(config, layout, for_push=True, card_only=True)

    assert {"parameter_count", "dtype_match", "chat_template", "generation_eos"} <= _ids(push.failures)
    assert "parameter_count" in _ids(card_only.skipped) and not card_only.failures
    assert "base_model_hub_id" in card_only.passed


def test_base_model_must_be_a_hub_id_for_a_push(make_config, project):
    record = realistic_record("local")
    record.model.base_model = "builtin:tiny-qwen3"
    config, layout = _bundle(make_config, project, record, {"checks": {"allow": None}})
    report = run_checks(config, layout, for_push=True, card_only=True)
    assert [item.id for item in report.failures] == ["base_model_hub_id"]
    assert report.failures[0].found == "'builtin:tiny-qwen3'"


# ------------------------------------------------------------ checks on model files
def _tiny_record(release: str, model_dir: Path):
    """A record that tells the truth about the tiny model's files (counted with safetensors, not our parser)."""
    from safetensors import safe_open

    with safe_open(model_dir / "model.safetensors", framework="numpy") as handle:
        parameters = sum(_numel(handle, key) for key in handle.keys())  # noqa: SIM118 - safe_open has no __iter__
    record = realistic_record(release)
    record.model.parameters = parameters
    record.model.dtype = "float32"
    record.model.files = [
        FileEntry(path=p.name, size=p.stat().st_size, sha256=hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(model_dir.iterdir())
        if p.is_file()
    ]
    link(record)  # the merge that recorded these files also recorded their digest
    return record


def _numel(handle, key: str) -> int:
    count = 1
    for dim in handle.get_slice(key).get_shape():
        count *= dim
    return count


@pytest.fixture
def tiny_bundle(make_config, project, tiny_model_path):
    name = make_config("tiny", {**KTO, "checks": {"allow": None}})
    config = load_config(name)
    layout = write_record(project, realistic_record("tiny"))
    shutil.copytree(tiny_model_path, layout.merged_model_dir)
    write_results(layout.results, _tiny_record("tiny", layout.merged_model_dir))
    render_card(config, layout)
    return config, layout


def test_model_file_gates_pass_on_a_truthful_record(tiny_bundle):
    config, layout = tiny_bundle
    report = run_checks(config, layout, for_push=True)
    model_checks = {
        "model_files",
        "parameter_count",
        "dtype_match",
        "architecture_match",
        "chat_template",
        "generation_eos",
    }
    assert model_checks <= set(report.passed), [i.line() for i in report.failures]


def test_model_file_gates_catch_wrong_count_dtype_architecture_template_and_eos(tiny_bundle):
    config, layout = tiny_bundle
    record = read_results(layout.results)
    record.model.parameters += 1000
    record.model.architecture = "LlamaForCausalLM"
    write_results(layout.results, record)
    folder = layout.merged_model_dir
    (folder / "chat_template.jinja").unlink()
    generation = json.loads((folder / "generation_config.json").read_text())
    generation["eos_token_id"] = 0  # <|endoftext|>, not the chat turn's <|im_end|>
    (folder / "generation_config.json").write_text(json.dumps(generation))
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:-4] + b"\0\0\0\0")

    failed = {item.id: item.found for item in run_checks(config, layout).failures}

    assert "parameter_count" in failed and "in the safetensors headers" in failed["parameter_count"]
    assert failed["architecture_match"] == "config.json architectures ['Qwen3ForCausalLM']"
    assert "chat_template" in failed
    assert failed["generation_eos"] == "generation eos_token_id 0"
    assert failed["model_files"] == "model.safetensors sha256 differs from the record"
    assert set(CHECKS) >= set(failed)


def test_generation_eos_must_stop_where_the_chat_template_ends_a_turn(tiny_bundle):
    """Llama 3's first release: eos <|end_of_text|> everywhere, but chat turns end with <|eot_id|>."""
    config, layout = tiny_bundle
    folder = layout.merged_model_dir
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    tokenizer_config["eos_token"] = "<|endoftext|>"  # id 0; the template closes turns with <|im_end|> (id 2)
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    generation = json.loads((folder / "generation_config.json").read_text())
    generation["eos_token_id"] = 0
    (folder / "generation_config.json").write_text(json.dumps(generation))

    failed = {item.id: item for item in run_checks(config, layout).failures}

    assert failed["generation_eos"].line() == (
        "generation_eos: found generation eos_token_id 0, expected to include the chat template's "
        "end-of-turn token '<|im_end|>' (id 2)"
    )
    generation["eos_token_id"] = [2, 0]
    (folder / "generation_config.json").write_text(json.dumps(generation))
    assert "generation_eos" not in _ids(run_checks(config, layout).failures)


def test_a_chat_template_that_cannot_render_a_conversation_fails(tiny_bundle):
    config, layout = tiny_bundle
    (layout.merged_model_dir / "chat_template.jinja").write_text(
        "{{ raise_exception('a system message is required') }}"
    )

    failed = {item.id: item.found for item in run_checks(config, layout).failures}

    assert failed["chat_template"] == (
        "a chat template that fails on a user/assistant exchange (TemplateError: a system message is required)"
    )


def test_a_corrupt_weights_file_is_a_failed_check_not_a_crash(tiny_bundle):
    config, layout = tiny_bundle
    (layout.merged_model_dir / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")

    failed = {item.id: item.found for item in run_checks(config, layout).failures}

    assert failed["parameter_count"].startswith("model.safetensors has a corrupt safetensors header (")


def test_a_model_check_on_the_files_imports_no_torch(tiny_bundle):
    """The model gates render the chat template with transformers' own renderer, which needs no torch."""
    config, layout = tiny_bundle
    probe = (
        "import json, sys\n"
        "from pipeline.checks import run_checks\n"
        "from pipeline.config import load_config\n"
        "from pipeline.layout import Layout\n"
        f"report = run_checks(load_config({config.name!r}), Layout.for_release({layout.name!r}), for_push=True)\n"
        "heavy = ('torch', 'trl', 'peft', 'datasets', 'lm_eval', 'accelerate')\n"
        "print(json.dumps({'failures': [i.line() for i in report.failures], 'passed': report.passed,\n"
        "    'heavy': sorted(m for m in sys.modules if m.split('.')[0] in heavy)}))\n"
    )
    env = {**os.environ, "PUBCTL_ROOT": str(layout.root)}
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=layout.root, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["heavy"] == [] and result["failures"] == []
    assert {"chat_template", "generation_eos"} <= set(result["passed"])


# ------------------------------------------------------------------ the registry
def test_checks_are_registered_in_report_order_each_with_its_family():
    """The order is what the report, the card's waiver table and a bad --allow's list of ids follow."""
    assert list(CHECKS) == [
        "training_ran", "samples_min", "loss_finite", "loss_not_zero", "runtime_consistent",
        "model_files", "parameter_count", "dtype_match", "architecture_match", "merge_parity",
        "chat_template", "generation_eos",
        "benchmark_fields", "metric_range", "near_chance", "eval_subset", "eval_not_train", "throughput_device",
        "model_index_parses", "no_template_syntax", "card_current",
        "lineage",
        "imported_complete", "imported_scored_model",
        "base_model_hub_id", "not_rehearsal",
    ]  # fmt: skip
    families = [entry.family for entry in CHECKS.values()]
    assert list(dict.fromkeys(families)) == [
        "training", "model", "tokenizer", "evaluation", "card", "lineage", "imported", "publish"
    ]  # fmt: skip
    assert all(entry.id == key and entry.description for key, entry in CHECKS.items())
    assert [entry.id for entry in CHECKS.values() if entry.warning] == ["near_chance", "eval_subset"]
    assert [entry.id for entry in CHECKS.values() if not entry.waivable] == ["lineage", "not_rehearsal"]
    assert [entry.id for entry in CHECKS.values() if entry.push_only] == ["base_model_hub_id", "not_rehearsal"]


def test_a_check_id_is_registered_once():
    with pytest.raises(ValueError, match="registered twice"):
        check("samples_min", "a second gate under a taken id")(lambda context, out: None)


# --------------------------------------------------------------------- the stage
def test_the_check_stage_prints_the_report_and_returns_its_summary(make_config, project, capsys):
    config, layout = _bundle(make_config, project, realistic_record("stage"))

    result = run_check_stage(config, layout, allow={})

    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"\d+ passed, 0 failed, 0 waived, 0 warnings, \d+ skipped", result.summary)
    assert lines[-1] == f"stage: {result.summary}"
    assert "skipped  base_model_hub_id: not a push" in lines
    assert dict(result.sections) == {}  # the waivers were recorded before the gates ran, not after


def test_not_rehearsal_cannot_be_waived(make_config, project):
    record = realistic_record("rehearsed")
    record.waivers = [Waiver(check="not_rehearsal", reason="recorded by hand")]
    record.rehearsal = RehearsalRecord(
        of="qwen3-0.6b-kto", config_sha256="0" * 64, base_model="Qwen/Qwen3-0.6B", model_files="hub",
        layers=2, real_layers=28, random_parameters=1000, dataset="x/y", data_source="hub", rows=4,
        offline=True, tasks={"hellaswag": "hellaswag"},
    )  # fmt: skip
    config, layout = _bundle(make_config, project, record, {"checks": {"allow": None}})

    report = run_checks(config, layout, for_push=True, card_only=True)

    assert [item.id for item in report.failures] == ["not_rehearsal"] and not report.waived
    result = runner.invoke(app, ["check", "rehearsed", "--allow", "not_rehearsal=please"])
    assert result.exit_code == 2
    assert "not_rehearsal cannot be waived" in result.output


# ---------------------------------------------------------- chat template endings
ADDED = ["<|user|>", "<|assistant|>", "<|end|>", "<|return|>", "<|endoftext|>"]


def test_the_end_of_turn_is_the_token_after_the_last_answer():
    """gpt-oss ends a final answer with <|return|>, an earlier one with <|end|>: training data ends with the first."""
    template = (
        "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}"
        "{% if loop.last and m.role == 'assistant' %}<|return|>{% else %}<|end|>{% endif %}{% endfor %}"
    )
    assert turn_end(template, {"eos_token": "<|endoftext|>"}, ADDED).token == "<|return|>"


def test_a_turn_closed_only_by_the_next_one_ends_with_that_token():
    """GLM writes nothing after an answer: the next turn's <|user|> is what stops generation."""
    template = "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}{% endfor %}"
    assert turn_end(template, {}, ADDED).token == "<|user|>"


def test_special_tokens_are_template_variables_and_errors_are_reported():
    template = "{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}"
    assert turn_end(template, {"eos_token": {"content": "<|endoftext|>"}}, ADDED).token == "<|endoftext|>"
    assert turn_end("{% for m in messages %}{{ m.role }}{% endfor %}", {}, ADDED).token is None
    failed = turn_end("{{ raise_exception('a system message is required') }}", {}, ADDED)
    assert failed.error == "TemplateError: a system message is required" and failed.token is None
