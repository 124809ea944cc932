"""The detector, started as the launch files start it, is seen and read from every common ROS environment.

Three consumers, each a process of its own on the same domain: ROS's default Fast DDS transports (UDP and a small
shared-memory segment), ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA`` (what ROS documentation recommends for large
images, and what many users keep in their shell for RViz and ``ros2 bag``) and the shipped profile. Each must
discover the node and receive its detections and a full 2048x1024 debug image.
"""

from __future__ import annotations

import json
import sys
import time

import pytest
from sensor_msgs.msg import Image

from kd_traffic_light.tools.processes import fastdds_profile, start_process
from test.nodes.ros_helpers import RELIABLE, RosTestNode, domain_id, node_matched, read_log, ros_env, start_node, stop
from test.nodes.test_detector_node import make_image

W, H = 2048, 1024
TRANSPORT_VARS = ("FASTDDS_BUILTIN_TRANSPORTS", "FASTDDS_DEFAULT_PROFILES_FILE")


def consumer_envs(env: dict[str, str]) -> dict[str, dict[str, str]]:
    """The three environments a user's consumer may have, from the nodes' own (which loads the shipped profile)."""
    default = {k: v for k, v in env.items() if k not in TRANSPORT_VARS}
    return {"default": default, "large_data": {**default, "FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"},
            "profile": dict(env)}


@pytest.mark.slow
def test_default_large_data_and_profile_consumers_all_see_the_detector(tmp_path, constant_onnx):
    # the detector as the launch files start it: the shipped profile (the test's own probe runs without TCP)
    env = {**ros_env(tmp_path, domain_id(__name__)), "FASTDDS_DEFAULT_PROFILES_FILE": fastdds_profile()}
    log = tmp_path / "detector.log"
    args = ["--ros-args", "-r", "__ns:=/tl", "-r", "image:=/tl/cam/image", "-p", f"model:={constant_onnx[0]}",
            "-p", "imgsz:=640", "-p", "publish_debug_image:=true"]
    with RosTestNode("transport_probe", env) as probe:
        pub = probe.publisher("/tl/cam/image", Image, RELIABLE)
        proc = node_matched(start_node("kd_traffic_light.detector_node", args, env, log), pub, log)
        consumers = {}
        try:
            for name, cenv in consumer_envs(env).items():
                out = tmp_path / f"{name}.json"
                consumers[name] = (out, start_process(
                    [sys.executable, "-m", "test.nodes.transport_listener", "detector", "/tl", str(out),
                     "--timeout", "60"], cenv, tmp_path / f"{name}.log"))
            sec, deadline = 100, time.monotonic() + 90
            while time.monotonic() < deadline and any(p.poll() is None for _, p in consumers.values()):
                # the detector's input is best effort: keep frames coming
                pub.publish(make_image("bgr8", sec, "cam", w=W, h=H))
                sec += 1
                time.sleep(0.2)
        finally:
            for _, p in consumers.values():
                if p.poll() is None:
                    p.kill()
            code = stop(proc)
    assert code == 0, read_log(log)
    for name, (out, _) in consumers.items():
        got = json.loads(out.read_text()) if out.is_file() else None
        context = f"{name}: {got}\n{read_log(tmp_path / f'{name}.log')}\n{read_log(log)}"
        assert got is not None and got["seen_s"] is not None, context
        assert got["detections"] >= 1 and got["boxes"] == 2, context
        assert got["debug_image"] == [W, H, "bgr8", W * H * 3], context
