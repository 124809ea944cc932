"""A probe node: an rclpy node of this process to publish to node processes, subscribe to them, wait for them.

The in-process side of the tools, benchmarks and node tests that run nodes as real processes
(:mod:`kd_traffic_light.tools.processes` starts and stops them; its docstring shows the typical use).
:class:`ProbeNode` has its own context and is spun by a background thread, so several may live in one
process. rclpy is imported only when a :class:`ProbeNode` is created; torch and ``training/`` never.
See docs/runtime.md for why the probe joins before the nodes it talks to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from kd_traffic_light.tools.processes import export_participant_env, wait_until


class ProbeNode:
    """An rclpy node with its own context, spun by a background executor thread (a context manager).

    Args:
        name: Node name.
        env: Environment from :func:`~kd_traffic_light.tools.processes.ros_env`; its domain id is used, and its
            transport and log variables are exported to this process (unless already set) before the
            participant is created.
    """

    def __init__(self, name: str, env: dict[str, str]) -> None:
        from rclpy.context import Context

        self.name = name
        self.env = env
        self.context = Context()
        self.node: Any = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ProbeNode:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node

        export_participant_env(self.env)
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
        import rclpy

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.executor.shutdown(timeout_sec=1)

        def close() -> None:
            if self.node is not None:
                self.node.destroy_node()
            rclpy.try_shutdown(context=self.context)

        # rclpy's destroy_node() has been seen to block forever waiting for handles "in use" after the
        # executor stopped; never let that hang the caller: give it 10 s in a daemon thread, then move on.
        closer = threading.Thread(target=close, name=f"{self.name}-close", daemon=True)
        closer.start()
        closer.join(timeout=10)

    def subscribe(self, topic: str, msg_type, qos: Any = None) -> list:
        """Subscribe and return the list the received messages are appended to (default QoS: reliable, depth 50)."""
        received: list = []

        def cb(msg) -> None:
            with self._lock:
                received.append(msg)

        self.node.create_subscription(msg_type, topic, cb, qos if qos is not None else _reliable())
        return received

    def publisher(self, topic: str, msg_type, qos: Any = None):
        """Create a publisher on ``topic`` (default QoS: reliable, depth 50)."""
        return self.node.create_publisher(msg_type, topic, qos if qos is not None else _reliable())

    def wait_for(self, predicate: Callable[[], object], timeout: float = 20.0) -> bool:
        """Wait until ``predicate()`` is truthy (messages arrive meanwhile); return whether it became so."""
        return wait_until(predicate, timeout)

    def wait_for_subscribers(self, pub, count: int = 1, timeout: float = 20.0) -> bool:
        """Wait until ``pub`` has at least ``count`` matched subscriptions."""
        return wait_until(lambda: pub.get_subscription_count() >= count, timeout)

    def wait_for_publishers(self, topic: str, count: int = 1, timeout: float = 20.0) -> bool:
        """Wait until ``topic`` has at least ``count`` publishers in the graph."""
        return wait_until(lambda: self.node.count_publishers(topic) >= count, timeout)


def _reliable():
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
