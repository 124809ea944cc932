"""The preamble every benchmark shares: the repository on ``sys.path``, ultralytics kept offline.

A script run as ``python benchmarks/<name>.py`` has this directory first on ``sys.path``, so its first import
of the repository is ``import _setup`` (or ``from _setup import REPO``): the repository root goes in front of
``sys.path`` and ``YOLO_AUTOINSTALL=false``, ``YOLO_OFFLINE=1`` are set unless the environment sets them.
Nothing is downloaded (docs/benchmarks.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: The repository root.
REPO = Path(__file__).resolve().parents[1]


def offline_env() -> None:
    """Keep ultralytics from installing or downloading anything (variables already set are kept)."""
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_OFFLINE", "1")


if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
offline_env()
