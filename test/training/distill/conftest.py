"""Fixtures of the distillation tests: the tiny coloured-box dataset, an untrained teacher (test/model_factory.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from test.model_factory import make_untrained_pt, write_tiny_yolo_dataset

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return write_tiny_yolo_dataset(tmp_path_factory.mktemp("tinydata"))


@pytest.fixture(scope="session")
def teacher_pt(tmp_path_factory) -> Path:
    return make_untrained_pt(tmp_path_factory.mktemp("teacher") / "teacher_s.pt", cfg="yolov5s.yaml")
