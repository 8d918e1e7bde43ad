"""Fuzz the release's inputs: every mutation of the config or the record ends in exit 0, 1 or 2.

Derandomized and bounded (a fixed number of examples, each under an alarm), so CI runs the same
mutations every time; benchmarks/fuzz.py runs many more and counts the outcomes. A failure
prints the mutation and the command, which reproduce it by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz_inputs import (
    COMMANDS,
    Outcome,
    byte_mutation,
    demo_config,
    demo_record,
    make_project,
    run_pubctl,
    tree_mutation,
    write_config,
    write_record,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


def _assert_handled(outcome: Outcome) -> None:
    where = f"`pubctl {outcome.command}` after {outcome.mutation}"
    assert not outcome.hang, f"hang: {where}"
    assert outcome.traceback is None, f"traceback: {where}\n{outcome.traceback}"
    assert outcome.exit_code in (0, 1, 2), f"exit {outcome.exit_code}: {where}"
    assert not outcome.leaked, f"{where} wrote the outside secret or the project README: {outcome.leaked}"


@pytest.mark.parametrize("target", ["config", "record"])
def test_mutated_tree_never_tracebacks(target: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    base_tree = demo_config() if target == "config" else demo_record()
    write = write_config if target == "config" else write_record
    folder = tmp_path_factory.mktemp(f"fuzz-{target}")

    @FUZZ
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        root, outside = make_project(folder / "case")
        mutation, tree = data.draw(tree_mutation(base_tree, outside), label="mutation")
        command = data.draw(st.sampled_from(COMMANDS), label="command")
        write(root, tree)
        _assert_handled(run_pubctl(root, list(command), f"{target}: {mutation}"))

    one()


@pytest.mark.parametrize("target", ["config", "record"])
def test_mutated_bytes_never_traceback(target: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp(f"fuzz-bytes-{target}")
    relative = Path("configs/demo.yaml") if target == "config" else Path("cards/demo/results.json")

    @FUZZ
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        root, _ = make_project(folder / "case")
        text = (root / relative).read_text(encoding="utf-8")
        mutation, mutated = data.draw(byte_mutation(text), label="mutation")
        command = data.draw(st.sampled_from(COMMANDS), label="command")
        (root / relative).write_text(mutated, encoding="utf-8")
        _assert_handled(run_pubctl(root, list(command), f"{target} bytes: {mutation}"))

    one()
