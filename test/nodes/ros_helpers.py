"""Helpers for node tests that run real processes and exchange real messages.

Typical use::

    env = ros_env(tmp_path, domain_id("test_comparison_node"))
    proc = start_node("kd_traffic_light.comparison_node", ["--ros-args", "-p", "window:=5"], env,
                      tmp_path / "comparison.log")
    try:
        with RosTestNode("probe", env) as probe:
            got = probe.subscribe("/diagnostics", DiagnosticArray)
            assert probe.wait_for(lambda: got, timeout=20), read_log(tmp_path / "comparison.log")
    finally:
        stop(proc)
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
BEST_EFFORT = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def domain_id(salt: str) -> int:
    """A ROS_DOMAIN_ID in 1..101 derived from the pid and `salt` (use the test module's name)."""
    digest = hashlib.sha1(f"{os.getpid()}:{salt}".encode()).digest()
    return 1 + int.from_bytes(digest[:4], "little") % 101


def ros_env(tmp_path: Path, dom: int) -> dict[str, str]:
    """Environment for node subprocesses and the test's own participant: domain, log dir, transports."""
    log_dir = Path(tmp_path) / "ros_log"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(dom),
        ROS_LOG_DIR=str(log_dir),
        FASTDDS_BUILTIN_TRANSPORTS="LARGE_DATA",
        PYTHONUNBUFFERED="1",
        RCUTILS_COLORIZED_OUTPUT="0",
        YOLO_AUTOINSTALL="false",
    )
    env.pop("ROS_AUTOMATIC_DISCOVERY_RANGE", None)  # it would override LARGE_DATA
    return env


def start_node(module: str, args: Sequence[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start `python -m <module> <args>` with stdout and stderr going to `log_path`."""
    log = open(log_path, "wb")  # the child gets its own copy of the descriptor
    try:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args], env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()


def stop(proc: subprocess.Popen | None, timeout: float = 15.0) -> int | None:
    """Stop a process: SIGINT, then SIGTERM, then SIGKILL, waiting in between; return its exit code."""
    if proc is None:
        return None
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout if sig != signal.SIGKILL else None)
        except subprocess.TimeoutExpired:
            continue
    return proc.returncode


def read_log(path: Path, tail: int = 4000) -> str:
    """Last `tail` characters of a node's log (for assertion messages)."""
    try:
        return Path(path).read_text(errors="replace")[-tail:]
    except OSError as exc:
        return f"<no log: {exc}>"


def wait_until(predicate: Callable[[], object], timeout: float, period: float = 0.05) -> bool:
    """Poll `predicate` until it is truthy or `timeout` seconds passed; return its last truthiness."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(period)
    return bool(predicate())


class RosTestNode:
    """An rclpy node with its own context, spun by a background executor thread.

    Args:
        name: Node name.
        env: Environment from `ros_env`; its domain id is used, and its transport and log variables are
            exported to this process before the participant is created.
    """

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.env = env
        self.context = Context()
        self.node: Node | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RosTestNode:
        for var in ("FASTDDS_BUILTIN_TRANSPORTS", "ROS_LOG_DIR"):
            os.environ.setdefault(var, self.env[var])
        rclpy.init(context=self.context, domain_id=int(self.env["ROS_DOMAIN_ID"]))
        self.node = Node(self.name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name=f"{self.name}-spin", daemon=True)
        self._thread.start()
        return self

    def _spin(self) -> None:
        while not self._stop.is_set() and self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - context shut down while waiting
                if self._stop.is_set() or not self.context.ok():
                    return
                raise

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.executor.shutdown(timeout_sec=1)

        def close() -> None:
            if self.node is not None:
                self.node.destroy_node()
            rclpy.try_shutdown(context=self.context)

        # rclpy's destroy_node() has been seen to block forever waiting for handles "in use" after the
        # executor stopped; never let that hang a test: give it 10 s in a daemon thread, then move on.
        closer = threading.Thread(target=close, name=f"{self.name}-close", daemon=True)
        closer.start()
        closer.join(timeout=10)

    def subscribe(self, topic: str, msg_type, qos: QoSProfile = RELIABLE) -> list:
        """Subscribe and return the list the received messages are appended to."""
        received: list = []

        def cb(msg) -> None:
            with self._lock:
                received.append(msg)

        self.node.create_subscription(msg_type, topic, cb, qos)
        return received

    def publisher(self, topic: str, msg_type, qos: QoSProfile = RELIABLE):
        """Create a publisher on `topic`."""
        return self.node.create_publisher(msg_type, topic, qos)

    def wait_for(self, predicate: Callable[[], object], timeout: float = 20.0) -> bool:
        """Wait until `predicate()` is truthy (messages arrive meanwhile); return whether it became so."""
        return wait_until(predicate, timeout)

    def wait_for_subscribers(self, pub, count: int = 1, timeout: float = 20.0) -> bool:
        """Wait until `pub` has at least `count` matched subscriptions."""
        return wait_until(lambda: pub.get_subscription_count() >= count, timeout)

    def wait_for_publishers(self, topic: str, count: int = 1, timeout: float = 20.0) -> bool:
        """Wait until `topic` has at least `count` publishers in the graph."""
        return wait_until(lambda: self.node.count_publishers(topic) >= count, timeout)


def write_bag(path: Path, messages: Sequence[tuple[str, object, int]], storage: str = "sqlite3") -> Path:
    """Write rclpy messages to a rosbag2 with rosbags.

    Args:
        path: Bag directory to create (must not exist).
        messages: `(topic, rclpy message, receive time in ns)`, in time order.
        storage: "sqlite3" or "mcap".

    Returns:
        `path`.
    """
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    typestore = get_typestore(Stores.ROS2_KILTED)
    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conns = {}
        for topic, msg, t_ns in messages:
            if topic not in conns:
                msgtype = type(msg).__module__.split(".")[0] + "/msg/" + type(msg).__name__
                conns[topic] = writer.add_connection(topic, msgtype, typestore=typestore)
            writer.write(conns[topic], t_ns, serialize_message(msg))
    return Path(path)
