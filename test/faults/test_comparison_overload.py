"""comparison_node at overload: every detections message is accounted for, and no frame is called one-sided
when its mate was only late or lost.

One real node is fed thousands of pairs from a tight loop (far faster than it takes them) and its accounting is
checked against what was published. The pairer's rules themselves are checked in-process in test/core/test_pairing.py.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray

from kd_traffic_light.conversions import detections_to_msg
from kd_traffic_light.core.types import Detection
from test.nodes import ros_helpers as rh

BOXES = [Detection(0.0, 0.0, 10.0, 10.0, 0.9, 0), Detection(20.0, 0.0, 30.0, 12.0, 0.8, 1)]


# ---------------------------------------------------------------- a real node, overloaded
N_FRAMES = 3000
TEACHER_ONLY_EVERY = 7  # every 7th frame the student "skips": a genuine teacher-only frame


def header(i: int) -> Header:
    return Header(stamp=Time(sec=1000 + i // 1000, nanosec=(i % 1000) * 1_000_000), frame_id="cam")  # i >= -1000


def stamp_ns(i: int) -> int:
    h = header(i)
    return h.stamp.sec * 1_000_000_000 + h.stamp.nanosec


def diag_values(msgs) -> dict[str, str]:
    for arr in reversed(list(msgs)):
        for st in arr.status:
            if "student vs teacher" in st.name:
                return {kv.key: kv.value for kv in st.values}
    return {}


@pytest.mark.slow
@pytest.mark.parametrize("pace_s", [0.0, 0.001], ids=["unthrottled", "1kHz"])
def test_overloaded_node_accounts_for_every_message(tmp_path, pace_s):
    env = rh.ros_env(tmp_path, rh.domain_id(__name__))
    records = tmp_path / "records.jsonl"
    log = tmp_path / "comparison.log"
    args = ["--ros-args", "-p", f"records_path:={records}", "-p", "publish_overlay:=false",
            "-p", "diagnostics_period_s:=0.2"]
    proc = rh.start_node("kd_traffic_light.comparison_node", args, env, log)
    teacher_only = {i for i in range(N_FRAMES) if i % TEACHER_ONLY_EVERY == 3}
    published = {"student": 0, "teacher": 0}
    try:
        with rh.RosTestNode("overload_probe", env) as probe:
            diags = probe.subscribe("/diagnostics", DiagnosticArray)
            pubs = {side: probe.publisher(f"/{side}/detector/detections", Detection2DArray)
                    for side in ("student", "teacher")}
            for pub in pubs.values():
                proc = rh.node_matched(proc, pub, log)
            # a first pair, compared before the burst: both connections carry data (matched on both ends)
            first = detections_to_msg(BOXES, header(-100))
            for side in ("teacher", "student"):
                pubs[side].publish(first)
                published[side] += 1
            assert probe.wait_for(lambda: records.exists() and records.read_text().strip(), timeout=30), \
                rh.read_log(log)
            msgs = [detections_to_msg(BOXES, header(i)) for i in range(N_FRAMES)]
            t0 = time.perf_counter()
            for i, msg in enumerate(msgs):  # far faster than the node takes them
                if pace_s:
                    deadline = t0 + i * pace_s
                    while time.perf_counter() < deadline:
                        pass
                pubs["teacher"].publish(msg)
                published["teacher"] += 1
                if i not in teacher_only:
                    pubs["student"].publish(msg)
                    published["student"] += 1
            rate = sum(published.values()) / (time.perf_counter() - t0)
            # A last pair after a pause: messages lost at the end of the burst show as a sequence gap before it,
            # and both sides' results arrive in order, so once it is compared everything before it was taken.
            time.sleep(1.0)
            last = detections_to_msg(BOXES, header(N_FRAMES + 100))
            for side in ("teacher", "student"):
                pubs[side].publish(last)
                published[side] += 1

            def compared_last() -> bool:
                return records.exists() and f'"stamp_ns": {stamp_ns(N_FRAMES + 100)},' in records.read_text()

            assert probe.wait_for(compared_last, timeout=40), rh.read_log(log)
            n_diags = len(diags)
            assert probe.wait_for(lambda: len(diags) > n_diags + 1, timeout=10), rh.read_log(log)
            values = {k: int(v) for k, v in diag_values(diags).items() if v.lstrip("-").isdigit()}
    finally:
        rc = rh.stop(proc)
    text = rh.read_log(log, tail=20000)
    assert rc == 0, text

    rows = [json.loads(line) for line in records.read_text().splitlines()]
    compared = {r["stamp_ns"] for r in rows}
    assert len(compared) == len(rows) == values["frames_compared"]
    assert not compared & {stamp_ns(i) for i in teacher_only}  # a one-sided frame is never compared
    assert len(rows) > 2, rows  # the burst reached the node (the warm-up and the last pair aside)
    report = {"rate_msgs_per_s": round(rate), "published": published, "compared": len(rows)}
    for side in ("student", "teacher"):
        v = {k[len(side) + 1:]: n for k, n in values.items() if k.startswith(side + "_") and "only" not in k}
        dropped = sum(n for k, n in v.items() if k.startswith("dropped_"))
        report[side] = {k: n for k, n in v.items() if n}
        assert v["pending"] == 0, report
        assert v["received"] == v["paired"] + v["unpaired"] + v["mate_lost"] + dropped, report
        assert published[side] == v["received"] + v["lost_in_transport"] + v["unseen_before_first"], report
        assert v["paired"] == len(rows), report
    assert values["student_unpaired"] == values["student_only_frames"] == 0, report  # the student never sent alone
    assert values["teacher_unpaired"] <= len(teacher_only), report  # no phantom teacher-only frame
    closing = re.search(r"compared (\d+) frames; student-only (\d+), teacher-only (\d+)", text)
    assert closing and int(closing[1]) == len(rows) and int(closing[2]) == 0, text[-3000:]
    print("overload accounting:", json.dumps(report))
