"""The runtime imports no torch and no ultralytics unless a .pt model is loaded."""

import importlib.util
import subprocess
import sys

import pytest

PROBE = """
import sys
import numpy as np
import kd_traffic_light.comparison_node, kd_traffic_light.detector_node, kd_traffic_light.tools.replay
from kd_traffic_light.core.config import DetectorConfig
from kd_traffic_light.core.detector import TrafficLightDetector
det = TrafficLightDetector(DetectorConfig(model=sys.argv[1]))
assert len(det.predict(np.zeros((64, 128, 3), np.uint8))) == 2
heavy = sorted(m for m in ("torch", "ultralytics", "torchvision") if m in sys.modules)
print("HEAVY", heavy)
"""


def test_onnx_inference_imports_neither_torch_nor_ultralytics(constant_onnx):
    r = subprocess.run([sys.executable, "-c", PROBE, str(constant_onnx[0])], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout, r.stdout + r.stderr


@pytest.mark.runtime_venv
def test_runtime_only_venv_has_no_torch_or_ultralytics():
    assert importlib.util.find_spec("torch") is None
    assert importlib.util.find_spec("ultralytics") is None
    with pytest.raises(ImportError):
        import torch  # noqa: F401
