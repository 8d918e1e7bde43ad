"""Pytest fixtures around tests/hub_server.py: a Hub-compatible server the real huggingface_hub client talks to.

huggingface_hub reads HF_ENDPOINT and HF_HUB_DISABLE_XET once, when it is first
imported, and every test in a worker process shares that import. So
:func:`reserve_local_hub` runs from conftest.py before any test imports the
library: it binds a socket on 127.0.0.1 now (no port race later; it listens
once the server starts) and points HF_ENDPOINT at it. The ``hub`` fixture
(imported into conftest.py, so every test module can ask for it) serves that
socket and hands each test an empty Hub.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from hub_server import HubServer

from pipeline.layout import Layout

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig

TEST_TOKEN = "hf_pubctl_test_token_0123456789"
"""What tests use as HF_TOKEN unless they bring their own (the canary test does)."""

_reserved: socket.socket | None = None


def reserve_local_hub() -> str:
    """Bind the local Hub's socket and set HF_ENDPOINT / HF_HUB_DISABLE_XET; returns the endpoint URL."""
    global _reserved
    if _reserved is None:
        if "huggingface_hub" in sys.modules:
            raise RuntimeError("reserve_local_hub() must run before huggingface_hub is imported (from conftest.py).")
        # Bound but not listening until a test starts the server: until then a request from any test is
        # refused at once (as with no Hub access) instead of waiting on a socket nobody answers.
        _reserved = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        _reserved.bind(("127.0.0.1", 0))
        host, port = _reserved.getsockname()[:2]
        # Tests must never reach the real Hub, and a local server speaks plain LFS, not Xet.
        os.environ["HF_ENDPOINT"] = f"http://{host}:{port}"
        os.environ["HF_HUB_DISABLE_XET"] = "1"
    return os.environ["HF_ENDPOINT"]


@pytest.fixture(scope="session")
def hub_session() -> Iterator[HubServer]:
    """The worker's Hub server, started once on the socket conftest.py reserved."""
    if _reserved is None:
        pytest.fail("conftest.py must call hub_fixtures.reserve_local_hub() at import time")
    server = HubServer(_reserved).start()
    assert server.url == os.environ["HF_ENDPOINT"]
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def hub(hub_session: HubServer, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    """An empty Hub for this test, with HF_TOKEN set to a test token and progress bars off."""
    hub_session.reset()
    monkeypatch.setenv("HF_TOKEN", TEST_TOKEN)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return hub_session


# --------------------------------------------------------------------- a demo-like release
def build_demo_project(
    tmp_path_factory: pytest.TempPathFactory,
    model_source: Path,
    edit_config: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """A project with the repository's configs and templates and the demo release laid out by
    :func:`build_release`, for a module-scoped fixture to copy into each test (the card render is the slow
    part). ``edit_config`` changes configs/demo.yaml's data first."""
    from pipeline.config import load_config

    root = tmp_path_factory.mktemp("built") / "project"
    repo_root = Path(__file__).resolve().parent.parent
    shutil.copytree(repo_root / "configs", root / "configs")
    shutil.copytree(repo_root / "templates", root / "templates")
    if edit_config is not None:
        path = root / "configs" / "demo.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        edit_config(data)
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    build_release(load_config("demo", root), Layout.for_release("demo", root), model_source)
    return root


def build_release(config: ReleaseConfig, layout: Layout, model_source: Path) -> None:
    """Lay out what the stages before push leave, without running them: a merged model and a card bundle.

    The merged model is a copy of ``model_source`` (the built-in tiny Qwen3). results.json
    records its files, parameter count and dtype as the merge stage would, a 12-step
    training log and three benchmark results with their base scores (numbers written
    here, as a small demo run produces them); the card stage then renders README.md and
    plots/ from that record, so the bundle is what `pubctl card` commits.
    """
    from pipeline.provenance import collect
    from pipeline.results import (
        BenchmarkResult,
        DatasetRecord,
        EvaluationRecord,
        FileEntry,
        Hyperparameters,
        LoraRecord,
        MergeRecord,
        ModelRecord,
        Results,
        ThroughputRecord,
        TrainingRecord,
        write_results,
    )
    from pipeline.stages.card import render_card

    shutil.rmtree(layout.merged_model_dir, ignore_errors=True)
    shutil.copytree(model_source, layout.merged_model_dir)
    files = [
        FileEntry(path=p.name, size=p.stat().st_size, sha256=hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(layout.merged_model_dir.iterdir())
        if p.is_file()
    ]
    model_config = json.loads((layout.merged_model_dir / "config.json").read_text(encoding="utf-8"))
    steps = 12
    log = [
        {"step": s, "loss": 0.70 - 0.01 * s, "learning_rate": 5e-4 * (1 - s / steps), "rewards/chosen": 0.01 * s,
         "rewards/rejected": -0.01 * s, "rewards/margins": 0.02 * s, "kl": 0.001 * s}
        for s in range(1, steps + 1)
    ]  # fmt: skip
    lora = config.lora
    training = TrainingRecord(
        method=config.method.name,
        method_params=config.method.model_dump(exclude={"name"}),
        datasets=[DatasetRecord(id=config.data.train, split=config.data.split, revision=None, rows=96)],
        hyperparameters=Hyperparameters(
            epochs=config.training.epochs,
            per_device_batch_size=config.training.per_device_batch_size,
            gradient_accumulation_steps=config.training.gradient_accumulation_steps,
            effective_batch_size=config.training.effective_batch_size,
            learning_rate=config.training.learning_rate,
            max_length=config.training.max_length,
            seed=config.training.seed,
            lora=LoraRecord(r=lora.r, alpha=lora.alpha, dropout=lora.dropout, target_modules=lora.target_modules),
        ),
        steps=steps,
        samples=96,
        runtime_seconds=6.0,
        final_loss=log[-1]["loss"],
        log_history=log,
    )
    benchmarks = [
        BenchmarkResult(
            task=task.name,
            dataset_id=f"pubctl/{task.name}",
            split="test",
            num_fewshot=task.num_fewshot,
            metric=task.metric,
            value=0.26 + 0.01 * i,
            stderr=0.04,
            n=100,
            base_value=0.25,
            chance=0.25,
        )
        for i, task in enumerate(config.evaluation.tasks)
    ]
    throughput = ThroughputRecord(
        device="test CPU",
        dtype="float32",
        prompts=4,
        new_tokens=16,
        runs=3,
        tokens_per_second_median=100.0,
        tokens_per_second_min=90.0,
        tokens_per_second_max=110.0,
    )
    evaluation = EvaluationRecord(harness_version="0.4.13", results=benchmarks, throughput=throughput)
    results = Results(
        release=layout.name,
        model=ModelRecord(
            base_model=config.model.base_model,
            architecture=model_config["architectures"][0],
            parameters=_parameter_count(layout.merged_model_dir),
            dtype=str(model_config.get("torch_dtype") or model_config.get("dtype") or "float32"),
            files=files,
        ),
        training=training,
        merge=MergeRecord(strategy="streaming", parity_max_abs_diff=0.0, probe_prompts=4),
        evaluation=evaluation,
        provenance=collect(config, layout.root),
    )
    _link(results)
    write_results(layout.results, results)
    render_card(config, layout)


def _link(results: Any) -> None:
    """The lineage the stages would record: one adapter trained and merged, the merged files scored."""
    from pipeline.lineage import files_digest, lineage

    base = f"builtin:tiny-qwen3#{'0' * 16}"
    merged = files_digest(results.model.files)
    results.training.lineage = lineage({"base_model": base, "dataset": "d" * 64}, {"adapter": "a" * 64})
    results.merge.lineage = lineage({"adapter": "a" * 64, "base_model": base}, {"merged_model": merged})
    results.evaluation.lineage = lineage({"merged_model": merged, "base_model": base})


def _parameter_count(folder: Path) -> int:
    from safetensors import safe_open

    total = 0
    for shard in sorted(folder.glob("*.safetensors")):
        with safe_open(str(shard), framework="numpy") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                count = 1
                for dim in handle.get_slice(key).get_shape():
                    count *= dim
                total += count
    return total
