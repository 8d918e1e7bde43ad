"""Plots: byte-identical PNGs from the same record, no varying metadata, a figure only where data exists."""

from __future__ import annotations

import struct
import zlib

from test_card_records import hostile_record, log_history, realistic_record

from pipeline.plots import build_plots


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
        kinds = {kind for kind, _ in _chunks(plot.png)}
        assert not kinds & {b"tEXt", b"iTXt", b"zTXt", b"tIME"}, f"{plot.name} carries metadata chunks {kinds}"
        width, height = struct.unpack(">II", _chunks(plot.png)[0][1][:8])
        assert (width, height) == (640, 360)


def test_alt_text_states_what_the_figure_shows():
    plots = {p.name: p for p in build_plots(realistic_record("p"))}
    loss = plots["loss.png"].alt
    assert loss.startswith("Training loss against optimizer step (12 logged points).")
    assert "0.6556 at step 1" in loss and "at step 12" in loss
    evaluation = plots["evaluation.png"].alt
    assert "hellaswag acc_norm 10-shot: 0.4213 ± 0.0049 (base 0.417), chance 0.25" in evaluation


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
