"""The drawing process `pubctl card` and `pubctl check` start before loading the config: same bytes, always stopped."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest
from conftest import REPO_ROOT, run_idle_and_single_threaded
from test_card_records import hostile_record, realistic_record
from typer.testing import CliRunner

from pipeline import plot_worker
from pipeline.plots import build_plots


@pytest.fixture
def idle_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two idle CPUs, so a drawing process is started whatever else the test machine is running."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))


def _sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many jobs each exchange with a drawing process carried."""
    counts: list[int] = []
    real = plot_worker.Drawer.send

    def spy(self: plot_worker.Drawer, jobs: list) -> None:
        counts.append(len(jobs))
        real(self, jobs)

    monkeypatch.setattr(plot_worker.Drawer, "send", spy)
    return counts


@pytest.mark.parametrize("record", [realistic_record("worker"), hostile_record("worker")], ids=["real", "hostile"])
def test_the_drawing_process_draws_the_bytes_drawn_here(idle_machine, monkeypatch, record):
    here = [plot.png for plot in build_plots(record)]
    sent = _sent(monkeypatch)

    with plot_worker.drawing_ahead():
        there = [plot.png for plot in build_plots(record)]

    assert sent == [len(here)]  # every figure went to the drawing process
    assert there == here


def test_figures_after_the_first_exchange_are_drawn_here(idle_machine, monkeypatch):
    sent = _sent(monkeypatch)
    with plot_worker.drawing_ahead():
        first = build_plots(realistic_record("a"))
        second = build_plots(realistic_record("b"))
        assert [p.png for p in second] == [p.png for p in build_plots(realistic_record("b"))]
        assert first[0].png.startswith(b"\x89PNG")
    assert sent == [5]


def test_an_unused_drawing_process_is_stopped_at_the_end_of_the_command(idle_machine):
    with plot_worker.drawing_ahead():
        drawer = plot_worker._STARTED
        assert drawer is not None and drawer.process.poll() is None
    assert drawer.process.returncode is not None  # reaped, not left running
    assert plot_worker._STARTED is None and plot_worker.take_started() is None


def test_a_busy_machine_or_an_unlikely_draw_starts_no_process(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (64.0, 64.0, 64.0))
    assert plot_worker.start() is None
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    with plot_worker.drawing_ahead(likely=False):
        assert plot_worker._STARTED is None


def test_a_failing_drawing_process_is_an_error_with_its_output(idle_machine, capsys):
    with plot_worker.drawing_ahead():
        drawer = plot_worker.take_started()
        assert drawer is not None
        drawer.send([("no-such-kind", {}, "0" * 64)])
        with pytest.raises(plot_worker.DrawingFailed, match="exited with 1 drawing 1 figures"):
            drawer.receive(1)
    assert "no-such-kind" in capsys.readouterr().err  # the child's traceback, passed on


def test_a_damaged_answer_is_refused():
    png = b"\x89PNG-bytes"
    frame = struct.pack(">Q", len(png)) + png
    assert plot_worker._frames(frame * 2, 2) == [png, png]
    with pytest.raises(plot_worker.DrawingFailed, match="1 of 2"):
        plot_worker._frames(frame, 2)
    with pytest.raises(plot_worker.DrawingFailed, match="damaged frame"):
        plot_worker._frames(frame[:-1], 1)
    with pytest.raises(plot_worker.DrawingFailed, match="more than"):
        plot_worker._frames(frame + b"x", 1)
    with pytest.raises(plot_worker.DrawingFailed, match="damaged frame"):
        plot_worker._frames(struct.pack(">Q", plot_worker.PNG_MAX_BYTES + 1), 1)


def test_stale_figures_guesses_from_file_times(tmp_path: Path):
    card = tmp_path / "cards" / "r"
    assert plot_worker.stale_figures("r", tmp_path)  # nothing rendered yet
    (card / "plots").mkdir(parents=True)
    (card / "plots" / "loss.png").write_bytes(b"png")
    os.utime(card / "plots" / "loss.png", (1_000, 1_000))
    (card / "results.json").write_text("{}", encoding="utf-8")
    assert plot_worker.stale_figures("r", tmp_path)  # the record is newer than a figure
    os.utime(card / "results.json", (500, 500))
    assert not plot_worker.stale_figures("r", tmp_path)
    assert not plot_worker.stale_figures("configs/r.yaml", tmp_path)  # a config path names the same release


def test_cli_card_and_check_draw_in_the_process_they_started(idle_machine, monkeypatch, project):
    from pipeline.cli import app

    shutil.copytree(REPO_ROOT / "cards" / "demo", project / "cards" / "demo")
    committed = {path.name: path.read_bytes() for path in (project / "cards" / "demo" / "plots").glob("*.png")}
    shutil.rmtree(project / "cards" / "demo" / "plots")
    sent = _sent(monkeypatch)
    runner = CliRunner()

    drawn = runner.invoke(app, ["card", "demo"])
    assert drawn.exit_code == 0, drawn.output
    assert {path.name: path.read_bytes() for path in (project / "cards" / "demo" / "plots").glob("*.png")} == committed
    checked = runner.invoke(app, ["card", "demo", "--check"])
    assert checked.exit_code == 0, checked.output
    again = runner.invoke(app, ["card", "demo"])  # figures current: none drawn, no process started
    assert again.exit_code == 0, again.output

    assert sent == [len(committed), len(committed)]


def test_a_module_in_the_working_directory_is_not_imported_by_the_drawing_process(idle_machine, project):
    marker = project / "imported-from-cwd"
    for module in ("json", "sys", "signal", "threading", "struct"):  # what the child imports before anything else
        (project / f"{module}.py").write_text(f"open({str(marker)!r}, 'a').write({module!r})\n", encoding="utf-8")
    record = realistic_record("cwd")

    with plot_worker.drawing_ahead():
        drawn = [plot.png for plot in build_plots(record)]

    assert not marker.exists(), marker.read_text(encoding="utf-8")
    for module in ("json", "sys", "signal", "threading", "struct"):
        (project / f"{module}.py").unlink()
    assert drawn == [plot.png for plot in build_plots(record)]


def test_a_drawing_process_that_dies_leaves_the_figures_to_this_one(idle_machine, monkeypatch, capsys):
    record = realistic_record("killed")
    here = [plot.png for plot in build_plots(record)]
    real = plot_worker.Drawer.send

    def killed_first(self: plot_worker.Drawer, jobs: list) -> None:
        self.process.kill()  # as an out-of-memory killer or a user's kill -9 would
        self.process.wait()
        real(self, jobs)

    monkeypatch.setattr(plot_worker.Drawer, "send", killed_first)
    with plot_worker.drawing_ahead():
        again = [plot.png for plot in build_plots(record)]

    assert again == here
    err = capsys.readouterr().err
    assert "the drawing process exited with -9 drawing 5 figures; drawing the figures in this process instead" in err


def test_the_drawing_process_warnings_go_to_the_stage_log(idle_machine, monkeypatch, make_config, project):
    from test_card_records import write_record

    from pipeline.cli import app

    record = realistic_record("glyphs")
    record.evaluation.results[0].task = "\u7ffb\u8a33 \U0001f9ea"  # glyphs DejaVu Sans lacks: matplotlib warns
    make_config("glyphs")
    layout = write_record(project, record)
    sent = _sent(monkeypatch)

    result = CliRunner().invoke(app, ["card", "glyphs"])

    assert result.exit_code == 0, result.output
    assert sent, "the figures were not drawn by the drawing process"
    assert "missing from font" not in result.output
    log = (layout.run_dir / "logs" / "card.log").read_text(encoding="utf-8")
    assert "missing from font" in log
    assert "log: runs/glyphs/logs/card.log" in result.output


def test_a_fresh_clone_starts_the_drawing_process_until_the_first_render(idle_machine, project):
    from pipeline.cli import app

    shutil.copytree(REPO_ROOT / "cards" / "demo", project / "cards" / "demo")
    card = project / "cards" / "demo"
    for png in (card / "plots").glob("*.png"):  # git checks the figures out before the record
        os.utime(png, (1_000, 1_000))
    assert plot_worker.stale_figures("demo")

    assert CliRunner().invoke(app, ["card", "demo"]).exit_code == 0

    assert not plot_worker.stale_figures("demo")  # the card stage's stamp now dates the last render
    os.utime(card / "results.json")  # a stage wrote the record again
    assert plot_worker.stale_figures("demo")


def test_a_drawing_child_killed_mid_figure_is_redrawn_here_at_once():
    """multiprocessing.Pool waits forever for a task whose worker died; the executor breaks at once."""
    done = run_idle_and_single_threaded(
        """
        from pipeline.plot_drawing import DRAWINGS, draw_curves

        parent = os.getpid()

        def dies_in_a_child(fig, inputs):
            if os.getpid() != parent:
                os.kill(os.getpid(), 9)  # as the out-of-memory killer would
            draw_curves(fig, inputs)

        DRAWINGS.add("dies-in-a-child", dies_in_a_child)
        inputs = {"title": "t", "ylabel": "loss", "layout": "one", "panels": [[["loss", [1.0, 2.0], [0.5, 0.4]]]]}
        jobs = [("curves", inputs, "a" * 64), ("dies-in-a-child", inputs, "a" * 64), ("curves", inputs, "b" * 64)]
        pngs = plot_png.draw_here(jobs)
        assert pngs[0] == pngs[1] == plot_png.draw_png("curves", inputs, "a" * 64)
        print("redrawn here")
        """
    )
    assert done.stdout.strip() == "redrawn here"
    assert "a figure-drawing child process ended early" in done.stderr
