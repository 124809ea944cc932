"""Tiny synthetic YOLO dataset and trained coupled-head checkpoint shared by the heads/evaluate/export tests.

Hermetic: images are drawn here (coloured rectangles on a grey background), nothing is downloaded.
Import the fixtures into a test module with ``from test.training.heads_fixtures import *`` or by name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

NAMES = {0: "relevant", 1: "not_relevant"}
COUPLED_N = "training/configs/models/yolov5n-coupled.yaml"

os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_OFFLINE", "1")


def write_tiny_dataset(root: Path, n_train: int = 4, n_val: int = 2, size: int = 64, seed: int = 0) -> Path:
    """Write a YOLO dataset of ``size`` px PNGs with 1-2 coloured boxes each; returns the data.yaml path.

    Class 0 (relevant) is a green box, class 1 (not_relevant) a red box; the val split doubles as test.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            img = np.full((size, size, 3), 110, np.uint8)
            rows = []
            for cls in range(1 + k % 2):
                w, h = rng.integers(size // 6, size // 3, 2)
                x0, y0 = rng.integers(0, size - w), rng.integers(0, size - h)
                img[y0 : y0 + h, x0 : x0 + w] = (30, 220, 30) if cls == 0 else (230, 30, 30)
                xc, yc = (x0 + w / 2) / size, (y0 + h / 2) / size
                rows.append(f"{cls} {xc:.6f} {yc:.6f} {w / size:.6f} {h / size:.6f}")
            Image.fromarray(img).save(root / "images" / split / f"{k:03d}.png")
            (root / "labels" / split / f"{k:03d}.txt").write_text("\n".join(rows) + "\n")
    data = root / "data.yaml"
    data.write_text(
        f"path: {root.as_posix()}\ntrain: images/train\nval: images/val\ntest: images/val\n"
        "names:\n  0: relevant\n  1: not_relevant\n"
    )
    return data


def train_tiny(model_yaml: str, data: Path, project: Path, name: str = "run") -> Path:
    """Train ``model_yaml`` for one epoch at 64 px on the CPU and return the run directory."""
    from ultralytics import YOLO

    import training.distill.heads  # noqa: F401  registers CoupledDetect with ultralytics' parse_model

    model = YOLO(model_yaml)
    model.train(
        data=str(data), epochs=1, imgsz=64, batch=4, workers=0, device="cpu", plots=False, val=True,
        project=str(project), name=name, exist_ok=True, verbose=False, amp=False, seed=0, deterministic=False,
        optimizer="SGD", lr0=0.01, mosaic=0.0, warmup_epochs=0,
    )
    return project / name


@pytest.fixture(scope="session")
def tiny_yolo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data.yaml of a 4-train / 2-val synthetic two-class dataset at 64x64 (built once per session)."""
    root = tmp_path_factory.getbasetemp() / "tiny_yolo"
    data = root / "data.yaml"
    return data if data.exists() else write_tiny_dataset(root)


@pytest.fixture(scope="session")
def coupled_run(tiny_yolo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run directory of a 1-epoch coupled-head YOLOv5n training (holds weights/best.pt).

    Several test modules import this fixture (each gets its own fixture definition), so the run is
    cached on disk in the session's base temp dir and trained only once.
    """
    project = tmp_path_factory.getbasetemp() / "tiny_runs"
    run = project / "coupled"
    if not (run / "weights" / "best.pt").exists():
        train_tiny(COUPLED_N, tiny_yolo_data, project, "coupled")
    return run
