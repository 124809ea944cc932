"""Parity: the lean pipeline (no torch) against ultralytics' predict on the same exported model and frames.

A YOLOv5n student is trained on a tiny synthetic dataset (60 short epochs at 64 px, about 25 s on 2 cores,
enough for confident boxes), exported to ONNX (static and
dynamic shapes) and OpenVINO; on every frame both must find the same classes, boxes within 1 px, scores
within 1e-3. Needs ultralytics (the full venv); skipped in the runtime-only venv.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("ultralytics")
pytestmark = pytest.mark.slow

from kd_traffic_light.core.config import DetectorConfig  # noqa: E402
from kd_traffic_light.core.detector import TrafficLightDetector  # noqa: E402

IMGSZ = 64
CONF = 0.01


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A trained YOLOv5n (2 classes, 64 px), its val images and exports: {'pt', 'onnx', 'onnx_dynamic', ...}."""
    from ultralytics import YOLO

    from test.model_factory import write_tiny_yolo_dataset

    root = tmp_path_factory.mktemp("parity")
    data = write_tiny_yolo_dataset(root / "data", n_train=16, n_val=4, size=IMGSZ)
    model = YOLO("yolov5n.yaml", task="detect")
    model.train(data=str(data), epochs=60, imgsz=IMGSZ, batch=4, workers=0, device="cpu", plots=False, val=False,
                amp=False, project=str(root / "runs"), name="train", exist_ok=True, verbose=False, seed=0,
                mosaic=0.0, optimizer="AdamW", lr0=0.003, warmup_epochs=1)
    pt = root / "student.pt"
    shutil.copy(model.trainer.last, pt)
    out = {"pt": pt, "images": sorted((root / "data" / "images" / "val").glob("*.png"))}
    onnx = YOLO(str(pt)).export(format="onnx", imgsz=IMGSZ, dynamic=True)
    out["onnx_dynamic"] = shutil.move(onnx, root / "student_dynamic.onnx")
    out["onnx"] = YOLO(str(pt)).export(format="onnx", imgsz=IMGSZ)
    out["openvino"] = YOLO(str(pt)).export(format="openvino", imgsz=IMGSZ)
    return out


def frames(images) -> list[np.ndarray]:
    """The val images as they are, side by side (2:1), stacked (1:2), upscaled and an odd size."""
    import cv2

    ims = [cv2.imread(str(p)) for p in images]
    return [*ims, np.hstack(ims[:2]), np.vstack(ims[2:4]), cv2.resize(ims[1], (150, 150)),
            cv2.resize(np.hstack(ims[1:4]), (250, 70))]


def reference(path, frame, agnostic: bool):
    from ultralytics import YOLO

    r = YOLO(str(path), task="detect").predict(frame, imgsz=IMGSZ, conf=CONF, iou=0.45, max_det=100,
                                               agnostic_nms=agnostic, verbose=False)[0]
    b = r.boxes
    return b.xyxy.numpy(), b.conf.numpy(), b.cls.numpy().astype(int)


@pytest.mark.parametrize("agnostic", [True, False])
@pytest.mark.parametrize("kind", ["onnx", "onnx_dynamic", "openvino"])
def test_lean_backend_matches_ultralytics_predict(trained, kind, agnostic):
    det = TrafficLightDetector(DetectorConfig(model=str(trained[kind]), imgsz=IMGSZ, conf=CONF, iou=0.45,
                                              agnostic_nms=agnostic))
    assert det.backend in ("onnxruntime", "openvino")
    assert det.names == {0: "relevant", 1: "not_relevant"}
    total = 0
    for frame in frames(trained["images"]):
        xyxy, conf, cls = reference(trained[kind], frame, agnostic)
        got = det.predict_boxes(frame)
        order = np.argsort(-conf, kind="stable")
        assert len(got) == len(conf), f"{kind} on {frame.shape}: {len(got)} boxes vs ultralytics {len(conf)}"
        np.testing.assert_array_equal(got.classes, cls[order])
        np.testing.assert_allclose(got.xyxy, xyxy[order], atol=1.0)
        np.testing.assert_allclose(got.scores, conf[order], atol=1e-3)
        total += int((conf > 0.5).sum())
    assert total >= 3, "the trained model found (almost) nothing confidently: the comparison would be empty"


def test_pt_backend_agrees_with_its_onnx_export(trained):
    """The .pt path (ultralytics) and the lean ONNX path give the same detections on a square frame."""
    frame = frames(trained["images"])[0]
    pt = TrafficLightDetector(DetectorConfig(model=str(trained["pt"]), imgsz=IMGSZ, conf=CONF))
    lean = TrafficLightDetector(DetectorConfig(model=str(trained["onnx"]), imgsz=IMGSZ, conf=CONF))
    a, b = pt.predict_boxes(frame), lean.predict_boxes(frame)
    assert len(a) == len(b)
    np.testing.assert_array_equal(a.classes, b.classes)
    np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1.0)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-3)
