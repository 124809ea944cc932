"""The detector core: load a YOLO model once, predict on BGR frames, return :class:`Detection` lists.

Wraps ``ultralytics.YOLO`` so the same code serves PyTorch (``.pt``), ONNX Runtime (``.onnx``),
OpenVINO (``*_openvino_model/``) and TensorRT (``.engine``) models. Boxes come back in original-image
pixels: ultralytics letterboxes the frame for the network and scales boxes back.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from kd_traffic_light.core.config import DetectorConfig
from kd_traffic_light.core.types import Detection

LOG = logging.getLogger(__name__)

MODEL_SUFFIXES = (".pt", ".onnx", ".engine", "_openvino_model")


class ModelLoadError(RuntimeError):
    """The model file is missing, of an unknown kind, or cannot be loaded; the message names the path."""


def resolve_device(requested: str, half: bool) -> tuple[str, bool, str | None]:
    """Map the requested device to one that exists here.

    Args:
        requested: ``cpu``, ``cuda`` or ``cuda:N``.
        half: Whether FP16 was requested.

    Returns:
        ``(device, half, warning)``: the device to use, whether FP16 is used, and a warning to log
        when the request could not be honoured (``None`` otherwise).
    """
    warning = None
    device = requested
    if requested.startswith("cuda"):
        import torch

        index = int(requested.split(":")[1]) if ":" in requested else 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            warning = f"device '{requested}' is not available here; falling back to 'cpu'"
            device = "cpu"
    if half and device == "cpu":
        warning = (warning + "; " if warning else "") + "half precision needs CUDA; using FP32 on cpu"
        half = False
    return device, half, warning


def check_model_path(path: str) -> Path:
    """Return ``path`` as a Path if it names an existing model of a supported kind, else raise.

    Raises:
        ModelLoadError: naming the path and what was expected.
    """
    p = Path(os.path.expanduser(path))
    if not p.exists():
        raise ModelLoadError(f"model '{path}' does not exist (parameter 'model')")
    if not (p.suffix in MODEL_SUFFIXES or p.name.endswith("_openvino_model")):
        raise ModelLoadError(
            f"model '{path}' is not a supported model: expected a .pt, .onnx, .engine file or an "
            "OpenVINO '*_openvino_model' directory"
        )
    return p


class TrafficLightDetector:
    """Traffic-light detector around an ultralytics model.

    Example:
        >>> det = TrafficLightDetector(DetectorConfig(model="student.onnx", imgsz=640))
        >>> detections = det.predict(bgr_frame)  # list[Detection] in frame pixels
    """

    def __init__(self, config: DetectorConfig) -> None:
        """Load the model named by ``config.model``.

        Raises:
            ModelLoadError: the file is missing or cannot be loaded (message names the path).
        """
        self.config = config
        path = check_model_path(config.model)  # fail before the slow import when the file is missing
        from ultralytics import YOLO

        self.device, self.half, self.device_warning = resolve_device(config.device, config.half)
        if self.device_warning:
            LOG.warning(self.device_warning)
        try:
            self.model = YOLO(str(path), task="detect")
            names = self.model.names  # loads exported backends
        except Exception as exc:  # ultralytics raises many kinds here; name the file in one error
            raise ModelLoadError(f"cannot load model '{config.model}': {type(exc).__name__}: {exc}") from exc
        self.names: dict[int, str] = {int(k): str(v) for k, v in (names or {}).items()}
        self.last_inference_ms = float("nan")

    def warmup(self, shape: tuple[int, int] = (1024, 2048)) -> float:
        """Run one prediction on a blank frame (loads exported backends, allocates); returns its seconds.

        Raises:
            ModelLoadError: the backend cannot load the file (exports load lazily, at the first predict).
        """
        t0 = time.perf_counter()
        try:
            self.predict(np.zeros((*shape, 3), dtype=np.uint8))
        except Exception as exc:
            raise ModelLoadError(f"cannot load model '{self.config.model}': {type(exc).__name__}: {exc}") from exc
        return time.perf_counter() - t0

    def predict(self, bgr: np.ndarray) -> list[Detection]:
        """Detect traffic lights on one BGR uint8 frame (H, W, 3).

        Returns:
            Detections in the frame's own pixel coordinates, highest score first.
        """
        if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
            raise ValueError(f"expected a BGR uint8 image of shape (H, W, 3), got {bgr.dtype} {bgr.shape}")
        cfg = self.config
        result = self.model.predict(
            bgr,
            imgsz=cfg.imgsz,
            conf=cfg.conf,
            iou=cfg.iou,
            max_det=cfg.max_det,
            agnostic_nms=cfg.agnostic_nms,
            device=self.device,
            verbose=False,
            **({"quantize": 16} if self.half else {}),  # 8.4.190 spells FP16 inference `quantize=16`
        )[0]
        self.last_inference_ms = float(result.speed.get("inference", float("nan")))
        return self._to_detections(result)

    def _to_detections(self, result) -> list[Detection]:
        boxes = result.boxes
        if boxes is None or len(boxes) == 0:
            return []
        xyxy = boxes.xyxy.cpu().numpy().astype(float)
        scores = boxes.conf.cpu().numpy().astype(float)
        classes = boxes.cls.cpu().numpy().astype(int)
        order = np.argsort(-scores, kind="stable")
        return [
            Detection(*xyxy[i].tolist(), score=float(scores[i]), class_id=int(classes[i]),
                      label=self.names.get(int(classes[i]), str(int(classes[i]))))
            for i in order
        ]
