"""core/records.py: per-frame records written by RecordWriter read back by parse_records, CSV and JSON Lines alike."""

import json
import math

import pytest

from kd_traffic_light.core.matching import Counts, compare_frame
from kd_traffic_light.core.pairing import stamp_key
from kd_traffic_light.core.records import (
    COUNT_COLUMNS,
    RecordWriter,
    count_records,
    frame_record,
    is_csv,
    parse_records,
    record_counts,
)
from kd_traffic_light.core.types import Detection

NAMES = {0: "relevant", 1: "not_relevant"}


def box(x1, y1, x2, y2, cls=0, score=0.9):
    return Detection(float(x1), float(y1), float(x2), float(y2), score, cls)


def two_records() -> list[dict]:
    """A frame with a TP, an FP and an FN (class 0 only), then a frame where neither side saw anything."""
    hit = compare_frame([box(0, 0, 10, 10), box(50, 0, 60, 10)], [box(0, 0, 10, 10), box(90, 0, 99, 10)])
    empty = compare_frame([], [])
    return [frame_record(stamp_key(12, 500, "cam"), hit, 0.0125, 0.25, NAMES),
            frame_record(stamp_key(13, 0, "cam"), empty, 0.01, float("nan"), NAMES)]


def write(path, records) -> None:
    w = RecordWriter(str(path))
    try:
        for r in records:
            w.write(r)
    finally:
        w.close()


def test_frame_record_columns_and_undefined_values():
    hit, empty = two_records()
    assert (hit["stamp_ns"], hit["stamp"], hit["frame_id"]) == (12_000_000_500, pytest.approx(12.0000005), "cam")
    assert (hit["n_student"], hit["n_teacher"], hit["tp"], hit["fp"], hit["fn"]) == (2, 2, 1, 1, 1)
    assert (hit["precision"], hit["recall"], hit["f1"], hit["mean_iou"]) == (0.5, 0.5, 0.5, 1.0)
    assert hit["student_latency_s"] == 0.0125 and hit["teacher_latency_s"] == 0.25
    # per class, for every named class: class 1 appears on neither side, so its values are undefined
    assert (hit["precision_relevant"], hit["recall_relevant"], hit["f1_relevant"]) == (0.5, 0.5, 0.5)
    assert hit["precision_not_relevant"] is hit["f1_not_relevant"] is None
    # nan (no pair: no IoU, no class agreement; a missing latency) becomes None, never a float nan
    assert empty["mean_iou"] is empty["class_agreement"] is empty["teacher_latency_s"] is None
    assert list(hit)[:5] == ["stamp_ns", "stamp", "frame_id", "n_student", "n_teacher"]
    assert "precision_relevant" not in frame_record(stamp_key(1, 0, "c"), compare_frame([], []), 0.0, 0.0)


def test_jsonl_round_trip(tmp_path):
    path = tmp_path / "out" / "records.jsonl"  # the directory is created
    records = two_records()
    write(path, records)
    text = path.read_text()
    assert len(text.splitlines()) == 2 and all(json.loads(line) for line in text.splitlines())
    assert "NaN" not in text  # undefined values are JSON null
    assert parse_records(text, path) == records
    assert [record_counts(r) for r in parse_records(text, path)] == [Counts(1, 1, 1), Counts(0, 0, 0)]
    assert count_records(path) == 2


def test_csv_round_trip_header_once_and_values_as_strings(tmp_path):
    path = tmp_path / "records.csv"
    first, second = two_records()
    write(path, [first])
    write(path, [second])  # a second writer appends without a second header
    lines = path.read_text().splitlines()
    assert lines[0].split(",") == list(first) and len(lines) == 3
    rows = parse_records(path.read_text(), path)
    assert [r["stamp_ns"] for r in rows] == ["12000000500", "13000000000"]
    assert rows[0]["f1"] == "0.5" and rows[0]["f1_not_relevant"] == "nan"
    assert math.isnan(float(rows[1]["mean_iou"]))
    assert sum((record_counts(r) for r in rows), Counts()) == Counts(1, 1, 1)
    assert count_records(path) == 2


def test_csv_columns_are_those_of_the_first_record(tmp_path):
    path = tmp_path / "records.csv"
    write(path, [{"stamp_ns": 1, "tp": 1, "fp": 0, "fn": 0},
                 {"stamp_ns": 2, "tp": 0, "extra": "left out"}])  # fp and fn missing, "extra" not a column
    rows = parse_records(path.read_text(), path)
    assert rows == [{"stamp_ns": "1", "tp": "1", "fp": "0", "fn": "0"},
                    {"stamp_ns": "2", "tp": "0", "fp": "nan", "fn": "nan"}]
    with pytest.raises(ValueError):
        record_counts(rows[1])  # "nan" is not a count


def test_every_record_is_a_whole_line_on_disk_before_close(tmp_path):
    path = tmp_path / "records.jsonl"
    w = RecordWriter(str(path))
    try:
        w.write({"tp": 1, "fp": 0, "fn": 0})
        assert path.read_text() == '{"tp": 1, "fp": 0, "fn": 0}\n'  # flushed, not buffered until close
        assert count_records(path) == 1
    finally:
        w.close()


def test_count_records_counts_lines_without_parsing(tmp_path):
    assert count_records(tmp_path / "absent.jsonl") == 0 and count_records(tmp_path / "absent.csv") == 0
    header_only = tmp_path / "h.csv"
    header_only.write_text("stamp_ns,tp,fp,fn\n")
    assert count_records(header_only) == 0
    torn = tmp_path / "torn.jsonl"
    torn.write_text('{"tp": 1}\n\n{"tp": 2}\n{"tp": 3, "f')  # a blank line, and a last line still being written
    assert count_records(torn) == 3


def test_format_is_chosen_by_suffix():
    assert is_csv("a/records.csv") and not is_csv("records.jsonl") and not is_csv("records.csv.jsonl")
    assert parse_records("tp,fp,fn\n1,2,3\n", "r.csv") == [{"tp": "1", "fp": "2", "fn": "3"}]
    assert parse_records('{"tp": 1}\n\n', "r.jsonl") == [{"tp": 1}]  # blank lines are skipped


def test_malformed_records_are_errors():
    with pytest.raises(ValueError):  # json.JSONDecodeError; the bag evaluation adds the file's name
        parse_records('{"tp": 1, "fp": 0, "fn": 0}\n{"tp": 1, "f\n', "records.jsonl")
    assert COUNT_COLUMNS == ("tp", "fp", "fn")
    with pytest.raises(KeyError, match="fn"):
        record_counts({"tp": 1, "fp": 0})
    with pytest.raises(ValueError):
        record_counts({"tp": "1", "fp": "x", "fn": "0"})
    with pytest.raises(TypeError):
        record_counts({"tp": None, "fp": 0, "fn": 0})


def test_state_columns_only_for_state_schemes():
    from kd_traffic_light.core.classes import class_names

    t = [Detection(0, 0, 10, 20, 0.9, 0, "relevant_red"), Detection(20, 0, 30, 20, 0.9, 3, "relevant_green")]
    s = [Detection(0, 0, 10, 20, 0.9, 3, "relevant_green"), Detection(20, 0, 30, 20, 0.9, 3, "relevant_green")]
    rec = frame_record((1, "cam"), compare_frame(s, t), 0.0, 0.0, class_names("relevance_state"))
    assert (rec["state_pairs"], rec["state_agree"], rec["state_agreement"]) == (2, 1, 0.5)
    plain = frame_record((1, "cam"), compare_frame(s, t), 0.0, 0.0, class_names())
    assert "state_pairs" not in plain
