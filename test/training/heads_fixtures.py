"""The coupled-head model and the one-epoch training run behind the ``coupled_run`` fixture (test/training/conftest.py).

Hermetic: the data is the tiny coloured-box dataset of test/model_factory.py, nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

from test.seeds import seed

COUPLED_N = "training/configs/models/yolov5n-coupled.yaml"


def train_tiny(model_yaml: str, data: Path, project: Path, name: str = "run") -> Path:
    """Train ``model_yaml`` for one epoch at 64 px on the CPU and return the run directory."""
    from ultralytics import YOLO

    import training.distill.heads  # noqa: F401  registers CoupledDetect with ultralytics' parse_model

    model = YOLO(model_yaml)
    model.train(
        data=str(data), epochs=1, imgsz=64, batch=4, workers=0, device="cpu", plots=False, val=True,
        project=str(project), name=name, exist_ok=True, verbose=False, amp=False, seed=seed(0), deterministic=False,
        optimizer="SGD", lr0=0.01, mosaic=0.0, warmup_epochs=0,
    )
    return project / name
