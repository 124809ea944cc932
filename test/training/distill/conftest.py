"""Fixtures for the distillation tests: a tiny synthetic YOLO dataset and a teacher checkpoint from yaml."""

from __future__ import annotations

import os

os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

NAMES = {0: "relevant", 1: "not_relevant"}
REPO = Path(__file__).resolve().parents[3]


def make_dataset(root: Path, n_train: int = 8, n_val: int = 4, size: int = 64, seed: int = 0) -> Path:
    """Write the tiny coloured-box YOLO dataset (test/model_factory.py); return the data.yaml path."""
    from test.model_factory import write_tiny_yolo_dataset

    return write_tiny_yolo_dataset(root, n_train, n_val, size, seed)


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
