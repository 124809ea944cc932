"""comparison_node at overload: every detections message is accounted for, and no frame is called one-sided
when its mate was only late or lost.

The pairer's rules are checked in-process; one real node is then fed thousands of pairs from a tight loop
(far faster than it takes them) and its accounting is checked against what was published.
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
from kd_traffic_light.core.pairing import FramePairer
from kd_traffic_light.core.types import Detection
from test.nodes import ros_helpers as rh

BOXES = [Detection(0.0, 0.0, 10.0, 10.0, 0.9, 0), Detection(20.0, 0.0, 30.0, 12.0, 0.8, 1)]


def key(t: int, frame: str = "cam") -> tuple[int, str]:
    return (t, frame)


def counts(p: FramePairer, side: str) -> dict[str, int]:
    return {k: v for k, v in p.ledger[side].as_dict().items() if v}


# ---------------------------------------------------------------- the pairer's rules, in-process
def test_a_side_far_ahead_is_not_one_sided():
    """The teacher's queue drained 300 frames ahead of the student's (cache 100): every frame still pairs."""
    p = FramePairer(capacity=100, timeout_s=5.0)
    for t in range(300):
        p.add("teacher", key(t), t, now=0.0, source=("T", t + 1))
    pairs = [p.add("student", key(t), t, now=0.0, source=("S", t + 1)) for t in range(300)]
    # the oldest 200 teacher results were pushed out of the cache: dropped (with the reason), never "teacher-only"
    assert counts(p, "teacher") == {"received": 300, "paired": 100, "dropped_cache_full": 200}
    assert counts(p, "student") == {"received": 300, "paired": 100, "dropped_late": 200}
    assert sum(x is not None for x in pairs) == 100


def test_other_side_past_the_stamp_settles_at_once_and_gaps_count_as_mate_lost():
    p = FramePairer(capacity=100, timeout_s=5.0)
    p.add("teacher", key(1), "t1", 0.0, ("T", 1))
    p.add("teacher", key(2), "t2", 0.0, ("T", 2))  # a genuine teacher-only frame
    p.add("teacher", key(3), "t3", 0.0, ("T", 3))
    p.add("teacher", key(4), "t4", 0.0, ("T", 4))
    assert p.add("student", key(1), "s1", 0.0, ("S", 1)).teacher == "t1"
    assert p.add("student", key(3), "s3", 0.0, ("S", 2)).teacher == "t3"  # student passed 2: teacher-only now
    assert counts(p, "teacher") == {"received": 4, "paired": 2, "unpaired": 1}
    # the student's message of frame 4 is lost in transport (sequence 3 never comes), frame 5 arrives
    p.add("teacher", key(5), "t5", 0.0, ("T", 5))
    assert p.add("student", key(5), "s5", 0.0, ("S", 4)).student == "s5"
    assert counts(p, "teacher") == {"received": 5, "paired": 3, "unpaired": 1, "mate_lost": 1}
    assert counts(p, "student") == {"received": 3, "paired": 3, "lost_in_transport": 1}
    assert p.pending("student") == p.pending("teacher") == 0


def test_timeout_then_a_late_mate_is_not_one_sided():
    p = FramePairer(capacity=10, timeout_s=1.0)
    p.add("teacher", key(1), "t1", now=0.0)
    assert p.expire(now=0.5) == 0 and p.expire(now=1.5) == 1
    assert counts(p, "teacher") == {"received": 1, "unpaired": 1}  # nothing came within the timeout
    assert p.add("student", key(1), "s1", now=2.0) is None  # ... then the student's came after all
    assert counts(p, "teacher") == {"received": 1, "dropped_timed_out": 1}
    assert counts(p, "student") == {"received": 1, "dropped_late": 1}


def test_unseen_before_first_duplicates_and_a_bag_loop():
    p = FramePairer(capacity=10, timeout_s=5.0)
    p.add("teacher", key(10), "a", 0.0, ("T", 8))  # 7 published before this node saw the teacher
    p.add("teacher", key(10), "b", 0.0, ("T", 9))  # the same frame again: replaces the first
    assert p.add("student", key(10), "s", 0.0, ("S", 1)).teacher == "b"
    # the bag starts over: stamps go back on both sides; the old epoch's watermark decides nothing
    p.add("teacher", key(1), "t1", 0.0, ("T", 10))
    assert p.pending("teacher") == 1  # the student's latest stamp (10) is of the previous loop
    assert p.add("student", key(1), "s1", 0.0, ("S", 2)) is not None
    assert counts(p, "teacher") == {"received": 3, "paired": 2, "dropped_duplicate": 1, "unseen_before_first": 7}
    p.add("student", key(2), "s2", 0.0, ("S", 3))
    p.close()
    assert counts(p, "student") == {"received": 3, "paired": 2, "dropped_pending_at_close": 1}
    for side in ("student", "teacher"):
        led = p.ledger[side]
        assert led.received == led.accounted


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
                assert probe.wait_for_subscribers(pub, 1, timeout=30), rh.read_log(log)
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
