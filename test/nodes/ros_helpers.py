"""Helpers for node tests that run real processes and exchange real messages.

The process helpers live in the package's tools (:mod:`kd_traffic_light.tools.processes` and
:mod:`kd_traffic_light.tools.probe`, also used by bag_eval and the node benchmark; the first's docstring shows
their typical use) and are re-exported here under the names the tests use: ``RosTestNode`` is the
``ProbeNode``, and :func:`ros_env` puts the ROS logs under ``tmp_path/ros_log``.
This module adds the tests' QoS profiles and :func:`write_bag`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from kd_traffic_light.tools import processes
from kd_traffic_light.tools.probe import ProbeNode as RosTestNode
from kd_traffic_light.tools.processes import domain_id, read_log, restart_until_matched, start_node, stop, wait_until

__all__ = ["BEST_EFFORT", "LATCHED", "RELIABLE", "RosTestNode", "domain_id", "publish_until", "read_log", "ros_env",
           "start_node", "stop", "wait_until", "write_bag"]

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
BEST_EFFORT = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def ros_env(tmp_path: Path, dom: int) -> dict[str, str]:
    """Environment for node subprocesses and the test's own participant; ROS logs under ``tmp_path/ros_log``."""
    return processes.ros_env(Path(tmp_path) / "ros_log", dom)


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


def node_matched(proc, pub, log, count: int = 1):
    """Return the node process once ``pub`` has ``count`` matched subscriptions; restart it on a discovery stall."""
    return restart_until_matched(proc, proc.restart, lambda: pub.get_subscription_count() >= count, log)


def publish_until(probe, publish: Callable[[], object], answered: Callable[[], object], attempts: int = 3,
                  timeout: float = 20.0) -> bool:
    """Call ``publish()`` until ``answered()`` holds, at most ``attempts`` times within ``timeout`` s in all.

    The probe's subscription to a node's output can match the node's publisher after the node has answered the
    first frame (a reliable, volatile output is then lost for the probe): so a test sends again, it never waits
    on one answer. Returns whether it was answered.
    """
    for _ in range(attempts):
        publish()
        if probe.wait_for(answered, timeout / attempts):
            return True
    return bool(answered())
