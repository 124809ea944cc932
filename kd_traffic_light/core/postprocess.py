"""Decode an exported YOLO detection output into boxes, scores and classes, with OpenCV's NMS.

Two output layouts, as ultralytics 8.4 exports them:

* raw head output ``(1, 4 + nc, A)``: per anchor ``cx, cy, w, h`` in network-input pixels and ``nc`` class
  scores. Decoded as ultralytics' ``non_max_suppression`` does: keep anchors whose best class score is
  ``> conf``, best class only, at most ``MAX_NMS`` by score, NMS (class-aware by offsetting each class by
  ``MAX_WH`` pixels, or agnostic), at most ``max_det`` kept, highest score first.
* end-to-end output ``(1, N, 6)`` (``nms=True`` exports, one-to-one heads): ``x1, y1, x2, y2, score, class``
  rows, only filtered by ``score > conf`` and cut at ``max_det``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MAX_NMS = 30000  # boxes into NMS at most (ultralytics' max_nms)
MAX_WH = 7680  # per-class coordinate offset of class-aware NMS (ultralytics' max_wh)


@dataclass(frozen=True)
class Boxes:
    """Detections of one frame as arrays, highest score first.

    Attributes:
        xyxy: ``(N, 4)`` float32 corners (network-input pixels until scaled back).
        scores: ``(N,)`` float32 confidences.
        classes: ``(N,)`` int64 class indices.
    """

    xyxy: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    @staticmethod
    def empty() -> Boxes:
        """No detections."""
        return Boxes(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def nms(xyxy: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Run greedy NMS: a box is dropped when its IoU with a kept, higher-scored box is > ``iou``.

    Args:
        xyxy: ``(N, 4)`` corners.
        scores: ``(N,)`` scores.
        iou: IoU threshold in [0, 1].

    Returns:
        Kept indices, highest score first.
    """
    if len(scores) == 0:
        return np.zeros(0, np.int64)
    xywh = np.empty_like(xyxy, dtype=np.float64)
    xywh[:, :2] = xyxy[:, :2]
    xywh[:, 2:] = xyxy[:, 2:] - xyxy[:, :2]
    # scores here are > conf >= 0, and NMSBoxes keeps scores > its threshold: 0 keeps them all
    keep = cv2.dnn.NMSBoxes(xywh, scores.astype(np.float32), 0.0, float(iou))
    return np.asarray(keep, dtype=np.int64).reshape(-1)


def decode_raw(pred: np.ndarray, conf: float, iou: float, max_det: int, agnostic: bool) -> Boxes:
    """Decode one raw head output ``(4 + nc, A)`` (or ``(1, 4 + nc, A)``); see the module docstring."""
    pred = pred[0] if pred.ndim == 3 else pred
    scores_all = pred[4:]
    best = scores_all.argmax(0)
    score = scores_all[best, np.arange(scores_all.shape[1])]
    cand = np.flatnonzero(score > conf)
    if cand.size == 0:
        return Boxes.empty()
    if cand.size > MAX_NMS:
        cand = cand[np.argsort(-score[cand], kind="stable")[:MAX_NMS]]
    xywh = pred[:4, cand].T.astype(np.float32)
    xyxy = np.empty_like(xywh)
    half = xywh[:, 2:] / 2
    xyxy[:, :2] = xywh[:, :2] - half
    xyxy[:, 2:] = xywh[:, :2] + half
    scores = score[cand].astype(np.float32)
    classes = best[cand].astype(np.int64)
    offset = 0.0 if agnostic else classes[:, None].astype(np.float32) * MAX_WH
    keep = nms(xyxy + offset, scores, iou)[:max_det]
    return Boxes(xyxy[keep], scores[keep], classes[keep])


def decode_end2end(pred: np.ndarray, conf: float, max_det: int) -> Boxes:
    """Decode one end-to-end output ``(N, 6)`` (or ``(1, N, 6)``): filter by score, cut at ``max_det``."""
    pred = pred[0] if pred.ndim == 3 else pred
    rows = pred[pred[:, 4] > conf][:max_det]
    return Boxes(rows[:, :4].astype(np.float32), rows[:, 4].astype(np.float32), rows[:, 5].astype(np.int64))


def decode(pred: np.ndarray, conf: float, iou: float, max_det: int, agnostic: bool, end2end: bool) -> Boxes:
    """Decode either layout; ``end2end`` (from the export's metadata) or a last dimension of 6 selects it."""
    if end2end or pred.shape[-1] == 6:
        return decode_end2end(pred, conf, max_det)
    return decode_raw(pred, conf, iou, max_det, agnostic)
