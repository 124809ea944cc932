"""The load generator: publishes stamped frames to the nodes and matches their answers by stamp.

The detector copies the input header into its ``~/detections``, so an answer's stamp names the frame it answers.
rclpy is imported when a :class:`Bench` is created.
"""

from __future__ import annotations

import struct
import threading
import time
from pathlib import Path

from kd_traffic_light.tools.processes import read_log


class Bench:
    """Publishes frames to the nodes and matches their answers by stamp."""

    def __init__(self, probe, targets: dict[str, str]) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        self.probe = probe
        self.cond = threading.Condition()
        self.sent: dict[tuple[int, int], float] = {}
        self.recv: dict[tuple[int, int], float] = {}
        self.diag: dict[str, dict[str, str]] = {}
        self._last_ns = 0
        self.pubs = {}
        node = probe.node
        reliable_in = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        answers = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self._qos = (reliable_in, answers)
        for name, ns in targets.items():
            self.add_target(name, ns)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)

    def add_target(self, name: str, ns: str) -> None:
        """Publish frames on ``/bench/image_<name>`` and listen to ``<ns>/detector/detections``."""
        from sensor_msgs.msg import Image
        from vision_msgs.msg import Detection2DArray

        node = self.probe.node
        self.pubs[name] = node.create_publisher(Image, f"/bench/image_{name}", self._qos[0])
        node.create_subscription(Detection2DArray, f"{ns}/detector/detections", self._on_answer, self._qos[1])

    def _on_answer(self, msg) -> None:
        t = time.perf_counter()
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        with self.cond:
            self.recv.setdefault(key, t)
            self.cond.notify_all()

    def _on_diag(self, msg) -> None:
        for st in msg.status:  # model paths point into the temp dir: keep the file name only
            self.diag[st.name] = {kv.key: Path(kv.value).name if kv.key == "model" else kv.value
                                  for kv in st.values}

    def publish(self, target: str, msg) -> tuple[int, int]:
        """Stamp `msg` uniquely, record the send time and publish it to `target`; returns the stamp."""
        ns = max(time.time_ns(), self._last_ns + 1)  # unique, real-time stamps
        self._last_ns = ns
        key = (ns // 1_000_000_000, ns % 1_000_000_000)
        raw = msg[:4] + struct.pack("<iI", *key) + msg[12:]  # header.stamp: the first 8 bytes after encapsulation
        with self.cond:
            self.sent[key] = time.perf_counter()
        self.pubs[target].publish(raw)
        return key

    def wait_answer(self, key, timeout: float) -> float | None:
        """Latency of the answer to stamp `key`, waiting up to `timeout` s; None when it never came."""
        with self.cond:
            if self.cond.wait_for(lambda: key in self.recv, timeout=timeout):
                return self.recv[key] - self.sent[key]
        return None

    def wait_ready(self, target: str, proc, log: Path, msg, timeout: float) -> None:
        """Wait until the node subscribes to the input and answers a frame (model loaded and warm)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{target} node exited with {proc.returncode}:\n{read_log(log, 3000)}")
            if self.pubs[target].get_subscription_count() >= 1:
                key = self.publish(target, msg)
                if self.wait_answer(key, timeout=5.0) is not None:
                    return
            else:
                time.sleep(0.2)
        raise TimeoutError(f"{target} node did not answer within {timeout:.0f} s:\n{read_log(log, 3000)}")

    def serial(self, target: str, msgs, n: int, timeout: float) -> tuple[list[float], int]:
        """Send ``n`` frames one at a time, each after the previous answer; returns latencies and losses."""
        lat, lost = [], 0
        for i in range(n):
            got = self.wait_answer(self.publish(target, msgs[i % len(msgs)]), timeout)
            if got is None:
                lost += 1
            else:
                lat.append(got)
        return lat, lost

    def at_rate(self, target: str, msgs, rate: float, duration: float, drain: float) -> dict:
        """Publish at ``rate`` Hz for ``duration`` s; answered frames/s and latencies of the answered frames."""
        period = 1.0 / rate
        keys = []
        t0 = nxt = time.perf_counter()
        while True:
            now = time.perf_counter()
            if now - t0 >= duration:
                break
            if nxt > now:
                time.sleep(nxt - now)
            keys.append(self.publish(target, msgs[len(keys) % len(msgs)]))
            nxt += period
            if time.perf_counter() - nxt > period:  # fell behind by more than a period: no bursts
                nxt = time.perf_counter()
        sent_s = time.perf_counter() - t0
        time.sleep(drain)
        with self.cond:
            answered = sorted((self.recv[k], self.recv[k] - self.sent[k]) for k in keys if k in self.recv)
        times = [t for t, _ in answered]
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) >= 2 and times[-1] > times[0] else 0.0
        return {"sent": len(keys), "sent_hz": len(keys) / sent_s, "answered": len(times), "fps": fps,
                "latencies": [lat for _, lat in answered]}
