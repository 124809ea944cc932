"""detector_node lifecycle, ~/enable, stale frames, multi-camera and compressed input (real processes)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import SetBool
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
from test.nodes.test_detector_node import diag_values, find_by_stamp, make_image


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return ros_env(tmp_path_factory.mktemp("lc_ros"), domain_id(__name__))


def call(probe, srv_type, name: str, request, timeout: float = 30.0):
    client = probe.node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=timeout), f"service {name} not available"
    future = client.call_async(request)
    assert probe.wait_for(future.done, timeout=timeout), f"no answer from {name}"
    return future.result()


def state(probe, ns: str) -> str:
    return call(probe, GetState, f"{ns}/get_state", GetState.Request()).current_state.label


def transition(probe, ns: str, tid: int) -> bool:
    req = ChangeState.Request()
    req.transition.id = tid
    return call(probe, ChangeState, f"{ns}/change_state", req).success


def test_lifecycle_transitions_and_enable(env, constant_onnx, tmp_path):
    log = tmp_path / "lc.log"
    proc = start_node("kd_traffic_light.detector_node",
                      ["--ros-args", "-r", "__ns:=/lc", "-r", "image:=/lc_cam/image",
                       "-p", f"model:={constant_onnx[0]}",
                       "-p", "autostart:=false", "-p", "image_reliability:=reliable"], env, log)
    ns = "/lc/detector"
    try:
        with RosTestNode("lc_probe", env) as probe:
            dets = probe.subscribe(f"{ns}/detections", Detection2DArray)
            pub = probe.publisher("/lc_cam/image", Image, RELIABLE)
            assert state(probe, ns) == "unconfigured", read_log(log)
            assert transition(probe, ns, Transition.TRANSITION_CONFIGURE), read_log(log)
            assert state(probe, ns) == "inactive"
            assert pub.get_subscription_count() == 0  # inactive: not subscribed
            assert transition(probe, ns, Transition.TRANSITION_ACTIVATE)
            assert state(probe, ns) == "active"
            assert probe.wait_for_subscribers(pub, timeout=20)
            infos = probe.subscribe(f"{ns}/label_info", LabelInfo, LATCHED)
            assert probe.wait_for(lambda: infos, timeout=20)

            assert probe.wait_for_publishers(f"{ns}/detections"), read_log(log)
            frame = make_image("bgr8", 11, "lc")
            assert publish_until(probe, lambda: pub.publish(frame), lambda: find_by_stamp(dets, 11)), read_log(log)

            assert call(probe, SetBool, f"{ns}/enable", SetBool.Request(data=False)).success
            pub.publish(make_image("bgr8", 12, "lc"))
            assert not probe.wait_for(lambda: find_by_stamp(dets, 12), timeout=2)  # paused
            assert call(probe, SetBool, f"{ns}/enable", SetBool.Request(data=True)).success
            pub.publish(make_image("bgr8", 13, "lc"))
            assert probe.wait_for(lambda: find_by_stamp(dets, 13), timeout=20)

            assert transition(probe, ns, Transition.TRANSITION_DEACTIVATE)
            assert probe.wait_for(lambda: pub.get_subscription_count() == 0, timeout=20)
            assert transition(probe, ns, Transition.TRANSITION_CLEANUP)
            assert state(probe, ns) == "unconfigured"
            assert transition(probe, ns, Transition.TRANSITION_CONFIGURE)  # loads again after cleanup
            assert transition(probe, ns, Transition.TRANSITION_ACTIVATE)
            assert probe.wait_for_subscribers(pub, timeout=20)
            frame = make_image("bgr8", 14, "lc")  # the outputs were made again at configure: resent until matched
            assert publish_until(probe, lambda: pub.publish(frame), lambda: find_by_stamp(dets, 14)), read_log(log)
    finally:
        assert stop(proc) == 0, read_log(log)


def test_configure_with_bad_model_fails_without_killing_the_node(env, tmp_path):
    log = tmp_path / "bad.log"
    proc = start_node("kd_traffic_light.detector_node",
                      ["--ros-args", "-r", "__ns:=/bad", "-p", f"model:={tmp_path / 'missing.pt'}",
                       "-p", "autostart:=false"], env, log)
    try:
        with RosTestNode("bad_probe", env) as probe:
            assert not transition(probe, "/bad/detector", Transition.TRANSITION_CONFIGURE)
            assert state(probe, "/bad/detector") == "unconfigured"
            assert proc.poll() is None
        assert "missing.pt" in read_log(log)
    finally:
        stop(proc)


def test_stale_frames_dropped_and_counted(env, constant_onnx, tmp_path):
    log = tmp_path / "stale.log"
    proc = start_node("kd_traffic_light.detector_node",
                      ["--ros-args", "-r", "__ns:=/st", "-r", "image:=/st_cam/image",
                       "-p", f"model:={constant_onnx[0]}",
                       "-p", "max_image_age_s:=5.0", "-p", "image_reliability:=reliable"], env, log)
    try:
        with RosTestNode("st_probe", env) as probe:
            dets = probe.subscribe("/st/detector/detections", Detection2DArray)
            diags = probe.subscribe("/diagnostics", DiagnosticArray)
            pub = probe.publisher("/st_cam/image", Image, RELIABLE)
            proc = node_matched(proc, pub, log)
            now = probe.node.get_clock().now().to_msg()
            old = make_image("bgr8", now.sec - 60, "st")  # a minute old
            pub.publish(old)
            assert probe.wait_for(lambda: int(diag_values(diags, "/st/detector").get("stale", 0)) >= 1, timeout=10)
            assert probe.wait_for_publishers("/st/detector/detections"), read_log(log)
            fresh = make_image("bgr8", now.sec, "st")
            fresh.header.stamp = probe.node.get_clock().now().to_msg()
            assert publish_until(probe, lambda: pub.publish(fresh),
                                 lambda: find_by_stamp(dets, fresh.header.stamp.sec)), read_log(log)
            assert find_by_stamp(dets, now.sec - 60) is None
    finally:
        assert stop(proc) == 0, read_log(log)


def test_two_compressed_cameras_keep_their_own_headers(env, constant_onnx, tmp_path):
    log = tmp_path / "multi.log"
    proc = start_node("kd_traffic_light.detector_node",
                      ["--ros-args", "-r", "__ns:=/mc", "-p", f"model:={constant_onnx[0]}",
                       "-p", "image_topics:=['/front/image', '/left/image']", "-p", "input_transport:=compressed",
                       "-p", "image_reliability:=reliable"], env, log)
    try:
        with RosTestNode("mc_probe", env) as probe:
            front = probe.subscribe("/mc/detector/front_image/detections", Detection2DArray)
            left = probe.subscribe("/mc/detector/left_image/detections", Detection2DArray)
            pubs = {name: probe.publisher(f"/{name}/image/compressed", CompressedImage, RELIABLE)
                    for name in ("front", "left")}
            for p in pubs.values():
                proc = node_matched(proc, p, log)
            for name in ("front", "left"):
                assert probe.wait_for_publishers(f"/mc/detector/{name}_image/detections"), read_log(log)
            ok, jpeg = cv2.imencode(".jpg", np.full((256, 512, 3), 120, np.uint8))

            def send():
                for i, name in enumerate(("front", "left")):
                    msg = CompressedImage(format="jpeg", data=jpeg.tobytes())
                    msg.header = Header(stamp=Time(sec=100 + i, nanosec=7), frame_id=f"{name}_camera")
                    pubs[name].publish(msg)

            assert publish_until(probe, send, lambda: find_by_stamp(front, 100) and find_by_stamp(left, 101),
                                 timeout=30), read_log(log)
            f, g = find_by_stamp(front, 100), find_by_stamp(left, 101)
            assert f.header.frame_id == "front_camera" and f.header.stamp.nanosec == 7
            assert g.header.frame_id == "left_camera"
            assert len(f.detections) == 2 and len(g.detections) == 2
            assert not find_by_stamp(front, 101) and not find_by_stamp(left, 100)
    finally:
        assert stop(proc) == 0, read_log(log)


def test_debug_image_only_while_subscribed(env, constant_onnx, tmp_path):
    log = tmp_path / "dbg.log"
    proc = start_node("kd_traffic_light.detector_node",
                      ["--ros-args", "-r", "__ns:=/dbg", "-r", "image:=/dbg_cam/image", "-p",
                       f"model:={constant_onnx[0]}", "-p", "image_reliability:=reliable"], env, log)
    try:
        with RosTestNode("dbg_probe", env) as probe:
            dets = probe.subscribe("/dbg/detector/detections", Detection2DArray)
            pub = probe.publisher("/dbg_cam/image", Image, RELIABLE)
            proc = node_matched(proc, pub, log)
            assert probe.node.count_subscribers("/dbg/detector/debug_image") == 0
            debug = probe.subscribe("/dbg/detector/debug_image", Image)
            assert probe.wait_for(lambda: probe.node.count_publishers("/dbg/detector/debug_image") >= 1, 20)
            msg = make_image("bgr8", 55, "dbg")
            assert publish_until(probe, lambda: pub.publish(msg), lambda: find_by_stamp(debug, 55)), read_log(log)
            img = find_by_stamp(debug, 55)
            assert img.encoding == "bgr8" and (img.width, img.height) == (msg.width, msg.height)
            assert img.header.frame_id == "dbg" and find_by_stamp(dets, 55) is not None
    finally:
        assert stop(proc) == 0, read_log(log)
