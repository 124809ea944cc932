"""Blur/CLAHE transform: changes the image at p=1, not at p=0, and sits inside a real YOLODataset."""

from __future__ import annotations

import numpy as np
import pytest

from training.data.augment import BlurClahe, add_to_dataset


def _labels():
    rng = np.random.default_rng(0)
    img = (rng.random((64, 96, 3)) * 80).astype(np.uint8)
    img[20:40, 30:50] = (30, 40, 220)
    return {"img": img, "cls": np.zeros((1, 1), np.float32)}


@pytest.mark.parametrize(("blur_p", "clahe_p"), [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0)])
def test_p1_changes_image(blur_p, clahe_p):
    labels = _labels()
    before = labels["img"].copy()
    out = BlurClahe(blur_p, clahe_p)(labels)
    assert out["img"].shape == before.shape and out["img"].dtype == np.uint8
    assert not np.array_equal(out["img"], before)
    assert out["cls"] is labels["cls"]


def test_p0_leaves_image_unchanged():
    labels = _labels()
    before = labels["img"].copy()
    for _ in range(20):
        labels = BlurClahe(0.0, 0.0)(labels)
    assert np.array_equal(labels["img"], before)


def test_bad_probability_is_an_error():
    with pytest.raises(ValueError, match="blur_p=1.5"):
        BlurClahe(1.5, 0.0)


def test_inserted_into_real_yolo_dataset(yolo_dataset, monkeypatch):
    import yaml
    from ultralytics.cfg import get_cfg
    from ultralytics.data.dataset import YOLODataset

    data = yaml.safe_load(yolo_dataset.read_text())
    hyp = get_cfg(overrides={"imgsz": 64, "mosaic": 0.0, "fliplr": 0.0, "hsv_h": 0, "hsv_s": 0, "hsv_v": 0,
                             "translate": 0.0, "scale": 0.0})
    ds = YOLODataset(img_path=str(yolo_dataset.parent / data["train"]), imgsz=64, augment=True, hyp=hyp,
                     data={"names": data["names"], "nc": 2, "channels": 3}, batch_size=2)
    plain = ds[0]["img"].clone()
    transform = add_to_dataset(ds, blur_p=1.0, clahe_p=1.0)
    names = [type(t).__name__ for t in ds.transforms.transforms]
    assert names.index("BlurClahe") == len(names) - 2 and names[-1].endswith("Format")
    augmented = ds[0]["img"]
    assert augmented.shape == plain.shape and not (augmented == plain).all()
    ds.close_mosaic(hyp)  # the trainer rebuilds the transforms; the augmentation must survive
    assert transform in ds.transforms.transforms
    assert add_to_dataset(ds, 0.0, 0.0) is None
    # p=0 transform inside the dataset leaves images as they were
    monkeypatch.setattr(transform, "blur_p", 0.0)
    monkeypatch.setattr(transform, "clahe_p", 0.0)
    assert (ds[0]["img"] == plain).all()
