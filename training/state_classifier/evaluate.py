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
    import onnxruntime as ort

    from kd_traffic_light.core.state_classifier import decide, softmax, to_input
    from training.state_classifier.train import figures

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    probs = softmax(sess.run(None, {sess.get_inputs()[0].name: to_input(crops.images)})[0].astype(np.float64))
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
    import cv2
    from ultralytics.data.utils import img2label_paths

    from kd_traffic_light.core.classes import class_id
    from kd_traffic_light.core.config import DetectorConfig
    from kd_traffic_light.core.detector import TrafficLightDetector
    from training.state_classifier.data import dataset_info, read_labels, split_images
    from training.state_metrics import state_metrics

    info = dataset_info(data_yaml)
    det = TrafficLightDetector(DetectorConfig(model=str(weights), imgsz=imgsz, conf=conf,
                                              state_model=str(state_model or "")))
    folded = {(r, s): class_id("relevance_state", ("relevant", "not_relevant")[r], STATES[s])
              for r in range(2) for s in range(len(STATES))}
    images = []
    files = split_images(info, split)
    for image_file, label_file in zip(files, img2label_paths([str(f) for f in files]), strict=True):
        bgr = cv2.imread(str(image_file))
        rows = read_labels(Path(label_file), bgr.shape[1], bgr.shape[0], info["names"])
        boxes = det.predict_boxes(bgr)
        images.append({"pred_boxes": boxes.xyxy, "pred_scores": boxes.scores, "pred_cls": boxes.classes,
                       "gt_boxes": rows[:, :4], "gt_cls": [folded[(int(r), int(s))] for s, r in rows[:, 4:6]]})
    return state_metrics(images, det.names, conf=conf)
