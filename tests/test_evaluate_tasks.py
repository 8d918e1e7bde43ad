"""The bundled offline tasks: resolved at run time, scored exactly as lm-eval's real tasks, metadata helpers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.config import TaskSpec
from pipeline.errors import UsageError
from pipeline.evaluation.harness import check_task_names, task_manager
from pipeline.evaluation.tasks import (
    builtin_tasks_dir,
    chance_from_samples,
    dataset_of,
    lm_eval_tasks_dir,
    materialize_tasks,
    prepare_task_source,
)

# Keys that say where the data comes from: the only ones a demo task may change.
DATA_KEYS = {"task", "task_alias", "tag", "dataset_path", "dataset_name", "dataset_kwargs", "process_docs"}
MMLU_SUBJECTS = [
    "elementary_mathematics",
    "high_school_biology",
    "high_school_chemistry",
    "high_school_computer_science",
    "high_school_geography",
    "high_school_physics",
]


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return materialize_tasks(builtin_tasks_dir(), tmp_path_factory.mktemp("tasks"))


def _load(path: Path) -> dict:
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(path, resolve_func=False)


@pytest.mark.parametrize(
    ("demo", "upstream"),
    [("demo_hellaswag", "hellaswag/hellaswag.yaml"), ("demo_truthfulqa_mc2", "truthfulqa/truthfulqa_mc2.yaml")]
    + [(f"demo_mmlu_{s}", f"mmlu/default/mmlu_{s}.yaml") for s in MMLU_SUBJECTS],
)
def test_demo_task_scores_like_the_real_one(resolved: Path, demo: str, upstream: str) -> None:
    ours = _load(resolved / f"{demo}.yaml")
    real = _load(lm_eval_tasks_dir() / upstream)
    # Prompt, choices, target, few-shot sampling, metrics and process_results are lm-eval's own.
    for key in set(ours) | set(real):
        if key not in DATA_KEYS:
            assert ours.get(key) == real.get(key), key
    assert ours["dataset_path"] == "json"
    for files in ours["dataset_kwargs"]["data_files"].values():
        assert Path(files).is_absolute() and Path(files).is_file()


def test_demo_mmlu_group_aggregates_like_mmlu(resolved: Path) -> None:
    ours = _load(resolved / "_demo_mmlu.yaml")
    real = _load(lm_eval_tasks_dir() / "mmlu/default/_mmlu.yaml")
    assert ours["aggregate_metric_list"] == real["aggregate_metric_list"]
    assert ours["task"] == [f"demo_mmlu_{s}" for s in MMLU_SUBJECTS]


def test_demo_mmlu_few_shot_pool_is_per_subject(resolved: Path) -> None:
    """Five dev shots of the task's own subject, as real MMLU's per-subject dev split gives."""
    import datasets

    from pipeline.evaluation.harness import hf_offline

    module_dir = builtin_tasks_dir()
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo_mmlu_utils", module_dir / "demo_mmlu_utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    with hf_offline(True):
        dev = datasets.load_dataset("json", data_files=str(module_dir / "mmlu_mini_dev.jsonl"), split="train")
    for subject in MMLU_SUBJECTS:
        rows = getattr(utils, f"process_{subject}")(dev)
        assert len(rows) == 5
        assert set(rows["subject"]) == {subject}


def test_missing_data_file_is_a_usage_error(tmp_path: Path) -> None:
    source = tmp_path / "tasks"
    shutil.copytree(builtin_tasks_dir(), source, ignore=shutil.ignore_patterns("__pycache__"))
    (source / "truthfulqa_mc2_mini.jsonl").unlink()
    with pytest.raises(UsageError, match=r"demo_truthfulqa_mc2.*truthfulqa_mc2_mini\.jsonl.*does not exist"):
        materialize_tasks(source, tmp_path / "out")


def test_include_path_must_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"evaluation\.include_path: 'nope' is not a folder"):
        prepare_task_source("nope", tmp_path, tmp_path / "work")


def test_unknown_task_names_suggest_close_ones(tmp_path: Path) -> None:
    source = prepare_task_source("builtin", tmp_path, tmp_path / "work")
    manager = task_manager(source)
    check_task_names(manager, [TaskSpec(name="demo_mmlu", num_fewshot=5)], source)
    with pytest.raises(UsageError, match=r"unknown lm-eval task 'demo_hellaswg'.*Did you mean demo_hellaswag"):
        check_task_names(manager, [TaskSpec(name="demo_hellaswg")], source)


def test_dataset_of_names_bundled_files_portably(resolved: Path) -> None:
    config = _load(resolved / "demo_hellaswag.yaml")
    config.update(training_split="train", validation_split="validation", test_split=None)
    assert dataset_of(config, Path("/elsewhere")) == ("pipeline/demo/tasks/hellaswag_mini.jsonl", None, "validation")
    hub = {"dataset_path": "cais/mmlu", "dataset_name": "anatomy", "test_split": "test"}
    assert dataset_of(hub, Path("/elsewhere")) == ("cais/mmlu", "anatomy", "test")


def test_chance_from_items() -> None:
    four = [{"doc": {}, "arguments": {f"gen_args_{i}": {} for i in range(4)}} for _ in range(3)]
    assert chance_from_samples(four, "acc_norm") == pytest.approx(0.25)
    mc2 = [
        {"doc": {"mc2_targets": {"labels": [1, 1, 0, 0, 0]}}, "arguments": {}},
        {"doc": {"mc2_targets": {"labels": [1, 0, 0, 0]}}, "arguments": {}},
    ]
    assert chance_from_samples(mc2, "acc") == pytest.approx((2 / 5 + 1 / 4) / 2)
    assert chance_from_samples(four, "exact_match") is None


def test_offline_flags_are_restored_when_first_imported_inside() -> None:
    """A first import of huggingface_hub / datasets inside hf_offline must not leave the process offline."""
    import os
    import subprocess
    import sys

    code = (
        "from pipeline.evaluation.harness import hf_offline\n"
        "with hf_offline(True):\n"
        "    import huggingface_hub.constants as c\n"
        "    assert c.is_offline_mode()\n"
        "import datasets.config as d, huggingface_hub.constants as c\n"
        "print(c.is_offline_mode(), d.HF_HUB_OFFLINE, d.HF_DATASETS_OFFLINE)\n"
    )
    online = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    env = {key: value for key, value in os.environ.items() if key not in online}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False", "False"]


def test_user_task_digest_covers_data_files_outside_the_folder(tmp_path: Path) -> None:
    """The base-result cache key changes when a user task's data file (kept outside its folder) changes."""
    from pipeline.evaluation.tasks import folder_digest

    data = tmp_path / "data" / "items.jsonl"
    data.parent.mkdir()
    data.write_text('{"q": "a"}\n', encoding="utf-8")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "mine.yaml").write_text(
        f"task: mine\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\n", encoding="utf-8"
    )
    before = folder_digest(tasks)
    assert folder_digest(tasks) == before
    data.write_text('{"q": "b"}\n', encoding="utf-8")
    assert folder_digest(tasks) != before


def test_model_trust_remote_code_reaches_lm_eval(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """model.trust_remote_code is passed to lm-eval's HF model (it refuses custom modelling code without it)."""
    from lm_eval.api.registry import get_model

    from pipeline.evaluation.harness import HarnessSettings, load_model

    seen: list[dict] = []
    monkeypatch.setattr(get_model("hf"), "create_from_arg_obj", classmethod(lambda cls, args, extra: seen.append(args)))
    for trust in (False, True):
        settings = HarnessSettings("cpu", 8, None, 100, 1234, trust_remote_code=trust)
        load_model(tmp_path, "float32", settings)
        assert settings.as_dict()["trust_remote_code"] is trust
    assert [args["trust_remote_code"] for args in seen] == [False, True]
    assert seen[0]["pretrained"] == str(tmp_path) and seen[0]["dtype"] == "float32"


def test_base_fingerprint_covers_weights_config_and_tokenizer(tmp_path: Path) -> None:
    """A local base's cache fingerprint changes with its tokenizer too (lm-eval tokenizes with it)."""
    import os

    from pipeline.sources import ResolvedModel
    from pipeline.stages.evaluate import _model_fingerprint

    for name in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "README.md"):
        (tmp_path / name).write_text(name)
    model = ResolvedModel(reference="local", path=tmp_path, revision=None)
    listed = [entry[0] for entry in _model_fingerprint(model)["files"]]
    assert listed == ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    before = _model_fingerprint(model)
    os.utime(tmp_path / "tokenizer.json", ns=(1, 1))
    assert _model_fingerprint(model) != before
    assert _model_fingerprint(ResolvedModel(reference="org/m", path=tmp_path, revision="abc")) == {"revision": "abc"}
