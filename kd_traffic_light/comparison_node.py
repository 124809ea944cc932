"""comparison_node: pairs student and teacher detections of the same frame and reports their agreement.

Subscribes to the student's and the teacher's `vision_msgs/Detection2DArray` (and, for the overlay, the
camera image), pairs them by exact stamp and frame_id in a bounded cache, scores the student against the
teacher with the ROS-free `core.matching`, and publishes a rolling summary on `/diagnostics`, an overlay
image on `~/overlay` (teacher dashed, student solid) and, when `records_path` is set, one CSV/JSONL record
per compared frame. Run: `ros2 run kd_traffic_light comparison_node --ros-args --params-file ...` or
`python -m kd_traffic_light.comparison_node --ros-args ...`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections import OrderedDict
from dataclasses import fields
from pathlib import Path

import cv2
import rclpy
import rclpy.logging
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from kd_traffic_light.conversions import InvalidImageError, bgr_to_image_msg, image_msg_to_bgr, msg_to_detections
from kd_traffic_light.core.drawing import draw_detections
from kd_traffic_light.core.matching import ComparisonConfig, FrameMetrics, RollingSummary, Summary, compare_frame
from kd_traffic_light.core.pairing import Key, StampPairer, stamp_key
from kd_traffic_light.core.types import CLASS_NAMES
from kd_traffic_light.shutdown import SignalGuard, init_rclpy, spin_until_requested

DETECTIONS_QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
IMAGE_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
OVERLAY_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
OVERLAY_CACHE = 30  # images (and pairs waiting for their image) kept for the overlay


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else round(float(x), 6)


def frame_record(key: Key, m: FrameMetrics, student_latency: float, teacher_latency: float) -> dict:
    """One per-frame record (flat columns for CSV; per-class values for every class in CLASS_NAMES)."""
    rec = {
        "stamp_ns": key[0], "stamp": key[0] / 1e9, "frame_id": key[1],
        "n_student": m.n_student, "n_teacher": m.n_teacher,
        "tp": m.counts.tp, "fp": m.counts.fp, "fn": m.counts.fn,
        "precision": _num(m.precision), "recall": _num(m.recall), "f1": _num(m.f1),
        "mean_iou": _num(m.mean_iou), "class_agreement": _num(m.class_agreement),
        "student_latency_s": _num(student_latency), "teacher_latency_s": _num(teacher_latency),
    }
    for cid, name in CLASS_NAMES.items():
        c = m.per_class.get(cid)
        for stat in ("precision", "recall", "f1"):
            rec[f"{stat}_{name}"] = _num(getattr(c, stat)) if c else None
    return rec


class RecordWriter:
    """Appends one record per line to a .csv or .jsonl file, flushed after every record.

    Each record is written with a single `write` call on a file opened in append mode, so a reader (or a
    crash) sees whole lines only. A CSV header is written when the file is new or empty.
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.csv = self.path.suffix == ".csv"
        self._header_needed = self.csv and (not self.path.exists() or self.path.stat().st_size == 0)
        self._fh = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()

    def write(self, record: dict) -> None:
        """Append `record` and flush."""
        if self.csv:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=list(record), lineterminator="\n")
            if self._header_needed:
                writer.writeheader()
                self._header_needed = False
            writer.writerow({k: "nan" if v is None else v for k, v in record.items()})
            line = buf.getvalue()
        else:
            line = json.dumps(record) + "\n"
        self._fh.write(line)
        self._fh.flush()

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


def summary_status(s: Summary, name: str) -> DiagnosticStatus:
    """Build the DiagnosticStatus of a rolling summary."""
    values = {
        "window_frames": s.frames, "frames_compared": s.total_paired,
        "student_only_frames": s.student_only, "teacher_only_frames": s.teacher_only,
        "tp": s.counts.tp, "fp": s.counts.fp, "fn": s.counts.fn,
        "precision": s.counts.precision, "recall": s.counts.recall, "f1": s.counts.f1,
        "mean_iou": s.mean_iou, "class_agreement": s.class_agreement,
        "student_latency_mean_s": s.student_latency_mean, "student_latency_max_s": s.student_latency_max,
        "teacher_latency_mean_s": s.teacher_latency_mean, "teacher_latency_max_s": s.teacher_latency_max,
    }
    for cid, c in s.per_class.items():
        label = CLASS_NAMES.get(cid, str(cid))
        values.update({f"precision_{label}": c.precision, f"recall_{label}": c.recall, f"f1_{label}": c.f1})
    status = DiagnosticStatus(name=name, hardware_id="kd_traffic_light", message=s.message)
    status.level = bytes([int(s.level)])
    status.values = [
        KeyValue(key=k, value=f"{v:.4f}" if isinstance(v, float) else str(v)) for k, v in values.items()
    ]
    return status


class ComparisonNode(Node):
    """Thin node around `core.matching` and `core.pairing`; see the module docstring."""

    def __init__(self) -> None:
        super().__init__("comparison")
        for f in fields(ComparisonConfig):
            self.declare_parameter(f.name, f.default)
        self.cfg = ComparisonConfig(**{f.name: self.get_parameter(f.name).value for f in fields(ComparisonConfig)})
        self.pairer: StampPairer = StampPairer(self.cfg.cache_size)
        self.rolling = RollingSummary(self.cfg.window, self.cfg.warn_f1, self.cfg.error_f1)
        self.records = RecordWriter(self.cfg.records_path) if self.cfg.records_path else None
        self._images: OrderedDict[Key, Image] = OrderedDict()
        self._waiting_overlay: OrderedDict[Key, tuple] = OrderedDict()
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.overlay_pub = None
        if self.cfg.publish_overlay:
            self.overlay_pub = self.create_publisher(Image, "~/overlay", OVERLAY_QOS)
            self.create_subscription(Image, self.cfg.image_topic, self._on_image, IMAGE_QOS)
        self.create_subscription(
            Detection2DArray, self.cfg.student_detections, lambda m: self._on_detections("student", m), DETECTIONS_QOS
        )
        self.create_subscription(
            Detection2DArray, self.cfg.teacher_detections, lambda m: self._on_detections("teacher", m), DETECTIONS_QOS
        )
        self.create_timer(self.cfg.diagnostics_period_s, self.publish_diagnostics,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(
            f"comparing {self.cfg.student_detections} (student) with {self.cfg.teacher_detections} (teacher), "
            f"IoU >= {self.cfg.iou_threshold}, window {self.cfg.window}, records: {self.cfg.records_path or 'off'}"
        )

    def _age(self, stamp) -> float:
        """Stamp age at arrival (s) on the node clock (sim time when use_sim_time); NaN before a clock."""
        now = self.get_clock().now().nanoseconds
        return math.nan if now == 0 else (now - (stamp.sec * 1_000_000_000 + stamp.nanosec)) / 1e9

    def _on_detections(self, side: str, msg: Detection2DArray) -> None:
        try:
            key = stamp_key(msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id)
            pair = self.pairer.add(side, key, (msg_to_detections(msg, CLASS_NAMES), self._age(msg.header.stamp)))
            if pair is not None:
                self._compare(key, pair.student, pair.teacher)
        except Exception as exc:  # noqa: BLE001 - a callback never raises; log and drop
            self.get_logger().error(f"dropped {side} detections: {exc!r}", throttle_duration_sec=5.0)

    def _compare(self, key: Key, student: tuple, teacher: tuple) -> None:
        (s_dets, s_lat), (t_dets, t_lat) = student, teacher
        metrics = compare_frame(s_dets, t_dets, self.cfg.iou_threshold, self.cfg.match_method)
        self.rolling.add(metrics, s_lat, t_lat)
        if self.records is not None:
            self.records.write(frame_record(key, metrics, s_lat, t_lat))
        if self.overlay_pub is not None:
            if key in self._images:
                self._publish_overlay(self._images.pop(key), s_dets, t_dets, metrics)
            else:
                self._remember(self._waiting_overlay, key, (s_dets, t_dets, metrics))

    def _on_image(self, msg: Image) -> None:
        key = stamp_key(msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id)
        if key in self._waiting_overlay:
            self._publish_overlay(msg, *self._waiting_overlay.pop(key))
        else:
            self._remember(self._images, key, msg)

    @staticmethod
    def _remember(cache: OrderedDict, key: Key, value) -> None:
        cache[key] = value
        while len(cache) > OVERLAY_CACHE:
            cache.popitem(last=False)

    def _publish_overlay(self, image: Image, s_dets, t_dets, metrics: FrameMetrics) -> None:
        if self.overlay_pub.get_subscription_count() == 0:
            return
        try:
            img = image_msg_to_bgr(image)
        except InvalidImageError as exc:
            self.get_logger().warn(f"no overlay for a bad image: {exc}", throttle_duration_sec=5.0)
            return
        img = draw_detections(img, t_dets, style="dashed", thickness=3, show_score=False)
        img = draw_detections(img, s_dets, style="solid", thickness=1)
        text = f"student solid / teacher dashed  P {metrics.precision:.2f} R {metrics.recall:.2f} F1 {metrics.f1:.2f}"
        cv2.putText(img, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        self.overlay_pub.publish(bgr_to_image_msg(img, image.header))

    def summary(self) -> Summary:
        """Return the rolling summary with the pairing cache's unmatched counts."""
        return self.rolling.summary(self.pairer.unmatched["student"], self.pairer.unmatched["teacher"])

    def publish_diagnostics(self) -> None:
        """Publish the rolling summary on /diagnostics."""
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [summary_status(self.summary(), f"{self.get_fully_qualified_name()}: student vs teacher")]
        self.diag_pub.publish(arr)

    def close(self) -> str:
        """Count still-unpaired frames as unmatched, close the records file and return a closing line."""
        self.pairer.flush()
        if self.records is not None:
            self.records.close()
        s = self.summary()
        return (
            f"compared {s.total_paired} frames; student-only {s.student_only}, teacher-only {s.teacher_only}; "
            f"{s.message}"
        )


def main(args: list[str] | None = None) -> None:
    """Entry point of the `comparison_node` executable (first SIGINT/SIGTERM: clean exit 0, later ones ignored)."""
    guard = SignalGuard("comparison_node").install()
    init_rclpy(args)
    node = None
    executor = SingleThreadedExecutor()
    try:
        node = ComparisonNode()
        executor.add_node(node)
        spin_until_requested(executor, guard)
    except ExternalShutdownException:
        pass
    except ValueError as exc:  # invalid parameters: fail loudly at start-up
        print(f"comparison_node: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    finally:
        guard.ignore_further()
        # The executor is shut down before destroy_node, which else can wait for handles still in use.
        executor.shutdown(timeout_sec=1.0)
        if node is not None:
            closing = node.close()
            node.destroy_node()
            # Logged after destroy_node: after a signal the context (and /rosout) is already shut down.
            rclpy.logging.get_logger("comparison").info(closing)
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
