"""comparison_node as a real process: hand-built student/teacher detections in, records and diagnostics out."""

import csv
import json
import math
import time

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray, LabelInfo

from kd_traffic_light.conversions import bgr_to_image_msg, detections_to_msg, image_msg_to_bgr, label_info_msg
from kd_traffic_light.core.matching import compare_frame
from kd_traffic_light.core.records import RecordWriter, frame_record
from kd_traffic_light.core.types import CLASS_NAMES, Detection
from test.nodes import ros_helpers as rh


def box(x1, y1, x2, y2, cls=0, score=0.9):
    return Detection(float(x1), float(y1), float(x2), float(y2), score, cls)


def header(stamp_s: float, frame_id: str = "cam") -> Header:
    sec = int(stamp_s)
    return Header(stamp=Time(sec=sec, nanosec=int(round((stamp_s - sec) * 1e9))), frame_id=frame_id)


A, B, C, D, E = (box(0, 0, 10, 10, 0), box(20, 0, 30, 10, 0), box(40, 0, 50, 10, 1), box(60, 0, 70, 10, 0),
                 box(80, 0, 90, 10, 0))


def scenario(t0: float):
    """(stamp, student boxes or None, teacher boxes or None); None = that side never published the frame."""
    return [
        (t0 + 0.1, [A, B], [A, B]),  # perfect: tp 2
        (t0 + 0.2, [A, C], [A, D]),  # tp 1, fp 1, fn 1
        (t0 + 0.3, [A], None),  # student only: counted, not compared
        (t0 + 0.4, None, [A]),  # teacher only
        (t0 + 0.5, [box(80, 0, 90, 10, 1)], [E]),  # same box, other class: fp 1, fn 1, class disagreement
    ]


def test_record_writer_csv_and_jsonl(tmp_path):
    m = compare_frame([A, C], [A, D])
    for name in ("r.csv", "r.jsonl"):
        w = RecordWriter(str(tmp_path / "sub" / name))
        w.write(frame_record((1_500_000_000, "cam"), m, 0.01, 0.2, CLASS_NAMES))
        w.write(frame_record((2_000_000_000, "cam"), compare_frame([], [A]), math.nan, 0.2, CLASS_NAMES))
        w.close()
    rows = list(csv.DictReader((tmp_path / "sub" / "r.csv").read_text().splitlines()))
    assert [r["stamp_ns"] for r in rows] == ["1500000000", "2000000000"]
    assert float(rows[0]["f1"]) == 0.5 and rows[0]["frame_id"] == "cam"
    assert math.isnan(float(rows[1]["mean_iou"])) and math.isnan(float(rows[1]["student_latency_s"]))
    lines = [json.loads(s) for s in (tmp_path / "sub" / "r.jsonl").read_text().splitlines()]
    assert lines[0]["tp"] == 1 and lines[0]["recall_relevant"] == 0.5 and lines[1]["mean_iou"] is None
    # appending to an existing CSV does not repeat the header
    w = RecordWriter(str(tmp_path / "sub" / "r.csv"))
    w.write(frame_record((3, "cam"), m, 0.0, 0.0, CLASS_NAMES))
    w.close()
    assert len(list(csv.DictReader((tmp_path / "sub" / "r.csv").read_text().splitlines()))) == 3


def _values(arr: DiagnosticArray) -> dict[str, str]:
    (status,) = [s for s in arr.status if "student vs teacher" in s.name]
    return {kv.key: kv.value for kv in status.values} | {"_level": status.level[0], "_message": status.message}


@pytest.mark.slow
def test_comparison_node_end_to_end(tmp_path):
    env = rh.ros_env(tmp_path, rh.domain_id(__name__))
    records = tmp_path / "records.jsonl"
    log = tmp_path / "comparison.log"
    args = ["--ros-args", "-r", "__ns:=/comparison", "-p", f"records_path:={records}", "-p", "window:=10",
            "-p", "warn_f1:=0.8", "-p", "error_f1:=0.4", "-p", "diagnostics_period_s:=0.2"]
    proc = rh.start_node("kd_traffic_light.comparison_node", args, env, log)
    try:
        with rh.RosTestNode("comparison_probe", env) as probe:
            diags = probe.subscribe("/diagnostics", DiagnosticArray)
            overlays = probe.subscribe("/comparison/comparison/overlay", Image)
            pubs = {side: probe.publisher(f"/{side}/detector/detections", Detection2DArray)
                    for side in ("student", "teacher")}
            image_pub = probe.publisher("/camera/image_raw", Image)
            # the class names of the records come from the detectors' latched label_info
            label_pub = probe.publisher("/teacher/detector/label_info", LabelInfo, rh.LATCHED)
            label_pub.publish(label_info_msg(CLASS_NAMES, 0.25, Header()))
            for pub in [*pubs.values(), image_pub]:
                proc = rh.node_matched(proc, pub, log)
            assert probe.wait_for_publishers("/comparison/comparison/overlay", 1), rh.read_log(log)
            assert probe.wait_for_subscribers(label_pub, 1, timeout=30), rh.read_log(log)
            # the latched class map reaches the node before the detections (it logs each one it gets)
            assert probe.wait_for(lambda: "class map from the teacher" in rh.read_log(log), timeout=20), \
                rh.read_log(log)

            t0 = time.time() - 1.0
            frames = scenario(t0)
            for stamp, s_dets, t_dets in frames:
                if t_dets is not None:
                    pubs["teacher"].publish(detections_to_msg(t_dets, header(stamp)))
                if s_dets is not None:
                    pubs["student"].publish(detections_to_msg(s_dets, header(stamp)))

            def n_records():
                return len(records.read_text().splitlines()) if records.exists() else 0

            assert probe.wait_for(lambda: n_records() == 3, timeout=20), rh.read_log(log)
            assert probe.wait_for(lambda: any(_values(d).get("frames_compared") == "3" for d in diags)), \
                rh.read_log(log)

            # The overlay of frame 1: the pair waits for its image, which arrives last.
            img = np.zeros((48, 100, 3), np.uint8)
            image_pub.publish(bgr_to_image_msg(img, header(frames[0][0])))
            assert probe.wait_for(lambda: overlays, timeout=20), rh.read_log(log)
            overlay = overlays[0]
            assert overlay.header == header(frames[0][0]) and overlay.encoding == "bgr8"
            assert image_msg_to_bgr(overlay).any()  # boxes were drawn
            last = _values([d for d in diags if _values(d).get("frames_compared") == "3"][-1])

        rows = [json.loads(s) for s in records.read_text().splitlines()]
        expected = [header(frames[i][0]).stamp for i in (0, 1, 4)]  # only frames both sides have
        assert [r["stamp_ns"] for r in rows] == [t.sec * 10**9 + t.nanosec for t in expected]
        assert [(r["tp"], r["fp"], r["fn"]) for r in rows] == [(2, 0, 0), (1, 1, 1), (0, 1, 1)]
        assert [r["f1"] for r in rows] == [1.0, 0.5, 0.0]
        assert rows[0]["mean_iou"] == 1.0 and rows[2]["class_agreement"] == 0.0 and rows[2]["mean_iou"] is None
        assert rows[1]["precision_relevant"] == 1.0 and rows[1]["precision_not_relevant"] == 0.0
        assert all(0.0 < r["student_latency_s"] < 60 and 0.0 < r["teacher_latency_s"] < 60 for r in rows)

        assert (last["tp"], last["fp"], last["fn"]) == ("3", "2", "2")
        assert float(last["f1"]) == pytest.approx(0.6, abs=1e-4)
        assert float(last["class_agreement"]) == pytest.approx(3 / 4, abs=1e-4)
        assert last["_level"] == 1  # WARN: 0.4 <= F1 0.6 < 0.8
        # frames 3 and 4 are one-sided as soon as the other side is past their stamps
        assert (last["student_only_frames"], last["teacher_only_frames"]) == ("1", "1")
        for side in ("student", "teacher"):
            assert (last[f"{side}_received"], last[f"{side}_paired"], last[f"{side}_unpaired"]) == ("4", "3", "1")
            assert last[f"{side}_lost_in_transport"] == last[f"{side}_pending"] == "0"
    finally:
        rc = rh.stop(proc)
    assert rc == 0, rh.read_log(log)
    assert "compared 3 frames; student-only 1, teacher-only 1" in rh.read_log(log)


def test_invalid_parameter_fails_at_start_naming_it(tmp_path):
    env = rh.ros_env(tmp_path, rh.domain_id(__name__ + "bad"))
    log = tmp_path / "bad.log"
    proc = rh.start_node("kd_traffic_light.comparison_node",
                         ["--ros-args", "-p", "records_path:=out.txt"], env, log)
    try:
        proc.wait(timeout=30)
    finally:
        rh.stop(proc)
    assert proc.returncode == 1
    text = rh.read_log(log)
    assert "parameter 'records_path' = 'out.txt' (string) is invalid: expected" in text, text
    assert "Traceback" not in text
