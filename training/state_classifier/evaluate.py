"""What the crop classifier reads, on labelled crops and after a detector.

On labelled crops at several green thresholds, and after a detector as the node runs them
(``TrafficLightDetector`` with ``state_model``), scored with :mod:`training.state_metrics`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kd_traffic_light.core.classes import STATES
from training.state_classifier.data import Crops

#: Green thresholds of the curve (``state_green_min_prob``; 0 is the plain argmax).
GREEN_THRESHOLDS = (0.0, 0.5, 0.8, 0.9, 0.95)


def green_threshold_curve(onnx_path: Path, crops: Crops, thresholds: tuple[float, ...] = GREEN_THRESHOLDS) -> list:
    """Per threshold: red -> green share of the red crops, red and green recall, balanced accuracy."""
    from kd_traffic_light.core.state_classifier import StateClassifier, decide, softmax
    from training.state_classifier.train import figures

    probs = softmax(StateClassifier(onnx_path).logits(crops.images).astype(np.float64))
    red = crops.states == STATES.index("red")
    rows = []
    for t in thresholds:
        f = figures(decide(probs, t)[0], crops.states)
        rows.append({"green_min_prob": t, "red_to_green_share": f["red_to_green"] / max(1, int(red.sum())),
                     "red_recall": f["per_state"]["red"]["recall"], "green_recall": f["per_state"]["green"]["recall"],
                     "balanced_accuracy": f["balanced_accuracy"]})
    return rows


def node_state_metrics(weights: Path, data_yaml: Path, split: str, imgsz: int, state_model: Path | None = None,
                       conf: float = 0.25) -> dict[str, Any]:
    """:func:`training.state_metrics.state_metrics` of a detector (with the classifier) on every image of ``split``.

    The detector runs as the node runs it (``TrafficLightDetector``, the node's defaults but ``imgsz`` and
    ``conf``); the labels are the ``relevance_state`` dataset's.
    """
    from kd_traffic_light.core.config import DetectorConfig
    from kd_traffic_light.core.detector import TrafficLightDetector
    from kd_traffic_light.core.state_classifier import fold_classes
    from training.state_classifier.data import dataset_info, labelled_frames
    from training.state_metrics import state_metrics

    det = TrafficLightDetector(DetectorConfig(model=str(weights), imgsz=imgsz, conf=conf,
                                              state_model=str(state_model or "")))
    images = []
    for bgr, rows in labelled_frames(dataset_info(data_yaml), split):
        boxes = det.predict_boxes(bgr)
        images.append({"pred_boxes": boxes.xyxy, "pred_scores": boxes.scores, "pred_cls": boxes.classes,
                       "gt_boxes": rows[:, :4], "gt_cls": fold_classes(rows[:, 5], rows[:, 4])})
    return state_metrics(images, det.names, conf=conf)
