"""The benchmark's models and what they weigh: untrained checkpoints, the ONNX export, GFLOPs, venv sizes.

Models are built untrained from ultralytics yaml files, with a class scheme's classes (kd_traffic_light/core/
classes.py: 2 for relevance, 10 for relevance_state); nothing is downloaded. torch and
ultralytics are imported by the functions that need them.
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.node_bench.frames import HEIGHT, WIDTH
from kd_traffic_light.core.classes import DEFAULT_SCHEME, class_names


def untrained_pt(path: Path, cfg: str, scheme: str = DEFAULT_SCHEME) -> Path:
    """Write an untrained checkpoint of the model yaml ``cfg`` with ``scheme``'s classes that ``YOLO`` loads."""
    import torch
    from ultralytics import __version__
    from ultralytics.nn.tasks import DetectionModel

    names = class_names(scheme)
    model = DetectionModel(cfg, nc=len(names), verbose=False)
    model.names = names
    model.args = {"imgsz": 64, "task": "detect"}
    torch.save({"model": model, "train_args": {"imgsz": 64, "task": "detect"}, "version": __version__}, path)
    return Path(path)


def export_onnx(pt: Path, imgsz: int) -> Path:
    """Export ``pt`` to a static ONNX model at the frames' 2:1 aspect (imgsz wide), no padding rows."""
    from ultralytics import YOLO

    return Path(YOLO(str(pt)).export(format="onnx", imgsz=[imgsz * HEIGHT // WIDTH, imgsz], verbose=False))


def gflops(cfg: str, imgsz: int, scheme: str = DEFAULT_SCHEME) -> float:
    """GFLOPs of the model yaml ``cfg`` (``scheme``'s classes) at the letterboxed 2:1 input of ``imgsz``."""
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.torch_utils import get_flops

    model = DetectionModel(cfg, nc=len(class_names(scheme)), verbose=False)
    return float(get_flops(model, [imgsz * HEIGHT // WIDTH, imgsz]))  # the letterboxed 2:1 input


def venv_size_mb(path: Path) -> float:
    """Installed size of a directory tree (files only, links not followed), MiB."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total / 2**20
