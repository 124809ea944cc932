"""Coupled-head YOLOv5u student (training/distill/heads.py): structure, equivalence, pickling, FLOPs, e2e."""

from __future__ import annotations

import copy
import io
import json
import os
import pickletools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from ultralytics.nn.modules.head import Detect
from ultralytics.nn.tasks import DetectionModel

from test.training.heads_fixtures import COUPLED_N
from training.distill import heads


def _model(scale: str = "n", nc: int = 2) -> DetectionModel:
    return DetectionModel(str(heads.MODELS_DIR / f"yolov5{scale}-coupled.yaml"), nc=nc, verbose=False)


def _pickled_globals(obj: object) -> set[str]:
    buf = io.BytesIO()
    torch.save(obj, buf)
    import zipfile

    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        data = zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))
    found, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name in {"SHORT_BINUNICODE", "BINUNICODE", "UNICODE"}:
            strings.append(arg)
        elif op.name == "STACK_GLOBAL":
            found.add(f"{strings[-2]}.{strings[-1]}")
        elif op.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
    return found


@pytest.mark.parametrize("scale", ["n", pytest.param("s", marks=pytest.mark.slow)])
def test_yaml_builds_coupled_head_one_1x1_conv_per_level(scale):
    model = _model(scale)
    head = model.model[-1]
    assert isinstance(head, heads.CoupledDetect) and heads.is_coupled(head)
    assert head.stride.tolist() == [8.0, 16.0, 32.0]
    assert model.stride.tolist() == [8.0, 16.0, 32.0]
    for i in range(head.nl):
        conv = heads.shared_conv(head, i)
        assert conv.out_channels == 4 * head.reg_max + head.nc and conv.kernel_size == (1, 1)
    # the neck is the stock YOLOv5u neck: same input widths as the decoupled model
    stock = DetectionModel(f"yolov5{scale}.yaml", nc=2, verbose=False).model[-1]
    shared = [heads.shared_conv(head, i) for i in range(head.nl)]
    assert [heads._first_conv(s).in_channels for s in stock.cv2] == [c.in_channels for c in shared]


def test_ultralytics_yolo_loads_coupled_yaml_by_scale_name():
    from ultralytics import YOLO

    yolo = YOLO(COUPLED_N)
    assert yolo.task == "detect" and heads.is_coupled(yolo.model.model[-1])
    assert yolo.model.yaml["scale"] == "n"


def test_training_and_inference_outputs_match_detect_contract():
    model = _model()
    x = torch.rand(2, 3, 64, 64)
    model.train()
    out = model(x)
    assert set(out) == {"boxes", "scores", "feats"}
    anchors = 8 * 8 + 4 * 4 + 2 * 2
    assert out["boxes"].shape == (2, 64, anchors) and out["scores"].shape == (2, 2, anchors)
    assert len(out["feats"]) == 3
    model.eval()
    y, raw = model(x)
    assert y.shape == (2, 4 + 2, anchors) and set(raw) == {"boxes", "scores", "feats"}


def test_split_rows_equal_one_shared_conv():
    head = _model().model[-1]
    feats = [torch.rand(1, heads._first_conv(s).in_channels, 4, 4) for s in head.cv2]
    head.train()
    out = head(feats)
    for i, f in enumerate(feats):
        fused = heads.shared_conv(head, i)(f).flatten(2)
        n = f.shape[-1] * f.shape[-2]
        start = sum(g.shape[-1] * g.shape[-2] for g in feats[:i])
        torch.testing.assert_close(fused[:, : 4 * head.reg_max], out["boxes"][..., start : start + n])
        torch.testing.assert_close(fused[:, 4 * head.reg_max :], out["scores"][..., start : start + n])


def test_bias_init_matches_detect_rule():
    head = _model().model[-1]
    for i in range(head.nl):
        assert torch.all(head.cv2[i][0].bias == 2.0)
        expected = torch.log(5 / head.nc / (640 / head.stride[i]) ** 2)
        torch.testing.assert_close(head.cv3[i][0].bias, expected.expand(head.nc))


def test_copies_and_pickles_are_stock_detect_without_training_references():
    model = _model()
    clone = copy.deepcopy(model)
    assert type(clone.model[-1]) is Detect and heads.is_coupled(clone.model[-1])
    assert clone.model[-1].state_dict().keys() == model.model[-1].state_dict().keys()
    names = _pickled_globals(model)
    assert "ultralytics.nn.modules.head.Detect" in names
    assert not [n for n in names if n.startswith("training")], names


def test_v8_detection_loss_backpropagates_into_shared_convs():
    from ultralytics.cfg import get_cfg

    model = _model()
    model.args = get_cfg()
    model.train()
    batch = {
        "img": torch.rand(2, 3, 64, 64),
        "batch_idx": torch.tensor([0.0, 1.0]),
        "cls": torch.tensor([[0.0], [1.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.3, 0.4], [0.3, 0.3, 0.2, 0.2]]),
    }
    loss, items = model.loss(batch)
    assert torch.isfinite(loss).all() and set(items) >= {"box_loss", "cls_loss", "dfl_loss"}
    loss.sum().backward()
    head = model.model[-1]
    assert all(head.cv2[i][0].weight.grad is not None for i in range(head.nl))
    assert all(head.cv3[i][0].weight.grad.abs().sum() > 0 for i in range(head.nl))


def test_fuse_keeps_predictions():
    model = _model().eval()
    x = torch.rand(1, 3, 64, 64)
    before = model(x)[0]
    after = copy.deepcopy(model).fuse(verbose=False)(x)[0]
    torch.testing.assert_close(before, after, rtol=1e-4, atol=1e-3)


def test_register_is_idempotent():
    from ultralytics.nn import tasks

    wrapped = tasks.parse_model
    heads.register()
    assert tasks.parse_model is wrapped and tasks.CoupledDetect is heads.CoupledDetect


@pytest.mark.slow
def test_head_flops_coupled_far_below_decoupled():
    flops = heads.compare_head_gflops("s", nc=2, imgsz=640)
    # 1x1 convs: 2 * (64 + 2) * (128*80^2 + 256*40^2 + 512*20^2) = 0.189 GFLOPs (+ biases)
    assert flops["coupled"] == pytest.approx(2 * 66 * (128 * 6400 + 256 * 1600 + 512 * 400) / 1e9, rel=0.02)
    assert flops["decoupled"] > 20 * flops["coupled"]


def test_compare_head_gflops_rejects_unknown_scale():
    with pytest.raises(ValueError, match="scale"):
        heads.compare_head_gflops("q")


@pytest.mark.slow
def test_coupled_student_trains_reloads_in_fresh_process_validates_and_exports(coupled_run, tiny_yolo_data,
                                                                               tmp_path):
    import shutil

    assert (coupled_run / "weights" / "best.pt").exists()
    best = Path(shutil.copy(coupled_run / "weights" / "best.pt", tmp_path / "best.pt"))
    # a fresh interpreter that cannot import `training` (as on the vehicle): load, val, export, predict
    script = textwrap.dedent(
        f"""
        import importlib.util, json, sys
        import numpy as np
        from ultralytics import YOLO
        assert importlib.util.find_spec("training") is None
        model = YOLO({str(best)!r})
        head = model.model.model[-1]
        coupled = all(len(s) == 1 for s in [*head.cv2, *head.cv3])
        metrics = model.val(data={str(tiny_yolo_data)!r}, imgsz=64, batch=2, device="cpu", plots=False,
                            workers=0, verbose=False)
        onnx = model.export(format="onnx", imgsz=64, device="cpu")
        res = YOLO(onnx, task="detect").predict(np.zeros((64, 64, 3), np.uint8), imgsz=64, device="cpu",
                                                verbose=False)
        print("RESULT" + json.dumps({{"type": type(head).__name__, "coupled": coupled, "onnx": onnx,
            "map50": metrics.box.map50, "names": res[0].names, "cols": res[0].boxes.data.shape[1]}}))
        """
    )
    env = {**os.environ, "PYTHONPATH": ""}
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    result = json.loads(line[len("RESULT"):])
    assert result["type"] == "Detect" and result["coupled"]
    assert Path(result["onnx"]).exists() and result["cols"] == 6
    assert result["names"] == {"0": "relevant", "1": "not_relevant"}
    assert 0.0 <= result["map50"] <= 1.0
