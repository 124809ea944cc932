"""Suite-wide settings: hermetic, offline, and isolated from other ROS 2 runs on the machine."""

import os
import random
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Set before anything imports ultralytics or rclpy, and inherited by every subprocess a test starts.
os.environ["YOLO_AUTOINSTALL"] = "false"
os.environ["YOLO_OFFLINE"] = "1"
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="kd_yolo_cfg_"))
os.environ["FASTDDS_BUILTIN_TRANSPORTS"] = "LARGE_DATA"
os.environ.pop("ROS_AUTOMATIC_DISCOVERY_RANGE", None)
# One DDS domain per test run, so parallel runs on this machine never see each other's topics.
os.environ["ROS_DOMAIN_ID"] = str(random.Random(os.getpid()).randint(1, 100))
os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="kd_ros_log_"))


@pytest.fixture(scope="session")
def constant_onnx(tmp_path_factory):
    """A real ONNX model whose raw output is two known boxes (built without torch: test/core/lean_models.py).

    Returns ``(path, expected)`` where ``expected`` holds the boxes in pixels of a 2048x1024 frame. Torch-free,
    so the runtime-only venv's core and node tests use the same fixture.
    """
    from test.core.lean_models import make_constant_onnx

    path = make_constant_onnx(tmp_path_factory.mktemp("models") / "constant.onnx")  # lean_models.BOXES
    # letterbox 2048x1024 -> 640x320 (scale 0.3125) padded to 640x640 (160 px top): x / 0.3125, (y - 160) / 0.3125
    expected = [(992.0, 448.0, 1056.0, 576.0, 0), (304.0, 256.0, 336.0, 320.0, 1)]
    return path, expected


@pytest.fixture(scope="session")
def untrained_pt(tmp_path_factory):
    """An untrained 2-class YOLOv5n checkpoint built from its yaml."""
    from test.model_factory import make_untrained_pt

    return make_untrained_pt(tmp_path_factory.mktemp("models") / "yolov5n_untrained.pt")
