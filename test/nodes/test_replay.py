"""replay as a real process: bags written with rosbags (sqlite3 and mcap) come back with original stamps."""

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header, String
from vision_msgs.msg import Detection2DArray

from kd_traffic_light.conversions import bgr_to_image_msg, image_msg_to_bgr
from kd_traffic_light.tools.replay import get_args_parser, read_bag
from test.nodes import ros_helpers as rh

N = 6
T0 = 1_700_000_000_000_000_000  # ns


def frames():
    """N small images (pixel value = index) stamped 100 ms apart, recorded 5 ms after their stamp."""
    out = []
    for i in range(N):
        stamp = T0 + i * 100_000_000
        header = Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="cam_front")
        out.append((stamp, bgr_to_image_msg(np.full((24, 32, 3), i, np.uint8), header)))
    return out


@pytest.fixture
def bag(tmp_path, request):
    msgs = []
    for stamp, img in frames():
        msgs.append(("/camera/image_raw", img, stamp + 5_000_000))
        msgs.append(("/camera/camera_info", CameraInfo(header=img.header, width=32, height=24), stamp + 6_000_000))
        msgs.append(("/chatter", String(data="not replayed"), stamp + 7_000_000))
    return rh.write_bag(tmp_path / f"bag_{request.param}", msgs, request.param)


@pytest.mark.parametrize("bag", ["sqlite3", "mcap"], indirect=True)
def test_read_bag_selects_camera_topics(bag):
    conns, messages = read_bag(bag, None)
    assert sorted(c.topic for c in conns) == ["/camera/camera_info", "/camera/image_raw"]
    assert sum(1 for _ in messages) == 2 * N
    with pytest.raises(ValueError, match="/nope"):
        read_bag(bag, ["/nope"])


def test_args_parser_has_help_on_every_flag():
    for action in get_args_parser()._actions:
        assert action.help, action.dest


def _expected_stamps():
    return [(img.header.stamp.sec, img.header.stamp.nanosec) for _, img in frames()]


@pytest.mark.slow
@pytest.mark.parametrize("bag", ["sqlite3"], indirect=True)
def test_replay_fast_publishes_original_stamps(bag, tmp_path):
    env = rh.ros_env(tmp_path, rh.domain_id(__name__ + "fast"))
    log = tmp_path / "replay.log"
    with rh.RosTestNode("replay_probe", env) as probe:
        images = probe.subscribe("/camera/image_raw", Image)
        infos = probe.subscribe("/camera/camera_info", CameraInfo)
        proc = rh.start_node("kd_traffic_light.tools.replay", [str(bag), "--rate", "0", "--wait-subscribers", "1"],
                             env, log)
        try:
            assert proc.wait(timeout=60) == 0, rh.read_log(log)
        finally:
            rh.stop(proc)
        assert probe.wait_for(lambda: len(images) == N and len(infos) == N, timeout=10), rh.read_log(log)
    assert [(m.header.stamp.sec, m.header.stamp.nanosec) for m in images] == _expected_stamps()
    assert all(m.header.frame_id == "cam_front" for m in images)
    assert [int(image_msg_to_bgr(m)[0, 0, 0]) for m in images] == list(range(N))
    assert f"published {2 * N} messages ({N} images)" in rh.read_log(log)


@pytest.mark.slow
@pytest.mark.parametrize("bag", ["mcap"], indirect=True)
def test_replay_paced_by_detections_with_clock(bag, tmp_path):
    """The test acts as the detector: it answers every image but the third, which must time out once."""
    env = rh.ros_env(tmp_path, rh.domain_id(__name__ + "paced"))
    log = tmp_path / "replay.log"
    with rh.RosTestNode("pacer", env) as probe:
        pace_pub = probe.publisher("/det", Detection2DArray)
        clocks = probe.subscribe("/clock", Clock)
        images: list = []

        def on_image(msg):
            images.append(msg)
            if len(images) != 3:
                pace_pub.publish(Detection2DArray(header=msg.header))

        probe.node.create_subscription(Image, "/camera/image_raw", on_image, rh.RELIABLE)
        proc = rh.start_node(
            "kd_traffic_light.tools.replay",
            [str(bag), "--pace-topic", "/det", "--pace-timeout", "5.0", "--clock", "--wait-subscribers", "1"],
            env, log)
        try:
            assert proc.wait(timeout=60) == 0, rh.read_log(log)
        finally:
            rh.stop(proc)
        assert probe.wait_for(lambda: len(images) == N, timeout=10), rh.read_log(log)
    assert [(m.header.stamp.sec, m.header.stamp.nanosec) for m in images] == _expected_stamps()
    assert "pace timeouts: 1" in rh.read_log(log)
    clock_ns = [c.clock.sec * 10**9 + c.clock.nanosec for c in clocks]
    assert clock_ns and set(clock_ns) <= {s + d for s, _ in frames() for d in (5_000_000, 6_000_000)}


@pytest.mark.slow
def test_bag_eval_student_teacher_comparison_end_to_end(constant_onnx, tmp_path):
    """Real detector processes with constant models: every frame has 1 TP, 1 FP and 1 FN by construction."""
    import json

    import cv2

    from test.core.lean_models import make_constant_onnx

    teacher = constant_onnx[0]  # boxes (320, 320, 20, 40, cls 0) and (100, 250, 10, 20, cls 1) in net pixels
    student = make_constant_onnx(tmp_path / "student.onnx",
                                 [(320, 320, 20, 40, 0, 0.9), (500, 250, 10, 20, 1, 0.8)])  # 2nd box elsewhere
    msgs = []
    for i in range(4):
        stamp = T0 + i * 100_000_000
        header = Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="cam")
        msgs.append(("/camera/image_raw", bgr_to_image_msg(np.full((320, 640, 3), 30 * i, np.uint8), header), stamp))
    bag = rh.write_bag(tmp_path / "bag", msgs, "mcap")
    env = rh.ros_env(tmp_path, rh.domain_id(__name__ + "bag_eval"))
    out = tmp_path / "eval"
    log = tmp_path / "bag_eval.log"
    proc = rh.start_node("kd_traffic_light.tools.bag_eval",
                         [str(bag), "--student-model", str(student), "--teacher-model", str(teacher), "--out",
                          str(out), "--records", "records.jsonl", "--startup-timeout", "120"], env, log)
    try:
        assert proc.wait(timeout=240) == 0, rh.read_log(log) + rh.read_log(out / "logs" / "comparison.log")
    finally:
        rh.stop(proc)
    rows = [json.loads(s) for s in (out / "records.jsonl").read_text().splitlines()]
    assert [r["stamp_ns"] for r in rows] == [t for _, _, t in msgs]  # every frame, original stamps
    assert all((r["tp"], r["fp"], r["fn"], r["f1"]) == (1, 1, 1, 0.5) for r in rows)
    assert all(r["f1_relevant"] == 1.0 and r["f1_not_relevant"] == 0.0 for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["frames"] == 4 and summary["metrics"]["f1"] == 0.5
    assert set(summary["exit_codes"].values()) == {0}
    assert "pace timeouts: 0" in rh.read_log(out / "logs" / "replay.log")
    assert len(list((out / "frames").glob("*.jpg"))) == 4
    video = cv2.VideoCapture(str(out / "overlay.mp4"))
    try:
        assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    finally:
        video.release()


def test_bag_eval_scores_raw_and_revised_signals_against_the_truth(tmp_path):
    """A teacher that reads the light red and a student that reads it green, over 8 frames of a red light at 15 Hz."""
    import json

    from kd_traffic_light.core.classes import class_id, class_names
    from test.core.lean_models import make_constant_onnx

    names = class_names("relevance_state")
    red, green = class_id("relevance_state", "relevant", "red"), class_id("relevance_state", "relevant", "green")
    teacher = make_constant_onnx(tmp_path / "teacher.onnx", [(320, 320, 20, 40, red, 0.9)], nc=10, names=names)
    student = make_constant_onnx(tmp_path / "student.onnx", [(320, 320, 20, 40, green, 0.9)], nc=10, names=names)
    msgs, truth = [], []
    for i in range(8):
        stamp = T0 + i * 1_000_000_000 // 15
        header = Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="cam")
        msgs.append(("/camera/image_raw", bgr_to_image_msg(np.full((320, 640, 3), 30, np.uint8), header), stamp))
        # the head both models see (the constant box in the 640x320 frame) and one no model finds
        truth.append({"stamp_ns": stamp, "state": "red", "lights": [
            {"track": "TrafficLight_1", "state": "red", "relevant": True, "box": [310, 140, 330, 180]},
            {"track": "TrafficLight_2", "state": "green", "relevant": False, "box": [10, 10, 20, 30]}]})
    bag = rh.write_bag(tmp_path / "bag", msgs, "mcap")
    (tmp_path / "truth.json").write_text(json.dumps({"frames": truth}))
    env = rh.ros_env(tmp_path, rh.domain_id(__name__ + "bag_eval_truth"))
    out, log = tmp_path / "eval", tmp_path / "bag_eval.log"
    proc = rh.start_node("kd_traffic_light.tools.bag_eval",
                         [str(bag), "--student-model", str(student), "--teacher-model", str(teacher), "--out",
                          str(out), "--no-video", "--truth", str(tmp_path / "truth.json"), "--startup-timeout",
                          "120"], env, log)
    try:
        assert proc.wait(timeout=240) == 0, rh.read_log(log)
    finally:
        rh.stop(proc)
    signal = json.loads((out / "signal.json").read_text())
    assert signal["frames"] == 8 and json.loads((out / "summary.json").read_text())["signal"] == signal
    t, s = signal["teacher"], signal["student"]
    assert t["answered"] == s["answered"] == 8
    assert t["raw"]["accuracy"] == 1.0 and t["raw"]["spurious_changes"] == 0
    # revised: tentative for 0.1 s (2 frames), then red after two red frames out of unknown -> 6 of 8 correct
    assert t["revised"]["accuracy"] == 6 / 8 and t["revised"]["red_to_green"] == 0
    assert s["raw"]["red_to_green"] == 8
    # revised: the filter counts green frames from the track's birth; the signal takes the track once it is
    # confirmed (frame 2), by when it has seen 3 green frames -> green from frame 2
    assert s["revised"]["red_to_green"] == 6
    # per head: the found head as the signal above, the missed one unknown in every frame (16 head-frames)
    tt, ts = signal["tracks"]["teacher"], signal["tracks"]["student"]
    assert tt["tracks"] == ts["tracks"] == 2
    assert tt["raw"]["accuracy"] == 8 / 16 and tt["revised"]["accuracy"] == 6 / 16
    assert ts["raw"]["red_to_green"] == 8 and ts["revised"]["red_to_green"] == 6
    import importlib.util

    if importlib.util.find_spec("matplotlib") is not None:
        assert signal["timeline"] == "signal_timeline.png" and (out / "signal_timeline.png").stat().st_size > 1000
        assert (out / signal["track_timeline_teacher"]).stat().st_size > 1000
    else:  # the runtime-only venv: the figures without the picture, and a warning saying why
        assert signal["timeline"] is None and not (out / "signal_timeline.png").exists()
        assert "no signal_timeline.png" in rh.read_log(log)


def test_bag_eval_refuses_a_bad_truth_file_naming_the_field(tmp_path):
    import json
    import subprocess
    import sys

    bad = tmp_path / "truth.json"
    bad.write_text(json.dumps({"frames": [{"stamp_ns": 5, "state": "blue"}]}))
    r = subprocess.run([sys.executable, "-m", "kd_traffic_light.tools.bag_eval", str(tmp_path), "--student-model",
                        "s.onnx", "--teacher-model", "t.onnx", "--out", str(tmp_path / "o"), "--truth", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "frames[0].state = 'blue'" in r.stderr and str(bad) in r.stderr
