"""Hermetic model builders for tests: nothing is downloaded, every model is made here.

* constant-output ONNX models (known boxes, no torch needed) are built by ``test/core/lean_models.py``.
* :func:`make_untrained_pt` writes an untrained YOLOv5u checkpoint built from its yaml (2 classes).
"""

from __future__ import annotations

from pathlib import Path

import torch

NAMES = {0: "relevant", 1: "not_relevant"}


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
