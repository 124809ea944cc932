"""Hermetic model builders for tests: nothing is downloaded, every model is made here.

* :func:`make_constant_onnx` writes a real ONNX detection model (ultralytics' raw output layout,
  ``(1, 4 + nc, A)`` with xywh in network pixels and class scores) whose output is a known constant: it
  runs through the real ONNX Runtime backend, NMS and letterbox undo of ultralytics, so the expected
  boxes in original-image pixels are known exactly.
* :func:`make_untrained_pt` writes an untrained YOLOv5u checkpoint built from its yaml (2 classes).
"""

from __future__ import annotations

from pathlib import Path

import torch

NAMES = {0: "relevant", 1: "not_relevant"}


class _ConstantHead(torch.nn.Module):
    def __init__(self, out: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("out", out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out + 0.0 * x.mean()


def make_constant_onnx(path: Path, boxes: list[tuple[float, float, float, float, int, float]],
                       imgsz: int = 640, nc: int = 2, names: dict[int, str] | None = None) -> Path:
    """Write an ONNX model whose raw prediction is ``boxes`` (cx, cy, w, h in network pixels, class, score).

    The network input is static ``(1, 3, imgsz, imgsz)``; ultralytics letterboxes every frame to it.
    """
    anchors = max(8, len(boxes))
    out = torch.zeros(1, 4 + nc, anchors)
    for i, (cx, cy, w, h, cls, score) in enumerate(boxes):
        out[0, :4, i] = torch.tensor([cx, cy, w, h])
        out[0, 4 + cls, i] = score
    path = Path(path)
    torch.onnx.export(_ConstantHead(out), torch.zeros(1, 3, imgsz, imgsz), str(path), input_names=["images"],
                      output_names=["output0"], opset_version=17, dynamo=False)
    import onnx

    model = onnx.load(str(path))
    meta = {"task": "detect", "stride": "32", "batch": "1", "imgsz": str([imgsz, imgsz]),
            "names": str(names or NAMES), "args": str({"batch": 1, "dynamic": False, "half": False, "nms": False}),
            "description": "constant test model", "author": "kd_traffic_light tests"}
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))
    return path


def make_untrained_pt(path: Path, cfg: str = "yolov5n.yaml") -> Path:
    """Write an untrained 2-class checkpoint of ``cfg`` that ``ultralytics.YOLO`` loads."""
    from ultralytics import __version__
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel(cfg, nc=2, verbose=False)
    model.names = dict(NAMES)
    model.args = {"imgsz": 64, "task": "detect"}
    torch.save({"model": model, "train_args": {"imgsz": 64, "task": "detect"}, "version": __version__}, path)
    return Path(path)


def write_tiny_yolo_dataset(root: Path, n_train: int = 8, n_val: int = 4, size: int = 64, seed: int = 0) -> Path:
    """Write a YOLO dataset of ``size`` px PNGs with 1-2 coloured boxes each; return the data.yaml path.

    Class 0 (relevant) is a green box, class 1 (not_relevant) a red one; the val split doubles as test.
    """
    import cv2
    import numpy as np

    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            img = np.full((size, size, 3), 60, np.uint8)
            rows = []
            for _ in range(1 + k % 2):
                cls = int(rng.integers(0, 2))
                w, h = (int(v) for v in rng.integers(size // 6, size // 3, 2))
                x0, y0 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
                img[y0 : y0 + h, x0 : x0 + w] = (30, 220, 30) if cls == 0 else (30, 30, 230)
                rows.append(f"{cls} {(x0 + w / 2) / size:.6f} {(y0 + h / 2) / size:.6f} {w / size:.6f} {h / size:.6f}")
            cv2.imwrite(str(root / "images" / split / f"{k:03d}.png"), img)
            (root / "labels" / split / f"{k:03d}.txt").write_text("\n".join(rows) + "\n")
    data = root / "data.yaml"
    data.write_text(f"path: {root.as_posix()}\ntrain: images/train\nval: images/val\ntest: images/val\n"
                    "names:\n  0: relevant\n  1: not_relevant\n")
    return data
