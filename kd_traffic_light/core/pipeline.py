"""An exported model end to end without torch: letterbox -> runtime -> decode + NMS -> frame pixels."""

from __future__ import annotations

import time

import numpy as np

from kd_traffic_light.core.backends.base import Runtime
from kd_traffic_light.core.letterbox import input_shape, letterbox, scale_boxes, to_blob
from kd_traffic_light.core.postprocess import Boxes, decode


class ExportedModel:
    """Pre- and post-processing around a :class:`~kd_traffic_light.core.backends.base.Runtime`.

    A static-shape export runs at its own input size (as ultralytics does: the export's ``imgsz`` wins over
    the requested one); a dynamic-shape export runs at the requested ``imgsz`` as the smallest padded
    rectangle (stride multiple), like ultralytics' rect predict mode.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.name = runtime.name
        self.device = runtime.device
        self.warnings = list(runtime.warnings)
        meta = runtime.metadata
        self.names: dict[int, str] = dict(meta.names)
        self.stride = meta.stride
        self.end2end = meta.end2end
        self.last_inference_ms = float("nan")

    def input_hw(self, frame_hw: tuple[int, int], imgsz: int) -> tuple[int, int]:
        """Network input ``(h, w)`` for a frame of ``frame_hw``."""
        if self.runtime.input_hw is not None:
            return self.runtime.input_hw
        return input_shape(frame_hw, (imgsz, imgsz), auto=True, stride=self.stride)

    def detect(self, bgr: np.ndarray, imgsz: int, conf: float, iou: float, max_det: int, agnostic: bool) -> Boxes:
        """Predict one BGR frame; boxes in frame pixels, highest score first."""
        img, info = letterbox(bgr, self.input_hw(bgr.shape[:2], imgsz))
        blob = to_blob(img, self.runtime.input_dtype)
        t0 = time.perf_counter()
        out = self.runtime.run(blob)
        self.last_inference_ms = (time.perf_counter() - t0) * 1000.0
        if not self.names:  # an export without metadata: name classes by index
            nc = out.shape[1] - 4 if out.ndim == 3 and out.shape[-1] != 6 else 0
            self.names = {i: f"class{i}" for i in range(nc)}
        boxes = decode(out.astype(np.float32, copy=False), conf, iou, max_det, agnostic, self.end2end)
        if len(boxes):
            scale_boxes(boxes.xyxy, info)
        return boxes
