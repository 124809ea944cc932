"""Torch-free model builders for the runtime tests (they run in the runtime-only venv too).

* :func:`make_constant_onnx` writes a real ONNX model (built with ``onnx.helper``) whose output is a known
  constant in ultralytics' raw layout ``(1, 4 + nc, A)`` (xywh in network pixels, class scores), with the
  metadata ultralytics' exporter writes (names, imgsz, stride, args).
* :func:`make_openvino_dir` converts such an ONNX file into an ``*_openvino_model`` directory with its
  ``metadata.yaml`` sidecar, as ultralytics lays it out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kd_traffic_light.core.types import CLASS_NAMES

BOXES = [(320, 320, 20, 40, 0, 0.9), (100, 250, 10, 20, 1, 0.8)]  # cx, cy, w, h (input px), class, score


def constant_output(boxes, nc: int = 2, anchors: int = 8, end2end: bool = False) -> np.ndarray:
    """The raw ``(1, 4 + nc, A)`` output holding ``boxes``, or end-to-end ``(1, A, 6)`` rows."""
    if end2end:
        out = np.zeros((1, anchors, 6), np.float32)
        for i, (cx, cy, w, h, cls, score) in enumerate(boxes):
            out[0, i] = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score, cls)
        return out
    out = np.zeros((1, 4 + nc, max(anchors, len(boxes))), np.float32)
    for i, (cx, cy, w, h, cls, score) in enumerate(boxes):
        out[0, :4, i] = (cx, cy, w, h)
        out[0, 4 + cls, i] = score
    return out


def metadata(imgsz: int, names=None, dynamic: bool = False, nms: bool = False) -> dict[str, str]:
    """Export metadata entries as ultralytics writes them (Python literals in strings)."""
    return {"task": "detect", "stride": "32", "batch": "1", "imgsz": str([imgsz, imgsz]),
            "names": str(names or CLASS_NAMES), "end2end": str(nms),
            "args": str({"batch": 1, "dynamic": dynamic, "half": False, "nms": nms}),
            "description": "constant test model", "author": "kd_traffic_light tests"}


def make_constant_onnx(path: Path, boxes=BOXES, imgsz: int = 640, nc: int = 2, names=None, dynamic: bool = False,
                       end2end: bool = False, with_metadata: bool = True) -> Path:
    """Write an ONNX model whose output is ``boxes`` whatever the input (``output = C + 0 * mean(input)``)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    const = constant_output(boxes, nc, end2end=end2end)
    dims = [1, 3, "h", "w"] if dynamic else [1, 3, imgsz, imgsz]
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
         helper.make_node("Mul", ["m", "zero"], ["z"]),
         helper.make_node("Add", ["const", "z"], ["output0"])],
        "constant",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(const.shape))],
        initializer=[numpy_helper.from_array(const, "const"),
                     numpy_helper.from_array(np.zeros((), np.float32), "zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if with_metadata:
        for k, v in metadata(imgsz, names, dynamic, end2end).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = k, v
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def make_openvino_dir(onnx_path: Path, out_dir: Path, meta: dict | None = None) -> Path:
    """Convert ``onnx_path`` to ``out_dir`` (``<stem>.xml`` + ``.bin``) and write ``metadata.yaml``."""
    import openvino as ov
    import yaml

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.convert_model(str(onnx_path)), str(out_dir / f"{Path(onnx_path).stem}.xml"),
                  compress_to_fp16=False)
    if meta is not None:
        (out_dir / "metadata.yaml").write_text(yaml.safe_dump(meta))
    return out_dir


#: The colour classifier's weights: rows R, G, B of the crop's mean colour; columns the states in STATES order
#: (red, yellow, red_yellow, green, off). A red crop reads red, a green one green, a black one off.
COLOUR_WEIGHTS = np.array([[10, 0, 0, -10, -10], [-10, 0, 0, 10, -10], [0, 0, 0, 0, -10]], np.float32)
COLOUR_BIAS = np.array([0, 0, 0, 0, 1], np.float32)


def make_colour_state_onnx(path: Path, crop_hw=(32, 16), margin: float = 0.15, states=None,
                           with_metadata: bool = True, upright: bool = False) -> Path:
    """Write a state classifier (ONNX, built without torch) whose logits are a linear map of the crop's mean RGB.

    ``upright``: its metadata says horizontal heads are turned upright before reading.
    """
    import json

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from kd_traffic_light.core.classes import STATES

    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["crops"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["rgb"]),
         helper.make_node("MatMul", ["rgb", "w"], ["wx"]),
         helper.make_node("Add", ["wx", "b"], ["logits"])],
        "colour_state",
        [helper.make_tensor_value_info("crops", TensorProto.FLOAT, ["n", 3, *crop_hw])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 5])],
        initializer=[numpy_helper.from_array(COLOUR_WEIGHTS, "w"), numpy_helper.from_array(COLOUR_BIAS, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if with_metadata:
        meta = [("kd_states", json.dumps(list(states or STATES))), ("kd_crop_hw", json.dumps(list(crop_hw))),
                ("kd_crop_margin", repr(float(margin)))] + ([("kd_crop_upright", "1")] if upright else [])
        for key, value in meta:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)
