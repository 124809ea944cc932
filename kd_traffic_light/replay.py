"""Replay the camera topics of a rosbag2 (sqlite3 or mcap) with their ORIGINAL header stamps.

For setups without `ros2 bag` (the pip venv). Reads the bag with `rosbags`, deserialises with rclpy (CDR is
byte-identical) and republishes sensor_msgs/Image, CompressedImage and CameraInfo topics unchanged:

* at the recorded rate (`--rate 1.0`, scaled by the factor),
* as fast as possible (`--rate 0`),
* or paced by detectors (`--pace-topic /teacher/detector/detections [more topics]`): each image is
  published only after the Detection2DArray carrying the previous image's stamp and frame_id arrived on
  every pace topic (or `--pace-timeout` passed), so an offline evaluation processes every frame.

`--clock` also publishes /clock (the bag's receive time of each message) for nodes with use_sim_time.

    python -m kd_traffic_light.replay BAG [--rate R] [--pace-topic T ...] [--clock] [--topics T ...]
"""

from __future__ import annotations

import argparse
import importlib
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import rclpy
import rclpy.logging
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rosgraph_msgs.msg import Clock

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
REPLAY_TYPES = (*IMAGE_TYPES, "sensor_msgs/msg/CameraInfo")
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
PACE_QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


def get_args_parser() -> argparse.ArgumentParser:
    """Command-line flags of the replay tool."""
    p = argparse.ArgumentParser(prog="replay", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bag", type=Path, help="rosbag2 directory (with metadata.yaml), sqlite3 or mcap storage")
    p.add_argument("--topics", nargs="+", default=None,
                   help="topics to replay (default: every Image, CompressedImage and CameraInfo topic)")
    p.add_argument("--rate", type=float, default=1.0,
                   help="playback speed factor of the recorded timing; 0 = as fast as possible")
    p.add_argument("--pace-topic", nargs="+", default=[],
                   help="Detection2DArray topic(s) that pace playback: publish the next image only when the "
                        "previous image's stamp arrived there (overrides --rate)")
    p.add_argument("--pace-timeout", type=float, default=30.0,
                   help="seconds to wait for the pace topics before moving on (counted as a timeout)")
    p.add_argument("--start-delay", type=float, default=0.0,
                   help="seconds to wait after subscribers are ready (lets late discovery settle)")
    p.add_argument("--clock", action="store_true", help="also publish /clock with the bag's receive time")
    p.add_argument("--wait-subscribers", type=int, default=0,
                   help="before the first message, wait until every image topic has this many subscribers")
    p.add_argument("--wait-timeout", type=float, default=60.0,
                   help="seconds to wait for subscribers (and the pace topic's publisher) before starting")
    p.add_argument("--loop", action="store_true", help="start over at the end (not with --pace-topic)")
    return p


def message_class(msgtype: str):
    """Return the rclpy message class of a rosbags type name like 'sensor_msgs/msg/Image'."""
    pkg, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


def read_bag(path: Path, topics: Sequence[str] | None) -> tuple[list, Iterator]:
    """Open a rosbag2 and return (connections replayed, iterator of (topic, msgtype, log_time_ns, raw))."""
    from rosbags.rosbag2 import Reader

    reader = Reader(path)
    reader.open()
    conns = [c for c in reader.connections
             if (c.topic in topics if topics else c.msgtype in REPLAY_TYPES)]
    if topics:
        missing = set(topics) - {c.topic for c in conns}
        if missing:
            present = sorted({c.topic for c in reader.connections})
            reader.close()
            raise ValueError(f"{path}: topics {sorted(missing)} are not in the bag (it has {present})")

    def gen():
        try:
            for conn, t, raw in reader.messages(connections=conns):
                yield conn.topic, conn.msgtype, t, raw
        finally:
            reader.close()

    return conns, gen()


class ReplayNode(Node):
    """Publishers for the replayed topics, /clock and the pacing subscription."""

    def __init__(self, conns, args: argparse.Namespace) -> None:
        super().__init__("replay")
        self.args = args
        self.pubs = {c.topic: self.create_publisher(message_class(c.msgtype), c.topic, RELIABLE) for c in conns}
        self.image_topics = sorted({c.topic for c in conns if c.msgtype in IMAGE_TYPES})
        self.clock_pub = self.create_publisher(Clock, "/clock", RELIABLE) if args.clock else None
        self._cv = threading.Condition()
        self._done: dict[str, set[tuple[int, str]]] = {t: set() for t in args.pace_topic}
        self.pace_subs = {}
        if args.pace_topic:
            from vision_msgs.msg import Detection2DArray

            for topic in args.pace_topic:
                self.pace_subs[topic] = self.create_subscription(
                    Detection2DArray, topic, lambda m, t=topic: self._on_pace(t, m), PACE_QOS)

    def _on_pace(self, topic: str, msg) -> None:
        with self._cv:
            stamp = msg.header.stamp
            self._done[topic].add((stamp.sec * 1_000_000_000 + stamp.nanosec, msg.header.frame_id))
            self._cv.notify_all()

    def wait_paced(self, key: tuple[int, str], timeout: float) -> bool:
        """Wait until every pace topic carried `key`; False on timeout or shutdown."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while not all(key in done for done in self._done.values()):
                left = deadline - time.monotonic()
                if left <= 0 or not self.context.ok():
                    return False
                self._cv.wait(min(left, 0.1))
            for done in self._done.values():
                done.discard(key)
            return True

    def wait_ready(self) -> bool:
        """Wait for subscribers on the image topics and a publisher on the pace topic (see the flags)."""
        deadline = time.monotonic() + self.args.wait_timeout

        def ready() -> bool:
            subs = all(self.pubs[t].get_subscription_count() >= self.args.wait_subscribers for t in self.image_topics)
            for topic, sub in self.pace_subs.items():
                count = getattr(sub, "get_publisher_count", None)  # not on Humble
                if (count() if count else self.count_publishers(topic)) < 1:
                    return False
            return subs

        while not ready():
            if time.monotonic() > deadline or not self.context.ok():
                return False
            time.sleep(0.05)
        return True

    def publish(self, topic: str, msg, log_time_ns: int) -> None:
        """Publish one message (and /clock first, when enabled)."""
        if self.clock_pub is not None:
            clock = Clock()
            clock.clock.sec, clock.clock.nanosec = divmod(log_time_ns, 1_000_000_000)
            self.clock_pub.publish(clock)
        self.pubs[topic].publish(msg)

    def flush(self, timeout_s: float = 5.0) -> None:
        """Wait until reliable subscribers acknowledged everything published."""
        for pub in self.pubs.values():
            pub.wait_for_all_acked(Duration(seconds=timeout_s))


def _spin(executor: SingleThreadedExecutor) -> None:
    try:
        executor.spin()
    except (ExternalShutdownException, KeyboardInterrupt):
        pass


def _sleep_until(target: float, node: Node) -> bool:
    while node.context.ok():
        left = target - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(left, 0.05))
    return False


def play(node: ReplayNode, messages: Iterator, args: argparse.Namespace) -> tuple[int, int, int]:
    """Publish the bag's messages; return (messages, images, pace timeouts)."""
    n_msgs = n_images = timeouts = 0
    t0_bag = t0_wall = None
    log = node.get_logger()
    for topic, msgtype, t, raw in messages:
        if not node.context.ok():
            break
        msg = deserialize_message(raw, message_class(msgtype))
        if args.rate > 0 and not args.pace_topic:
            if t0_bag is None:
                t0_bag, t0_wall = t, time.monotonic()
            if not _sleep_until(t0_wall + (t - t0_bag) / 1e9 / args.rate, node):
                break
        node.publish(topic, msg, t)
        n_msgs += 1
        if msgtype in IMAGE_TYPES:
            n_images += 1
            if args.pace_topic:
                key = (msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec, msg.header.frame_id)
                if not node.wait_paced(key, args.pace_timeout) and node.context.ok():
                    timeouts += 1
                    log.warning(f"no detections on {args.pace_topic} for frame {key} within "
                                f"{args.pace_timeout} s; moving on")
    return n_msgs, n_images, timeouts


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `replay` executable (ROS arguments after --ros-args are passed to rclpy)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args = argv[argv.index("--ros-args"):] if "--ros-args" in argv else []
    args = get_args_parser().parse_args(argv[: len(argv) - len(ros_args)])
    if args.pace_topic and args.loop:
        raise SystemExit("replay: --loop cannot be combined with --pace-topic")
    conns, messages = read_bag(args.bag, args.topics)
    if not conns:
        raise SystemExit(f"replay: {args.bag} has no Image, CompressedImage or CameraInfo topic")
    rclpy.init(args=["replay", *ros_args])
    node = executor = thread = None
    stats = (0, 0, 0)
    start = time.monotonic()
    try:
        node = ReplayNode(conns, args)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        thread = threading.Thread(target=_spin, args=(executor,), daemon=True)
        thread.start()
        node.get_logger().info(f"replaying {', '.join(sorted(node.pubs))} from {args.bag}")
        if not node.wait_ready():
            node.get_logger().warning("subscribers / pace topic not ready in time; starting anyway")
        time.sleep(args.start_delay)
        node.get_logger().info(f"starting playback after {time.monotonic() - start:.1f} s")
        while True:
            stats = tuple(a + b for a, b in zip(stats, play(node, messages, args)))
            if not (args.loop and node.context.ok()):
                break
            _, messages = read_bag(args.bag, args.topics)
        if node.context.ok():
            node.flush()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if executor is not None:
            executor.shutdown(timeout_sec=1.0)
        if thread is not None:
            thread.join(timeout=5.0)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    rclpy.logging.get_logger("replay").info(
        f"published {stats[0]} messages ({stats[1]} images) in {time.monotonic() - start:.1f} s; "
        f"pace timeouts: {stats[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
