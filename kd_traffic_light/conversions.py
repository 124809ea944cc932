"""The only message-aware helpers: ROS images -> numpy, detections <-> vision_msgs, the signal -> Autoware's message.

Image decoding honours ``encoding``, ``step`` (row padding) and ``is_bigendian``; colour conversion is
delegated to rosbags-image (exact for bgr8, rgb8, mono8/16, bayer_*, yuv*, under numpy 2 and
OpenCV 4/5). Every malformed input raises :class:`InvalidImageError` with the reason, so a node can log,
count and drop it. The image functions take rclpy messages or the zero-copy views of
:mod:`kd_traffic_light.cdr_image` alike (anything with the messages' field names; compressed images are
told apart by their ``format`` field).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence

import cv2
import numpy as np
from autoware_perception_msgs.msg import TrafficLightElement, TrafficLightGroup, TrafficLightGroupArray
from rosbags.image.image import ImageError, convert_color, to_cvtype
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import (
    Detection2D,
    Detection2DArray,
    LabelInfo,
    ObjectHypothesisWithPose,
    VisionClass,
)

from kd_traffic_light.core.signal import LightReading, Signal
from kd_traffic_light.core.types import Detection


class InvalidImageError(ValueError):
    """An image message cannot be decoded; ``reason`` is a short machine-friendly category."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def check_header(header) -> None:
    """Reject headers the outputs could not carry faithfully (zero stamp, empty frame_id)."""
    if header.stamp.sec == 0 and header.stamp.nanosec == 0:
        raise InvalidImageError("zero_stamp", "header.stamp is zero; outputs copy the input stamp")
    if not header.frame_id:
        raise InvalidImageError("empty_frame_id", "header.frame_id is empty; outputs copy the input frame_id")


def is_compressed(msg) -> bool:
    """Whether ``msg`` is a CompressedImage (message or view): it has a ``format`` field."""
    return hasattr(msg, "format")


def validate_image_msg(msg: Image | CompressedImage, max_pixels: int | None = None) -> None:
    """Cheap structural checks (no decoding): header, size, encoding, ``step`` and data length.

    Cheap enough for a subscription callback, so every malformed frame is counted even while the
    inference worker is busy. Raises :class:`InvalidImageError`.
    """
    check_header(msg.header)
    if is_compressed(msg):
        _check_compressed(msg)
        return
    _raw_layout(msg, max_pixels)


def _raw_layout(msg: Image, max_pixels: int | None) -> tuple[np.dtype, int]:
    h, w = int(msg.height), int(msg.width)
    if h == 0 or w == 0:
        raise InvalidImageError("zero_size", f"image is {w}x{h}")
    if max_pixels is not None and h * w > max_pixels:
        raise InvalidImageError("too_large", f"{w}x{h} = {w * h} pixels exceeds max_image_pixels={max_pixels}")
    try:
        _, _, typestr, nchan = to_cvtype(msg.encoding)
    except (ImageError, KeyError) as exc:
        raise InvalidImageError("unknown_encoding", f"encoding {msg.encoding!r} is not supported") from exc
    dtype = np.dtype(typestr)
    row_bytes = w * nchan * dtype.itemsize
    step = int(msg.step)
    if step < row_bytes:
        raise InvalidImageError("bad_step", f"step {step} < width*channels*bytes = {row_bytes} ({msg.encoding})")
    if len(msg.data) != step * h:
        raise InvalidImageError("bad_size", f"data has {len(msg.data)} bytes, expected step*height = {step * h}")
    return dtype, nchan


def raw_image_to_bgr(msg: Image, max_pixels: int | None = None) -> np.ndarray:
    """Decode a ``sensor_msgs/Image`` into a BGR uint8 array (H, W, 3).

    An unpadded ``bgr8`` image comes back as a read-only view of ``msg.data`` (no copy); every other
    encoding as a new contiguous array.
    """
    dtype, nchan = _raw_layout(msg, max_pixels)
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if msg.encoding == "bgr8" and step == w * 3:
        return np.frombuffer(msg.data, dtype=np.uint8, count=h * step).reshape(h, w, 3)
    shape = (h, w) if nchan == 1 else (h, w, nchan)
    strides = (step, dtype.itemsize) if nchan == 1 else (step, nchan * dtype.itemsize, dtype.itemsize)
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    img = np.ndarray(shape=shape, dtype=dtype, buffer=buf, strides=strides)
    if bool(msg.is_bigendian) != (sys.byteorder == "big"):
        img = img.byteswap()
    img = np.ascontiguousarray(img)
    try:
        bgr = convert_color(img, msg.encoding, "bgr8")
    except ImageError as exc:
        raise InvalidImageError("unknown_encoding", f"cannot convert {msg.encoding!r} to bgr8: {exc}") from exc
    return np.ascontiguousarray(bgr)


def _check_compressed(msg: CompressedImage) -> None:
    data = msg.data
    if len(data) == 0:
        raise InvalidImageError("zero_size", "compressed image has no data")
    # OpenCV decodes a truncated JPEG into a partly grey frame without an error: check the markers.
    if bytes(data[:2]) == b"\xff\xd8" and b"\xff\xd9" not in bytes(data[-64:]):
        raise InvalidImageError("corrupt_compressed", f"truncated JPEG ({len(data)} bytes, no end-of-image marker)")


def compressed_image_to_bgr(msg: CompressedImage, max_pixels: int | None = None) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (JPEG/PNG) into BGR uint8 (H, W, 3)."""
    _check_compressed(msg)
    data = np.frombuffer(msg.data, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise InvalidImageError("corrupt_compressed", f"cannot decode {data.size} bytes of format {msg.format!r}")
    if max_pixels is not None and img.shape[0] * img.shape[1] > max_pixels:
        raise InvalidImageError("too_large", f"{img.shape[1]}x{img.shape[0]} exceeds max_image_pixels={max_pixels}")
    return img


def image_msg_to_bgr(msg: Image | CompressedImage, max_pixels: int | None = None) -> np.ndarray:
    """Decode an Image or CompressedImage into BGR uint8; raises :class:`InvalidImageError`."""
    if is_compressed(msg):
        return compressed_image_to_bgr(msg, max_pixels)
    return raw_image_to_bgr(msg, max_pixels)


def bgr_to_image_msg(img: np.ndarray, header) -> Image:
    """Wrap a BGR uint8 array into a ``sensor_msgs/Image`` (bgr8) with the given header."""
    img = np.ascontiguousarray(img, dtype=np.uint8)
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(img.shape[0]), int(img.shape[1])
    msg.encoding = "bgr8"
    msg.is_bigendian = 0
    msg.step = int(img.shape[1] * 3)
    msg.data = img.tobytes()  # assigning bytes is ~50x faster than assigning an ndarray
    return msg


def detections_to_msg(dets: Iterable[Detection], header, class_id_as_name: bool = False,
                      ids: Iterable[str] | None = None) -> Detection2DArray:
    """Build a ``vision_msgs/Detection2DArray``; every detection carries ``header`` verbatim.

    ``ids`` gives each detection's ``Detection2D.id`` (its track id; ``""`` for none), in the order of ``dets``.
    """
    out = Detection2DArray()
    out.header = header
    dets = list(dets)
    ids = list(ids) if ids is not None else [""] * len(dets)
    for det, track_id in zip(dets, ids, strict=True):
        d = Detection2D()
        d.header = header
        cx, cy = det.center
        d.bbox.center.position.x = float(cx)
        d.bbox.center.position.y = float(cy)
        d.bbox.center.theta = 0.0
        d.bbox.size_x = float(det.width)
        d.bbox.size_y = float(det.height)
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id = det.label if class_id_as_name and det.label else str(det.class_id)
        hyp.hypothesis.score = float(det.score)
        d.results.append(hyp)
        d.id = track_id
        out.detections.append(d)
    return out


def msg_to_detections(msg: Detection2DArray, names: Mapping[int, str] | None = None) -> list[Detection]:
    """Inverse of :func:`detections_to_msg` (class ids given as index strings or as names)."""
    names = dict(names or {})
    by_name = {v: k for k, v in names.items()}
    dets = []
    for d in msg.detections:
        if not d.results:
            continue
        hyp = d.results[0].hypothesis
        cid = int(hyp.class_id) if hyp.class_id.lstrip("-").isdigit() else by_name.get(hyp.class_id, -1)
        cx, cy = d.bbox.center.position.x, d.bbox.center.position.y
        w, h = d.bbox.size_x, d.bbox.size_y
        dets.append(Detection(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, float(hyp.score), cid,
                              names.get(cid, hyp.class_id if cid < 0 else "")))
    return dets


def label_info_msg(names: Mapping[int, str], threshold: float, header) -> LabelInfo:
    """Build a ``vision_msgs/LabelInfo`` with the model's class map and the confidence threshold."""
    msg = LabelInfo()
    msg.header = header
    for cid in sorted(names):
        vc = VisionClass()
        vc.class_id = int(cid)
        vc.class_name = str(names[cid])
        msg.class_map.append(vc)
    msg.threshold = float(threshold)
    return msg


#: The lamps of each revised state as ``autoware_perception_msgs/TrafficLightElement`` colours (a German
#: red_yellow is two lamps lit at once, so two elements).
SIGNAL_COLOURS: dict[str, tuple[int, ...]] = {
    "red": (TrafficLightElement.RED,),
    "yellow": (TrafficLightElement.AMBER,),
    "red_yellow": (TrafficLightElement.RED, TrafficLightElement.AMBER),
    "green": (TrafficLightElement.GREEN,),
}


def signal_elements(signal: Signal) -> list[TrafficLightElement]:
    """Return the elements of one revised signal: its lit lamps (circles), a dark light, or one UNKNOWN element.

    A light our models read has no pictogram, so every lamp is a ``CIRCLE``; ``off`` is one ``SOLID_OFF``
    element of unknown colour; ``unknown`` is one element with colour, shape and status ``UNKNOWN`` and
    confidence 0, as Autoware's classifiers report a light they cannot read.
    """
    e = TrafficLightElement
    if signal.state == "off":
        return [e(color=e.UNKNOWN, shape=e.CIRCLE, status=e.SOLID_OFF, confidence=float(signal.confidence))]
    if signal.state not in SIGNAL_COLOURS:
        return [e(color=e.UNKNOWN, shape=e.UNKNOWN, status=e.UNKNOWN, confidence=0.0)]
    status = e.FLASHING if signal.flashing else e.SOLID_ON
    return [e(color=c, shape=e.CIRCLE, status=status, confidence=float(signal.confidence))
            for c in SIGNAL_COLOURS[signal.state]]


def signal_msg(signal: Signal, group_id: int, stamp) -> TrafficLightGroupArray:
    """Build the ``autoware_perception_msgs/TrafficLightGroupArray`` of one camera's signal (one group)."""
    group = TrafficLightGroup(traffic_light_group_id=int(group_id), elements=signal_elements(signal))
    return TrafficLightGroupArray(stamp=stamp, traffic_light_groups=[group])


def tracks_msg(readings: Sequence[LightReading], stamp) -> TrafficLightGroupArray:
    """Build the per-light ``TrafficLightGroupArray``: one group per confirmed track (its id), its revised state."""
    groups = [TrafficLightGroup(traffic_light_group_id=int(r.track_id), elements=signal_elements(
        Signal(r.state, r.flashing, r.confidence if r.state != "unknown" else 0.0, 1)))
        for r in readings if r.confirmed]
    return TrafficLightGroupArray(stamp=stamp, traffic_light_groups=groups)


def tracks_from_msg(msg: TrafficLightGroupArray) -> dict[int, str]:
    """Read a per-light message back as ``{track id: revised state}`` (inverse of tracks_msg)."""
    return {int(g.traffic_light_group_id): group_state(g.elements)[0] for g in msg.traffic_light_groups}


def group_state(elements: Sequence[TrafficLightElement]) -> tuple[str, bool, float]:
    """Read one group's elements back as ``(state, flashing, confidence)`` (inverse of signal_elements)."""
    e = TrafficLightElement
    colours = tuple(el.color for el in elements)
    if len(elements) == 1 and elements[0].status == e.SOLID_OFF:
        return "off", False, float(elements[0].confidence)
    state = next((s for s, c in SIGNAL_COLOURS.items() if c == colours), "unknown")
    if state == "unknown":
        return "unknown", False, 0.0
    return state, elements[0].status == e.FLASHING, float(elements[0].confidence)


def signal_from_msg(msg: TrafficLightGroupArray) -> tuple[str, bool, float]:
    """Read the first group of a signal message back as ``(state, flashing, confidence)`` (inverse of signal_msg)."""
    return group_state(msg.traffic_light_groups[0].elements if msg.traffic_light_groups else [])
