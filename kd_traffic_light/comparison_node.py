"""comparison_node: pairs student and teacher detections of the same frame and reports their agreement.

Subscribes to the student's and the teacher's `vision_msgs/Detection2DArray` (and, for the overlay, the
camera image), pairs them by exact stamp and frame_id (`core.pairing.FramePairer`), scores the student
against the teacher with the ROS-free `core.matching`, and publishes a rolling summary (`core.summary`) on
`/diagnostics`, an overlay image on `~/overlay` (teacher dashed, student solid) and, when `records_path` is
set, one CSV/JSONL record per compared frame. Class names come from the detectors' latched `label_info`
(the sibling of each detections topic; the teacher's wins). Every detections message is accounted for:
paired, one side only, mate lost, or dropped with a reason; messages lost before reaching the node are
measured from the publishers' sequence numbers. Parameters are checked once at start-up: each bad one is
logged on one line naming it, and the node exits with status 1. Run: `ros2 run kd_traffic_light
comparison_node --ros-args --params-file ...` or `python -m kd_traffic_light.comparison_node --ros-args ...`.
"""

from __future__ import annotations

import math
import posixpath
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import fields

import cv2
import rclpy
import rclpy.logging
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray, LabelInfo

from kd_traffic_light.conversions import InvalidImageError, bgr_to_image_msg, image_msg_to_bgr, msg_to_detections
from kd_traffic_light.core.config import ComparisonConfig, ConfigError, type_problems
from kd_traffic_light.core.drawing import draw_detections
from kd_traffic_light.core.matching import FrameMetrics, compare_frame
from kd_traffic_light.core.pairing import SIDES, FramePairer, Key, stamp_key
from kd_traffic_light.core.records import RecordWriter, frame_record
from kd_traffic_light.core.summary import RollingSummary, Summary
from kd_traffic_light.shutdown import SignalGuard, init_rclpy, spin_until_requested

DETECTIONS_QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
LABEL_INFO_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.TRANSIENT_LOCAL)
IMAGE_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
OVERLAY_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
OVERLAY_CACHE = 30  # images (and pairs waiting for their image) kept for the overlay


def summary_status(s: Summary, name: str, names: Mapping[int, str] | None = None,
                   extra: Mapping[str, int] | None = None) -> DiagnosticStatus:
    """Build the DiagnosticStatus of a rolling summary (with each side's accounting as ``<side>_<count>``)."""
    values = {
        "window_frames": s.frames, "frames_compared": s.total_paired,
        "student_only_frames": s.student_only, "teacher_only_frames": s.teacher_only,
        "tp": s.counts.tp, "fp": s.counts.fp, "fn": s.counts.fn,
        "precision": s.counts.precision, "recall": s.counts.recall, "f1": s.counts.f1,
        "mean_iou": s.mean_iou, "class_agreement": s.class_agreement, "state_agreement": s.state_agreement,
        "student_latency_mean_s": s.student_latency_mean, "student_latency_max_s": s.student_latency_max,
        "teacher_latency_mean_s": s.teacher_latency_mean, "teacher_latency_max_s": s.teacher_latency_max,
    }
    for cid, c in s.per_class.items():
        label = (names or {}).get(cid, str(cid))
        values.update({f"precision_{label}": c.precision, f"recall_{label}": c.recall, f"f1_{label}": c.f1})
    for side, ledger in s.ledgers.items():
        values.update({f"{side}_{k}": v for k, v in ledger.as_dict().items()})
    values.update(extra or {})
    status = DiagnosticStatus(name=name, hardware_id="kd_traffic_light", message=s.message)
    status.level = bytes([int(s.level)])
    status.values = [
        KeyValue(key=k, value=f"{v:.4f}" if isinstance(v, float) else str(v)) for k, v in values.items()
    ]
    return status


def accounting_line(s: Summary) -> str:
    """One line with where every side's messages went, for the closing log."""
    parts = []
    for side, led in s.ledgers.items():
        dropped = ", ".join(f"{r} {n}" for r, n in led.dropped.items() if n)
        parts.append(f"{side}: received {led.received}, paired {led.paired}, only {led.unpaired}, "
                     f"mate lost {led.mate_lost}, dropped {sum(led.dropped.values())}"
                     f"{f' ({dropped})' if dropped else ''}, lost in transport {led.lost_in_transport}, "
                     f"unseen before first {led.unseen_before_first}")
    return "; ".join(parts)


def label_info_topic(detections_topic: str) -> str:
    """Return the detector's latched ``label_info`` topic: the sibling of its ``detections`` topic."""
    return posixpath.join(posixpath.dirname(detections_topic) or "/", "label_info")


def publisher_id(info) -> object:
    """Return a hashable id of a message's publisher (its gid), None when the middleware gives none."""
    gid = info.get("publisher_gid") if isinstance(info, Mapping) else None
    if isinstance(gid, Mapping):
        data = gid.get("data")
        return bytes(data) if data is not None else repr(sorted(gid.items()))
    return gid


class ComparisonNode(Node):
    """Thin node around `core.matching`, `core.pairing` and `core.summary`; see the module docstring.

    Raises:
        ConfigError: From ``__init__`` when a parameter is bad (each problem already logged on one line).
    """

    def __init__(self) -> None:
        super().__init__("comparison")
        names = [f.name for f in fields(ComparisonConfig)]
        for f in fields(ComparisonConfig):
            # typed by the core, not by rclpy: a wrong type is reported like a wrong value (ints taken as doubles)
            self.declare_parameter(f.name, f.default, ParameterDescriptor(dynamic_typing=True))
        try:
            self.cfg = ComparisonConfig(**{n: self.get_parameter(n).value for n in names})
        except ConfigError as exc:
            for line in exc.problems.values():
                self.get_logger().error(line)
            raise
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.pairer: FramePairer = FramePairer(self.cfg.cache_size, self.cfg.pair_timeout_s)
        self.rolling = RollingSummary(self.cfg.window, self.cfg.warn_f1, self.cfg.error_f1)
        self.records = RecordWriter(self.cfg.records_path) if self.cfg.records_path else None
        self.class_names: dict[int, str] = {}
        self._label_names: dict[str, dict[int, str]] = {}
        self._images: OrderedDict[Key, Image] = OrderedDict()
        self._waiting_overlay: OrderedDict[Key, tuple] = OrderedDict()
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.overlay_pub = None
        if self.cfg.publish_overlay:
            self.overlay_pub = self.create_publisher(Image, "~/overlay", OVERLAY_QOS)
            self.create_subscription(Image, self.cfg.image_topic, self._on_image, IMAGE_QOS)
        for side in SIDES:
            topic = getattr(self.cfg, f"{side}_detections")
            # with the message info: its publisher and sequence number measure what never arrived
            self.create_subscription(Detection2DArray, topic, lambda m, i, side=side: self._on_detections(side, m, i),
                                     DETECTIONS_QOS)
            self.create_subscription(LabelInfo, label_info_topic(self.resolve_topic_name(topic)),
                                     lambda m, side=side: self._on_label_info(side, m), LABEL_INFO_QOS)
        self.create_timer(self.cfg.diagnostics_period_s, self.publish_diagnostics,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(
            f"comparing {self.cfg.student_detections} (student) with {self.cfg.teacher_detections} (teacher), "
            f"IoU >= {self.cfg.iou_threshold}, window {self.cfg.window}, records: {self.cfg.records_path or 'off'}"
        )

    def _on_set_parameters(self, params) -> SetParametersResult:
        """Refuse a later ``param set`` of the wrong type (the values are read once, at start-up)."""
        bad = type_problems(ComparisonConfig, {p.name: p.value for p in params})
        return SetParametersResult(successful=not bad, reason="; ".join(bad.values()))

    def _age(self, stamp) -> float:
        """Stamp age at arrival (s) on the node clock (sim time when use_sim_time); NaN before a clock."""
        now = self.get_clock().now().nanoseconds
        return math.nan if now == 0 else (now - (stamp.sec * 1_000_000_000 + stamp.nanosec)) / 1e9

    def _on_label_info(self, side: str, msg: LabelInfo) -> None:
        self._label_names[side] = {int(c.class_id): str(c.class_name) for c in msg.class_map}
        self.get_logger().info(f"class map from the {side}: {self._label_names[side]}")
        if len(self._label_names) == 2 and self._label_names["student"] != self._label_names["teacher"]:
            self.get_logger().warn(f"student and teacher class maps differ: {self._label_names}; using the teacher's")
        self.class_names = self._label_names.get("teacher") or self._label_names.get("student", {})

    def _on_detections(self, side: str, msg: Detection2DArray, info=None) -> None:
        try:
            key = stamp_key(msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id)
            item = (msg_to_detections(msg, self.class_names), self._age(msg.header.stamp))
        except Exception as exc:  # noqa: BLE001 - a callback never raises; log, count and drop
            self.pairer.drop(side, "invalid")
            self.get_logger().error(f"dropped {side} detections: {exc!r}", throttle_duration_sec=5.0)
            return
        source = None
        if info is not None:
            source = (publisher_id(info), info.get("publication_sequence_number"))
        pair = self.pairer.add(side, key, item, time.monotonic(), source)
        if pair is not None:
            try:
                self._compare(key, pair.student, pair.teacher)
            except Exception as exc:  # noqa: BLE001 - counted as paired (both arrived); the error is logged
                self.get_logger().error(f"comparing frame {key} failed: {exc!r}", throttle_duration_sec=5.0)

    def _compare(self, key: Key, student: tuple, teacher: tuple) -> None:
        (s_dets, s_lat), (t_dets, t_lat) = student, teacher
        metrics = compare_frame(s_dets, t_dets, self.cfg.iou_threshold, self.cfg.match_method)
        self.rolling.add(metrics, s_lat, t_lat)
        if self.records is not None:
            self.records.write(frame_record(key, metrics, s_lat, t_lat, self.class_names))
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
        """Return the rolling summary with every side's accounting."""
        return self.rolling.summary(ledgers=self.pairer.ledger)

    def publish_diagnostics(self) -> None:
        """Settle timed-out results, then publish the rolling summary on /diagnostics."""
        self.pairer.expire(time.monotonic())
        extra = {f"{side}_pending": self.pairer.pending(side) for side in SIDES}
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [summary_status(self.summary(), f"{self.get_fully_qualified_name()}: student vs teacher",
                                     self.class_names, extra)]
        self.diag_pub.publish(arr)

    def close(self) -> str:
        """Settle timed-out results, count the rest as pending at close, close the records; return a closing line."""
        self.pairer.expire(time.monotonic())
        self.pairer.close()
        if self.records is not None:
            self.records.close()
        s = self.summary()
        return (
            f"compared {s.total_paired} frames; student-only {s.student_only}, teacher-only {s.teacher_only}; "
            f"{s.message}; {accounting_line(s)}"
        )


def main(args: list[str] | None = None) -> int:
    """Entry point of the `comparison_node` executable.

    Returns 1 when a parameter is bad (each logged on one line, no traceback), else 0; the first
    SIGINT/SIGTERM ends it cleanly, later ones are ignored.
    """
    guard = SignalGuard("comparison_node").install()
    init_rclpy(args)
    node = None
    code = 0
    executor = SingleThreadedExecutor()
    try:
        node = ComparisonNode()
        executor.add_node(node)
        spin_until_requested(executor, guard)
    except ExternalShutdownException:
        pass
    except ConfigError:  # already logged, one line per parameter
        rclpy.logging.get_logger("comparison").fatal("invalid parameters (see above); exiting")
        code = 1
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
    return code


if __name__ == "__main__":
    raise SystemExit(main())
