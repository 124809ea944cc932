"""The figures in README.md and docs/ are rendered from docs/results/ and never go stale (benchmarks/tables.py)."""

from __future__ import annotations

import re

import pytest

from benchmarks import tables

BLOCK = "<!-- BEGIN rendered: {name} -->\n{body}<!-- END rendered: {name} -->\n"


def test_every_rendered_table_matches_its_result_files():
    files = [tables.REPO / f for f in tables.DOCS]
    assert tables.stale(files) == [], "run: python benchmarks/tables.py"


def test_each_table_is_rendered_somewhere():
    text = "".join((tables.REPO / f).read_text(encoding="utf-8") for f in tables.DOCS)
    assert {name for name in tables.TABLES if f"BEGIN rendered: {name} -->" not in text} == set()


def test_a_planted_stale_figure_is_named(tmp_path):
    body = tables.TABLES["kd-gain-summary"]()
    planted = re.sub(r"\+(\d)", lambda m: f"+{(int(m[1]) + 1) % 10}", body, count=1)  # one figure, one digit off
    assert planted != body
    doc = tmp_path / "doc.md"
    doc.write_text("# t\n\n" + BLOCK.format(name="kd-gain-summary", body=planted), encoding="utf-8")
    assert tables.stale([doc]) == ["doc.md: kd-gain-summary"]
    doc.write_text("# t\n\n" + BLOCK.format(name="kd-gain-summary", body=body), encoding="utf-8")
    assert tables.stale([doc]) == []


def test_a_block_naming_no_table_is_refused_with_the_file(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(BLOCK.format(name="kd-gian", body=""), encoding="utf-8")
    with pytest.raises(ValueError, match=r"doc\.md: rendered block 'kd-gian': no such table"):
        tables.stale([doc])


def test_a_kd_gain_result_whose_second_set_is_pending_renders_the_tuning_set_alone(monkeypatch):
    gain = tables.result(tables.KD_GAIN)
    pending = {**gain, "second_set": "pending"}
    monkeypatch.setattr(tables, "result", lambda name: pending if name == "pending.json" else None)
    sets = tables.kd_sets("pending.json", None)
    assert [label.split(" (")[0] for label, _, _ in sets] == ["tuning scenes"]
    summary = tables.kd_gain_summary(sets)
    assert summary.count("\n") == 3 and "second scenes" not in summary  # header, rule, one row
    assert "Training time" not in tables.kd_gain_arms("pending.json", None)  # no total over a set still training
