"""Tiny synthetic YOLO dataset and trained coupled-head checkpoint shared by the heads/evaluate/export tests.

Hermetic: images are drawn here (coloured rectangles on a grey background), nothing is downloaded.
Import the fixtures into a test module with ``from test.training.heads_fixtures import *`` or by name.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NAMES = {0: "relevant", 1: "not_relevant"}
COUPLED_N = "training/configs/models/yolov5n-coupled.yaml"

os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_OFFLINE", "1")


def write_tiny_dataset(root: Path, n_train: int = 4, n_val: int = 2, size: int = 64, seed: int = 0) -> Path:
    """Write the tiny coloured-box YOLO dataset (test/model_factory.py); return the data.yaml path."""
    from test.model_factory import write_tiny_yolo_dataset

    return write_tiny_yolo_dataset(root, n_train, n_val, size, seed)


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
