"""Frozen, validated configurations of the detector core, the detector node, its tracks and the comparison node.

Validation happens here, in the core, so that a wrong value fails early with a message naming the
parameter, what is allowed and the value given, whichever front end (node parameters, CLI, tests)
supplied it. Every field is checked against its annotated type first (an ``int`` is accepted for a
``float`` and converted; a list of strings for a ``tuple[str, ...]``), then against its range; all bad
fields are reported together, one line each (:attr:`ConfigError.problems`).
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any


class ConfigError(ValueError):
    """One or more configuration values are invalid; one line per parameter, each naming it and what is allowed.

    Attributes:
        problems: ``{parameter: message}`` in the order the fields are declared.
    """

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("\n".join(self.problems.values()))


_TYPE_WORDS = {bool: "a boolean (true or false)", int: "an integer", float: "a float", str: "a string"}

# Allowed values of the node's and the comparison node's choice parameters.
TRANSPORTS = ("raw", "compressed")
RELIABILITIES = ("best_effort", "reliable")
MATCH_METHODS = ("greedy", "hungarian")
RECORD_FORMATS = (".csv", ".jsonl")


def problem(name: str, value: Any, allowed: str) -> str:
    """Return the one-line message of a bad parameter: its name, the value given (and its type), what is allowed."""
    if value is None:
        given = "has no value (an empty list [] reads as none)"
    else:
        shown = list(value) if isinstance(value, tuple) else value
        given = f"= {shown!r} ({_kind(value)}) is invalid"
    return f"parameter '{name}' {given}: expected {allowed}"


def _kind(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        kinds = sorted({_kind(v) for v in value})
        return f"list of {'/'.join(kinds)}" if kinds else "empty list"
    return {bool: "bool", int: "integer", float: "float", str: "string"}.get(type(value), type(value).__name__)


def coerce(annotation: Any, value: Any) -> tuple[bool, Any]:
    """Return ``(ok, value)``: `value` converted to the annotated type, or ``ok=False`` when it has another type.

    ``bool`` is never taken for a number (it is an ``int`` subclass in Python), an ``int`` is accepted for a
    ``float``, a list or tuple of strings for ``tuple[str, ...]``.
    """
    if annotation is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if annotation in (bool, str):
        return isinstance(value, annotation), value
    if typing.get_origin(annotation) is tuple:
        (item, *_) = typing.get_args(annotation)
        ok = isinstance(value, (list, tuple)) and all(coerce(item, v)[0] for v in value)
        return ok, tuple(value) if ok else value
    return True, value


class _Checks:
    """Collects the problems of one config: a type check per field, then the range checks of well-typed fields."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.hints = typing.get_type_hints(type(cfg))
        self.problems: dict[str, str] = {}
        self.typed: dict[str, bool] = {}

    def _typed(self, name: str, allowed: str) -> bool:
        if name not in self.typed:
            ok, value = coerce(self.hints[name], getattr(self.cfg, name))
            if ok:
                object.__setattr__(self.cfg, name, value)
            else:
                self.problems[name] = problem(name, getattr(self.cfg, name), allowed)
            self.typed[name] = ok
        return self.typed[name]

    def __call__(self, name: str, ok: Callable[[Any], bool], allowed: str) -> None:
        """Check field `name` has its type and `ok(value)`; else record one line naming it and `allowed`."""
        if self._typed(name, allowed) and name not in self.problems and not ok(getattr(self.cfg, name)):
            self.problems[name] = problem(name, getattr(self.cfg, name), allowed)

    def done(self) -> None:
        """Type-check the fields without a range check, then raise ConfigError with every problem found."""
        for f in fields(self.cfg):
            self._typed(f.name, _TYPE_WORDS.get(self.hints[f.name], str(self.hints[f.name])))
        if self.problems:
            order = [f.name for f in fields(self.cfg)]
            raise ConfigError({k: self.problems[k] for k in sorted(self.problems, key=order.index)})


@dataclass(frozen=True)
class DetectorConfig:
    """Settings of :class:`kd_traffic_light.core.detector.TrafficLightDetector`.

    Attributes:
        model: Path of the model: ``.pt``, ``.onnx``, an OpenVINO ``*_openvino_model`` dir or ``.engine``.
        device: ``cpu``, ``cuda``, ``cuda:N`` (falls back to ``cpu`` with a warning when CUDA is absent).
        imgsz: Inference size (longest side, multiple of 32).
        half: FP16 inference (CUDA only; ignored with a warning on CPU).
        conf: Confidence threshold in [0, 1].
        iou: NMS IoU threshold in [0, 1].
        max_det: Maximum detections per image (>= 1).
        agnostic_nms: Class-agnostic NMS (one light is not both classes).
        threads: CPU threads of the inference runtime (ONNX Runtime intra-op threads, OpenVINO
            ``INFERENCE_NUM_THREADS``, torch threads for ``.pt``); 0 keeps the runtime's default (every core).
            On a machine whose cores also carry the camera driver and the transport, fewer threads than cores
            can answer more frames (docs/runtime.md has the measurement).
        state_model: ``''`` (off) or an ``.onnx`` state classifier (``python -m training state-classifier``) read
            on every box of a two-class ``relevance`` model: the boxes then carry ``relevance_state`` classes
            (kd_traffic_light/core/state_classifier.py).
        state_green_min_prob: With ``state_model``, a box is read green only when the classifier gives green at
            least this probability, else its most probable other state (0: plain argmax).
        state_edge_px: With ``state_model``, a box whose side lies within this many pixels of the frame's edge
            is never read green (its lit lamp may be outside the frame); 0: off.
    """

    model: str
    device: str = "cpu"
    imgsz: int = 640
    half: bool = False
    conf: float = 0.25
    iou: float = 0.45
    max_det: int = 100
    agnostic_nms: bool = True
    threads: int = 0
    state_model: str = ""
    state_green_min_prob: float = 0.9
    state_edge_px: float = 1.0

    def __post_init__(self) -> None:
        check = _Checks(self)
        check("model", lambda v: v.strip() != "",
              "a non-empty path to a .pt, .onnx, .engine file or an OpenVINO model directory")
        check("device", lambda v: v in ("cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()),
              "'cpu', 'cuda' or 'cuda:N'")
        check("imgsz", lambda v: 32 <= v <= 4096 and v % 32 == 0, "an integer multiple of 32 in [32, 4096]")
        check("conf", lambda v: 0.0 <= v <= 1.0, "a float in [0, 1]")
        check("iou", lambda v: 0.0 <= v <= 1.0, "a float in [0, 1]")
        check("max_det", lambda v: v >= 1, "an integer >= 1")
        check("threads", lambda v: 0 <= v <= 1024, "an integer in [0, 1024] (0: the runtime's default)")
        check("state_model", lambda v: v == "" or v.endswith(".onnx"), "'' (off) or the path of an .onnx state "
              "classifier")
        check("state_green_min_prob", lambda v: 0.0 <= v <= 1.0, "a probability in [0, 1] (0: plain argmax)")
        check("state_edge_px", lambda v: 0.0 <= v <= 1000.0, "pixels in [0, 1000] (0: off)")
        check.done()


@dataclass(frozen=True)
class NodeConfig:
    """Settings of the detector node around the core (topics, QoS, input guards).

    Attributes:
        image_topics: Input topics (relative names resolve in the node namespace).
        input_transport: ``raw`` (sensor_msgs/Image) or ``compressed`` (CompressedImage on ``<topic>/compressed``).
        image_reliability: QoS reliability of the input subscription: ``best_effort`` or ``reliable``.
        max_image_age_s: Drop frames whose stamp is older than this (node clock; 0 disables).
        fresh_wait: Above capacity, a frame that has waited in the latest-frame slot longer than this fraction of
            the camera's frame interval is superseded by the next frame when that one is due within the interval:
            answers are at most ``fresh_wait`` of an interval older than their service, at about
            ``(1 - fresh_wait)^2 / 2`` of an interval of idle time per answered frame (0 disables; below capacity
            nothing waits). See :class:`kd_traffic_light.core.runtime.LatestSlot`.
        max_image_pixels: Reject images with more pixels than this.
        publish_debug_image: Publish ``~/debug_image`` while somebody subscribes.
        class_id_as_name: Put class names instead of indices in ``hypothesis.class_id``.
        autostart: Configure and activate the lifecycle node on start.
    """

    image_topics: tuple[str, ...] = ("image",)
    input_transport: str = "raw"
    image_reliability: str = "best_effort"
    max_image_age_s: float = 0.0
    fresh_wait: float = 0.85
    max_image_pixels: int = 4096 * 4096
    publish_debug_image: bool = True
    class_id_as_name: bool = False
    autostart: bool = True

    def __post_init__(self) -> None:
        check = _Checks(self)
        check("image_topics", lambda v: len(v) >= 1 and all(t.strip() for t in v) and len(set(v)) == len(v),
              "a non-empty list of distinct topic names, e.g. ['image']")
        check("input_transport", lambda v: v in TRANSPORTS, f"one of {TRANSPORTS}")
        check("image_reliability", lambda v: v in RELIABILITIES, f"one of {RELIABILITIES}")
        check("max_image_age_s", lambda v: v >= 0.0, "a float >= 0 (0 disables)")
        check("fresh_wait", lambda v: 0.0 <= v < 1.0, "a fraction of the frame interval in [0, 1) (0 disables)")
        check("max_image_pixels", lambda v: v > 0, "an integer > 0")
        check.done()


@dataclass(frozen=True)
class TrackingConfig:
    """Settings of the per-light tracks, their revised states and the governing signal (docs/tracking.md).

    Attributes:
        tracking: Track lights, revise their states and publish ``~/traffic_signals``.
        track_gate: Largest centre distance, in box heights, between a detection and a track's predicted centre.
        track_max_scale_change: Largest ratio between a detection's and its track's box height.
        track_birth_s: Seconds a track must be matched before it is confirmed (published with its id, voting).
        track_death_s: Seconds without a match after which a track ends (it coasts on its prediction until then).
        green_frames: Consecutive green frames before a light is taken as green (k).
        stop_frames: Consecutive frames of red, yellow or red_yellow before the light is taken as showing it.
        off_frames: Consecutive frames read off before a light no longer held is taken as off.
        hold_s: Seconds red, yellow and red_yellow are held through dark or missed frames.
        green_hold_s: Seconds green is held through frames in which the light was not detected (0: never, as
            Autoware; never through a frame that reads the light off).
        flash_window_s: Seconds of history in which flashing is looked for.
        flash_toggles: Changes between one colour and dark within the window that make it flashing.
        signal_group_id: ``traffic_light_group_id`` of the published signal (the lanelet2 regulatory element's id
            where a map gives one).
    """

    tracking: bool = True
    track_gate: float = 2.0
    track_max_scale_change: float = 1.6
    track_birth_s: float = 0.1
    track_death_s: float = 0.7
    green_frames: int = 3
    stop_frames: int = 2
    off_frames: int = 2
    hold_s: float = 1.5
    green_hold_s: float = 0.0
    flash_window_s: float = 2.5
    flash_toggles: int = 4
    signal_group_id: int = 0

    def __post_init__(self) -> None:
        check = _Checks(self)
        check("track_gate", lambda v: v > 0.0, "a float > 0 (box heights)")
        check("track_max_scale_change", lambda v: v >= 1.0, "a float >= 1 (ratio of box heights)")
        check("track_birth_s", lambda v: v >= 0.0, "a float >= 0 (seconds; 0 confirms at once)")
        check("track_death_s", lambda v: v > 0.0, "a float > 0 (seconds)")
        check("green_frames", lambda v: 1 <= v <= 100, "an integer in [1, 100] (frames)")
        check("stop_frames", lambda v: 1 <= v <= 100, "an integer in [1, 100] (frames)")
        check("off_frames", lambda v: 1 <= v <= 100, "an integer in [1, 100] (frames)")
        check("hold_s", lambda v: 0.0 <= v <= 10.0, "a float in [0, 10] (seconds; 0 holds nothing)")
        check("green_hold_s", lambda v: 0.0 <= v <= 1.0, "a float in [0, 1] (seconds; 0 never holds green)")
        check("flash_window_s", lambda v: 0.0 < v <= 30.0, "a float in (0, 30] (seconds)")
        check("flash_toggles", lambda v: 2 <= v <= 1000, "an integer in [2, 1000]")
        check("signal_group_id", lambda v: v >= 0, "an integer >= 0")
        check.done()


@dataclass(frozen=True)
class ComparisonConfig:
    """Settings of the comparison node (student vs teacher agreement).

    Attributes:
        student_detections: Student's ``vision_msgs/Detection2DArray`` topic.
        teacher_detections: Teacher's ``vision_msgs/Detection2DArray`` topic.
        image_topic: Camera topic, for ``~/overlay``.
        cache_size: Results kept per side while they wait for their mate; beyond it the oldest is dropped
            (counted as ``dropped_cache_full``).
        pair_timeout_s: A result whose mate has not come this long (steady clock) is reported unpaired.
        window: Paired frames pooled in the ``/diagnostics`` summary.
        iou_threshold: A match needs IoU >= this and the same class.
        match_method: ``greedy`` or ``hungarian``.
        warn_f1: Rolling F1 below this is WARN.
        error_f1: Rolling F1 below this is ERROR (<= warn_f1).
        records_path: ``''`` (off) or a ``.csv``/``.jsonl`` file: one record per compared frame.
        publish_overlay: Publish ``~/overlay`` (teacher dashed, student solid).
        diagnostics_period_s: Period of the ``/diagnostics`` summary.
    """

    student_detections: str = "/student/detector/detections"
    teacher_detections: str = "/teacher/detector/detections"
    image_topic: str = "/camera/image_raw"
    cache_size: int = 100
    pair_timeout_s: float = 5.0
    window: int = 100
    iou_threshold: float = 0.5
    match_method: str = "greedy"
    warn_f1: float = 0.8
    error_f1: float = 0.5
    records_path: str = ""
    publish_overlay: bool = True
    diagnostics_period_s: float = 1.0

    def __post_init__(self) -> None:
        check = _Checks(self)
        for name in ("student_detections", "teacher_detections", "image_topic"):
            check(name, lambda v: v.strip() != "", "a non-empty topic name")
        check("cache_size", lambda v: v >= 1, "an integer >= 1")
        check("pair_timeout_s", lambda v: v > 0.0, "a float > 0 (seconds)")
        check("window", lambda v: v >= 1, "an integer >= 1")
        check("iou_threshold", lambda v: 0.0 < v <= 1.0, "a float in (0, 1]")
        check("match_method", lambda v: v in MATCH_METHODS, f"one of {MATCH_METHODS}")
        check("warn_f1", lambda v: 0.0 <= v <= 1.0, "a float in [0, 1]")
        check("error_f1", lambda v: 0.0 <= v <= 1.0, "a float in [0, 1]")
        check("records_path", lambda v: v == "" or v.endswith(RECORD_FORMATS),
              f"'' (off) or a path ending with one of {RECORD_FORMATS}")
        check("diagnostics_period_s", lambda v: v > 0.0, "a float > 0 (seconds)")
        if "warn_f1" not in check.problems:
            check("error_f1", lambda v: v <= self.warn_f1, f"a float in [0, warn_f1 = {self.warn_f1}]")
        check.done()


def defaults(cls: type) -> dict[str, Any]:
    """Return ``{field: default}`` of a config dataclass (fields without a default are left out)."""
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


def type_problems(cls: type, values: Mapping[str, Any]) -> dict[str, str]:
    """Return ``{name: message}`` for the entries of `values` whose type does not fit field `name` of `cls`.

    For a front end that refuses a value of the wrong type where it enters (a node's parameters at
    start-up, its set-parameters callback) and leaves the range checks to building the config later. The
    message is the config's own (type and range), e.g. ``parameter 'conf' = 'abc' (string) is invalid:
    expected a float in [0, 1]``.
    """
    hints = typing.get_type_hints(cls)
    bad = [name for name, value in values.items() if name in hints and not coerce(hints[name], value)[0]]
    if not bad:
        return {}
    try:
        cls(**(defaults(cls) | {k: v for k, v in values.items() if k in hints}))
        found: dict[str, str] = {}
    except ConfigError as exc:
        found = exc.problems
    except TypeError:  # a field without a default is not in `values`
        found = {}
    return {name: found.get(name) or problem(name, values[name], _TYPE_WORDS.get(hints[name], str(hints[name])))
            for name in bad}
