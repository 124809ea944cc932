"""``provenance.json`` of a training run: resolved config, model paths, data.yaml, library versions, git SHA.

Written by ``training.distill.trainer.DistillTrainer`` when training starts (rank 0); read back by
``training.export.read_provenance``. See docs/training.md.
"""

from __future__ import annotations

import platform
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kd_traffic_light.core.atomic_io import atomic_write_json

PROVENANCE_FILE = "provenance.json"


def git_sha() -> str | None:
    """Git commit of the working tree, or None."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    """Versions of python, torch, ultralytics and numpy."""
    import numpy
    import torch
    import ultralytics

    return {"python": platform.python_version(), "torch": torch.__version__,
            "ultralytics": ultralytics.__version__, "numpy": numpy.__version__}


def write_provenance(save_dir: str | Path, config: Mapping[str, Any], args: Any, fgfi_anchors: Any = None,
                     config_file: str | None = None) -> Path:
    """Write ``<save_dir>/provenance.json``.

    Args:
        save_dir: The run directory.
        config: The resolved config in its plain form (``DistillConfig.to_dict``).
        args: The trainer's ultralytics arguments (model, distill_model, resume, data, scalars).
        fgfi_anchors: FGFI anchors the model uses (the fitted k-means ones too), or None.
        config_file: The config file the run was started with, or None.
    """
    data_yaml = args.data
    try:
        data_text = Path(data_yaml).read_text(encoding="utf-8")
    except OSError:
        data_text = None
    info = {
        "config": config,
        "fgfi_anchors": fgfi_anchors,
        "config_file": config_file,
        "student": str(args.model),
        "teacher": args.distill_model,
        "resume": args.resume,
        "data": str(data_yaml),
        "data_yaml": data_text,
        "train_args": {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool))},
        "versions": versions(),
        "git_sha": git_sha(),
    }
    path = Path(save_dir) / PROVENANCE_FILE
    atomic_write_json(path, info)
    return path
