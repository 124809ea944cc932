"""Letterbox, decode, NMS, metadata and runtimes of the lean pipeline, without torch."""

from __future__ import annotations

import numpy as np
import pytest

from kd_traffic_light.core.config import DetectorConfig
from kd_traffic_light.core.detector import TrafficLightDetector
from kd_traffic_light.core.letterbox import LetterboxInfo, input_shape, letterbox, scale_boxes, to_blob
from kd_traffic_light.core.model_meta import parse_metadata, read_engine_header
from kd_traffic_light.core.postprocess import decode, nms
from kd_traffic_light.core.types import CLASS_NAMES
from test.core.lean_models import BOXES, make_constant_onnx, make_openvino_dir, metadata


@pytest.mark.parametrize(("hw", "out", "pad"), [((1024, 2048), (640, 640), (0, 160)), ((100, 50), (64, 64), (16, 0)),
                                                ((64, 64), (64, 64), (0, 0)), ((70, 250), (64, 64), (0, 23))])
def test_letterbox_places_the_frame_centred(hw, out, pad):
    img, info = letterbox(np.full((*hw, 3), 200, np.uint8), out)
    assert img.shape == (*out, 3) and info.pad == pad and info.input_hw == out
    assert img[pad[1] + 1, pad[0] + 1, 0] == 200
    if pad[1]:
        assert img[0, 0, 0] == 114


@pytest.mark.training
def test_letterbox_equals_ultralytics():
    from ultralytics.data import augment
    rng = np.random.default_rng(0)
    for hw, auto in [((1024, 2048), False), ((1024, 2048), True), ((77, 301), False), ((301, 77), True)]:
        frame = rng.integers(0, 255, (*hw, 3), dtype=np.uint8)
        ref = augment.LetterBox((320, 320), auto=auto, stride=32)(image=frame)
        img, _ = letterbox(frame, input_shape(hw, (320, 320), auto=auto))
        np.testing.assert_array_equal(img, ref)


def test_input_shape_auto_is_the_smallest_stride_multiple():
    assert input_shape((1024, 2048), (320, 320), auto=True) == (160, 320)
    assert input_shape((1024, 2048), (320, 320), auto=False) == (320, 320)
    assert input_shape((77, 301), (320, 320), auto=True) == (96, 320)


def test_blob_is_rgb_chw_in_unit_range():
    img = np.zeros((2, 3, 3), np.uint8)
    img[..., 0] = 255  # blue
    blob = to_blob(img)
    assert blob.shape == (1, 3, 2, 3) and blob.dtype == np.float32
    assert blob[0, 2].max() == 1.0 and blob[0, 0].max() == 0.0
    assert to_blob(img, np.float16).dtype == np.float16


def test_scale_boxes_undoes_the_letterbox_and_clips():
    info = LetterboxInfo(frame_hw=(1024, 2048), input_hw=(640, 640), gain=(0.3125, 0.3125), pad=(0, 160))
    boxes = np.array([[310, 300, 330, 340], [-5, 150, 700, 900]], np.float32)
    scale_boxes(boxes, info)
    np.testing.assert_allclose(boxes, [[992, 448, 1056, 576], [0, 0, 2048, 1024]])


def _nms_reference(xyxy, scores, thr):
    """Greedy NMS written out (torchvision semantics: suppress IoU > thr)."""
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        rest = []
        for j in order:
            ix1, iy1 = max(xyxy[i, 0], xyxy[j, 0]), max(xyxy[i, 1], xyxy[j, 1])
            ix2, iy2 = min(xyxy[i, 2], xyxy[j, 2]), min(xyxy[i, 3], xyxy[j, 3])
            inter = max(0.0, ix2 - ix1) * max(0.0, iy2 - iy1)
            area = lambda k: (xyxy[k, 2] - xyxy[k, 0]) * (xyxy[k, 3] - xyxy[k, 1])  # noqa: E731
            if inter / (area(i) + area(j) - inter) <= thr:
                rest.append(j)
        order = rest
    return keep


def test_nms_matches_greedy_reference_on_fractional_boxes():
    rng = np.random.default_rng(1)
    for _ in range(20):
        xy = rng.uniform(0, 20, (30, 2))
        xyxy = np.hstack([xy, xy + rng.uniform(0.3, 8, (30, 2))]).astype(np.float32)
        scores = rng.permutation(np.linspace(0.05, 0.95, 30)).astype(np.float32)
        assert list(nms(xyxy, scores, 0.45)) == _nms_reference(xyxy, scores, 0.45)
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).shape == (0,)


def _raw(boxes, nc=2, anchors=8):
    from test.core.lean_models import constant_output

    return constant_output(boxes, nc, anchors)


def test_decode_class_aware_keeps_overlapping_boxes_of_different_classes():
    boxes = [(50, 50, 20, 20, 0, 0.9), (51, 50, 20, 20, 1, 0.8), (52, 50, 20, 20, 0, 0.7)]
    aware = decode(_raw(boxes), conf=0.25, iou=0.45, max_det=10, agnostic=False, end2end=False)
    assert list(aware.classes) == [0, 1] and aware.scores.tolist() == pytest.approx([0.9, 0.8])
    agnostic = decode(_raw(boxes), conf=0.25, iou=0.45, max_det=10, agnostic=True, end2end=False)
    assert list(agnostic.classes) == [0]
    np.testing.assert_allclose(agnostic.xyxy, [[40, 40, 60, 60]])


def test_decode_conf_is_strict_and_max_det_cuts():
    boxes = [(10 + 30 * i, 10, 8, 8, i % 2, 0.3 + 0.1 * i) for i in range(5)]
    out = decode(_raw(boxes), conf=0.3, iou=0.45, max_det=3, agnostic=True, end2end=False)
    assert out.scores.tolist() == pytest.approx([0.7, 0.6, 0.5])
    assert len(decode(_raw(boxes), conf=0.95, iou=0.45, max_det=3, agnostic=True, end2end=False)) == 0


def test_decode_end2end_rows():
    from test.core.lean_models import constant_output

    out = decode(constant_output(BOXES, end2end=True), conf=0.85, iou=0.45, max_det=10, agnostic=True,
                 end2end=True)
    np.testing.assert_allclose(out.xyxy, [[310, 300, 330, 340]])
    assert out.classes.tolist() == [0]


def test_parse_metadata_reads_ultralytics_literals():
    meta = parse_metadata(metadata(320, dynamic=True, nms=True))
    assert meta.names == CLASS_NAMES and meta.imgsz == (320, 320) and meta.stride == 32
    assert meta.dynamic and meta.end2end and not meta.half
    assert parse_metadata({"names": "['a', 'b']", "imgsz": 64}).names == {0: "a", 1: "b"}
    assert parse_metadata({}).names == {}


def test_engine_header_is_read_and_a_headerless_engine_has_none(tmp_path):
    import json

    header = json.dumps({"names": {"0": "relevant"}, "imgsz": [64, 64], "args": {"nms": False}}).encode()
    with_header = tmp_path / "a.engine"
    with_header.write_bytes(len(header).to_bytes(4, "little") + header + b"\x01\x02engine")
    offset, meta = read_engine_header(with_header)
    assert offset == 4 + len(header) and meta.names == {0: "relevant"} and meta.imgsz == (64, 64)
    bare = tmp_path / "b.engine"
    bare.write_bytes(b"\xff\xff\xff\x7fnot json")
    assert read_engine_header(bare)[0] == 0


def test_dynamic_onnx_runs_at_the_smallest_rectangle(tmp_path):
    path = make_constant_onnx(tmp_path / "dyn.onnx", boxes=[(160, 80, 20, 40, 0, 0.9)], imgsz=320, dynamic=True)
    det = TrafficLightDetector(DetectorConfig(model=str(path), imgsz=320))
    assert det.model.input_hw((1024, 2048), 320) == (160, 320)
    (d,) = det.predict(np.zeros((1024, 2048, 3), np.uint8))
    assert d.xyxy == pytest.approx((960, 384, 1088, 640))  # / 0.15625, no padding


def test_end2end_onnx_is_decoded_without_nms(tmp_path):
    path = make_constant_onnx(tmp_path / "e2e.onnx", end2end=True)
    det = TrafficLightDetector(DetectorConfig(model=str(path), imgsz=640))
    got = [(d.x1, d.y1, d.x2, d.y2, d.class_id) for d in det.predict(np.zeros((1024, 2048, 3), np.uint8))]
    assert got == [(992.0, 448.0, 1056.0, 576.0, 0), (304.0, 256.0, 336.0, 320.0, 1)]


def test_onnx_without_metadata_names_classes_by_index(tmp_path):
    path = make_constant_onnx(tmp_path / "bare.onnx", with_metadata=False)
    det = TrafficLightDetector(DetectorConfig(model=str(path), imgsz=640))
    assert [d.label for d in det.predict(np.zeros((64, 64, 3), np.uint8))] == ["class0", "class1"]


def test_openvino_dir_reads_the_sidecar_and_matches_onnx(constant_onnx, tmp_path):
    pytest.importorskip("openvino")
    path, expected = constant_onnx
    ov_dir = make_openvino_dir(path, tmp_path / "constant_openvino_model", metadata(640))
    det = TrafficLightDetector(DetectorConfig(model=str(ov_dir), imgsz=640))
    assert det.backend == "openvino" and det.names == CLASS_NAMES
    got = [(d.x1, d.y1, d.x2, d.y2, d.class_id) for d in det.predict(np.zeros((1024, 2048, 3), np.uint8))]
    for g, e in zip(got, expected, strict=True):
        assert g == pytest.approx(e, abs=1e-3)


def test_static_export_size_wins_over_the_requested_imgsz(constant_onnx):
    det = TrafficLightDetector(DetectorConfig(model=str(constant_onnx[0]), imgsz=320))
    assert det.model.input_hw((1024, 2048), 320) == (640, 640)


def test_threads_reach_the_runtime(constant_onnx, tmp_path):
    """threads: N sets ONNX Runtime's intra-op threads and OpenVINO's INFERENCE_NUM_THREADS; 0 keeps defaults."""
    from kd_traffic_light.core.backends import open_runtime

    path, _ = constant_onnx
    assert open_runtime(path, "onnx", "cpu", False, threads=1).session.get_session_options().intra_op_num_threads == 1
    assert open_runtime(path, "onnx", "cpu", False).session.get_session_options().intra_op_num_threads == 0
    ov_dir = make_openvino_dir(path, tmp_path / "constant_openvino_model", metadata(640))
    ov = open_runtime(ov_dir, "openvino", "cpu", False, threads=1)
    assert int(ov.compiled.get_property("INFERENCE_NUM_THREADS")) == 1
    det = TrafficLightDetector(DetectorConfig(model=str(path), imgsz=640, threads=1))
    assert len(det.predict(np.zeros((1024, 2048, 3), np.uint8))) == len(BOXES)
