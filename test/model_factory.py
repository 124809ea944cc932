"""Hermetic model and dataset builders for tests: nothing is downloaded, every model and image is made here.

Torch-free at import (the runtime-only venv imports this module too); torch, ultralytics and cv2 are imported
by the builders that need them.

* constant-output ONNX models (known boxes, no torch needed) are built by ``test/core/lean_models.py``.
* :func:`make_untrained_pt` writes an untrained YOLOv5u model file built from its yaml (the package's classes).
* :func:`write_tiny_yolo_dataset` writes a tiny coloured-box YOLO dataset and its data.yaml (with
  :func:`data_yaml_text`, re-exported from ``training/data/tiny.py``, where the benchmarks take them from).
"""

from __future__ import annotations

from pathlib import Path

from kd_traffic_light.core.types import CLASS_NAMES
from test.seeds import seed
from training.data.tiny import data_yaml_text, write_tiny_yolo_dataset

__all__ = ["data_yaml_text", "make_untrained_pt", "write_tiny_yolo_dataset"]


def make_untrained_pt(path: Path, cfg: str = "yolov5n.yaml", names: dict[int, str] | None = None) -> Path:
    """Write an untrained model of ``cfg`` as ultralytics saves a finished run's weights; return ``path``.

    Half precision, ``epoch: -1`` and no optimizer: a model file (``ultralytics.YOLO`` loads it, ``--teacher``
    and ``--model`` accept it), not a training checkpoint that could be resumed. ``names`` defaults to
    :data:`kd_traffic_light.core.types.CLASS_NAMES`; its length is the class count. The weights are drawn from
    the suite's seed (test/seeds.py), not from whatever the global torch generator holds at that point.
    """
    import torch
    from ultralytics import __version__
    from ultralytics.nn.tasks import DetectionModel

    names = dict(names or CLASS_NAMES)
    with torch.random.fork_rng():
        torch.manual_seed(seed(0))
        model = DetectionModel(cfg, nc=len(names), verbose=False)
    model.names = names
    model.args = {"imgsz": 64, "task": "detect"}
    torch.save({"model": model.half(), "train_args": {"imgsz": 64, "task": "detect"}, "epoch": -1,
                "version": __version__}, path)
    return Path(path)


#: The smoke-test recipe of the training tests (1 epoch at 64 px on the CPU).
TINY_CONFIG = Path(__file__).resolve().parents[1] / "training" / "configs" / "tiny_cpu.yaml"


def write_tiny_config(path: Path, terms: dict | None = None, train: dict | None = None) -> Path:
    """Write ``tiny_cpu.yaml`` with these distillation ``terms`` (none: plain training), the suite's seed
    (test/seeds.py) and ``train`` overrides; return ``path``."""
    import yaml

    raw = yaml.safe_load(TINY_CONFIG.read_text())
    raw["distill"]["terms"] = terms or {}
    raw["train"].update({"seed": seed(0), **(train or {})})
    Path(path).write_text(yaml.safe_dump(raw))
    return Path(path)
