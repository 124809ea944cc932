"""``.pt`` checkpoints through ultralytics (PyTorch): imported only when such a model is loaded."""

from __future__ import annotations

import numpy as np

from kd_traffic_light.core.postprocess import Boxes


def resolve_torch_device(requested: str, half: bool) -> tuple[str, bool, list[str]]:
    """Map the requested device to one torch has here; FP16 only on CUDA.

    Returns:
        ``(device, half, warnings)``.
    """
    import torch

    warnings = []
    device = requested
    if requested.startswith("cuda"):
        index = int(requested.split(":")[1]) if ":" in requested else 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            warnings.append(f"device '{requested}' is not available here; falling back to 'cpu'")
            device = "cpu"
    if half and device == "cpu":
        warnings.append("half precision needs CUDA; using FP32 on cpu")
        half = False
    return device, half, warnings


class UltralyticsModel:
    """A ``.pt`` model run by ``ultralytics.YOLO.predict`` (letterbox, NMS and scaling done by ultralytics)."""

    name = "ultralytics"

    def __init__(self, path: str, device: str, half: bool, threads: int = 0) -> None:
        import torch
        from ultralytics import YOLO

        if threads > 0:
            torch.set_num_threads(threads)

        self.device, self.half, self.warnings = resolve_torch_device(device, half)
        self.model = YOLO(path, task="detect")
        self.names: dict[int, str] = {int(k): str(v) for k, v in (self.model.names or {}).items()}
        self.last_inference_ms = float("nan")

    def detect(self, bgr: np.ndarray, imgsz: int, conf: float, iou: float, max_det: int, agnostic: bool) -> Boxes:
        """Predict one BGR frame; boxes in frame pixels."""
        result = self.model.predict(
            bgr, imgsz=imgsz, conf=conf, iou=iou, max_det=max_det, agnostic_nms=agnostic, device=self.device,
            verbose=False, **({"quantize": 16} if self.half else {}),  # 8.4.190 spells FP16 inference quantize=16
        )[0]
        self.last_inference_ms = float(result.speed.get("inference", float("nan")))
        b = result.boxes
        if b is None or len(b) == 0:
            return Boxes.empty()
        return Boxes(b.xyxy.cpu().numpy().astype(np.float32), b.conf.cpu().numpy().astype(np.float32),
                     b.cls.cpu().numpy().astype(np.int64))
