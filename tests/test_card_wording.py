"""The card says what actually ran: run length, data as trained, lm-eval settings, metric names, plain limitations.

Also: model-index names no local file as a dataset, spells the few-shot key once; ``card --check``
names the first differing line and how to add text without editing README.md; a hand-edited
README is copied aside before a render replaces it.
"""

from __future__ import annotations

import shutil

import pytest
import yaml
from huggingface_hub import ModelCard
from test_card import _release, _tables, _with_method
from test_card_records import realistic_record, write_record
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.errors import CheckFailed
from pipeline.results import BenchmarkResult, DatasetRecord, EvaluationSettings
from pipeline.stages.card import check_card, render_card

runner = CliRunner()


def _section(text: str, title: str) -> str:
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def _row(text: str, first_cell: str) -> list[str]:
    return next(row for table in _tables(text) for row in table if row and row[0] == first_cell)


# ----------------------------------------------------------------------------- training
def test_max_steps_run_shows_epochs_completed_not_the_configured_count(make_config, project):
    record = realistic_record("steps")
    record.training.epochs_completed = 12 / 82.5  # what Trainer.state.epoch says after 12 of 82.5 steps/epoch
    record.training.hyperparameters.max_steps = 12
    config, layout = _release(make_config, project, record)

    text = render_card(config, layout).read_text(encoding="utf-8")

    assert _row(text, "epochs completed") == ["epochs completed", "0.1455"]
    assert _row(text, "epochs") == ["epochs", "1 (not used: max_steps = 12 set the run's length)"]


def test_epochs_completed_absent_from_an_older_record_is_said_so(make_config, project):
    config, layout = _release(make_config, project, realistic_record("old"))

    text = render_card(config, layout).read_text(encoding="utf-8")

    assert _row(text, "epochs completed") == ["epochs completed", "not recorded"]
    assert _row(text, "epochs") == ["epochs", "1"]  # no max_steps: the epoch count decided


def test_data_table_shows_held_out_rows_and_how_kto_split_the_pairs(make_config, project):
    record = realistic_record("kto-data")
    record.training.datasets = [
        DatasetRecord.model_validate(
            {
                "id": "HuggingFaceH4/ultrafeedback_binarized",
                "split": "train_prefs",
                "revision": "3949bf5",
                "rows": 658,
                "source_rows": 366,
                "eval_rows": 74,
                "format": "paired",
                "trained_as": "unpaired",
                "dropped_long_prompts": 3,
                "truncated_prompts": 5,
                "rows_after_trainer_filtering": 650,
            }
        )
    ]
    config, layout = _release(make_config, project, record)

    text = render_card(config, layout).read_text(encoding="utf-8")

    data = _section(text, "Training")
    table = next(t for t in _tables(text) if t[0][0] == "dataset")
    assert table[0][3:] == ["training rows", "held out (eval loss)"]
    assert table[1][3:] == ["658", "74"]
    assert "366 preference pairs were split into one desirable \\(chosen\\) and one undesirable" in data
    assert "the 658 training rows and 74 held\\-out rows are single completions, not pairs." in data
    assert "3 rows dropped because their prompt alone filled max\\_length." in data
    assert "5 prompts truncated from the left to max\\_prompt\\_length." in data
    assert "the TRL trainer's own filtering kept 650 of the 658 rows." in data


def test_sft_on_pairs_says_the_rejected_answers_were_dropped(make_config, project):
    record = realistic_record("sft-pairs", method="sft", method_params={})
    record.training.datasets[0] = record.training.datasets[0].model_copy(
        update={"rows": 300, "eval_rows": 30, "format": "paired", "trained_as": "text"}
    )
    name = _with_method(make_config, project, record.release, "sft")
    layout = write_record(project, record)

    text = render_card(load_config(name), layout).read_text(encoding="utf-8")

    assert (
        "supervised fine\\-tuning trained on the chosen answer of each pair; the rejected answers \\(330, one per "
        "row\\) were dropped." in text
    )


# --------------------------------------------------------------------------- evaluation
def _evaluated(make_config, project, name: str):
    record = realistic_record(name)
    record.evaluation.settings = EvaluationSettings(batch_size=8, device="cuda:0", dtype="bfloat16", seed=1234)
    record.evaluation.results.append(
        BenchmarkResult(
            task="mmlu",
            dataset_id="cais/mmlu",
            split="test",
            num_fewshot=5,
            metric="acc",
            value=0.52,
            stderr=0.004,
            n=14042,
            base_value=0.51,
            chance=0.25,
            stderr_method="pooled by lm-eval's group aggregation from its 57 subtasks' stderrs, each closed-form",
        )
    )
    return _release(make_config, project, record)


def test_evaluation_names_mc2_the_mmlu_average_and_the_batch_size(make_config, project):
    config, layout = _evaluated(make_config, project, "evalwords")

    text = render_card(config, layout).read_text(encoding="utf-8")

    evaluation = _section(text, "Evaluation")
    assert _row(text, "truthfulqa_mc2")[3] == "mc2 (lm-eval key: acc)"
    assert _row(text, "hellaswag")[3] == "acc_norm"
    assert (
        "lm\\-eval ran with batch size 8, device cuda:0, dtype bfloat16, seed 1234. Another batch size pads the "
        "inputs differently and moves scores in about the tenth digit." in evaluation
    )
    assert (
        "mmlu is a group of tasks: its score is the mean over its subtasks weighted by their number of items "
        "\\(lm\\-eval's weight\\_by\\_size\\), not the unweighted mean" in evaluation
    )
    # model-index: the metric's usual name for people, lm-eval's key as the type the gate checks.
    data = ModelCard(text).data
    mc2 = next(result for result in data.eval_results if result.dataset_name == "truthfulqa_mc2")
    assert (mc2.metric_type, mc2.metric_name) == ("acc", "mc2 (0-shot)")


def test_model_index_names_no_local_file_and_spells_the_few_shot_key_once(make_config, project):
    record = realistic_record("local-eval")
    record.evaluation.results[0] = record.evaluation.results[0].model_copy(
        update={"task": "demo_hellaswag", "dataset_id": "pipeline/demo/tasks/hellaswag_mini.jsonl"}
    )
    config, layout = _release(make_config, project, record)

    text = render_card(config, layout).read_text(encoding="utf-8")

    front = yaml.safe_load(text.split("---\n")[1])
    results = front["model-index"][0]["results"]
    assert [r["dataset"]["type"] for r in results] == ["demo_hellaswag", "truthfulqa/truthful_qa"]
    header = text.split("\n---\n", 1)[0]
    assert "num_few_shot" not in header and header.count("num_fewshot:") == len(results)
    assert all("args" not in r["dataset"] for r in results)
    assert [r["metrics"][0]["args"]["num_fewshot"] for r in results] == [10, 0]
    # The body still says which file was scored.
    assert "pipeline/demo/tasks/hellaswag\\_mini.jsonl" in text


def test_below_chance_limitation_is_plain(make_config, project):
    record = realistic_record("plain")
    record.evaluation.results[0].value = 0.20  # chance 0.25, stderr 0.0049
    config, layout = _release(make_config, project, record)

    limitations = _section(render_card(config, layout).read_text(encoding="utf-8"), "Limitations")

    assert "the model favours wrong answers there more than random guessing would." in limitations
    assert " or " not in limitations.split("below chance on")[1].split("\n")[0]


def test_a_figure_note_is_shown_under_its_image(make_config, project):
    config, layout = _release(make_config, project, realistic_record("notes"))

    curves = _section(render_card(config, layout).read_text(encoding="utf-8"), "Training and evaluation curves")

    assert "(plots/evaluation.png)\n\n*Base\\-model bars without an error bar: the record holds no standard" in curves


# ------------------------------------------------------------------------- card --check
def test_check_names_the_first_differing_line_and_how_to_add_text(make_config, project):
    config, layout = _release(make_config, project, realistic_record("edited"))
    render_card(config, layout)
    lines = layout.readme.read_text(encoding="utf-8").splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines) if line.startswith("## Limitations")) + 2
    lines.insert(number, "Our own note, typed into README.md.\n")
    layout.readme.write_text("".join(lines), encoding="utf-8")

    with pytest.raises(CheckFailed) as stale:
        check_card(config, layout)

    first = str(stale.value).splitlines()[0]
    assert f"README.md line {number + 1} differs first: committed 'Our own note, typed into README.md.'" in first
    assert "card.summary, card.limitations" in first and "card.template" in first
    assert "--- committed/README.md" in str(stale.value)  # the diff follows

    gate = runner.invoke(app, ["check", "edited"])
    assert f"README.md line {number + 1} differs first" in gate.output


def test_card_keeps_a_copy_of_a_hand_edited_readme_before_replacing_it(make_config, project):
    _, layout = _release(make_config, project, realistic_record("keep"))
    assert runner.invoke(app, ["card", "keep"]).exit_code == 0
    assert runner.invoke(app, ["card", "keep"]).exit_code == 0
    kept = project / "runs" / "keep" / "card"
    assert not list(kept.glob("README.*.md"))  # pubctl's own render is replaced without a copy

    edited = layout.readme.read_text(encoding="utf-8") + "\nA paragraph typed by hand.\n"
    layout.readme.write_text(edited, encoding="utf-8")
    result = runner.invoke(app, ["card", "keep"])

    assert result.exit_code == 0, result.output
    copies = list(kept.glob("README.*.md"))
    assert len(copies) == 1 and copies[0].read_text(encoding="utf-8") == edited
    assert "a copy is in runs/keep/card/README." in result.output.replace("\n", "")
    assert "typed by hand" not in layout.readme.read_text(encoding="utf-8")

    # A fresh clone has no record of a render: the replaced README is kept, and said to be kept just in case.
    shutil.rmtree(kept)
    layout.readme.write_text(edited, encoding="utf-8")
    result = runner.invoke(app, ["card", "keep"])
    said = result.output.replace("\n", "")
    assert "no record of an earlier render here (a fresh clone?)" in said and "edited by hand" not in said
    assert len(list(kept.glob("README.*.md"))) == 1


def test_a_readme_link_is_replaced_without_being_read(make_config, project):
    config, layout = _release(make_config, project, realistic_record("linked"))
    notes = layout.card_dir / "notes.md"
    notes.write_text("someone's notes\n", encoding="utf-8")
    layout.readme.symlink_to(notes)

    render_card(config, layout)

    assert not layout.readme.is_symlink() and notes.read_text(encoding="utf-8") == "someone's notes\n"
    assert not list((project / "runs" / "linked" / "card").glob("README.*.md"))


# ------------------------------------------------------------------------------ config messages
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("method: {name: SimPO}", "unknown method 'SimPO'; known methods: sft, dpo"),
        ("method: {name: SimPO}", "did you mean 'simpo'?"),
        (
            "lora: {target_modules: q_proj}",
            "lora.target_modules (line 2): Input should be a valid list or 'all-linear'",
        ),
    ],
)
def test_config_messages(project, text, expected):
    (project / "configs" / "msg.yaml").write_text(f"hub: {{repo_id: me/model}}\n{text}\n", encoding="utf-8")

    result = runner.invoke(app, ["train", "msg"])

    assert result.exit_code == 2
    assert "1 problem in the config" in result.output, result.output
    assert expected in result.output.replace("\n  ", " ") or expected in result.output
