"""Detector node: runs one model (student or teacher) on one or more camera topics.

A thin lifecycle node around :class:`kd_traffic_light.core.detector.TrafficLightDetector`: configure loads and
warms up the model, activate subscribes. Camera subscriptions are raw; a latest-frame slot feeds one worker
thread that predicts and publishes, so the executor never blocks. The first SIGINT/SIGTERM stops it cleanly.

    python -m kd_traffic_light.detector_node --ros-args -r image:=/camera/image_raw -p model:=student.onnx

Topics, parameters and lifecycle: docs/nodes.md; the hot path: docs/runtime.md, "The detector node's hot path".
"""

from __future__ import annotations

import threading
import time

import rclpy
import rclpy.logging
from autoware_perception_msgs.msg import TrafficLightGroupArray
from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rclpy.time import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import SetBool
from vision_msgs.msg import Detection2DArray, LabelInfo

from kd_traffic_light.cdr_image import CdrError, read_compressed, read_image
from kd_traffic_light.conversions import (
    InvalidImageError,
    bgr_to_image_msg,
    detections_to_msg,
    image_msg_to_bgr,
    label_info_msg,
    signal_msg,
    tracks_msg,
    validate_image_msg,
)
from kd_traffic_light.core.config import (
    ConfigError,
    DetectorConfig,
    NodeConfig,
    TrackingConfig,
    defaults,
    type_problems,
)
from kd_traffic_light.core.detector import ModelLoadError, TrafficLightDetector
from kd_traffic_light.core.drawing import draw_detections, draw_signal
from kd_traffic_light.core.runtime import LatestSlot, NodeStats
from kd_traffic_light.core.signal import SignalRevision
from kd_traffic_light.shutdown import SignalGuard, init_rclpy, spin_until_requested

SUCCESS = TransitionCallbackReturn.SUCCESS
FAILURE = TransitionCallbackReturn.FAILURE
THROTTLE_S = 2.0


def parse_frame(raw: bytes, compressed: bool):
    """View of a serialized (Compressed)Image: zero-copy CDR read, rclpy's deserialiser as the fallback."""
    try:
        return read_compressed(raw) if compressed else read_image(raw)
    except CdrError:
        return deserialize_message(raw, CompressedImage if compressed else Image)


def header_msg(view) -> Header:
    """Return the input header as a ``std_msgs/Header`` for the outputs (stamp and frame_id verbatim)."""
    if isinstance(view.header, Header):
        return view.header
    stamp = view.header.stamp
    return Header(stamp=TimeMsg(sec=stamp.sec, nanosec=stamp.nanosec), frame_id=view.header.frame_id)


def output_prefix(topics: tuple[str, ...], index: int) -> str:
    """Private output namespace of camera ``index``: ``~`` for one camera, ``~/<topic as name>`` for several."""
    if len(topics) == 1:
        return "~"
    name = topics[index].strip("/~").replace("/", "_") or f"camera{index}"
    return f"~/{name}"


class DetectorNode(LifecycleNode):
    """Lifecycle node publishing traffic-light detections (vision_msgs/Detection2DArray)."""

    def __init__(self, node_name: str = "detector", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self._param_names = ["model", *defaults(DetectorConfig), *defaults(NodeConfig), *defaults(TrackingConfig)]
        # Typed by the core configs, not by rclpy: a wrong type is reported like a wrong value, one line per
        # parameter, and an integer is taken for a double. Types are checked here, where the values enter
        # (and on every later set); ranges when configure builds the configs.
        for name, value in {"model": "", **defaults(DetectorConfig), **defaults(NodeConfig),
                            **defaults(TrackingConfig)}.items():
            self.declare_parameter(name, list(value) if isinstance(value, tuple) else value,
                                   ParameterDescriptor(dynamic_typing=True))
        bad = self._type_problems({name: self.get_parameter(name).value for name in self._param_names})
        if bad:  # exiting: report the range problems of the other parameters too, one line each
            try:
                self.read_configs()
            except ConfigError as exc:
                bad = {**exc.problems, **bad}
            for line in bad.values():
                self.get_logger().error(line)
            raise ConfigError(bad)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.autostart = bool(self.get_parameter("autostart").value)
        self.detector: TrafficLightDetector | None = None
        self.stats = NodeStats()
        self.slot = LatestSlot()
        self.enabled = True
        self._subs = []
        self._outputs: list[tuple] = []
        self._revisions: list[SignalRevision] = []
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._pub_label = self._pub_diag = self._diag_timer = None
        self.create_service(SetBool, "~/enable", self._on_enable)

    @staticmethod
    def _type_problems(values: dict) -> dict[str, str]:
        return {**type_problems(DetectorConfig, values), **type_problems(NodeConfig, values),
                **type_problems(TrackingConfig, values)}

    def _on_set_parameters(self, params) -> SetParametersResult:
        """Refuse a ``param set`` of the wrong type; the values take effect at the next configure."""
        bad = self._type_problems({p.name: p.value for p in params})
        return SetParametersResult(successful=not bad, reason="; ".join(bad.values()))

    # ------------------------------------------------------------------ lifecycle
    def read_configs(self) -> tuple[DetectorConfig, NodeConfig, TrackingConfig]:
        """Read the parameters once into validated configs (raises ConfigError, one line per bad parameter)."""
        p = {name: self.get_parameter(name).value for name in self._param_names}
        built, problems = [], {}
        for cls, kwargs in ((DetectorConfig, {k: p[k] for k in ["model", *defaults(DetectorConfig)]}),
                            (NodeConfig, {k: p[k] for k in defaults(NodeConfig)}),
                            (TrackingConfig, {k: p[k] for k in defaults(TrackingConfig)})):
            try:
                built.append(cls(**kwargs))
            except ConfigError as exc:
                problems.update(exc.problems)
        if problems:
            raise ConfigError(problems)
        det, node, tracking = built
        return det, node, tracking

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Validate parameters, load and warm up the model, create publishers."""
        try:
            self.det_cfg, self.cfg, self.track_cfg = self.read_configs()
            t0 = time.perf_counter()
            self.detector = TrafficLightDetector(self.det_cfg)
            if self.detector.device_warning:
                self.get_logger().warning(self.detector.device_warning)
            warm = self.detector.warmup()
        except ConfigError as exc:
            for line in exc.problems.values():
                self.get_logger().error(f"configure failed: {line}")
            return FAILURE
        except ModelLoadError as exc:
            self.get_logger().error(f"configure failed: {exc}")
            return FAILURE
        except Exception as exc:  # noqa: BLE001 - never fail a transition without saying why
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            return FAILURE
        self.get_logger().info(
            f"loaded model '{self.det_cfg.model}' ({self.detector.backend}) on {self.detector.device} in "
            f"{time.perf_counter() - t0:.2f} s (warm-up {warm * 1000:.0f} ms); classes {self.detector.names}"
        )
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._pub_label = self.create_publisher(LabelInfo, "~/label_info", latched)
        self._pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        topics = self.cfg.image_topics
        self._outputs = [
            (self.create_publisher(Detection2DArray, f"{output_prefix(topics, i)}/detections", 10),
             self.create_publisher(Image, f"{output_prefix(topics, i)}/debug_image", 1),
             self.create_publisher(TrafficLightGroupArray, f"{output_prefix(topics, i)}/traffic_signals", 10)
             if self.track_cfg.tracking else None,
             self.create_publisher(TrafficLightGroupArray, f"{output_prefix(topics, i)}/traffic_lights", 10)
             if self.track_cfg.tracking else None)
            for i in range(len(topics))
        ]
        self._revisions = [SignalRevision(self.track_cfg) for _ in topics] if self.track_cfg.tracking else []
        self._diag_timer = self.create_timer(1.0, self._publish_diagnostics)
        self._stop.clear()
        self.slot = LatestSlot(self.cfg.fresh_wait)
        self._worker = threading.Thread(target=self._work, name="inference", daemon=True)
        self._worker.start()
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the camera topic(s) and publish the label map."""
        best_effort = self.cfg.image_reliability == "best_effort"
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT if best_effort
                         else ReliabilityPolicy.RELIABLE)
        compressed = self.cfg.input_transport == "compressed"
        for i, topic in enumerate(self.cfg.image_topics):
            # as image_transport does: remaps apply to the base topic, the transport suffix follows it
            base = self.resolve_topic_name(topic)
            msg_type, name = (CompressedImage, f"{base}/compressed") if compressed else (Image, base)
            self._subs.append(self.create_subscription(msg_type, name, lambda m, i=i: self._on_image(i, m), qos,
                                                       raw=True))
        header = LabelInfo().header
        header.stamp = self.get_clock().now().to_msg()
        self._pub_label.publish(label_info_msg(self.detector.names, self.det_cfg.conf, header))
        self.get_logger().info(
            f"active: {self.cfg.input_transport} input from {[s.topic_name for s in self._subs]} "
            f"({self.cfg.image_reliability})"
        )
        return SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe; pending frames are dropped."""
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs.clear()
        self.slot.clear()
        return SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the worker, destroy publishers and free the model."""
        self.stop_worker()
        for pubs in self._outputs:
            for pub in pubs:
                if pub is not None:
                    self.destroy_publisher(pub)
        self._outputs.clear()
        self._revisions = []
        for pub in (self._pub_label, self._pub_diag):
            if pub is not None:
                self.destroy_publisher(pub)
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
        self.detector = None
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the worker on shutdown from any state."""
        self.stop_worker()
        return SUCCESS

    def stop_worker(self) -> None:
        """Stop and join the inference thread (safe to call twice)."""
        self._stop.set()
        self.slot.close()
        if self._worker is not None:
            self._worker.join(timeout=10.0)
            self._worker = None

    # ------------------------------------------------------------------ callbacks
    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        self.enabled = bool(request.data)
        if not self.enabled:
            self.slot.clear()
        response.success = True
        response.message = "inference enabled" if self.enabled else "inference paused"
        self.get_logger().info(response.message)
        return response

    def _on_image(self, camera: int, raw: bytes) -> None:
        self.stats.received()
        if not self.enabled:
            self.stats.count("paused")
            return
        try:
            validate_image_msg(parse_frame(raw, self.cfg.input_transport == "compressed"), self.cfg.max_image_pixels)
        except InvalidImageError as exc:
            self._reject(camera, exc)
            return
        except Exception as exc:  # bytes no reader understands: a callback never raises
            self._reject(camera, InvalidImageError("undecodable", f"{type(exc).__name__}: {exc}"))
            return
        if self.slot.put(camera, raw):
            self.stats.count("dropped_busy")

    # ------------------------------------------------------------------ worker
    def _work(self) -> None:
        while not self._stop.is_set():
            item = self.slot.get(timeout=0.2)
            if item is None:
                continue
            camera, raw = item
            try:
                self._process(camera, parse_frame(raw, self.cfg.input_transport == "compressed"))
            except InvalidImageError as exc:
                self._reject(camera, exc)
            except Exception as exc:  # a callback never raises: log, count, serve the next frame
                self.stats.count("errors")
                self.get_logger().error(f"inference failed: {type(exc).__name__}: {exc}",
                                        throttle_duration_sec=THROTTLE_S)

    def _reject(self, camera: int, exc: InvalidImageError) -> None:
        self.stats.reject(exc.reason)
        self.get_logger().warning(f"dropped frame from {self.cfg.image_topics[camera]}: {exc}",
                                  throttle_duration_sec=THROTTLE_S)

    def _stamp_age_ms(self, header) -> float:
        return (self.get_clock().now() - Time.from_msg(header.stamp)).nanoseconds / 1e6

    def _process(self, camera: int, msg) -> None:
        header = header_msg(msg)
        max_age = self.cfg.max_image_age_s
        if max_age > 0 and self._stamp_age_ms(header) > max_age * 1000.0:
            self.stats.count("stale")
            self.get_logger().warning(f"dropped stale frame (older than max_image_age_s={max_age})",
                                      throttle_duration_sec=THROTTLE_S)
            return
        t0 = time.perf_counter()
        bgr = image_msg_to_bgr(msg, self.cfg.max_image_pixels)
        dets = self.detector.predict(bgr)
        det_pub, dbg_pub, sig_pub, lights_pub = self._outputs[camera]
        ids, signal = None, None
        if sig_pub is not None:
            stamp_s = header.stamp.sec + header.stamp.nanosec * 1e-9
            readings, signal = self._revisions[camera].update(dets, stamp_s)
            by_det = {id(r.detection): str(r.track_id) for r in readings if r.detection is not None and r.confirmed}
            ids = [by_det.get(id(d), "") for d in dets]
            sig_pub.publish(signal_msg(signal, self.track_cfg.signal_group_id, header.stamp))
            lights_pub.publish(tracks_msg(readings, header.stamp))
        det_pub.publish(detections_to_msg(dets, header, self.cfg.class_id_as_name, ids))
        self.stats.processed((time.perf_counter() - t0) * 1000.0, self._stamp_age_ms(header))
        if self.cfg.publish_debug_image and dbg_pub.get_subscription_count() > 0:
            debug = draw_detections(bgr, dets, ids=ids)
            if signal is not None:
                draw_signal(debug, signal.state, signal.flashing, signal.confidence)
            dbg_pub.publish(bgr_to_image_msg(debug, header))

    def _publish_diagnostics(self) -> None:
        s = self.stats.summary()
        s["dropped_for_fresh"] = self.slot.superseded
        status = DiagnosticStatus(name=f"{self.get_fully_qualified_name()}: detector",
                                  hardware_id=self.detector.device if self.detector else "")
        status.level = DiagnosticStatus.OK
        status.message = "running" if self.enabled else "paused"
        if s["errors"]:
            status.level, status.message = DiagnosticStatus.WARN, "inference errors"
        status.values = [KeyValue(key=k, value=f"{v:.3f}" if isinstance(v, float) else str(v))
                         for k, v in s.items()]
        status.values.append(KeyValue(key="device", value=status.hardware_id))
        status.values.append(KeyValue(key="model", value=self.det_cfg.model))
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [status]
        self._pub_diag.publish(arr)


def main(args: list[str] | None = None) -> int:
    """Run the detector node; with ``autostart`` a failed configure exits with code 1.

    SIGINT/SIGTERM (first one) end it with code 0 after a clean shutdown; later signals are ignored.
    """
    guard = SignalGuard("detector_node").install()
    init_rclpy(args)
    try:
        node = DetectorNode()
    except ConfigError:  # each bad parameter is logged on one line already
        rclpy.logging.get_logger("detector").fatal("invalid parameters (see above); exiting")
        rclpy.try_shutdown()
        return 1
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    code = 0
    try:
        if node.autostart and not guard.requested.is_set():
            if node.trigger_configure() != SUCCESS:
                node.get_logger().fatal("could not configure (see the error above); exiting")
                code = 1
            elif not guard.requested.is_set():
                node.trigger_activate()
        if code == 0:
            spin_until_requested(executor, guard)
    except ExternalShutdownException:
        pass
    finally:
        guard.ignore_further()
        # Order matters: the worker may be inside predict/publish; it must be gone before its publishers
        # are destroyed. The executor is shut down before destroy_node (which else can wait for handles).
        node.stop_worker()
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
