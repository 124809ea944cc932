"""Evaluation noise: ultralytics' per-image matching kept, and the paired bootstrap over held-out images."""

import numpy as np
import pytest

from training.eval_noise import image_stats, map50_95, paired_bootstrap


def _stats(hits):
    """One target of class 0 per image; one prediction per image, a true positive at every IoU where hit."""
    return {"tp": [np.full((1, 10), bool(h)) for h in hits], "conf": [np.array([0.9]) for _ in hits],
            "pred_cls": [np.array([0.0]) for _ in hits], "target_cls": [np.array([0.0]) for _ in hits]}


def test_map_of_constructed_matches():
    assert map50_95(_stats([1, 1, 1, 1])) == pytest.approx(100.0, abs=1.0)
    assert map50_95(_stats([0, 0, 0, 0])) == pytest.approx(0.0, abs=1e-6)
    assert 0.0 < map50_95(_stats([1, 0, 1, 0])) < 100.0
    assert map50_95(_stats([1, 0, 1, 0]), np.array([0, 0, 2])) == pytest.approx(100.0, abs=1.0)  # repeats allowed


def test_paired_bootstrap_is_zero_for_one_model_and_positive_when_images_disagree():
    good, half = _stats([1] * 8), _stats([1, 0] * 4)
    same = paired_bootstrap(half, half, draws=50)
    assert same["difference"] == 0.0 and same["sd"] == 0.0
    constant = paired_bootstrap(good, _stats([0] * 8), draws=50)  # every resample gives the same difference
    assert constant["difference"] == pytest.approx(100.0, abs=1.0) and constant["sd"] == pytest.approx(0.0, abs=1e-6)
    noisy = paired_bootstrap(good, half, draws=50)
    assert noisy["sd"] > 1.0
    with pytest.raises(ValueError, match="8 and 4 images"):
        paired_bootstrap(good, _stats([1] * 4))


def test_image_stats_reproduce_ultralytics_map(coupled_run, tiny_yolo_data):
    from training.evaluate import evaluate_model

    weights = coupled_run / "weights" / "best.pt"
    stats = image_stats(weights, tiny_yolo_data, "val", 64, batch=2)
    row = evaluate_model(weights, tiny_yolo_data, split="val", imgsz=64, batch=2, latency_reps=0)
    assert len(stats["tp"]) == 2  # one entry per val image
    assert map50_95(stats) == pytest.approx(100.0 * row["map50_95"], abs=1e-6)
