"""pubctl import: a record from a bare TRL run and lm-eval's CLI output, each section marked imported or measured.

The inputs are made in the test by the real libraries on the tiny model: a TRL DPO script with a peft LoRA
(trainer.save_state(), the adapter, peft's merge_and_unload + save_pretrained) and ``python -m lm_eval run``
with --output_path and --log_samples, once on the whole task and once with --limit 1 (which also leaves the
metric without a stderr). Only the CPO card's record, which no honest run produces, is written by hand.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.layout import Layout
from pipeline.results import read_results

runner = CliRunner()
TASK = {"name": "demo_hellaswag", "num_fewshot": 0, "metric": "acc_norm"}
DECLARED = {
    "method": {"name": "dpo", "beta": 0.1},
    "training": {"gradient_accumulation_steps": 2, "max_length": 64, "max_prompt_length": 32, "seed": 7},
    "evaluation": {"tasks": [TASK]},
    "checks": {"min_samples": 8},
}

TRL_SCRIPT = """
import json, sys
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer

base, data, out = sys.argv[1:4]
rows = [json.loads(line) for line in open(data, encoding="utf-8")][:8]
dataset = Dataset.from_list([{k: row[k] for k in ("prompt", "chosen", "rejected")} for row in rows])
tokenizer = AutoTokenizer.from_pretrained(base)
model = AutoModelForCausalLM.from_pretrained(base, dtype="float32")
args = DPOConfig(output_dir=out, max_steps=2, per_device_train_batch_size=2, gradient_accumulation_steps=2,
                 learning_rate=5e-3, logging_steps=1, save_strategy="no", report_to=[], max_length=64, seed=7,
                 use_cpu=True)
lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
trainer = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=lora)
trainer.train()
trainer.save_state()
trainer.save_model(out + "/adapter")
trainer.model.merge_and_unload().save_pretrained(out + "/merged")
tokenizer.save_pretrained(out + "/merged")
"""


def _lm_eval(model: Path, tasks: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "lm_eval", "run", "--model", "hf", "--model_args",
               f"pretrained={model},dtype=float32", "--tasks", TASK["name"], "--include_path", str(tasks),
               "--output_path", str(out), "--log_samples", "--device", "cpu", "--batch_size", "8", *extra]  # fmt: skip
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="session")
def made_elsewhere(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> dict[str, Path]:
    """A bare TRL run, its merged model, and lm-eval's CLI output on it (whole task) and on the base (--limit 1)."""
    from pipeline.demo import DEMO_DIR
    from pipeline.evaluation.tasks import builtin_tasks_dir, materialize_tasks

    top = tmp_path_factory.mktemp("elsewhere")
    run = top / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRL_EXPERIMENTAL_SILENCE": "1"}
    data = DEMO_DIR / "data" / "preferences.jsonl"
    trained = subprocess.run([sys.executable, "-c", TRL_SCRIPT, str(tiny_model_path), str(data), str(run)],
                             env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    tasks = materialize_tasks(builtin_tasks_dir(), top / "tasks")
    # Both lm-eval runs at once: each spends most of its time importing and indexing lm-eval's tasks.
    runs = {
        "lm_eval": _lm_eval(run / "merged", tasks, top / "lm_eval"),
        "lm_eval_limited": _lm_eval(tiny_model_path, tasks, top / "lm_eval_limited", "--limit", "1"),
    }
    for name, proc in runs.items():
        output, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{name}: {output[-3000:]}"
    return {"run": run, "adapter": run / "adapter", "merged": run / "merged", "base": tiny_model_path,
            "lm_eval": top / "lm_eval", "lm_eval_limited": top / "lm_eval_limited"}  # fmt: skip


def _config(make_config: Callable[..., str], name: str, imports: dict[str, Any], **more: Any) -> str:
    from conftest import deep_merge

    paths = {key: str(value) for key, value in imports.items()}
    return make_config(name, deep_merge(DECLARED, {"import": paths, **more}))


def _imported(name: str) -> str:
    result = runner.invoke(app, ["import", name])
    assert result.exit_code == 0, result.output
    return result.output


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _results_file(folder: Path) -> Path:
    (found,) = folder.rglob("results_*.json")
    return found


# ------------------------------------------------------------------------ the round trip
@pytest.mark.slow
def test_round_trip_import_card_check(made_elsewhere: dict[str, Path], make_config, project: Path) -> None:
    made = made_elsewhere
    imports = {key: made[key] for key in ("adapter", "lm_eval")}
    imports |= {"merged_model": made["merged"], "trainer_state": made["run"]}
    name = _config(make_config, "imp", imports)

    result = runner.invoke(app, ["import", name])
    assert result.exit_code == 0, result.output
    assert "imported training, evaluation; measured model, merge" in result.output

    layout = Layout.for_release(name, project)
    record = read_results(layout.results)
    state = json.loads((made["run"] / "trainer_state.json").read_text())
    raw = json.loads(_results_file(made["lm_eval"]).read_text())

    training = record.training
    assert training.origin.kind == "imported" and training.origin.file == "import.trainer_state/trainer_state.json"
    assert training.origin.sha256 == _sha256(made["run"] / "trainer_state.json")
    assert training.steps == state["global_step"] == 2
    assert training.final_loss == [e["loss"] for e in state["log_history"] if "loss" in e][-1]
    assert training.runtime_seconds == state["log_history"][-1]["train_runtime"]
    assert training.samples == 8  # 2 steps x 2 per device x 2 accumulated, as the Trainer counted them
    assert training.hyperparameters.lora.r == 4 and training.hyperparameters.lora.target_modules == ["q_proj", "v_proj"]
    assert "training.hyperparameters.seed" in training.origin.declared
    assert "training.hyperparameters.learning_rate" not in training.origin.declared  # logged by the Trainer

    evaluation = record.evaluation
    assert evaluation.origin.kind == "imported"
    assert evaluation.origin.sha256 == _sha256(_results_file(made["lm_eval"])) and evaluation.origin.gaps == []
    (row,) = evaluation.results
    assert row.value == raw["results"]["demo_hellaswag"]["acc_norm,none"]
    assert row.stderr == raw["results"]["demo_hellaswag"]["acc_norm_stderr,none"]
    assert row.n == raw["n-samples"]["demo_hellaswag"]["effective"] == 60 and row.limit is None

    model, merge = record.model, record.merge
    assert model.origin.kind == merge.origin.kind == "measured"
    assert {entry.path for entry in model.files} == {p.name for p in made["merged"].iterdir()}
    for entry in model.files:
        assert entry.sha256 == _sha256(layout.merged_model_dir / entry.path) == _sha256(made["merged"] / entry.path)
    assert model.dtype == "float32" and merge.strategy == "external" and merge.parity_max_abs_diff < 1e-4
    # The lineage links close: adapter trained -> merged -> scored.
    assert training.lineage.produced["adapter"] == merge.lineage.consumed["adapter"]
    assert evaluation.lineage.consumed["merged_model"] == merge.lineage.produced["merged_model"]
    assert (layout.adapter_dir / "adapter_model.safetensors").is_file()
    assert not (layout.adapter_dir / "training_args.bin").exists()  # a pickle: never copied

    assert runner.invoke(app, ["card", name]).exit_code == 0
    readme = layout.readme.read_text(encoding="utf-8")
    assert "## Where these numbers come from" in readme
    assert (
        f"| training | imported | import.trainer\\_state/trainer\\_state.json | `{training.origin.sha256[:12]}` |"
        in readme
    )
    assert "| model | measured by pubctl import |" in readme
    assert "taken from the release config as its author wrote it" in readme
    # No folder of the author's machine on a public card, not even as lm-eval spells it in its output's
    # subfolder name (/home/alice/run -> __home__alice__run).
    for text in (readme, layout.results.read_text(encoding="utf-8")):
        assert str(made["run"].parent) not in text and str(made["run"].parent).replace("/", "__") not in text

    checked = runner.invoke(app, ["check", name])
    assert checked.exit_code == 0, checked.output
    assert "imported_complete" not in checked.output and "0 failed" in checked.output

    # Imported stages have no stamps to be out of date against: status says where they came from.
    from pipeline.config import load_config
    from pipeline.status import release_state, stages_in_brief

    state = release_state(layout, load_config(name))
    assert [state[stage] for stage in ("train", "merge", "evaluate")] == ["imported"] * 3, state
    assert state["card"] == "rendered" and "out of date" not in stages_in_brief(state)


@pytest.mark.slow
def test_limit_runs_and_missing_stderr_are_flagged(made_elsewhere: dict[str, Path], make_config) -> None:
    """lm-eval --limit 1 scores one item: no stderr, a subset, and a base beside a tuned model on other items."""
    made = made_elsewhere
    imports = {"merged_model": made["merged"], "lm_eval": made["lm_eval"], "lm_eval_base": made["lm_eval_limited"]}
    name = _config(make_config, "lim", imports)
    _imported(name)
    assert runner.invoke(app, ["card", name]).exit_code == 0
    # lm-eval scored the base from a folder of this machine: the record names the declared base, not the folder.
    record = read_results(Layout.for_release(name).results).evaluation
    assert record.base_model.reference.startswith("builtin:tiny-qwen3 (local copy ")
    assert str(made["base"].parent) not in Layout.for_release(name).results.read_text(encoding="utf-8")

    result = runner.invoke(app, ["check", name])
    assert result.exit_code == 1
    for expected in (
        "imported_complete: found evaluation: lm_eval_base: lm-eval ran with --limit 1",
        "imported_complete: found evaluation: lm_eval_base demo_hellaswag: no acc_norm stderr",
        "imported_complete: found evaluation: lm_eval_base demo_hellaswag: base scored on 1 items, the tuned model on",
    ):
        assert expected in result.output, result.output
    assert "the imported output is incomplete" in Layout.for_release(name).readme.read_text(encoding="utf-8")

    # The limited run imported as the tuned model: flagged twice over, and not the published model's scores.
    name = _config(make_config, "lim2", {"merged_model": made["merged"], "lm_eval": made["lm_eval_limited"]})
    _imported(name)
    result = runner.invoke(app, ["check", name])
    assert result.exit_code == 1
    assert "imported_complete: found evaluation: lm_eval: lm-eval ran with --limit 1" in result.output
    assert "benchmark_fields: found demo_hellaswag: no stderr" in result.output
    assert "imported_scored_model: found import.lm_eval/" in result.output
    assert "eval_subset" in result.output  # the warning every limited evaluation gets


@pytest.mark.slow
def test_output_without_n_samples(made_elsewhere: dict[str, Path], make_config, tmp_path: Path) -> None:
    """lm-eval before 0.4.3 wrote no n-samples: the logged samples are counted and the gap is flagged; with no
    samples either, nothing says how many items were scored, and the import is refused."""
    older = tmp_path / "older"
    shutil.copytree(_results_file(made_elsewhere["lm_eval"]).parent, older)
    results = _results_file(older)
    data = json.loads(results.read_text())
    del data["n-samples"]
    results.write_text(json.dumps(data))
    name = _config(make_config, "old", {"lm_eval": results})
    _imported(name)
    record = read_results(Layout.for_release(name).results).evaluation
    assert record.results[0].n == 60
    assert record.origin.gaps == [
        "lm_eval demo_hellaswag: no n-samples in the lm-eval output (n counted from its samples)"
    ]

    for samples in older.glob("samples_*.jsonl"):
        samples.unlink()
    result = runner.invoke(app, ["import", name])
    assert result.exit_code == 2
    assert "says neither how many items of demo_hellaswag were scored" in result.output


@pytest.mark.slow
def test_damaged_lm_eval_output_is_refused_naming_file_and_field(
    made_elsewhere: dict[str, Path], make_config, tmp_path: Path
) -> None:
    """lm-eval's real output, damaged one way at a time: exit 2 naming the file (and the field), nothing written."""
    cases: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
        ("text", lambda d: d["results"]["demo_hellaswag"].update({"acc_norm,none": "0.9"}), "not a finite number"),
        ("nan", lambda d: d["results"]["demo_hellaswag"].update({"acc_norm,none": math.nan}), "acc_norm,none"),
        ("list", lambda d: d["results"].update({"demo_hellaswag": [1, 2]}), "results.demo_hellaswag"),
        ("config", lambda d: d["configs"].update({"demo_hellaswag": "x"}), "configs.demo_hellaswag"),
        ("huge", lambda d: d["n-samples"]["demo_hellaswag"].update({"effective": 10**30}), "does not fit in 64 bits"),
        ("limit", lambda d: d["config"].update({"limit": "1"}), "config.limit is '1', not a number"),
    ]
    for label, damage, expected in cases:
        folder = tmp_path / label
        shutil.copytree(_results_file(made_elsewhere["lm_eval"]).parent, folder)
        results = _results_file(folder)
        data = json.loads(results.read_text())
        damage(data)
        results.write_text(json.dumps(data))
        _refused(_config(make_config, f"bad-{label}", {"lm_eval": results}), expected)
    samples = next((tmp_path / "text").glob("samples_*.jsonl"))
    samples.write_bytes(b"\xff\xfe not text\n")
    results = _results_file(tmp_path / "text")
    data = json.loads(results.read_text())
    data["results"]["demo_hellaswag"]["acc_norm,none"] = 0.5
    results.write_text(json.dumps(data))
    _refused(_config(make_config, "bad-utf8", {"lm_eval": results}), "is not UTF-8 text")


# -------------------------------------------------------------------- the CPO card's record
CPO_STATE = {
    # What the published CPO card claims: 2 epochs over 3 pairs, a loss of exactly 0.0, 0.005 s, no step taken.
    "global_step": 0,
    "epoch": 2.0,
    "max_steps": 0,
    "num_train_epochs": 2,
    "train_batch_size": 2,
    "logging_steps": 1,
    "log_history": [
        {"epoch": 2.0, "step": 0, "loss": 0.0, "learning_rate": 5e-5},
        {"epoch": 2.0, "step": 0, "train_runtime": 0.005, "train_samples_per_second": 600.0, "train_loss": 0.0},
    ],
}


def test_the_cpo_cards_record_is_refused_with_every_reason(make_config, tmp_path: Path) -> None:
    state = tmp_path / "trainer_state.json"
    state.write_text(json.dumps(CPO_STATE))
    name = _config(make_config, "cpo", {"trainer_state": state}, method={"name": "cpo", "beta": None},
                   checks={"min_samples": 50})  # fmt: skip
    _imported(name)
    training = read_results(Layout.for_release(name).results).training
    assert (training.steps, training.final_loss, training.runtime_seconds, training.samples) == (0, 0.0, 0.005, 3)

    state.unlink()  # as in CI on a tagged commit: the config and the card bundle, not the files imported
    result = runner.invoke(app, ["check", name])
    assert result.exit_code == 1
    for line in (
        "training_ran: found 0 optimizer steps, expected more than 0 optimizer steps",
        "samples_min: found 3 training samples, expected at least 50",
        "loss_not_zero: found final loss exactly 0.0",
        "runtime_consistent: found 0.005 s for 0 optimizer steps",
    ):
        assert line in result.output, result.output


# ---------------------------------------------------------------------------- bad input
def _refused(name: str, *expected: str) -> None:
    result = runner.invoke(app, ["import", name])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for text in expected:
        assert text in result.output, result.output
    layout = Layout.for_release(name)
    assert not layout.results.exists() and not layout.adapter_dir.exists() and not layout.merge_dir.exists()


def test_bad_inputs_exit_2_and_write_nothing(make_config, tmp_path: Path, tiny_model_path: Path) -> None:
    _refused(
        _config(make_config, "gone", {"trainer_state": tmp_path / "nowhere"}), "import.trainer_state", "no such file"
    )

    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    _refused(_config(make_config, "fifo", {"trainer_state": fifo}), "import.trainer_state", "FIFO")
    lm_eval = tmp_path / "lm_eval"
    lm_eval.mkdir()
    os.mkfifo(lm_eval / "results_2026.json")
    _refused(_config(make_config, "fifo2", {"lm_eval": lm_eval}), "FIFO")
    model = tmp_path / "model"
    shutil.copytree(tiny_model_path, model)
    os.mkfifo(model / "extra.bin")
    _refused(_config(make_config, "fifo3", {"merged_model": model}), "extra.bin", "FIFO")

    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    _refused(_config(make_config, "list", {"trainer_state": listed}), "holds a JSON list, not an object")
    broken = tmp_path / "broken.json"
    broken.write_text('{"global_step": 2,')
    _refused(_config(make_config, "broken", {"trainer_state": broken}), "not valid JSON")
    state = tmp_path / "state.json"
    state.write_text(json.dumps(CPO_STATE))
    _refused(_config(make_config, "swapped", {"lm_eval": state}), "is not lm-eval output")
    _refused(
        _config(make_config, "notstate", {"trainer_state": model / "config.json"}), "not a transformers trainer_state"
    )

    checkpoint = tmp_path / "checkpoint-2"
    checkpoint.mkdir()
    mid_run = {**CPO_STATE, "global_step": 2, "log_history": CPO_STATE["log_history"][:1]}
    (checkpoint / "trainer_state.json").write_text(json.dumps(mid_run))
    _refused(_config(make_config, "ckpt", {"trainer_state": checkpoint}), "has no train_runtime", "save_state()")

    nested = {**CPO_STATE, "log_history": [{"step": 0, "loss": {"a": [[[1]]]}}, *CPO_STATE["log_history"][1:]]}
    state.write_text(json.dumps(nested))
    _refused(_config(make_config, "nested", {"trainer_state": state}), "log_history[0].loss is not a number")
    text_loss = {**CPO_STATE, "log_history": [{"step": 0, "loss": "0.5"}, *CPO_STATE["log_history"][1:]]}
    state.write_text(json.dumps(text_loss))
    _refused(_config(make_config, "textloss", {"trainer_state": state}), "log_history[0].loss is '0.5'")
    state.write_text(json.dumps({**CPO_STATE, "global_step": 10**30}))
    _refused(_config(make_config, "steps", {"trainer_state": state}), "training.steps", "does not fit in 64 bits")
    endless = {**CPO_STATE, "log_history": [{"step": 0, "train_runtime": 1e200, "train_samples_per_second": 1e200}]}
    state.write_text(json.dumps(endless))  # the speed x the runtime overflows: no sample count, no traceback
    result = runner.invoke(app, ["import", _config(make_config, "endless", {"trainer_state": state})])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output

    for label, damage, expected in [
        ("header", lambda p: p.write_bytes((2**62).to_bytes(8, "little") + p.read_bytes()[8:]), "safetensors"),
        ("short", lambda p: p.write_bytes(b"abc"), "not a readable safetensors file"),
    ]:
        damaged = tmp_path / f"model-{label}"
        shutil.copytree(tiny_model_path, damaged)
        damage(damaged / "model.safetensors")
        _refused(_config(make_config, f"m-{label}", {"merged_model": damaged}), expected, str(damaged))
    clash = tmp_path / "model-clash"
    shutil.copytree(tiny_model_path, clash)
    (clash / "plots").mkdir()
    (clash / "plots" / "evaluation.png").write_bytes(b"not the card's figure")
    _refused(_config(make_config, "clash", {"merged_model": clash}), "plots/evaluation.png", "publishes itself")

    undeclared = make_config("undeclared", {"method": None, "import": {"trainer_state": str(state)}})
    _refused(undeclared, "set method.name")
    _refused(make_config("nothing"), "no import section")


def test_lm_eval_output_is_found_below_a_path_with_dots(tmp_path: Path) -> None:
    """Hidden names are skipped below the given folder only: `../out` or `~/.cache/...` is the user's own prefix."""
    from pipeline.importing.evaluation import results_file

    out = tmp_path / ".cache" / "out"
    (out / "model").mkdir(parents=True)
    (out / "model" / "results_1.json").write_text("{}")
    (out / ".old").mkdir()
    (out / ".old" / "results_0.json").write_text("{}")  # lm-eval never writes there: not a candidate
    (tmp_path / "elsewhere").mkdir()
    assert results_file(tmp_path / "elsewhere" / ".." / ".cache" / "out", "lm_eval").name == "results_1.json"


def test_an_imported_enhanced_kto_run_renders_without_the_settings_no_file_records(make_config, tmp_path: Path) -> None:
    """The import records only the method settings the config writes; the card says the rest is not recorded."""
    state = tmp_path / "trainer_state.json"
    state.write_text(json.dumps(CPO_STATE))
    name = _config(make_config, "ekto", {"trainer_state": state}, method={"name": "enhanced_kto", "beta": 0.1})
    _imported(name)
    assert read_results(Layout.for_release(name).results).training.method_params == {"beta": 0.1}
    carded = runner.invoke(app, ["card", name])
    assert carded.exit_code == 0, carded.output
    assert "**Components in this run:** not recorded." in Layout.for_release(name).readme.read_text(encoding="utf-8")
