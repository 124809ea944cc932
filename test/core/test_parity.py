"""Parity: the lean pipeline (no torch) against ultralytics' predict on the same exported model and frames.

A YOLOv5n student is trained on a tiny synthetic dataset (60 short epochs at 64 px, about 25 s on 2 cores),
exported to ONNX (static and dynamic shapes) and OpenVINO; on every frame both must find the same classes, boxes
within 1 px, scores within 1e-3. How confident the trained model is depends on the trajectory training took
(another CPU, another seed: test/seeds.py), so each model's threshold is derived from its own scores
(:func:`derived_conf`): at least ``MIN_BOXES`` boxes are compared whatever the model learnt. Needs ultralytics
(the full venv); not collected in the runtime-only venv.
"""

from __future__ import annotations

import functools
import shutil

import numpy as np
import pytest

pytest.importorskip("ultralytics")
pytestmark = pytest.mark.slow

from kd_traffic_light.core.config import DetectorConfig  # noqa: E402
from kd_traffic_light.core.detector import TrafficLightDetector  # noqa: E402
from test.seeds import seed  # noqa: E402

IMGSZ = 64
MIN_BOXES = 8  # boxes above the derived threshold over all frames, with NMS across classes
FLOOR = 1e-4  # below any score an untrained head gives (its class bias starts near sigmoid(-7.9) = 4e-4)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A trained YOLOv5n (2 classes, 64 px), its val images and exports: {'pt', 'onnx', 'onnx_dynamic', ...}."""
    from ultralytics import YOLO

    from test.model_factory import write_tiny_yolo_dataset

    root = tmp_path_factory.mktemp("parity")
    data = write_tiny_yolo_dataset(root / "data", n_train=16, n_val=4, size=IMGSZ)
    model = YOLO("yolov5n.yaml", task="detect")
    model.train(data=str(data), epochs=60, imgsz=IMGSZ, batch=4, workers=0, device="cpu", plots=False, val=False,
                amp=False, project=str(root / "runs"), name="train", exist_ok=True, verbose=False, seed=seed(0),
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


def reference(path, frame, agnostic: bool, conf: float):
    from ultralytics import YOLO

    r = YOLO(str(path), task="detect").predict(frame, imgsz=IMGSZ, conf=conf, iou=0.45, max_det=100,
                                               agnostic_nms=agnostic, verbose=False)[0]
    b = r.boxes
    return b.xyxy.numpy(), b.conf.numpy(), b.cls.numpy().astype(int)


@functools.cache
def derived_conf(path: str, images: tuple, agnostic: bool = True) -> float:
    """A threshold from the model's own scores over the frames (NMS as compared), ``MIN_BOXES`` boxes above it.

    It sits in the widest gap (by ratio) between consecutive scores ranked ``MIN_BOXES`` to ``2 * MIN_BOXES``, at
    their geometric mean, so no compared box lies near it, where float rounding between two runtimes could keep
    a box on one side and drop it on the other.
    """
    scores = np.concatenate([reference(path, f, agnostic, FLOOR)[1] for f in frames(images)])
    scores = np.sort(scores)[::-1]
    assert len(scores) > 2 * MIN_BOXES, (f"{path} scores only {len(scores)} boxes above {FLOOR} on "
                                         f"{len(frames(images))} frames; expected more than {2 * MIN_BOXES}")
    ranks = np.arange(MIN_BOXES, 2 * MIN_BOXES + 1)  # 0-based index of the first box below the threshold
    i = ranks[np.argmax(scores[ranks - 1] / scores[ranks])]
    return float(np.sqrt(scores[i - 1] * scores[i]))


@pytest.mark.parametrize("agnostic", [True, False])
@pytest.mark.parametrize("kind", ["onnx", "onnx_dynamic", "openvino"])
def test_lean_backend_matches_ultralytics_predict(trained, kind, agnostic):
    conf = derived_conf(str(trained[kind]), tuple(trained["images"]), agnostic)
    det = TrafficLightDetector(DetectorConfig(model=str(trained[kind]), imgsz=IMGSZ, conf=conf, iou=0.45,
                                              agnostic_nms=agnostic))
    assert det.backend in ("onnxruntime", "openvino")
    assert det.names == {0: "relevant", 1: "not_relevant"}
    total = 0
    for frame in frames(trained["images"]):
        xyxy, scores, cls = reference(trained[kind], frame, agnostic, conf)
        got = det.predict_boxes(frame)
        order = np.argsort(-scores, kind="stable")
        assert len(got) == len(scores), f"{kind} on {frame.shape}: {len(got)} boxes vs ultralytics {len(scores)}"
        np.testing.assert_array_equal(got.classes, cls[order])
        np.testing.assert_allclose(got.xyxy, xyxy[order], atol=1.0)
        np.testing.assert_allclose(got.scores, scores[order], atol=1e-3)
        total += len(got)
    assert total >= MIN_BOXES, f"{total} boxes compared at conf {conf:.3g}; the threshold promised {MIN_BOXES}"


def test_pt_backend_agrees_with_its_onnx_export(trained):
    """The .pt path (ultralytics) and the lean ONNX path give the same detections on every frame."""
    conf = derived_conf(str(trained["pt"]), tuple(trained["images"]))
    pt = TrafficLightDetector(DetectorConfig(model=str(trained["pt"]), imgsz=IMGSZ, conf=conf))
    lean = TrafficLightDetector(DetectorConfig(model=str(trained["onnx"]), imgsz=IMGSZ, conf=conf))
    pairs = [(pt.predict_boxes(f), lean.predict_boxes(f)) for f in frames(trained["images"])]
    assert sum(len(a) for a, _ in pairs) >= MIN_BOXES
    for a, b in pairs:
        assert len(a) == len(b)
        np.testing.assert_array_equal(a.classes, b.classes)
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1.0)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-3)


def test_lean_state_output_equals_ultralytics_on_the_same_export(tmp_path):
    """A relevance_state export (10 classes): the lean runtime's classes, names and boxes are ultralytics'.

    The model's output is constructed (a constant ONNX), so what is compared does not depend on any training:
    lights of every state, two of them overlapping with different states, where class-agnostic NMS must keep the
    higher-scoring state as ultralytics does.
    """
    import cv2
    from ultralytics import YOLO

    from kd_traffic_light.core.classes import class_names, split_label
    from test.core.lean_models import make_constant_onnx

    names = class_names("relevance_state")
    boxes = [(320, 320, 20, 40, 0, 0.9), (100, 250, 10, 20, 2, 0.8), (500, 300, 12, 30, 3, 0.7),
             (200, 400, 16, 36, 6, 0.6), (450, 150, 14, 30, 9, 0.5), (322, 322, 20, 40, 3, 0.55)]
    path = make_constant_onnx(tmp_path / "state.onnx", boxes, imgsz=640, nc=10, names=names)
    frame = cv2.resize(np.full((64, 64, 3), 90, np.uint8), (1280, 640))
    for agnostic in (True, False):
        det = TrafficLightDetector(DetectorConfig(model=str(path), imgsz=640, conf=0.25, iou=0.45,
                                                  agnostic_nms=agnostic))
        assert det.names == names
        r = YOLO(str(path), task="detect").predict(frame, imgsz=640, conf=0.25, iou=0.45, agnostic_nms=agnostic,
                                                   verbose=False)[0]
        got = det.predict(frame)
        want = sorted(zip(r.boxes.conf.numpy().tolist(), r.boxes.cls.numpy().astype(int).tolist(),
                          r.boxes.xyxy.numpy().tolist()), reverse=True)
        assert [(d.class_id, d.label) for d in got] == [(c, names[c]) for _, c, _ in want]
        np.testing.assert_allclose([d.xyxy for d in got], [b for _, _, b in want], atol=1.0)
        np.testing.assert_allclose([d.score for d in got], [s for s, _, _ in want], atol=1e-3)
        states = [split_label(d.label)[1] for d in got]
        # agnostic: the green duplicate of the red light is suppressed; class-aware NMS keeps both
        assert states.count("green") == (1 if agnostic else 2) and "red_yellow" in states and "off" in states


@pytest.mark.parametrize("nms", [None, False])
def test_lean_yolo26_export_matches_ultralytics_predict(tmp_path, nms):
    """A YOLO26n export through the lean runtime, as ultralytics 8.4 writes it: by default the one-to-many raw
    output (then NMS), with ``nms=False`` the end-to-end one (top boxes of the one-to-one branch, no NMS).

    The model is constructed (untrained, its class branches perturbed from the suite's seed so that scores do not
    tie), so the compared boxes do not depend on any training; the threshold is derived from its own scores as
    for the trained model.
    """
    import torch
    from ultralytics import YOLO

    from test.model_factory import make_untrained_pt, write_tiny_yolo_dataset

    pt = make_untrained_pt(tmp_path / "yolo26n.pt", cfg="yolo26n.yaml")
    ckpt = torch.load(pt, weights_only=False)
    with torch.random.fork_rng(), torch.no_grad():  # spread the untrained scores: no ties at the threshold
        torch.manual_seed(seed(0))
        head = ckpt["model"].model[-1]
        for branch in (head.cv3, head.one2one_cv3):
            for p in branch.parameters():
                p.add_(torch.randn_like(p) * 0.3)
    torch.save(ckpt, pt)
    onnx = YOLO(str(pt)).export(format="onnx", imgsz=IMGSZ, **({} if nms is None else {"nms": nms}))
    images = tuple(sorted((write_tiny_yolo_dataset(tmp_path / "data", n_train=1, n_val=4, size=IMGSZ).parent
                           / "images" / "val").glob("*.png")))
    conf = derived_conf(str(onnx), images)
    det = TrafficLightDetector(DetectorConfig(model=str(onnx), imgsz=IMGSZ, conf=conf, iou=0.45))
    assert det.backend == "onnxruntime" and det.model.end2end == (nms is False)
    total = 0
    for frame in frames(images):
        xyxy, scores, cls = reference(onnx, frame, True, conf)
        got = det.predict_boxes(frame)
        order = np.argsort(-scores, kind="stable")
        assert len(got) == len(scores)
        np.testing.assert_array_equal(got.classes, cls[order])
        np.testing.assert_allclose(got.xyxy, xyxy[order], atol=1.0)
        np.testing.assert_allclose(got.scores, scores[order], atol=1e-3)
        total += len(got)
    assert total >= MIN_BOXES
