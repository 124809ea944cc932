"""Fixtures for the distillation tests: a tiny synthetic YOLO dataset and a teacher checkpoint from yaml."""

from __future__ import annotations

import os

os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

NAMES = {0: "relevant", 1: "not_relevant"}
REPO = Path(__file__).resolve().parents[3]


def make_dataset(root: Path, n_train: int = 8, n_val: int = 4, size: int = 64, seed: int = 0) -> Path:
    """Write 64x64 images with coloured rectangles, YOLO labels and a data.yaml; return the yaml path."""
    import cv2
    import yaml

    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = np.full((size, size, 3), 40, np.uint8)
            lines = []
            for _ in range(rng.integers(1, 3)):
                w, h = int(rng.integers(8, 20)), int(rng.integers(12, 28))
                x0, y0 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
                cls = int(rng.integers(0, 2))
                colour = (0, 0, 255) if cls == 0 else (0, 255, 0)
                cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), colour, -1)
                lines.append(f"{cls} {(x0 + w / 2) / size:.6f} {(y0 + h / 2) / size:.6f} {w / size:.6f} {h / size:.6f}")
            cv2.imwrite(str(root / "images" / split / f"{i:03d}.png"), img)
            (root / "labels" / split / f"{i:03d}.txt").write_text("\n".join(lines) + "\n")
    data = {"path": str(root), "train": "images/train", "val": "images/val", "names": NAMES}
    path = root / "data.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def make_teacher(path: Path, cfg: str = "yolov5s.yaml", names: dict | None = None) -> Path:
    """Save an untrained model built from yaml in ultralytics' checkpoint format."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    names = names or NAMES
    model = DetectionModel(cfg, nc=len(names), verbose=False)
    model.names = dict(names)
    torch.save({"model": model.half(), "train_args": {"imgsz": 64}, "epoch": -1}, path)
    return path


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("tinydata"))


@pytest.fixture(scope="session")
def teacher_pt(tmp_path_factory) -> Path:
    return make_teacher(tmp_path_factory.mktemp("teacher") / "teacher_s.pt")


@pytest.fixture(autouse=True)
def _yolo_config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "yolo_cfg"))
