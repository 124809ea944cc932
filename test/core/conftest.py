"""Core-test fixtures that need no torch (the runtime-only venv runs these tests too)."""

import pytest

from test.core.lean_models import make_constant_onnx


@pytest.fixture(scope="session")
def constant_onnx(tmp_path_factory):
    """A real ONNX model whose raw output is two known boxes (built without torch; see lean_models.py).

    Returns ``(path, expected)`` where ``expected`` holds the boxes in pixels of a 2048x1024 frame.
    """
    path = make_constant_onnx(tmp_path_factory.mktemp("models") / "constant.onnx")
    # letterbox 2048x1024 -> 640x320 (scale 0.3125) padded to 640x640 (160 px top): x / 0.3125, (y - 160) / 0.3125
    expected = [(992.0, 448.0, 1056.0, 576.0, 0), (304.0, 256.0, 336.0, 320.0, 1)]
    return path, expected
