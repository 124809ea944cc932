"""Inference runtimes by model kind; each module imports its runtime package only when a model needs it.

| model | runtime | module |
|---|---|---|
| ``.onnx`` | ONNX Runtime (CPU, CUDA, TensorRT providers) | ``onnxruntime_backend`` |
| ``*_openvino_model/`` (or its ``.xml``) | OpenVINO | ``openvino_backend`` |
| ``.engine`` | TensorRT + cuda-python | ``tensorrt_backend`` |
| ``.pt`` | ultralytics (PyTorch), the whole predict pipeline | ``ultralytics_backend`` |
"""

from __future__ import annotations

from pathlib import Path

from kd_traffic_light.core.backends.base import BackendError, Runtime


def model_kind(path: Path) -> str | None:
    """``onnx``, ``openvino``, ``engine`` or ``pt`` for a model path; ``None`` for anything else."""
    name = path.name
    if path.suffix == ".onnx":
        return "onnx"
    if name.endswith("_openvino_model") or (path.suffix == ".xml" and path.parent.name.endswith("_openvino_model")):
        return "openvino"
    if path.suffix == ".engine":
        return "engine"
    if path.suffix == ".pt":
        return "pt"
    return None


def open_runtime(path: Path, kind: str, device: str, half: bool, threads: int = 0) -> Runtime:
    """Load an exported model (``kind`` from :func:`model_kind`, not ``pt``) in its runtime.

    ``threads``: CPU inference threads (0: the runtime's default); TensorRT engines ignore it.

    Raises:
        BackendError: the runtime is not installed or cannot load the file (message names both).
    """
    try:
        if kind == "onnx":
            from kd_traffic_light.core.backends.onnxruntime_backend import OnnxRuntime as cls
        elif kind == "openvino":
            from kd_traffic_light.core.backends.openvino_backend import OpenVinoRuntime as cls
        elif kind == "engine":
            from kd_traffic_light.core.backends.tensorrt_backend import TensorRtRuntime as cls
        else:
            raise BackendError(f"'{path}': no exported-model runtime for kind '{kind}'")
    except ImportError as exc:
        raise BackendError(f"'{path}' needs the '{exc.name}' package, which is not installed here") from exc
    try:
        return cls(path, device=device, half=half, threads=threads)
    except ImportError as exc:
        raise BackendError(f"'{path}' needs the '{exc.name}' package, which is not installed here") from exc


__all__ = ["BackendError", "Runtime", "model_kind", "open_runtime"]
