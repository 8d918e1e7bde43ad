"""The card bundle on disk: what stands where a figure or the README goes is replaced or refused, never followed."""

from __future__ import annotations

import pytest
from test_card_records import realistic_record, write_record
from typer.testing import CliRunner

from pipeline.cli import app


def test_a_linked_figure_is_not_reused_and_is_replaced_by_the_file(project, make_config):
    record = realistic_record("linked")
    make_config("linked")
    layout = write_record(project, record)
    runner = CliRunner()
    assert runner.invoke(app, ["card", "linked"]).exit_code == 0
    outside = project.parent / "outside.png"
    loss = layout.plots_dir / "loss.png"
    outside.write_bytes(loss.read_bytes())  # the same bytes, digest included
    loss.unlink()
    loss.symlink_to(outside)

    stale = runner.invoke(app, ["card", "linked", "--check"])
    assert stale.exit_code == 1
    assert "plots/loss.png: a symbolic link; the card bundle must hold the figure itself." in stale.output
    assert runner.invoke(app, ["card", "linked"]).exit_code == 0
    assert not loss.is_symlink() and loss.read_bytes() == outside.read_bytes()


@pytest.mark.parametrize("where", ["plots/loss.png", "plots/old.png", "README.md", "plots"])
def test_a_folder_or_file_in_the_way_is_one_error_and_nothing_is_written(project, make_config, where):
    make_config("inway")
    layout = write_record(project, realistic_record("inway"))
    blocker = layout.card_dir / where
    if where == "plots":
        blocker.write_text("not a folder", encoding="utf-8")
    else:
        blocker.mkdir(parents=True)
    before = sorted(path.relative_to(layout.card_dir).as_posix() for path in layout.card_dir.rglob("*"))

    result = CliRunner().invoke(app, ["card", "inway"])

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and str(blocker) in result.output
    assert sorted(path.relative_to(layout.card_dir).as_posix() for path in layout.card_dir.rglob("*")) == before
