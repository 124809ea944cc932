"""The detector node's tracks and governing signal as another process receives them.

A constant ONNX model of the ``relevance_state`` scheme reads one relevant red light in every frame; frames
stamped at 15 Hz go in, and a subscriber in this process reads ``Detection2D.id`` and
``autoware_perception_msgs/TrafficLightGroupArray`` on ``~/traffic_signals``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from autoware_perception_msgs.msg import TrafficLightElement, TrafficLightGroupArray
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from kd_traffic_light.conversions import signal_from_msg, tracks_from_msg
from kd_traffic_light.core.classes import class_names
from test.core.lean_models import make_constant_onnx
from test.nodes.ros_helpers import RELIABLE, RosTestNode, domain_id, node_matched, read_log, ros_env, start_node, stop
from test.nodes.test_detector_node import make_image

GROUP = 4242


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return ros_env(tmp_path_factory.mktemp("sig_ros"), domain_id(__name__))


@pytest.fixture(scope="module")
def red_light_onnx(tmp_path_factory):
    names = class_names("relevance_state")  # class 0 = relevant_red
    return make_constant_onnx(tmp_path_factory.mktemp("sig_models") / "red.onnx", boxes=[(320, 320, 20, 40, 0, 0.9)],
                              nc=len(names), names=names)


def stamp_of(i: int) -> Time:
    ns = 100 * 10**9 + i * 10**9 // 15
    return Time(sec=ns // 10**9, nanosec=ns % 10**9)


def test_track_ids_and_the_signal_reach_another_process(env, red_light_onnx, tmp_path):
    log = tmp_path / "detector.log"
    proc = start_node("kd_traffic_light.detector_node",
                      ["--ros-args", "-r", "__ns:=/sig", "-r", "image:=/sig_cam/image", "-p",
                       f"model:={red_light_onnx}", "-p", "image_reliability:=reliable", "-p",
                       f"signal_group_id:={GROUP}"], env, log)
    try:
        with RosTestNode("signal_probe", env) as probe:
            dets = probe.subscribe("/sig/detector/detections", Detection2DArray)
            signals = probe.subscribe("/sig/detector/traffic_signals", TrafficLightGroupArray)
            lights = probe.subscribe("/sig/detector/traffic_lights", TrafficLightGroupArray)
            pub = probe.publisher("/sig_cam/image", Image, RELIABLE)
            proc = node_matched(proc, pub, log)
            for i in range(6):  # one frame at a time, in stamp order: the tracker sees each one
                msg = make_image("bgr8", 1, "sig_cam", w=256, h=128)
                msg.header.stamp = stamp_of(i)
                pub.publish(msg)
                assert probe.wait_for(lambda i=i: len(signals) > i and len(dets) > i and len(lights) > i,
                                      timeout=20), read_log(log)
    finally:
        code = stop(proc)
    assert code == 0, read_log(log)
    assert [m.stamp for m in signals] == [stamp_of(i) for i in range(6)]
    assert all(m.traffic_light_groups[0].traffic_light_group_id == GROUP for m in signals)
    states = [signal_from_msg(m)[0] for m in signals]
    # tentative for track_birth_s (0.1 s: frames 0 and 1 at 15 Hz), then red (two red frames out of unknown)
    assert states == ["unknown", "unknown", "red", "red", "red", "red"]
    el = signals[-1].traffic_light_groups[0].elements
    assert [(e.color, e.shape, e.status) for e in el] == [
        (TrafficLightElement.RED, TrafficLightElement.CIRCLE, TrafficLightElement.SOLID_ON)]
    assert el[0].confidence == pytest.approx(1.0)  # the one voter's share
    ids = [m.detections[0].id for m in dets]
    assert ids[:2] == ["", ""] and len(set(ids[2:])) == 1 and ids[2] != ""
    # ~/traffic_lights: one group per confirmed track, its id the detections' id, its revised state
    assert [m.stamp for m in lights] == [stamp_of(i) for i in range(6)]
    assert [tracks_from_msg(m) for m in lights] == [{}, {}] + [{int(ids[2]): "red"}] * 4


def test_tracking_off_publishes_no_signal_and_no_ids(env, red_light_onnx, tmp_path):
    log = tmp_path / "detector.log"
    proc = start_node("kd_traffic_light.detector_node",
                      ["--ros-args", "-r", "__ns:=/nosig", "-r", "image:=/nosig_cam/image", "-p",
                       f"model:={red_light_onnx}", "-p", "image_reliability:=reliable", "-p", "tracking:=false"],
                      env, log)
    try:
        with RosTestNode("nosignal_probe", env) as probe:
            dets = probe.subscribe("/nosig/detector/detections", Detection2DArray)
            pub = probe.publisher("/nosig_cam/image", Image, RELIABLE)
            proc = node_matched(proc, pub, log)
            for i in range(3):
                msg = make_image("bgr8", 1, "nosig_cam", w=256, h=128)
                msg.header.stamp = stamp_of(i)
                pub.publish(msg)
                assert probe.wait_for(lambda i=i: len(dets) > i, timeout=20), read_log(log)
            assert "/nosig/detector/traffic_signals" not in dict(probe.node.get_topic_names_and_types())
    finally:
        code = stop(proc)
    assert code == 0, read_log(log)
    assert all(d.id == "" for m in dets for d in m.detections)


def test_bad_filter_parameters_are_named_at_start(env, red_light_onnx):
    r = subprocess.run([sys.executable, "-m", "kd_traffic_light.detector_node", "--ros-args", "-p",
                        f"model:={red_light_onnx}", "-p", "green_frames:=0", "-p", "hold_s:=-2.0"],
                       env=env, capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 1
    assert "parameter 'green_frames' = 0" in out and "parameter 'hold_s' = -2.0" in out
