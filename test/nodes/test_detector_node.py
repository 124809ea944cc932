"""detector_node as a real process: real Image/CompressedImage in, real Detection2DArray out."""

from __future__ import annotations

import random
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray, LabelInfo

from test.nodes.ros_helpers import (
    LATCHED,
    RELIABLE,
    RosTestNode,
    domain_id,
    node_matched,
    publish_until,
    read_log,
    ros_env,
    start_node,
    stop,
)

W, H = 512, 256  # small frames keep the suite fast; one test uses the full 2048x1024


def expected_boxes(w: int, h: int, imgsz: int = 640) -> list[tuple[float, float, float, float, int]]:
    """The constant model's two boxes in the pixels of a w x h frame (inverse letterbox)."""
    r = min(imgsz / h, imgsz / w)
    padx, pady = (imgsz - round(w * r)) / 2, (imgsz - round(h * r)) / 2
    out = []
    for cx, cy, bw, bh, cls in [(320, 320, 20, 40, 0), (100, 250, 10, 20, 1)]:
        x1, y1 = (cx - bw / 2 - padx) / r, (cy - bh / 2 - pady) / r
        x2, y2 = (cx + bw / 2 - padx) / r, (cy + bh / 2 - pady) / r
        out.append((max(0, x1), max(0, y1), min(w, x2), min(h, y2), cls))
    return out


def make_image(encoding: str, sec: int, frame_id: str, w: int = W, h: int = H, pad: int = 0) -> Image:
    channels = {"bgr8": 3, "rgb8": 3, "mono8": 1, "mono16": 1}[encoding]
    itemsize = 2 if encoding == "mono16" else 1
    row = w * channels * itemsize
    msg = Image()
    msg.header = Header(stamp=Time(sec=sec, nanosec=123), frame_id=frame_id)
    msg.height, msg.width, msg.encoding, msg.step = h, w, encoding, row + pad
    msg.data = np.random.default_rng(sec).integers(0, 255, size=(h, row + pad), dtype=np.uint8).tobytes()
    return msg


def boxes_of(msg: Detection2DArray) -> list[tuple[float, float, float, float, int]]:
    out = []
    for d in msg.detections:
        cx, cy, w, h = d.bbox.center.position.x, d.bbox.center.position.y, d.bbox.size_x, d.bbox.size_y
        out.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, int(d.results[0].hypothesis.class_id)))
    return out


def find_by_stamp(msgs, sec: int):
    return next((m for m in list(msgs) if m.header.stamp.sec == sec), None)


def diag_values(msgs, name_part: str) -> dict[str, str]:
    for arr in reversed(list(msgs)):
        for st in arr.status:
            if name_part in st.name:
                return {kv.key: kv.value for kv in st.values}
    return {}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return ros_env(tmp_path_factory.mktemp("det_ros"), domain_id(__name__))


@pytest.fixture(scope="module")
def detector(env, constant_onnx, tmp_path_factory):
    """One detector process for the module: namespace /det, input /cam/image (raw, best effort)."""
    log = tmp_path_factory.mktemp("det_log") / "detector.log"
    args = ["--ros-args", "-r", "__ns:=/det", "-r", "image:=/cam/image", "-p", f"model:={constant_onnx[0]}",
            "-p", "imgsz:=640"]
    proc = start_node("kd_traffic_light.detector_node", args, env, log)
    with RosTestNode("probe", env) as probe:
        dets = probe.subscribe("/det/detector/detections", Detection2DArray)
        diags = probe.subscribe("/diagnostics", DiagnosticArray)
        pub = probe.publisher("/cam/image", Image, RELIABLE)
        proc = node_matched(proc, pub, log)
        yield probe, pub, dets, diags, log
    code = stop(proc)
    assert code == 0, f"detector exited with {code}\n{read_log(log)}"


def send_and_wait(probe, pub, dets, msg: Image, timeout: float = 20.0) -> Detection2DArray | None:
    sec = msg.header.stamp.sec  # best-effort input: resent until answered
    publish_until(probe, lambda: pub.publish(msg), lambda: find_by_stamp(dets, sec), timeout=timeout)
    return find_by_stamp(dets, sec)


@pytest.mark.parametrize(("encoding", "pad"), [("bgr8", 0), ("rgb8", 0), ("mono8", 0), ("bgr8", 64), ("mono16", 6)])
def test_header_is_copied_verbatim_and_boxes_are_in_frame_pixels(detector, encoding, pad):
    probe, pub, dets, _, log = detector
    sec = 1000 + random.randint(0, 10**6)
    out = send_and_wait(probe, pub, dets, make_image(encoding, sec, f"cam_{encoding}", pad=pad))
    assert out is not None, read_log(log)
    assert out.header.stamp.sec == sec and out.header.stamp.nanosec == 123
    assert out.header.frame_id == f"cam_{encoding}"
    assert all(d.header == out.header for d in out.detections)
    got = boxes_of(out)
    assert len(got) == 2
    for g, e in zip(got, expected_boxes(W, H)):
        assert g == pytest.approx(e, abs=0.5)
    assert [d.results[0].hypothesis.score for d in out.detections] == pytest.approx([0.9, 0.8], abs=1e-5)


def test_full_size_frame(detector):
    probe, pub, dets, _, log = detector
    out = send_and_wait(probe, pub, dets, make_image("bgr8", 777, "cam_full", w=2048, h=1024))
    assert out is not None, read_log(log)
    assert boxes_of(out)[0] == pytest.approx((992.0, 448.0, 1056.0, 576.0, 0), abs=0.5)


def test_label_info_reaches_a_late_subscriber(detector):
    probe = detector[0]
    infos = probe.subscribe("/det/detector/label_info", LabelInfo, LATCHED)
    assert probe.wait_for(lambda: infos, timeout=20)
    assert {c.class_id: c.class_name for c in infos[0].class_map} == {0: "relevant", 1: "not_relevant"}
    assert infos[0].threshold == pytest.approx(0.25)


def malformed_images(n: int, seed: int = 0):
    rng = random.Random(seed)
    for i in range(n):
        kind = rng.choice(["step", "truncated", "encoding", "zero", "stamp", "frame_id", "huge_step"])
        msg = make_image("bgr8", 5000 + i, "cam_bad", w=64, h=32)
        if kind == "step":
            msg.step = rng.randint(0, 64 * 3 - 1)
        elif kind == "truncated":
            msg.data = bytes(msg.data)[: rng.randint(0, len(msg.data) - 1)]
        elif kind == "encoding":
            msg.encoding = rng.choice(["xyz", "", "bgr9", "32FC9x"])
        elif kind == "zero":
            msg.width = 0
        elif kind == "stamp":
            msg.header.stamp = Time(sec=0, nanosec=0)
        elif kind == "frame_id":
            msg.header.frame_id = ""
        else:
            msg.step = 10**6
        yield msg


def test_node_survives_malformed_images_and_answers_the_next_good_one(detector):
    probe, pub, dets, diags, log = detector
    n = 300
    for msg in malformed_images(n):
        pub.publish(msg)
    out = send_and_wait(probe, pub, dets, make_image("bgr8", 424242, "cam_good"))
    assert out is not None and len(out.detections) == 2, read_log(log)
    assert not any(m.header.frame_id == "cam_bad" for m in dets), "a malformed frame produced detections"
    # the reliable input has depth 1 at the node: not all 300 reach the worker, but rejects are counted
    assert probe.wait_for(lambda: int(diag_values(diags, "/det/detector").get("rejected", 0)) > 0, timeout=5)
    values = diag_values(diags, "/det/detector")
    rejected = int(values["rejected"])
    assert 0 < rejected <= n
    assert sum(int(v) for k, v in values.items() if k.startswith("rejected_")) == rejected


def test_fuzz_compressed_and_raw_garbage(env, constant_onnx, tmp_path):
    """A few hundred random Image and CompressedImage messages, then a good one: alive, answers, counts."""
    log = tmp_path / "fuzz.log"
    proc = start_node("kd_traffic_light.detector_node",
                      ["--ros-args", "-r", "__ns:=/fz", "-r", "image:=/fz_cam/image", "-p",
                       f"model:={constant_onnx[0]}", "-p", "input_transport:=compressed",
                       "-p", "image_reliability:=reliable"], env, log)
    try:
        with RosTestNode("fuzzer", env) as probe:
            dets = probe.subscribe("/fz/detector/detections", Detection2DArray)
            diags = probe.subscribe("/diagnostics", DiagnosticArray)
            pub = probe.publisher("/fz_cam/image/compressed", CompressedImage, RELIABLE)
            proc = node_matched(proc, pub, log)
            rng = np.random.default_rng(1)
            ok, jpeg = cv2.imencode(".jpg", np.full((H, W, 3), 90, np.uint8))
            for i in range(300):
                m = CompressedImage(format="jpeg")
                m.header = Header(stamp=Time(sec=9000 + i), frame_id="fz_bad")
                kind = i % 3
                if kind == 0:
                    m.data = rng.integers(0, 255, size=int(rng.integers(0, 2000)), dtype=np.uint8).tobytes()
                elif kind == 1:  # a truncated JPEG
                    m.data = jpeg.tobytes()[: int(rng.integers(1, len(jpeg) // 4))]
                else:  # valid JPEG, bad header
                    m.data = jpeg.tobytes()
                    m.header.frame_id = ""
                pub.publish(m)
                time.sleep(0.002)  # the input is depth 1 by design: pace so the callback sees each one
            good = CompressedImage(format="jpeg", data=jpeg.tobytes())
            good.header = Header(stamp=Time(sec=31337), frame_id="fz_good")
            assert publish_until(probe, lambda: pub.publish(good), lambda: find_by_stamp(dets, 31337),
                                 timeout=30), read_log(log)
            assert len(find_by_stamp(dets, 31337).detections) == 2
            assert not any(m.header.frame_id.startswith("fz_bad") for m in dets)
            values = {}

            def counted():  # every frame that reached the callback is accounted for, the bad ones as rejected
                values.update(diag_values(diags, "/fz/detector"))
                outcomes = ("rejected", "processed", "dropped_busy", "dropped_for_fresh", "stale", "paused", "errors")
                n = {k: int(values.get(k, 0)) for k in ("received", *outcomes)}
                return n["rejected"] >= 1 and n["processed"] >= 1 and n["received"] == sum(n[k] for k in outcomes)

            assert probe.wait_for(counted, timeout=15), values
            assert proc.poll() is None
    finally:
        assert stop(proc) == 0, read_log(log)


def test_missing_model_fails_at_start_naming_the_path(env, tmp_path):
    missing = tmp_path / "no_such_student.onnx"
    r = subprocess.run([sys.executable, "-m", "kd_traffic_light.detector_node", "--ros-args", "-p",
                        f"model:={missing}"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "no_such_student.onnx" in r.stdout + r.stderr


def test_invalid_parameter_fails_at_start_naming_it(env, constant_onnx):
    r = subprocess.run([sys.executable, "-m", "kd_traffic_light.detector_node", "--ros-args", "-p",
                        f"model:={constant_onnx[0]}", "-p", "input_transport:=theora"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "input_transport" in r.stdout + r.stderr


def test_a_state_model_gives_each_box_its_state_by_name(env, constant_onnx, tmp_path):
    """Two-class detector + the colour classifier (test/core/lean_models.py): the box painted red reads
    relevant_red, the green one not_relevant_green, and LabelInfo lists the ten folded classes."""
    from test.core.lean_models import make_colour_state_onnx

    reader = make_colour_state_onnx(tmp_path / "colour.onnx")
    log = tmp_path / "state.log"
    args = ["--ros-args", "-r", "__ns:=/st", "-r", "image:=/st_cam/image", "-p", f"model:={constant_onnx[0]}",
            "-p", "imgsz:=640", "-p", f"state_model:={reader}", "-p", "class_id_as_name:=true",
            "-p", "tracking:=false"]
    proc = start_node("kd_traffic_light.detector_node", args, env, log)
    try:
        with RosTestNode("state_probe", env) as probe:
            dets = probe.subscribe("/st/detector/detections", Detection2DArray)
            infos = probe.subscribe("/st/detector/label_info", LabelInfo, LATCHED)
            pub = probe.publisher("/st_cam/image", Image, RELIABLE)
            proc = node_matched(proc, pub, log)
            frame = np.zeros((H, W, 3), np.uint8)
            for (x1, y1, x2, y2, _), bgr in zip(expected_boxes(W, H), ((0, 0, 255), (0, 255, 0)), strict=True):
                frame[max(0, int(y1) - 8):int(y2) + 8, max(0, int(x1) - 8):int(x2) + 8] = bgr
            msg = make_image("bgr8", 7100, "cam_state")
            msg.data = frame.tobytes()
            got = send_and_wait(probe, pub, dets, msg)
            assert got is not None, read_log(log)
            names = sorted((d.bbox.center.position.x, d.results[0].hypothesis.class_id) for d in got.detections)
            assert [n for _, n in names] == ["not_relevant_green", "relevant_red"]  # the green box is the left one
            assert probe.wait_for(lambda: infos, timeout=20)
            assert [c.class_name for c in infos[0].class_map][:2] == ["relevant_red", "relevant_yellow"]
            assert len(infos[0].class_map) == 10
    finally:
        assert stop(proc) == 0, read_log(log)
