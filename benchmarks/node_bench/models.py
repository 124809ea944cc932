"""The benchmark's models and what they weigh: untrained checkpoints, the ONNX export, GFLOPs, venv sizes.

Models are built untrained (2 classes) from ultralytics yaml files; nothing is downloaded. torch and
ultralytics are imported by the functions that need them.
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.node_bench.frames import HEIGHT, WIDTH


def untrained_pt(path: Path, cfg: str) -> Path:
    """Write an untrained 2-class checkpoint of the model yaml ``cfg`` that ``ultralytics.YOLO`` loads."""
    import torch
    from ultralytics import __version__
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel(cfg, nc=2, verbose=False)
    model.names = {0: "relevant", 1: "not_relevant"}
    model.args = {"imgsz": 64, "task": "detect"}
    torch.save({"model": model, "train_args": {"imgsz": 64, "task": "detect"}, "version": __version__}, path)
    return Path(path)


def export_onnx(pt: Path, imgsz: int) -> Path:
    """Export ``pt`` to a static ONNX model at the frames' 2:1 aspect (imgsz wide), no padding rows."""
    from ultralytics import YOLO

    return Path(YOLO(str(pt)).export(format="onnx", imgsz=[imgsz * HEIGHT // WIDTH, imgsz], verbose=False))


def gflops(cfg: str, imgsz: int) -> float:
    """GFLOPs of the model yaml ``cfg`` (2 classes) at the letterboxed 2:1 input of ``imgsz``."""
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.torch_utils import get_flops

    model = DetectionModel(cfg, nc=2, verbose=False)
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
