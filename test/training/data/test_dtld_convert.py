"""DTLD -> YOLO conversion: round trip against the generator's ground truth, splits, filters, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from test.training.data.helpers_dtld import read_yolo, tree_bytes
from training.data.dtld import ConvertOptions, convert_dtld, load_labels
from training.data.dtld.splits import split_validation

REPO = Path(__file__).resolve().parents[3]


def _convert(ds, out, workers=1, v1=False, **kw):
    files = ds.v1 if v1 else ds.v2
    opts = ConvertOptions(train=[files["train"]], test=[files["test"]], **kw)
    return convert_dtld(ds.root, out, opts, workers=workers, progress=False)


def test_round_trip_v2(synthetic_dtld, yolo_dataset):
    out = yolo_dataset.parent
    assert read_yolo(out) == synthetic_dtld.ground_truth()
    assert any(box for boxes in synthetic_dtld.ground_truth().values() for box in boxes)
    data = yaml.safe_load(yolo_dataset.read_text())
    assert data["names"] == {0: "relevant", 1: "not_relevant"} and data["train"] == "images/train"
    for f in synthetic_dtld.frames:
        assert (out / "images" / f.split / f.key.replace(".tiff", ".png")).is_file()


def test_round_trip_v1(synthetic_dtld, tmp_path):
    summary = _convert(synthetic_dtld, tmp_path / "v1")
    assert summary["warning_counts"].get("unknown_attribute", 0) == 0
    out = tmp_path / "v1b"
    _convert(synthetic_dtld, out, v1=True)
    assert read_yolo(out) == synthetic_dtld.ground_truth(v1=True)
    assert synthetic_dtld.ground_truth(v1=True) != synthetic_dtld.ground_truth()  # v1 lacks reflections


def test_v1_and_v2_agree_on_attributes(synthetic_dtld):
    warns = []
    v2 = {f.key: f for f in load_labels(synthetic_dtld.v2["all"], warns)}
    v1 = {f.key: f for f in load_labels(synthetic_dtld.v1["all"], warns)}
    assert v1.keys() == v2.keys() and not warns
    for key, frame in v1.items():
        by_uid = {li.unique_id: li for li in v2[key].lights}
        for li in frame.lights:
            ref = by_uid[li.unique_id].attributes
            for name in ("direction", "relevance", "orientation", "aspects"):
                assert li.attributes[name] == ref[name], (key, name)


def test_clipping_counts_and_summary(synthetic_dtld, yolo_dataset):
    summary = json.loads((yolo_dataset.parent / "summary.json").read_text())
    gt_out = sum(1 for f in synthetic_dtld.frames for li in f.lights
                 if li.box and (li.x, li.y, li.x + li.w, li.y + li.h) != li.box)
    assert gt_out > 0
    assert sum(s["clipped"] for s in summary["splits"].values()) == gt_out
    total = sum(len(v) for v in synthetic_dtld.ground_truth().values())
    assert sum(sum(s["boxes"].values()) for s in summary["splits"].values()) == total
    assert summary["missing_files"] == 0


def test_idempotent_rerun_is_byte_identical(synthetic_dtld, yolo_dataset):
    out = yolo_dataset.parent
    before = tree_bytes(out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    _convert(synthetic_dtld, out)
    assert tree_bytes(out) == before
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == mtimes  # images skipped, not rewritten


def test_parallel_equals_serial(synthetic_dtld, yolo_dataset, tmp_path):
    _convert(synthetic_dtld, tmp_path / "par", workers=2)
    assert tree_bytes(tmp_path / "par") == tree_bytes(yolo_dataset.parent)


def test_other_options_refused_on_existing_output(synthetic_dtld, yolo_dataset):
    with pytest.raises(ValueError, match="different"):
        _convert(synthetic_dtld, yolo_dataset.parent, image_format="jpg")


def test_kill_and_resume_equals_uninterrupted(synthetic_dtld, yolo_dataset, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "training", "data", "convert-dtld", "--root", str(synthetic_dtld.root),
           "--out", str(out), "--train", str(synthetic_dtld.v2["train"]), "--test",
           str(synthetic_dtld.v2["test"]), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list((out / "images").rglob("*.png")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "summary.json").exists(), "run finished before it could be killed"
    (out / "images" / "train" / f"stale.png.tmp-{proc.pid}").write_bytes(b"half")  # a torn temporary
    assert subprocess.run(cmd, cwd=REPO, env=env, capture_output=True).returncode == 0
    assert tree_bytes(out) == tree_bytes(yolo_dataset.parent)


def test_validation_split_by_sequence(synthetic_dtld, tmp_path):
    out = tmp_path / "val"
    summary = _convert(synthetic_dtld, out, val_images=1, seed=3)
    assert summary["splits"]["val"]["images"] >= 1
    seqs = {split: {"/".join(p.relative_to(out / "images" / split).parts[:3])
                    for p in (out / "images" / split).rglob("*.png")} for split in ("train", "val", "test")}
    assert seqs["val"] and not seqs["val"] & seqs["train"] and not seqs["val"] & seqs["test"]
    assert yaml.safe_load((out / "data.yaml").read_text())["val"] == "images/val"


def test_split_validation_takes_whole_sequences():
    from training.data.dtld import DtldFrame

    frames = [DtldFrame(f"C/R/s{i % 4}/f{i}.tiff", [], "x.json", i) for i in range(20)]
    train, val = split_validation(frames, 6, seed=0)
    assert len(val) >= 6 and len(train) + len(val) == 20
    assert not {f.sequence for f in train} & {f.sequence for f in val}
    assert split_validation(frames, 6, seed=0) == (train, val)


def test_filters_are_applied_and_recorded(synthetic_dtld, tmp_path):
    out = tmp_path / "front"
    summary = _convert(synthetic_dtld, out, include={"direction": ["front"]},
                       exclude={"reflection": ["reflected"]})
    kept = {k: sorted((li.cls, li.box) for f in synthetic_dtld.frames if f.key == k for li in f.lights
                      if li.box and li.attributes["direction"] == "front"
                      and li.attributes["reflection"] == "not_reflected")
            for k in synthetic_dtld.ground_truth()}
    assert read_yolo(out) == kept
    assert summary["filters"] == {"include": {"direction": ["front"]}, "exclude": {"reflection": ["reflected"]}}
    assert "direction" in (out / "data.yaml").read_text()


def test_jpeg_and_resize(synthetic_dtld, tmp_path):
    import cv2

    out = tmp_path / "jpg"
    _convert(synthetic_dtld, out, image_format="jpg", jpeg_quality=80, resize_width=512)
    imgs = sorted(out.rglob("*.jpg"))
    assert len(imgs) == len(synthetic_dtld.frames)
    assert cv2.imread(str(imgs[0])).shape == (256, 512, 3)
    assert read_yolo(out) == synthetic_dtld.ground_truth()  # labels are normalised: unchanged
