"""A consumer of the detector in a process of its own, with whatever Fast DDS transports its environment sets.

``python -m test.nodes.transport_listener <node> <namespace> <result.json> [--timeout S]``: waits until the node
is in its graph, then for one ``detections`` message and one ``debug_image``, and writes what it saw as JSON
(``seen_s``, ``detections``, ``boxes``, ``debug_image`` [w, h, encoding], ``first_s``). Used by
test_transports.py, which starts it with the default transports, LARGE_DATA and the shipped profile.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("node")
    p.add_argument("namespace")
    p.add_argument("out", type=Path)
    p.add_argument("--timeout", type=float, default=60.0)
    args = p.parse_args()
    rclpy.init()
    node = rclpy.create_node("transport_listener")
    t0 = time.monotonic()
    got: dict = {"seen_s": None, "detections": 0, "boxes": None, "debug_image": None, "first_s": {}}

    def on_dets(msg: Detection2DArray) -> None:
        got["detections"] += 1
        got["boxes"] = len(msg.detections)
        got["first_s"].setdefault("detections", round(time.monotonic() - t0, 2))

    def on_image(msg: Image) -> None:
        got["debug_image"] = [msg.width, msg.height, msg.encoding, len(msg.data)]
        got["first_s"].setdefault("debug_image", round(time.monotonic() - t0, 2))

    reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Detection2DArray, f"{args.namespace}/{args.node}/detections", on_dets, 10)
    node.create_subscription(Image, f"{args.namespace}/{args.node}/debug_image", on_image, reliable)
    try:
        while time.monotonic() - t0 < args.timeout and not (got["detections"] and got["debug_image"] and got["seen_s"]):
            rclpy.spin_once(node, timeout_sec=0.05)
            if got["seen_s"] is None and (args.node, args.namespace) in node.get_node_names_and_namespaces():
                got["seen_s"] = round(time.monotonic() - t0, 2)
    finally:
        args.out.write_text(json.dumps(got))
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
