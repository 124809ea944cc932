"""TensorRT: ``.engine`` files (an ultralytics export: JSON metadata header + serialized engine) on a CUDA GPU.

Needs the ``tensorrt`` package (10.x API: named I/O tensors, ``execute_async_v3``) and ``cuda-python`` for
device memory; neither torch nor ultralytics. An engine only runs on the GPU model and TensorRT version it
was built with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kd_traffic_light.core.backends.base import BackendError, Runtime, cuda_index
from kd_traffic_light.core.model_meta import read_engine_header


def _cudart():
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart  # cuda-python < 12.6
        except ImportError as exc:
            raise BackendError("TensorRT engines need the 'cuda-python' package (pip install cuda-python)") from exc
    return cudart


def _check(result):
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise BackendError(f"CUDA runtime error {err}")
    return values[0] if len(values) == 1 else values


class TensorRtRuntime(Runtime):
    """A deserialized TensorRT engine with device buffers for its input and outputs."""

    name = "tensorrt"

    def __init__(self, path: Path, device: str = "cuda:0", half: bool = False, threads: int = 0) -> None:
        super().__init__()
        try:
            import tensorrt as trt
        except ImportError as exc:
            raise BackendError(f"'{path}' is a TensorRT engine but the 'tensorrt' package is not installed") from exc
        self.cudart = cudart = _cudart()
        index = cuda_index(device)
        if index is None:
            self.warnings.append(f"device '{device}': TensorRT engines run on CUDA only; using 'cuda:0'")
            index = 0
        _check(cudart.cudaSetDevice(index))
        offset, self.metadata = read_engine_header(Path(path))
        with open(path, "rb") as f:
            f.seek(offset)
            blob = f.read()
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(blob)
        if self.engine is None or not hasattr(self.engine, "num_io_tensors"):
            raise BackendError(f"TensorRT {trt.__version__} cannot deserialize '{path}' (built with another "
                               "version or GPU, or not a TensorRT 10 engine)")
        self.context = self.engine.create_execution_context()
        self.stream = _check(cudart.cudaStreamCreate())
        self.buffers: dict[str, tuple[int, np.ndarray]] = {}
        self.input_name = self.output_name = None
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            shape = tuple(self.engine.get_tensor_shape(name))
            if is_input:
                if -1 in shape:  # dynamic: run at the profile's optimum shape
                    shape = tuple(self.engine.get_tensor_profile_shape(name, 0)[1])
                    self.context.set_input_shape(name, shape)
                self.input_name, self.input_dtype = name, dtype.type
                self.input_hw = (int(shape[2]), int(shape[3]))
            else:
                shape = tuple(self.context.get_tensor_shape(name))
                self.output_name = self.output_name or name
            host = np.empty(shape, dtype=dtype)
            ptr = _check(cudart.cudaMalloc(host.nbytes))
            self.context.set_tensor_address(name, ptr)
            self.buffers[name] = (ptr, host)
        self.device = f"cuda:{index} (TensorRT {trt.__version__})"

    def run(self, blob: np.ndarray) -> np.ndarray:
        """Copy the blob in, execute, copy the first output back."""
        cudart = self.cudart
        ptr_in, host_in = self.buffers[self.input_name]
        if blob.shape != host_in.shape:
            raise BackendError(f"engine input is {host_in.shape}, got a blob of {blob.shape}")
        blob = np.ascontiguousarray(blob, dtype=host_in.dtype)
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        _check(cudart.cudaMemcpyAsync(ptr_in, blob.ctypes.data, blob.nbytes, h2d, self.stream))
        if not self.context.execute_async_v3(self.stream):
            raise BackendError("TensorRT execution failed")
        ptr_out, host_out = self.buffers[self.output_name]
        _check(cudart.cudaMemcpyAsync(host_out.ctypes.data, ptr_out, host_out.nbytes, d2h, self.stream))
        _check(cudart.cudaStreamSynchronize(self.stream))
        return host_out.copy()

    def __del__(self) -> None:
        for ptr, _ in getattr(self, "buffers", {}).values():
            self.cudart.cudaFree(ptr)
