"""OpenVINO: ``*_openvino_model/`` directories (``.xml`` + ``.bin`` + ``metadata.yaml``) on Intel CPUs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kd_traffic_light.core.backends.base import BackendError, Runtime, cuda_index
from kd_traffic_light.core.model_meta import read_sidecar


def find_xml(path: Path) -> Path:
    """Return the ``.xml`` of an OpenVINO export given its directory or the file itself."""
    if path.is_file():
        return path
    xmls = sorted(path.glob("*.xml"))
    if not xmls:
        raise BackendError(f"OpenVINO model directory '{path}' holds no .xml file (expected <name>.xml + .bin)")
    return xmls[0]


class OpenVinoRuntime(Runtime):
    """An OpenVINO IR compiled for the CPU in latency mode (as ultralytics compiles it)."""

    name = "openvino"

    def __init__(self, path: Path, device: str = "cpu", half: bool = False, threads: int = 0) -> None:
        super().__init__()
        import openvino as ov

        xml = find_xml(Path(path))
        if cuda_index(device) is not None:
            self.warnings.append(f"device '{device}': OpenVINO runs on Intel devices only; using its CPU device")
        if half:
            self.warnings.append("half: OpenVINO runs the precision the model was exported in; ignored")
        core = ov.Core()
        try:
            model = core.read_model(model=str(xml), weights=str(xml.with_suffix(".bin")))
            self.compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                           **({"INFERENCE_NUM_THREADS": threads} if threads else {})})
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long messages
            raise BackendError(f"OpenVINO cannot load '{xml}': {type(exc).__name__}: {exc}") from exc
        self.request = self.compiled.create_infer_request()
        self.device = "cpu (OpenVINO CPU)"
        self.metadata = read_sidecar(xml.parent)
        shape = model.input().get_partial_shape()
        if shape.rank.get_length() != 4:
            raise BackendError(f"'{xml}' has an input of shape {shape}; expected (1, 3, H, W)")
        if shape.is_static:
            dims = [d.get_length() for d in shape]
            self.input_hw = (int(dims[2]), int(dims[3]))
        self.input_dtype = np.float16 if model.input().get_element_type() == ov.Type.f16 else np.float32

    def run(self, blob: np.ndarray) -> np.ndarray:
        """Infer one blob; returns the first output (a copy, the request reuses its buffers)."""
        self.request.infer({0: blob})
        return np.array(self.request.get_output_tensor(0).data, copy=True)
