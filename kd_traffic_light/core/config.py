"""Frozen, validated configurations of the detector core and the detector node.

Validation happens here, in the core, so that a wrong value fails early with a message naming the
parameter and the allowed values, whichever front end (node parameters, CLI, tests) supplied it.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the parameter and what is allowed."""


def _check(ok: bool, name: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"parameter '{name}' = {value!r} is invalid: expected {allowed}")


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
    """

    model: str
    device: str = "cpu"
    imgsz: int = 640
    half: bool = False
    conf: float = 0.25
    iou: float = 0.45
    max_det: int = 100
    agnostic_nms: bool = True

    def __post_init__(self) -> None:
        _check(isinstance(self.model, str) and self.model.strip() != "", "model", self.model,
               "a non-empty path to a .pt, .onnx, .engine file or an OpenVINO model directory")
        dev = str(self.device)
        _check(dev == "cpu" or dev == "cuda" or (dev.startswith("cuda:") and dev[5:].isdigit()),
               "device", self.device, "'cpu', 'cuda' or 'cuda:N'")
        _check(isinstance(self.imgsz, int) and 32 <= self.imgsz <= 4096 and self.imgsz % 32 == 0,
               "imgsz", self.imgsz, "an integer multiple of 32 in [32, 4096]")
        _check(0.0 <= float(self.conf) <= 1.0, "conf", self.conf, "a float in [0, 1]")
        _check(0.0 <= float(self.iou) <= 1.0, "iou", self.iou, "a float in [0, 1]")
        _check(isinstance(self.max_det, int) and self.max_det >= 1, "max_det", self.max_det, "an integer >= 1")


TRANSPORTS = ("raw", "compressed")
RELIABILITIES = ("best_effort", "reliable")


@dataclass(frozen=True)
class NodeConfig:
    """Settings of the detector node around the core (topics, QoS, input guards).

    Attributes:
        image_topics: Input topics (relative names resolve in the node namespace).
        input_transport: ``raw`` (sensor_msgs/Image) or ``compressed`` (CompressedImage on ``<topic>/compressed``).
        image_reliability: QoS reliability of the input subscription: ``best_effort`` or ``reliable``.
        max_image_age_s: Drop frames whose stamp is older than this (node clock; 0 disables).
        max_image_pixels: Reject images with more pixels than this.
        publish_debug_image: Publish ``~/debug_image`` while somebody subscribes.
        class_id_as_name: Put class names instead of indices in ``hypothesis.class_id``.
        autostart: Configure and activate the lifecycle node on start.
    """

    image_topics: tuple[str, ...] = ("image",)
    input_transport: str = "raw"
    image_reliability: str = "best_effort"
    max_image_age_s: float = 0.0
    max_image_pixels: int = 4096 * 4096
    publish_debug_image: bool = True
    class_id_as_name: bool = False
    autostart: bool = True

    def __post_init__(self) -> None:
        topics = tuple(self.image_topics)
        _check(len(topics) >= 1 and all(isinstance(t, str) and t.strip() for t in topics),
               "image_topics", self.image_topics, "a non-empty list of topic names")
        _check(len(set(topics)) == len(topics), "image_topics", self.image_topics, "distinct topic names")
        object.__setattr__(self, "image_topics", topics)
        _check(self.input_transport in TRANSPORTS, "input_transport", self.input_transport, f"one of {TRANSPORTS}")
        _check(self.image_reliability in RELIABILITIES, "image_reliability", self.image_reliability,
               f"one of {RELIABILITIES}")
        _check(float(self.max_image_age_s) >= 0.0, "max_image_age_s", self.max_image_age_s,
               "a float >= 0 (0 disables)")
        _check(isinstance(self.max_image_pixels, int) and self.max_image_pixels > 0, "max_image_pixels",
               self.max_image_pixels, "an integer > 0")


def defaults(cls: type) -> dict[str, Any]:
    """Return ``{field: default}`` of a config dataclass (fields without a default are left out)."""
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}
