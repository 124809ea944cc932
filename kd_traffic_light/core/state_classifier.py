"""The light's state from a crop of the frame: a small classifier after a two-class detector (Autoware's way).

A ``relevance`` detector finds the lights and says which govern the lane; each of its boxes is then cut out of
the *camera frame* (not the detector's downscaled input), widened by a margin, resized to a fixed size and read
by a small ONNX classifier over :data:`~kd_traffic_light.core.classes.STATES`. The box's class becomes the
``relevance_state`` class ``<relevance>_<state>``, so everything downstream (names in ``LabelInfo``, tracks,
the signal, the comparison) reads it as it reads a folded-class detector's output. Why this scheme exists next
to folded classes, and what each costs, is in docs/training.md ("Light state").

The classifier is trained offline (``python -m training state-classifier``) and exported to ONNX with its
crop geometry in the file's metadata (:data:`META_KEYS`), so the runtime cuts crops exactly as training did.
No torch here: crops are cut with OpenCV and run on ONNX Runtime.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np

from kd_traffic_light.core.classes import RELEVANCE, STATES, class_id

#: Metadata keys the exported classifier carries: its states in output order, crop ``[h, w]``, margin.
META_KEYS = ("kd_states", "kd_crop_hw", "kd_crop_margin")
#: Optional metadata key: ``"1"`` when the classifier learned horizontal heads turned upright (:func:`crop_boxes`).
UPRIGHT_KEY = "kd_crop_upright"
#: Default crop size ``(h, w)``: German lights stand upright, three lamps over the height.
CROP_HW = (32, 16)
#: Default margin around a box, as a fraction of its width and height on each side (some housing around it).
CROP_MARGIN = 0.15


class StateModelError(RuntimeError):
    """The state classifier is missing, unreadable or lacks its metadata; the message names the file."""


def crop_boxes(bgr: np.ndarray, xyxy: np.ndarray, hw: tuple[int, int] = CROP_HW,
               margin: float = CROP_MARGIN, upright: bool = False) -> np.ndarray:
    """Cut every box out of ``bgr`` with ``margin`` around it and resize it to ``hw``: uint8 ``(n, h, w, 3)`` BGR.

    The widened box is clipped to the frame; a box with nothing left inside the frame gives a black crop.
    Resizing is ``cv2.INTER_AREA`` when shrinking and ``cv2.INTER_LINEAR`` when enlarging. ``upright``: a box
    wider than tall (a horizontal head) is turned a quarter clockwise first, so its first lamp (red, on the left)
    is on top as in an upright head, and the crop is not squashed across its lamps.
    """
    h, w = int(hw[0]), int(hw[1])
    boxes = np.asarray(xyxy, np.float64).reshape(-1, 4)
    out = np.zeros((len(boxes), h, w, 3), np.uint8)
    fh, fw = bgr.shape[:2]
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        mx, my = margin * (x2 - x1), margin * (y2 - y1)
        a, b = int(np.floor(max(0.0, x1 - mx))), int(np.floor(max(0.0, y1 - my)))
        c, d = int(np.ceil(min(float(fw), x2 + mx))), int(np.ceil(min(float(fh), y2 + my)))
        if c <= a or d <= b:
            continue
        patch = bgr[b:d, a:c]
        if upright and x2 - x1 > y2 - y1:
            patch = cv2.rotate(patch, cv2.ROTATE_90_CLOCKWISE)
        shrink = patch.shape[0] > h or patch.shape[1] > w
        out[i] = cv2.resize(patch, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return out


def to_input(crops: np.ndarray) -> np.ndarray:
    """uint8 BGR crops ``(n, h, w, 3)`` -> the classifier's float32 RGB input ``(n, 3, h, w)`` in [0, 1]."""
    return np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(n, k)`` logits."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def decide(probs: np.ndarray, green_min_prob: float = 0.0,
           no_green: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each row's state and its probability, green only when its probability is at least ``green_min_prob``.

    Below it the most probable other state is taken: a light the classifier is unsure is green is read as the
    state it would otherwise be, never as go (a red read as green tells a vehicle to drive; a green read as red
    makes it wait a frame). Rows where ``no_green`` is true are never read green.
    """
    probs = np.asarray(probs, np.float64).reshape(len(probs), -1)
    green = STATES.index("green")
    masked = probs.copy()
    masked[probs[:, green] < green_min_prob, green] = -1.0
    if no_green is not None:
        masked[np.asarray(no_green, bool), green] = -1.0
    best = masked.argmax(axis=1)
    return best.astype(np.int64), probs[np.arange(len(best)), best].astype(np.float32)


def cut_by_frame(xyxy: np.ndarray, height: int, width: int, edge_px: float) -> np.ndarray:
    """Boxes whose side lies within ``edge_px`` of the frame's edge (a head the frame cuts); none when 0."""
    boxes = np.asarray(xyxy, np.float64).reshape(-1, 4)
    if edge_px <= 0:
        return np.zeros(len(boxes), bool)
    return ((boxes[:, 0] <= edge_px) | (boxes[:, 1] <= edge_px) | (boxes[:, 2] >= width - edge_px)
            | (boxes[:, 3] >= height - edge_px))


def fold_classes(relevance_ids: np.ndarray, state_ids: np.ndarray) -> np.ndarray:
    """``relevance`` class ids and :data:`STATES` indices -> ``relevance_state`` class ids."""
    table = np.array([[class_id("relevance_state", r, s) for s in STATES] for r in RELEVANCE], np.int64)
    return table[np.asarray(relevance_ids, np.int64), np.asarray(state_ids, np.int64)]


class StateClassifier:
    """An exported state classifier on ONNX Runtime (CPU).

    Example:
        >>> reader = StateClassifier("state_classifier.onnx")
        >>> states, probs = reader.classify(bgr_frame, boxes_xyxy)  # indices into STATES, their probabilities
    """

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        """Load the classifier and read its crop geometry.

        Raises:
            StateModelError: the file is missing, not an ONNX model ONNX Runtime loads, or lacks
                :data:`META_KEYS` (the message names the file and the key).
        """
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise StateModelError(f"state model '{path}' does not exist (parameter 'state_model')")
        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as the detector's session
        if threads > 0:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several kinds for bad files
            raise StateModelError(f"state model '{path}' cannot be loaded by ONNX Runtime: "
                                  f"{type(exc).__name__}: {exc}") from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        missing = [k for k in META_KEYS if k not in meta]
        if missing:
            raise StateModelError(f"state model '{path}' lacks metadata {missing}: expected a classifier exported "
                                  "by 'python -m training state-classifier'")
        try:
            self.states: tuple[str, ...] = tuple(json.loads(meta["kd_states"]))
            self.crop_hw: tuple[int, int] = tuple(int(v) for v in json.loads(meta["kd_crop_hw"]))  # type: ignore
            self.margin = float(meta["kd_crop_margin"])
            self.upright = meta.get(UPRIGHT_KEY, "0") == "1"  # absent: exported before horizontal heads were turned
        except (ValueError, TypeError) as exc:
            raise StateModelError(f"state model '{path}': unreadable metadata ({exc})") from exc
        if self.states != STATES:
            raise StateModelError(f"state model '{path}' predicts states {list(self.states)}; expected "
                                  f"{list(STATES)} in that order")
        self.input_name = self.session.get_inputs()[0].name
        self.last_ms = float("nan")
        try:  # one blank crop now, so a classifier whose input does not fit its metadata fails here, not on a car
            logits = self.logits(np.zeros((1, *self.crop_hw, 3), np.uint8))
        except Exception as exc:  # onnxruntime raises several kinds
            raise StateModelError(f"state model '{path}' does not run on a {self.crop_hw} crop (its metadata "
                                  f"'kd_crop_hw'): {type(exc).__name__}: {exc}") from exc
        if logits.shape != (1, len(STATES)):
            raise StateModelError(f"state model '{path}' gives logits of shape {list(logits.shape)} for one crop; "
                                  f"expected [1, {len(STATES)}] (one per state)")

    def classify(self, bgr: np.ndarray, xyxy: np.ndarray, green_min_prob: float = 0.0,
                 edge_px: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Read every box's state: ``(state indices into STATES, their probabilities)``, both ``(n,)``.

        ``green_min_prob``: see :func:`decide`. ``edge_px`` > 0: a box the frame cuts (:func:`cut_by_frame`) is
        never read green: its lit lamp may be outside the frame, and the classifier learned from labels that
        leave such heads out (``unknown``), so the dark lamps it sees read as whatever they resemble most.
        """
        t0 = time.perf_counter()
        boxes = np.asarray(xyxy).reshape(-1, 4)
        if not len(boxes):
            self.last_ms = 0.0
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        probs = softmax(self.logits(crop_boxes(bgr, boxes, self.crop_hw, self.margin, self.upright)).astype(np.float64))
        self.last_ms = (time.perf_counter() - t0) * 1000.0
        return decide(probs, green_min_prob, cut_by_frame(boxes, bgr.shape[0], bgr.shape[1], edge_px))

    def logits(self, crops: np.ndarray) -> np.ndarray:
        """Return the logits ``(n, states)`` of uint8 BGR crops ``(n, h, w, 3)`` cut as :func:`crop_boxes` cuts."""
        return self.session.run(None, {self.input_name: to_input(crops)})[0]
