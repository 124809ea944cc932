import numpy as np
import pytest

from kd_traffic_light.core.config import DetectorConfig
from kd_traffic_light.core.detector import ModelLoadError, TrafficLightDetector, check_model_path


def test_constant_model_boxes_come_back_in_original_pixels(constant_onnx):
    path, expected = constant_onnx
    det = TrafficLightDetector(DetectorConfig(model=str(path), imgsz=640))
    assert det.backend == "onnxruntime" and det.device == "cpu"
    dets = det.predict(np.zeros((1024, 2048, 3), np.uint8))
    got = [(d.x1, d.y1, d.x2, d.y2, d.class_id) for d in dets]
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g == pytest.approx(e, abs=1e-3)
    assert [d.label for d in dets] == ["relevant", "not_relevant"]
    assert dets[0].score == pytest.approx(0.9, abs=1e-6)
    assert det.names == {0: "relevant", 1: "not_relevant"}


def test_conf_threshold_filters(constant_onnx):
    path, _ = constant_onnx
    det = TrafficLightDetector(DetectorConfig(model=str(path), imgsz=640, conf=0.85))
    assert [d.class_id for d in det.predict(np.zeros((1024, 2048, 3), np.uint8))] == [0]


@pytest.mark.training
def test_untrained_pt_loads_and_predicts(request):
    untrained_pt = request.getfixturevalue("untrained_pt")
    det = TrafficLightDetector(DetectorConfig(model=str(untrained_pt), imgsz=64, conf=0.0, max_det=5))
    assert det.backend == "ultralytics"
    dets = det.predict(np.zeros((128, 256, 3), np.uint8))
    assert len(dets) <= 5
    assert all(0 <= d.x1 <= d.x2 <= 256 and 0 <= d.y1 <= d.y2 <= 128 for d in dets)
    assert det.names == {0: "relevant", 1: "not_relevant"}


def test_missing_model_names_the_path(tmp_path):
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ModelLoadError, match="nope.onnx"):
        TrafficLightDetector(DetectorConfig(model=str(missing)))


def test_unreadable_model_names_the_path(tmp_path):
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(ModelLoadError, match="garbage.onnx"):
        TrafficLightDetector(DetectorConfig(model=str(bad)))


def test_unsupported_suffix_is_refused(tmp_path):
    odd = tmp_path / "model.h5"
    odd.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="not a supported model"):
        TrafficLightDetector(DetectorConfig(model=str(odd)))


def test_openvino_dir_without_xml_names_the_dir(tmp_path):
    empty = tmp_path / "student_openvino_model"
    empty.mkdir()
    assert check_model_path(str(empty)) == empty
    with pytest.raises(ModelLoadError, match="student_openvino_model.*no .xml"):
        TrafficLightDetector(DetectorConfig(model=str(empty)))


def test_engine_without_tensorrt_or_gpu_fails_naming_the_file(tmp_path):
    engine = tmp_path / "student.engine"
    engine.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="student.engine"):
        TrafficLightDetector(DetectorConfig(model=str(engine), device="cuda:0"))


def test_predict_rejects_non_bgr(constant_onnx):
    det = TrafficLightDetector(DetectorConfig(model=str(constant_onnx[0])))
    with pytest.raises(ValueError, match="BGR uint8"):
        det.predict(np.zeros((10, 10), np.uint8))


def test_cuda_request_on_onnx_falls_back_to_cpu_with_a_warning(constant_onnx):
    import onnxruntime as ort

    det = TrafficLightDetector(DetectorConfig(model=str(constant_onnx[0]), device="cuda:0"))
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert det.device.startswith("cuda:0")
    else:
        assert det.device == "cpu" and "falling back to 'cpu'" in det.device_warning
    assert len(det.predict(np.zeros((64, 128, 3), np.uint8))) == 2


@pytest.mark.training
def test_cuda_request_on_pt_falls_back_to_cpu_with_a_warning():
    import torch

    from kd_traffic_light.core.backends.ultralytics_backend import resolve_torch_device

    device, half, warnings = resolve_torch_device("cuda:0", half=True)
    if torch.cuda.is_available():
        assert device == "cuda:0" and half and not warnings
    else:
        assert device == "cpu" and not half and "falling back" in warnings[0]
