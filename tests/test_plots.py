"""Plots: byte-identical PNGs from the same record, no varying metadata, a figure only where data exists."""

from __future__ import annotations

import os
import struct
import time
import zlib

from conftest import run_idle_and_single_threaded
from test_card_records import hostile_record, log_history, realistic_record

from pipeline import plot_png
from pipeline.plot_series import MAX_POINTS, thin_indices
from pipeline.plots import build_plots, png_text


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every PNG chunk, checking each CRC."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = [], 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        data = png[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", png[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + data) == crc
        chunks.append((kind, data))
        offset += 12 + length
    return chunks


def test_same_record_gives_byte_identical_pngs_without_varying_metadata():
    record = realistic_record("p")

    first = build_plots(record)
    second = build_plots(record)

    assert [p.name for p in first] == ["loss.png", "rewards.png", "kl.png", "learning_rate.png", "evaluation.png"]
    assert [p.png for p in first] == [p.png for p in second]
    for plot in first:
        chunks = _chunks(plot.png)
        kinds = {kind for kind, _ in chunks}
        assert not kinds & {b"iTXt", b"zTXt", b"tIME"}, f"{plot.name} carries varying metadata {kinds}"
        # One text chunk only: the digest of the figure's inputs (no Software, no time).
        assert [data.split(b"\0")[0] for kind, data in chunks if kind == b"tEXt"] == [b"pubctl-inputs"]
        width, height = struct.unpack(">II", _chunks(plot.png)[0][1][:8])
        # Twice the pixels of 100 dpi (sharp on high-resolution screens); the rewards stack two axes.
        assert (width, height) == ((1280, 1040) if plot.name == "rewards.png" else (1280, 720))


def test_alt_text_states_what_the_figure_shows():
    plots = {p.name: p for p in build_plots(realistic_record("p"))}
    loss = plots["loss.png"].alt
    assert loss.startswith("Training loss against optimizer step (12 logged points).")
    assert "0.6556 at step 1" in loss and "at step 12" in loss
    evaluation = plots["evaluation.png"].alt
    assert "hellaswag acc_norm 10-shot: 0.4213 ± 0.0049 (base 0.417), chance 0.25" in evaluation


def test_a_held_out_loss_is_not_called_training_loss():
    record = realistic_record("p")
    record.training.log_history += [{"step": 6, "eval_loss": 0.61}, {"step": 12, "eval_loss": 0.58}]

    loss = {p.name: p for p in build_plots(record)}["loss.png"]

    assert loss.title == "Training and evaluation loss"
    assert loss.alt.startswith("Training and evaluation loss against optimizer step (12 logged points).")
    assert "eval_loss: 0.61 at step 6 to 0.58 at step 12 (2 points)." in loss.alt


def test_a_negative_score_and_its_error_bar_stay_inside_the_axis(monkeypatch):
    from matplotlib.axes import Axes

    monkeypatch.setattr(plot_png, "MAX_PROCESSES", 1)  # drawn in this process, where the spy records

    record = realistic_record("p")
    record.evaluation.results[0] = record.evaluation.results[0].model_copy(
        update={"metric": "mcc", "value": -0.04, "stderr": 0.03, "base_value": -0.01, "chance": 0.0}
    )
    limits: list[tuple[float, float]] = []
    real = Axes.set_ylim
    monkeypatch.setattr(Axes, "set_ylim", lambda ax, *args, **kw: limits.append(args) or real(ax, *args, **kw))

    build_plots(record)

    assert limits and limits[-1][0] <= -0.07


def test_figures_only_for_logged_data_and_method_terms_when_logged():
    record = realistic_record("p", method="cpo")
    record.evaluation = None
    history = log_history(6, kl=False)
    for entry in history:
        entry["nll_loss"] = entry["loss"] / 2
    record.training.log_history = history

    names = [p.name for p in build_plots(record, method_metrics=("rewards/chosen", "nll_loss"))]

    assert names == ["loss.png", "rewards.png", "learning_rate.png", "method_metrics.png"]
    record.training = None
    assert build_plots(record) == []


def test_hostile_labels_are_drawn_as_text():
    plots = {p.name: p for p in build_plots(hostile_record("h"))}
    # '$x^' would be a mathtext parse error if labels were not plain text.
    assert "$x^" in plots["evaluation.png"].alt
    assert plots["evaluation.png"].png.startswith(b"\x89PNG")


def test_unchanged_figures_are_reused_and_changed_ones_redrawn(tmp_path, monkeypatch):
    record = realistic_record("p")
    for plot in build_plots(record):
        (tmp_path / plot.name).write_bytes(plot.png)
    record.evaluation.results[0].value = 0.5
    drawn: list[bytes] = []
    real_draw = plot_png.draw_png

    def spy(kind, inputs, digest):
        drawn.append(png := real_draw(kind, inputs, digest))
        return png

    monkeypatch.setattr(plot_png, "draw_png", spy)
    again = {p.name: p.png for p in build_plots(record, reuse=tmp_path)}
    assert drawn == [again["evaluation.png"]]  # only the figure whose data changed was drawn
    fresh = {p.name: p.png for p in build_plots(record)}

    assert again == fresh  # reuse never changes a byte
    assert again["loss.png"] == (tmp_path / "loss.png").read_bytes()
    assert again["evaluation.png"] != (tmp_path / "evaluation.png").read_bytes()
    assert (
        png_text(again["evaluation.png"])["pubctl-inputs"]
        != png_text((tmp_path / "evaluation.png").read_bytes())["pubctl-inputs"]
    )


def test_a_long_log_is_thinned_to_its_shape_and_the_figure_says_so():
    record = realistic_record("long")
    record.evaluation = None
    history = log_history(200_000)
    history[123_456]["loss"] = 9.0  # one spike: thinning must keep it
    history[150_000]["loss"] = -1.0  # and one dip
    record.training.log_history = history

    started = time.monotonic()
    plots = {p.name: p for p in build_plots(record)}
    assert time.monotonic() - started < 20  # 27 s before thinning, on a quiet machine

    loss = plots["loss.png"]
    assert loss.alt.startswith("Training loss against optimizer step (200,000 logged points).")
    assert "each curve: 2,000 of its 200,000 logged points" in loss.note and loss.note in loss.alt
    values = [entry["loss"] for entry in history]
    kept = thin_indices(values)
    assert len(kept) <= MAX_POINTS and kept[0] == 0 and kept[-1] == len(values) - 1
    assert 123_456 in kept and 150_000 in kept  # the spike and the dip
    assert kept == sorted(kept)
    assert build_plots(realistic_record("short"))[0].note is None  # 12 points: drawn as logged


def test_reward_margins_get_their_own_axis():
    record = realistic_record("margins")
    for entry in record.training.log_history:  # SimPO-like: rewards near -15, a margin of 0.1
        entry["rewards/chosen"], entry["rewards/rejected"], entry["rewards/margins"] = -15.0, -15.1, 0.1

    rewards = {p.name: p for p in build_plots(record)}["rewards.png"]

    assert "The margins are drawn on their own axis below the chosen and rejected rewards." in rewards.alt
    width, height = struct.unpack(">II", _chunks(rewards.png)[0][1][:8])
    assert height > width * 720 // 1280  # taller than a one-axis figure: two stacked axes


def test_base_bars_carry_error_bars_when_the_record_has_them():
    record = realistic_record("base-err")
    plain = {p.name: p for p in build_plots(record)}["evaluation.png"]
    assert plain.note == "Base-model bars without an error bar: the record holds no standard error for that base score."

    for row in record.evaluation.results:
        row.base_stderr = 0.004  # an added key, as an evaluate stage recording it would write
    with_errors = {p.name: p for p in build_plots(record)}["evaluation.png"]

    assert with_errors.note is None
    assert "(base 0.417 ± 0.004)" in with_errors.alt
    assert with_errors.png != plain.png


def test_truthfulqa_mc2_is_labelled_mc2():
    evaluation = {p.name: p for p in build_plots(realistic_record("mc2"))}["evaluation.png"]
    assert "truthfulqa_mc2 mc2 0-shot" in evaluation.alt and "truthfulqa_mc2 acc" not in evaluation.alt


def test_figures_drawn_in_parallel_are_the_bytes_drawn_in_one_process():
    done = run_idle_and_single_threaded(
        """
        from test_card_records import realistic_record
        from pipeline.plots import build_plots

        record = realistic_record("parallel")
        parallel = [p.png for p in build_plots(record)]
        plot_png.MAX_PROCESSES = 1
        assert [p.png for p in build_plots(record)] == parallel
        print("same bytes")
        """
    )
    assert done.stdout.strip() == "same bytes"


def test_a_busy_machine_draws_in_one_process(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (64.0, 64.0, 64.0))
    assert plot_png.processes_for(6) == 1
    assert plot_png.processes_for(1) == 1
