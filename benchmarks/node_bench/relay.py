"""The transport floor: a node that receives frames as the detector does and answers each at once.

Raw subscription to ``image``, header read from the bytes, an empty ``Detection2DArray`` with that header
published on ``~/detections`` (node name ``detector``, like the detector's). Started by the benchmark as
``python -m benchmarks.node_bench.relay --ros-args -r __ns:=/relay -r image:=...``; runs in the runtime venv.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Spin the relay until SIGINT/SIGTERM; ROS arguments are those from ``--ros-args`` on."""
    from kd_traffic_light.shutdown import SignalGuard, init_rclpy, spin_until_requested

    argv = list(sys.argv[1:] if argv is None else argv)
    guard = SignalGuard("relay").install()
    init_rclpy(argv[argv.index("--ros-args"):] if "--ros-args" in argv else [])
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray

    from kd_traffic_light.cdr_image import read_image
    from kd_traffic_light.detector_node import header_msg

    class Relay(Node):
        def __init__(self) -> None:
            super().__init__("detector")
            self.pub = self.create_publisher(Detection2DArray, "~/detections", 10)
            self.create_subscription(Image, "image", self._on_image,
                                     QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT), raw=True)

        def _on_image(self, raw: bytes) -> None:
            out = Detection2DArray()
            out.header = header_msg(read_image(raw))
            self.pub.publish(out)

    node = Relay()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        spin_until_requested(executor, guard)
    finally:
        guard.ignore_further()
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
