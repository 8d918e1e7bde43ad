"""The shared pieces every stage relies on: references, registries, the stage contract, run options, the layout."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import load_config
from pipeline.errors import UsageError
from pipeline.layout import Layout
from pipeline.refs import DataRef, ModelRef, project_path
from pipeline.registry import Registry
from pipeline.results import MergeRecord, read_results
from pipeline.stage import DeclaredStage, StageResult, config_hashes, write_sections
from pipeline.stages import STAGE_NAMES, STAGES
from pipeline.stamps import FileHasher

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------- refs
def test_a_model_reference_is_parsed_once_into_its_kind(tmp_path: Path) -> None:
    (tmp_path / "models" / "mine").mkdir(parents=True)
    builtin = ModelRef.parse("builtin:tiny-qwen3", tmp_path)
    assert (builtin.kind, builtin.is_builtin, builtin.is_hub, builtin.problem) == ("builtin", True, False, None)
    local = ModelRef.parse("models/mine", tmp_path)
    assert (local.kind, local.path, local.problem) == ("local", tmp_path / "models" / "mine", None)
    hub = ModelRef.parse("Qwen/Qwen3-0.6B", tmp_path, "abc123")
    assert (hub.kind, hub.is_hub, hub.hub_url) == ("hub", True, "https://huggingface.co/Qwen/Qwen3-0.6B")
    # A Hub-shaped name that exists as a folder of the project is that folder, never a download.
    (tmp_path / "Qwen" / "Qwen3-0.6B").mkdir(parents=True)
    assert ModelRef.parse("Qwen/Qwen3-0.6B", tmp_path).is_local

    assert "unknown built-in model 'builtin:nope'" in ModelRef.parse("builtin:nope", tmp_path).problem
    missing = ModelRef.parse("./models/absent", tmp_path)
    assert missing.is_local and "no folder exists" in missing.problem
    invalid = ModelRef.parse("not a/valid--id", tmp_path)
    assert invalid.kind == "invalid" and "neither a Hub model id nor an existing folder" in invalid.problem
    assert ModelRef.parse("", tmp_path).kind == "invalid"


def test_a_recorded_local_dataset_stays_local_where_the_file_is_absent(tmp_path: Path) -> None:
    # CI renders cards from a checkout without data/: the record's sha256 revision says the file was local.
    recorded = DataRef.parse("data/prefs.jsonl", tmp_path, "sha256:" + "0" * 64)
    assert recorded.is_local and not recorded.is_hub and recorded.hub_url is None
    assert DataRef.parse("data/prefs.jsonl", tmp_path).is_local  # a data suffix is a path, not a repo id
    hub = DataRef.parse("HuggingFaceH4/ultrafeedback_binarized", tmp_path, "main", subset="default")
    assert hub.hub_url == "https://huggingface.co/datasets/HuggingFaceH4/ultrafeedback_binarized"
    assert hub.stamp_key(FileHasher(None)) == "hub:HuggingFaceH4/ultrafeedback_binarized/default@main"
    builtin = DataRef.parse("builtin:preferences", tmp_path)
    assert builtin.local_file() is not None and builtin.local_file().is_file()


def test_project_paths_resolve_against_the_project_root_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir("/")
    assert project_path("templates/x.j2", tmp_path) == tmp_path / "templates" / "x.j2"
    assert project_path("/abs/x", tmp_path) == Path("/abs/x")
    assert project_path("~/x", tmp_path) == Path.home() / "x"


# --------------------------------------------------------------------- registry
def test_an_unknown_name_is_one_error_naming_the_known_ones_and_the_closest() -> None:
    registry: Registry[int] = Registry("colour")
    registry.add("red", 1)
    registry.add("green", 2)
    with pytest.raises(ValueError, match="registered twice"):
        registry.add("red", 3)
    with pytest.raises(
        UsageError, match=r"^palette: unknown colour 'gren'; known: red, green\. Did you mean 'green'\?$"
    ):
        registry.get_or_fail("gren", source="palette")
    assert "Did you mean 'red'?" in registry.unknown("RED")  # case is the commonest slip
    assert list(registry) == ["red", "green"] and registry["green"] == 2


def test_every_lookup_by_name_goes_through_a_registry() -> None:
    from pipeline.checks import CHECKS
    from pipeline.citations import CITATIONS
    from pipeline.methods import METHODS

    for registry in (METHODS, CHECKS, CITATIONS, STAGES):
        assert isinstance(registry, Registry)
    assert STAGE_NAMES == ("train", "merge", "evaluate", "card", "check", "push")


# ---------------------------------------------------------------- stage contract
def test_each_record_section_has_one_owner() -> None:
    owners: dict[str, str] = {}
    for stage in STAGES.values():
        for section in stage.owns:
            assert section not in owners, f"{section} owned by {owners.get(section)} and {stage.name}"
            owners[section] = stage.name
    assert owners == {
        "training": "train",
        "model": "merge",
        "merge": "merge",
        "evaluation": "evaluate",
        "waivers": "check",
    }


def test_write_sections_refuses_a_section_the_stage_does_not_own(
    make_config: Callable[..., str], project: Path
) -> None:
    config = load_config(make_config("owner"))
    layout = Layout.for_release(config.name)
    record = MergeRecord(strategy="streaming", parity_max_abs_diff=0.0, probe_prompts=1)
    with pytest.raises(ValueError, match=r"stage evaluate returned record sections it does not own: \['merge'\]"):
        write_sections(layout, STAGES["evaluate"], config, {"merge": record})
    assert not layout.results.exists()
    write_sections(layout, STAGES["merge"], config, {"merge": record})
    written = json.loads(layout.results.read_text())
    # merge does not measure provenance; a field no stage set is absent, not a default.
    assert "provenance" not in written and written["merge"] == {
        "strategy": "streaming",
        "parity_max_abs_diff": 0.0,
        "probe_prompts": 1,
    }
    assert read_results(layout.results).merge == record


def test_run_options_are_hashed_at_their_default(make_config: Callable[..., str], project: Path) -> None:
    plain = load_config(make_config("plain"))
    tracked = load_config(make_config("tracked", {"training": {"report_to": ["tensorboard"], "save_total_limit": 9}}))
    fields = STAGES["train"].config_fields
    from pipeline.config.run_options import RUN_OPTIONS

    assert config_hashes(fields, plain, RUN_OPTIONS) == config_hashes(fields, tracked, RUN_OPTIONS)
    # Without the run options they differ: the normalisation, not the fields, makes them equal.
    assert config_hashes(fields, plain) != config_hashes(fields, tracked)
    changed = load_config(make_config("changed", {"training": {"learning_rate": 1e-5}}))
    assert (
        config_hashes(fields, plain, RUN_OPTIONS)["training"] != config_hashes(fields, changed, RUN_OPTIONS)["training"]
    )


def test_a_stage_that_returns_no_stage_result_is_a_bug(
    make_config: Callable[..., str], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline import release

    config = load_config(make_config("bug"))
    layout = Layout.for_release(config.name)
    monkeypatch.setattr("pipeline.stage.load_entry", lambda entry: lambda config, layout, **options: "done")
    with pytest.raises(TypeError, match="stage card returned str, not a StageResult"):
        release.run_stage("card", config, layout)


def test_a_declared_stage_is_a_stage() -> None:
    stage = DeclaredStage("x", (), ("card",), "pipeline.stages.card:run", ())
    assert stage.load().__name__ == "run"
    assert StageResult("s").stamped is True and StageResult("s").sections == {}


# ------------------------------------------------------------------------ shape
def _architecture() -> Any:
    spec = importlib.util.spec_from_file_location("architecture", ROOT / "benchmarks" / "architecture.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_package_has_no_import_loop() -> None:
    import ast

    arch = _architecture()
    files = sorted((ROOT / "pipeline").rglob("*.py"))
    names = {path: arch.module_name(path, ROOT) for path in files}
    modules = set(names.values())
    graph = {
        names[path]: arch.imports_of(ast.parse(path.read_text()), names[path], path.name == "__init__.py", modules)
        for path in files
    }
    assert arch.cycles(graph) == []
