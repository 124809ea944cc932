"""ONNX Runtime: ``.onnx`` exports on the CPU, CUDA or TensorRT execution providers (whichever are present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kd_traffic_light.core.backends.base import BackendError, Runtime, cuda_index, static_hw
from kd_traffic_light.core.model_meta import parse_metadata


def choose_providers(device: str, half: bool, available: list[str]) -> tuple[list, list[str]]:
    """Choose the execution providers for ``device`` among ``available``; warn about what is missing.

    ``cuda[:N]`` prefers TensorRT, then CUDA, each with the CPU as fallback; ``cpu`` uses the CPU only.
    ``half`` turns on the TensorRT provider's FP16 mode (other providers run the model's own precision).
    """
    index = cuda_index(device)
    warnings = []
    if index is None:
        return ["CPUExecutionProvider"], warnings
    providers: list = []
    if "TensorrtExecutionProvider" in available:
        providers.append(("TensorrtExecutionProvider", {"device_id": index, "trt_fp16_enable": bool(half)}))
    if "CUDAExecutionProvider" in available:
        providers.append(("CUDAExecutionProvider", {"device_id": index}))
    if not providers:
        warnings.append(f"device '{device}' requested but ONNX Runtime here has no CUDA or TensorRT execution "
                        f"provider (available: {available}); falling back to 'cpu'")
    return [*providers, "CPUExecutionProvider"], warnings


class OnnxRuntime(Runtime):
    """An ``.onnx`` model in an ``onnxruntime.InferenceSession``."""

    name = "onnxruntime"

    def __init__(self, path: Path, device: str = "cpu", half: bool = False, threads: int = 0) -> None:
        super().__init__()
        import onnxruntime as ort

        providers, self.warnings = choose_providers(device, half, ort.get_available_providers())
        options = ort.SessionOptions()
        # ONNX Runtime's pool threads spin between operators by default; in a node they would take the CPU
        # from the transport threads receiving the next frames (measured on 2 cores: fewer frames/s)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads > 0:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises several kinds for bad files
            raise BackendError(f"ONNX Runtime cannot load '{path}': {type(exc).__name__}: {exc}") from exc
        used = self.session.get_providers()
        self.device = "cpu" if used[0] == "CPUExecutionProvider" else f"cuda:{cuda_index(device)} ({used[0]})"
        if cuda_index(device) is not None and used[0] == "CPUExecutionProvider" and not self.warnings:
            self.warnings.append(f"device '{device}' requested but ONNX Runtime could not start a GPU provider; "
                                 "running on 'cpu'")
        self.metadata = parse_metadata(self.session.get_modelmeta().custom_metadata_map)
        inp = self.session.get_inputs()[0]
        if len(inp.shape) != 4:
            raise BackendError(f"'{path}' has input '{inp.name}' of shape {inp.shape}; expected (1, 3, H, W)")
        self.input_name = inp.name
        self.input_hw = static_hw(inp.shape)
        self.input_dtype = np.float16 if "float16" in inp.type else np.float32
        self.output_name = self.session.get_outputs()[0].name

    def run(self, blob: np.ndarray) -> np.ndarray:
        """Run the session on one blob; returns the first output."""
        return self.session.run([self.output_name], {self.input_name: blob})[0]
