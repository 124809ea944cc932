"""The revision's metrics on constructed drives: accuracy, spurious changes, delays, the green errors, pooling."""

from __future__ import annotations

import pytest

from kd_traffic_light.tools.signal_eval import drive_metrics, plot_timelines, pool

T = [i / 10 for i in range(12)]  # 10 Hz


def test_a_perfect_follower_has_no_spurious_change_and_zero_delay():
    truth = ["red"] * 4 + ["red_yellow"] * 4 + ["green"] * 4
    m = drive_metrics(T, truth, truth)
    assert (m["correct"], m["spurious_changes"], m["true_changes"], m["changes"]) == (12, 0, 2, 2)
    assert [d["frames"] for d in m["delays"]] == [0, 0]


def test_flicker_is_spurious_and_a_late_change_is_a_delay():
    truth = ["green"] * 6 + ["yellow"] * 6
    pub = ["unknown", "green", "green", "unknown", "green", "green", "green", "green", "yellow", "yellow", "yellow",
           "yellow"]
    m = drive_metrics(T, truth, pub)
    # unknown -> green is the first reading (explained); green -> unknown -> green is two spurious changes
    assert m["spurious_changes"] == 2 and m["changes"] == 4
    assert m["delays"] == [{"to": "yellow", "frames": 2, "ms": 200.0}]
    assert m["correct"] == 12 - 2 - 2


def test_a_change_never_published_is_missed_and_red_to_green_is_counted():
    truth = ["red"] * 6 + ["red_yellow"] * 2 + ["red"] * 4
    pub = ["red"] * 3 + ["green"] * 2 + ["red"] * 7
    m = drive_metrics(T, truth, pub)
    assert m["red_to_green"] == 2 and m["red_yellow_to_green"] == 0
    assert m["delays"][0] == {"to": "red_yellow", "frames": None, "ms": None}
    assert m["spurious_changes"] == 2  # red -> green and green -> red, neither following a true change


def test_frames_without_a_light_are_not_scored():
    truth = [None] * 3 + ["red"] * 9
    pub = ["green"] * 3 + ["red"] * 9
    m = drive_metrics(T, truth, pub)
    assert m["scored_frames"] == 9 and m["correct"] == 9 and m["spurious_changes"] == 0
    assert m["seconds"] == pytest.approx(0.9)


def test_pooling_adds_drives_up(tmp_path):
    a = drive_metrics(T, ["red"] * 12, ["red"] * 6 + ["green"] + ["red"] * 5)
    b = drive_metrics(T, ["green"] * 12, ["green"] * 12)
    p = pool([a, b])
    assert p["scored_frames"] == 24 and p["accuracy"] == pytest.approx(23 / 24)
    assert p["spurious_changes"] == 2 and p["spurious_per_minute"] == pytest.approx(2 / (2.4 / 60))
    assert p["red_to_green"] == 1
    png = plot_timelines([{"name": "a", "times": T, "truth": ["red"] * 12, "raw": ["red"] * 6 + ["green"] * 6,
                           "revised": ["red"] * 12}], tmp_path / "timeline.png")
    assert png.stat().st_size > 1000


def test_sequences_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="one entry per frame"):
        drive_metrics(T, ["red"], ["red"])


def test_each_head_gets_its_detections_and_the_node_track_that_overlapped_it_most():
    from kd_traffic_light.tools.signal_eval import score_tracks, track_timelines

    a, b = [100, 100, 110, 130], [300, 100, 310, 130]
    frames = [{"stamp_ns": k * 100_000_000, "state": "red", "lights": [
        {"track": "A", "state": "red", "relevant": True, "box": a},
        {"track": "B", "state": "green", "relevant": False, "box": b},
        {"track": "C", "state": "unknown", "relevant": False, "box": [500, 100, 510, 130]}]} for k in range(4)]
    shifted = [102, 101, 112, 131]                    # IoU with A well above 0.3
    detections = {0: [(shifted, "red", "")],          # track not confirmed yet
                  100_000_000: [(shifted, "red", "7"), (b, "green", "9")],
                  200_000_000: [(b, "green", "9")],    # A missed
                  300_000_000: [(shifted, "green", "7"), ([0, 0, 5, 5], "red", "11")]}
    tracks = {100_000_000: {"7": "red", "9": "green"}, 200_000_000: {"7": "red", "9": "green"},
              300_000_000: {"7": "red", "9": "unknown", "11": "red"}}
    heads = track_timelines(frames, detections, tracks)
    assert [h["track"] for h in heads] == ["A", "B"]   # relevant first; C has no scored state
    ha, hb = heads
    assert ha["truth"] == ["red"] * 4 and ha["raw"] == ["red", "red", "unknown", "green"]
    assert ha["revised"] == ["unknown", "red", "red", "red"]   # node track 7, held through the miss
    assert hb["raw"] == ["unknown", "green", "green", "unknown"] and hb["revised"] == ["unknown", "green", "green",
                                                                                      "unknown"]
    scored = score_tracks(heads)
    assert scored["tracks"] == 2 and scored["raw"]["red_to_green"] == 1 and scored["revised"]["red_to_green"] == 0
    assert scored["revised"]["accuracy"] == pytest.approx(5 / 8)


def test_a_truth_file_with_a_bad_head_is_refused_naming_the_field(tmp_path):
    import json

    from kd_traffic_light.tools.signal_eval import read_truth

    head = {"track": "A", "state": "red", "relevant": True, "box": [1, 2, 3]}
    (tmp_path / "t.json").write_text(json.dumps({"frames": [{"stamp_ns": 1, "state": "red", "lights": [head]}]}))
    with pytest.raises(ValueError, match=r"t.json: frames\[0\].lights\[0\].box = \[1, 2, 3\]: expected \[x1, y1"):
        read_truth(tmp_path / "t.json")


def test_a_node_track_that_switches_heads_speaks_for_the_head_it_overlaps_in_each_frame():
    from kd_traffic_light.tools.signal_eval import track_timelines

    a, b = [100, 100, 110, 130], [300, 100, 310, 130]
    frames = [{"stamp_ns": k, "state": "red", "lights": [
        {"track": "A", "state": "red", "relevant": True, "box": a},
        {"track": "B", "state": "green", "relevant": True, "box": b}]} for k in range(3)]
    detections = {0: [(a, "red", "1"), (b, "green", "2")],
                  1: [(a, "red", "2"), (b, "green", "3")],     # track 2 jumped to A, B got a new track
                  2: [(b, "green", "3")]}                       # A missed: its last track (2) coasts
    tracks = {0: {"1": "red", "2": "green"}, 1: {"2": "red", "3": "green"}, 2: {"2": "red", "3": "green"}}
    ha, hb = track_timelines(frames, detections, tracks)
    assert ha["revised"] == ["red", "red", "red"] and hb["revised"] == ["green", "green", "green"]


def test_a_head_not_detected_is_not_spoken_for_by_its_last_track_while_that_track_is_on_another_head():
    from kd_traffic_light.tools.signal_eval import track_timelines

    a, b = [100, 100, 110, 130], [300, 100, 310, 130]
    frames = [{"stamp_ns": k, "state": "green", "lights": [
        {"track": "A", "state": "green", "relevant": True, "box": a},
        {"track": "B", "state": "red", "relevant": False, "box": b}]} for k in range(2)]
    detections = {0: [(a, "green", "1")], 1: [(b, "red", "1")]}  # track 1 left A for B; A is not detected
    tracks = {0: {"1": "green"}, 1: {"1": "red"}}
    ha, hb = track_timelines(frames, detections, tracks)
    assert ha["revised"] == ["green", "unknown"] and hb["revised"] == ["unknown", "red"]
