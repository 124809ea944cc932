"""Replay the camera topics of a rosbag2 (sqlite3 or mcap) with their ORIGINAL header stamps.

For setups without `ros2 bag` (the pip venvs): republishes Image, CompressedImage and CameraInfo topics
unchanged, at the recorded rate (`--rate`), as fast as possible (`--rate 0`) or paced by detectors
(`--pace-topic`), so that an offline evaluation processes every frame.

    python -m kd_traffic_light.tools.replay BAG [--rate R] [--pace-topic T ...] [--clock] [--topics T ...]

Pacing, start-up waits, errors and exit status: docs/runtime.md, "Offline tools over a bag".
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
WAIT_REPORT_S = 5.0  # while waiting to start, log what is still missing this often


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
                   help="seconds to wait for the subscribers, the pace topics' publishers and the start file; "
                        "what did not appear by then is an error (exit 1); 0 = start at once")
    p.add_argument("--start-file", type=Path, default=None,
                   help="before the first message, also wait until this file exists (a parent process creates "
                        "it when its own consumers are ready)")
    p.add_argument("--loop", action="store_true", help="start over at the end (not with --pace-topic)")
    return p


def message_class(msgtype: str):
    """Return the rclpy message class of a rosbags type name like 'sensor_msgs/msg/Image'."""
    pkg, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


class BagError(ValueError):
    """A bag that cannot be replayed; the message names the file and what is wrong with it."""


class NotReadyError(RuntimeError):
    """What playback waits for (subscribers, pace publishers, the start file) did not appear in time."""


def _reason(exc: BaseException) -> str:
    """One line for an exception from rosbags, sqlite or yaml (a YAML error's first line, without its excerpt)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _storage_files(path: Path) -> str:
    """Name the bag's storage files (``path`` itself for a single storage file), for error messages."""
    files = sorted(p for p in path.iterdir() if p.suffix in (".mcap", ".db3", ".zstd")) if path.is_dir() else []
    return ", ".join(map(str, files or [path]))


def open_bag(path: Path):
    """Open a rosbag2 with rosbags; a missing, non-bag, truncated or corrupt one raises BagError."""
    from rosbags.rosbag2 import Reader

    path = Path(path)
    if not path.exists():
        raise BagError(f"{path}: no such bag (file or directory not found)")
    try:
        reader = Reader(path)
    except Exception as exc:  # noqa: BLE001 - ReaderError, YAMLError, KeyError... all mean "not a bag"
        raise BagError(f"{path}: not a rosbag2 ({_reason(exc)})") from None
    try:
        reader.open()
    except Exception as exc:  # noqa: BLE001
        reason = _reason(exc)  # name the file at fault: the metadata or the storage files
        bad = path / "metadata.yaml" if path.is_dir() and ("metadata" in reason or "YAML" in reason) else None
        raise BagError(f"{bad or _storage_files(path)}: cannot read the bag, truncated or corrupt? ({reason})") \
            from None
    return reader


def _describe(conns) -> str:
    return ", ".join(f"{c.topic} ({c.msgtype})" for c in sorted(conns, key=lambda c: c.topic)) or "no topic"


def select_connections(reader, path: Path, topics: Sequence[str] | None) -> list:
    """Return the connections to replay (``topics``, or every camera topic); BagError if no image can be.

    Refused: a topic of ``topics`` not in the bag, a type whose message package is not installed, a selection
    without an Image or CompressedImage topic, and image topics without messages. The messages name the bag,
    the topics and their types, and the supported types.
    """
    conns = [c for c in reader.connections if (c.topic in topics if topics else c.msgtype in REPLAY_TYPES)]
    if topics:
        missing = set(topics) - {c.topic for c in conns}
        if missing:
            raise BagError(f"{path}: topics {sorted(missing)} are not in the bag; it has "
                           f"{_describe(reader.connections)}; supported image types: {', '.join(IMAGE_TYPES)}")
    supported = ", ".join(IMAGE_TYPES)
    images = [c for c in conns if c.msgtype in IMAGE_TYPES]
    if not images:
        shown = [c for c in reader.connections if c.topic in topics] if topics else reader.connections
        raise BagError(f"{path}: no image topic to replay: the bag has {_describe(shown)}; "
                       f"supported image types: {supported}")
    for c in conns:
        try:
            message_class(c.msgtype)
        except (ImportError, AttributeError, ValueError):
            raise BagError(f"{path}: topic {c.topic} has type {c.msgtype}, whose message package is not "
                           "installed here") from None
    if not any(getattr(c, "msgcount", 1) for c in images):
        raise BagError(f"{path}: image topic(s) {_describe(images)} have no messages")
    return conns


def read_bag(path: Path, topics: Sequence[str] | None) -> tuple[list, Iterator]:
    """Open a rosbag2 and return (connections replayed, iterator of (topic, msgtype, log_time_ns, raw)).

    Raises BagError (see :func:`open_bag` and :func:`select_connections`); the iterator raises BagError
    when the bag turns out truncated or corrupt while it is read.
    """
    reader = open_bag(path)
    try:
        conns = select_connections(reader, path, topics)
    except BagError:
        reader.close()
        raise

    def gen():
        n = 0
        try:
            for conn, t, raw in reader.messages(connections=conns):
                yield conn.topic, conn.msgtype, t, raw
                n += 1
        except GeneratorExit:
            raise
        except Exception as exc:  # noqa: BLE001 - rosbags' ReaderError, sqlite3 errors, struct errors...
            raise BagError(f"{_storage_files(path)}: reading failed after {n} messages, truncated or corrupt? "
                           f"({_reason(exc)})") from None
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

    def not_ready(self) -> list[str]:
        """Return what playback still waits for; empty when ready.

        Image topics short of subscribers, pace topics without a publisher, the start file. Matched endpoints
        are counted, not merely discovered ones.
        """
        missing = []
        for topic in self.image_topics:
            n = self.pubs[topic].get_subscription_count()
            if n < self.args.wait_subscribers:
                missing.append(f"image topic {topic} has {n} of {self.args.wait_subscribers} subscribers")
        for topic, sub in self.pace_subs.items():
            count = getattr(sub, "get_publisher_count", None)  # not on Humble
            if (count() if count else self.count_publishers(topic)) < 1:
                missing.append(f"pace topic {topic} has no publisher")
        start_file = self.args.start_file
        if start_file is not None and not start_file.exists():
            missing.append(f"start file {start_file} was not created")
        return missing

    def wait_ready(self) -> list[str]:
        """Wait up to ``--wait-timeout`` for :meth:`not_ready` to empty; return what is still missing then.

        ``--wait-timeout 0`` does not wait (returns []); so does a shutdown meanwhile (the caller checks it).
        """
        if self.args.wait_timeout == 0:
            return []
        deadline = time.monotonic() + self.args.wait_timeout
        next_report = time.monotonic() + WAIT_REPORT_S
        while self.context.ok():
            missing = self.not_ready()
            if not missing or time.monotonic() > deadline:
                return missing
            if time.monotonic() >= next_report:  # what it still waits for, so a stalled start-up says why
                self.get_logger().info(f"waiting for: {'; '.join(missing)}")
                next_report += WAIT_REPORT_S
            time.sleep(0.05)
        return []

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


def _parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """Split off the ROS arguments (from ``--ros-args`` on), parse and check the rest (exit 2 on bad flags).

    Returns ``(args, ros_args)``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args = argv[argv.index("--ros-args"):] if "--ros-args" in argv else []
    parser = get_args_parser()
    args = parser.parse_args(argv[: len(argv) - len(ros_args)])
    if args.pace_topic and args.loop:
        parser.error("--loop cannot be combined with --pace-topic")
    if args.rate < 0 or args.pace_timeout <= 0 or args.wait_timeout < 0 or args.wait_subscribers < 0:
        parser.error("--rate, --wait-timeout and --wait-subscribers must be >= 0, --pace-timeout > 0")
    return args, ros_args


def _replay(node: ReplayNode, messages: Iterator, args: argparse.Namespace, start: float, stats: list[int]) -> bool:
    """Wait for what playback needs, then play the bag (over and over with ``--loop``); return whether interrupted.

    ``stats`` (messages, images, pace timeouts) is added up in place after every pass, so that it counts the
    passes played also when a later one raises. Raises NotReadyError when :meth:`ReplayNode.wait_ready` times
    out, BagError when the bag turns out truncated or corrupt.
    """
    missing = node.wait_ready()
    if missing:
        raise NotReadyError(f"{args.bag}: nothing replayed: after --wait-timeout {args.wait_timeout} s "
                            + "; ".join(missing))
    time.sleep(args.start_delay)
    node.get_logger().info(f"starting playback after {time.monotonic() - start:.1f} s")
    while node.context.ok():
        stats[:] = [a + b for a, b in zip(stats, play(node, messages, args))]
        if not (args.loop and node.context.ok()):
            break
        _, messages = read_bag(args.bag, args.topics)
    interrupted = not node.context.ok()
    if not interrupted:
        node.flush()
    return interrupted


def _shutdown(node: ReplayNode | None, executor: SingleThreadedExecutor | None,
              thread: threading.Thread | None) -> None:
    """Stop the executor and its thread, destroy the node and shut rclpy down (each part only if it was made)."""
    if executor is not None:
        executor.shutdown(timeout_sec=1.0)
    if thread is not None:
        thread.join(timeout=5.0)
    if node is not None:
        node.destroy_node()
    rclpy.try_shutdown()


def _playback_failure(args: argparse.Namespace, conns: list, stats: Sequence[int]) -> str | None:
    """Why a playback that ran to its end failed (no image published; with --pace-topic, no frame paced), or None."""
    image_topics = _describe(c for c in conns if c.msgtype in IMAGE_TYPES)
    if stats[1] == 0:
        return f"{args.bag}: no image was published: {image_topics} gave no message"
    if args.pace_topic and stats[2] == stats[1]:
        return (f"{args.bag}: none of the {stats[1]} images of {image_topics} got its detections on "
                f"{args.pace_topic} within --pace-timeout {args.pace_timeout} s; is the detector running?")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `replay` executable (ROS arguments after --ros-args are passed to rclpy)."""
    args, ros_args = _parse_args(argv)
    try:
        conns, messages = read_bag(args.bag, args.topics)
    except BagError as exc:
        print(f"replay: error: {exc}", file=sys.stderr, flush=True)
        return 1
    rclpy.init(args=["replay", *ros_args])
    node = executor = thread = None
    stats = [0, 0, 0]  # messages, images, pace timeouts
    failure = None
    interrupted = False
    start = time.monotonic()
    try:
        node = ReplayNode(conns, args)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        thread = threading.Thread(target=_spin, args=(executor,), daemon=True)
        thread.start()
        node.get_logger().info(f"replaying {', '.join(sorted(node.pubs))} from {args.bag}")
        interrupted = _replay(node, messages, args, start, stats)
    except (BagError, NotReadyError) as exc:
        failure = str(exc)
    except (KeyboardInterrupt, ExternalShutdownException):
        interrupted = True
    finally:
        _shutdown(node, executor, thread)
    rclpy.logging.get_logger("replay").info(
        f"published {stats[0]} messages ({stats[1]} images) in {time.monotonic() - start:.1f} s; "
        f"pace timeouts: {stats[2]}")
    if failure is None and not interrupted:
        failure = _playback_failure(args, conns, stats)
    if failure is not None:
        print(f"replay: error: {failure}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
