"""The interface every exported-model runtime implements (ONNX Runtime, OpenVINO, TensorRT).

A runtime only runs the network: it takes the letterboxed ``(1, 3, H, W)`` blob and returns the first
output as a numpy array. Letterbox, decode and NMS are shared (``core.letterbox``, ``core.postprocess``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from kd_traffic_light.core.model_meta import ExportMetadata


class BackendError(RuntimeError):
    """A runtime cannot load or run a model; the message names the file and what was expected."""


class Runtime(ABC):
    """An exported model loaded in one inference runtime.

    Attributes:
        name: Runtime name for logs and diagnostics (``onnxruntime``, ``openvino``, ``tensorrt``).
        device: Where it runs, in words (``cpu``, ``cuda:0``, ``CPU`` ...).
        metadata: The export's metadata (names, imgsz, layout).
        input_hw: Static input ``(h, w)``, or ``None`` for a dynamic-shape model.
        input_dtype: ``np.float32`` or ``np.float16`` (a half export).
        warnings: Requests that could not be honoured (logged by the caller).
    """

    name = "runtime"

    def __init__(self) -> None:
        self.device = "cpu"
        self.metadata = ExportMetadata()
        self.input_hw: tuple[int, int] | None = None
        self.input_dtype: type = np.float32
        self.warnings: list[str] = []

    @abstractmethod
    def run(self, blob: np.ndarray) -> np.ndarray:
        """Run the network on one ``(1, 3, H, W)`` blob and return its first output."""


def static_hw(shape) -> tuple[int, int] | None:
    """``(h, w)`` of an NCHW input shape when both are fixed integers, else ``None`` (dynamic)."""
    dims = list(shape)[-2:]
    if len(dims) == 2 and all(isinstance(d, int) and d > 0 for d in dims):
        return int(dims[0]), int(dims[1])
    return None


def cuda_index(device: str) -> int | None:
    """CUDA device index of ``cuda``/``cuda:N`` (``cuda`` is 0), ``None`` for ``cpu``."""
    if not device.startswith("cuda"):
        return None
    return int(device.split(":")[1]) if ":" in device else 0
