"""Drawing of detections on BGR frames (debug images, comparison overlays, report grids)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from kd_traffic_light.core.classes import split_label
from kd_traffic_light.core.types import Detection

# BGR colours by class index: relevant = green, not_relevant = orange; others cycle.
CLASS_COLORS: dict[int, tuple[int, int, int]] = {0: (60, 200, 60), 1: (0, 140, 255)}
_FALLBACK = [(255, 80, 80), (200, 60, 200), (60, 200, 200)]
# BGR colours of a light's state (models of the relevance_state scheme): the lamp's own colour, off grey.
STATE_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (40, 40, 235), "yellow": (0, 200, 255), "red_yellow": (0, 120, 255), "green": (80, 210, 40),
    "off": (150, 150, 150)}


def class_color(class_id: int) -> tuple[int, int, int]:
    """Colour (BGR) used for a class index."""
    return CLASS_COLORS.get(class_id, _FALLBACK[class_id % len(_FALLBACK)])


def detection_color(det: Detection) -> tuple[int, int, int]:
    """Colour (BGR) of a detection: its state's when its label carries one, else its class's."""
    state = split_label(det.label)[1]
    return STATE_COLORS[state] if state else class_color(det.class_id)


def _dashed_rect(img: np.ndarray, p1: tuple[int, int], p2: tuple[int, int], color, thickness: int) -> None:
    (x1, y1), (x2, y2) = p1, p2
    dash = max(4, 3 * thickness)
    for xa in range(x1, x2, 2 * dash):
        xb = min(xa + dash, x2)
        cv2.line(img, (xa, y1), (xb, y1), color, thickness)
        cv2.line(img, (xa, y2), (xb, y2), color, thickness)
    for ya in range(y1, y2, 2 * dash):
        yb = min(ya + dash, y2)
        cv2.line(img, (x1, ya), (x1, yb), color, thickness)
        cv2.line(img, (x2, ya), (x2, yb), color, thickness)


def draw_detections(
    img_bgr: np.ndarray,
    detections: Iterable[Detection],
    *,
    style: str = "solid",
    color: tuple[int, int, int] | None = None,
    thickness: int = 2,
    show_score: bool = True,
    ids: Sequence[str] | None = None,
) -> np.ndarray:
    """Return a copy of ``img_bgr`` with the detections drawn.

    Args:
        img_bgr: BGR uint8 image.
        detections: Boxes in the image's pixels.
        style: ``solid`` or ``dashed`` rectangle (the comparison overlay draws the teacher dashed).
        color: One BGR colour for all boxes; ``None`` colours by state (labels that carry one), else by class;
            a relevant light's box is drawn twice as thick.
        thickness: Line thickness in pixels.
        show_score: Write ``label score`` above each box.
        ids: Each detection's track id (``""`` for none), written before its label as ``#id``.
    """
    if style not in ("solid", "dashed"):
        raise ValueError(f"style must be 'solid' or 'dashed', got {style!r}")
    out = img_bgr.copy()
    detections = list(detections)
    ids = list(ids) if ids is not None else [""] * len(detections)
    for det, track_id in zip(detections, ids, strict=True):
        c = color or detection_color(det)
        relevance, state = split_label(det.label)
        t = thickness * 2 if state and relevance == "relevant" else thickness
        p1 = (int(round(det.x1)), int(round(det.y1)))
        p2 = (int(round(det.x2)), int(round(det.y2)))
        if style == "solid":
            cv2.rectangle(out, p1, p2, c, t)
        else:
            _dashed_rect(out, p1, p2, c, t)
        if show_score:
            text = f"{'#' + track_id + ' ' if track_id else ''}{det.label or det.class_id} {det.score:.2f}"
            cv2.putText(out, text, (p1[0], max(10, p1[1] - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, c, 1,
                        cv2.LINE_AA)
    return out


def draw_signal(img_bgr: np.ndarray, state: str, flashing: bool = False, confidence: float = 0.0) -> np.ndarray:
    """Draw the governing signal in the top-left corner of ``img_bgr`` (in place; returns it).

    A filled swatch in the state's colour (white for ``unknown``) and ``signal: <state> [flashing] <confidence>``.
    """
    colour = STATE_COLORS.get(state, (255, 255, 255))
    h = max(14, img_bgr.shape[0] // 30)
    cv2.rectangle(img_bgr, (4, 4), (4 + h, 4 + h), colour, -1)
    text = f"signal: {state}{' flashing' if flashing else ''} {confidence:.2f}"
    cv2.putText(img_bgr, text, (8 + h, 4 + h - 2), cv2.FONT_HERSHEY_SIMPLEX, h / 30, colour, 1, cv2.LINE_AA)
    return img_bgr
