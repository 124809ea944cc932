"""Evaluation noise: how much of a paired mAP difference the finite held-out split alone would produce.

``image_stats`` keeps ultralytics' per-image matching (true positives at the ten IoU thresholds, confidences,
classes) from one validation pass; ``paired_bootstrap`` resamples the held-out images with replacement, the same
draw for both models, and recomputes mAP50-95 with ultralytics' ``ap_per_class``. Its standard deviation is the
evaluation noise of one seed's difference, to set beside the spread of the differences over seeds (kd-gain).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

KEYS = ("tp", "conf", "pred_cls", "target_cls")


def image_stats(weights: str | Path, data: str | Path, split: str, imgsz: int, batch: int = 32,
                device: str = "cpu") -> dict[str, list[np.ndarray]]:
    """Validate ``weights`` on ``split`` and return ultralytics' matching per image: ``{key: [array per image]}``."""
    from ultralytics import YOLO

    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    yolo = YOLO(str(weights), task="detect")
    kept: dict[str, list[np.ndarray]] = {}

    def keep(validator: Any) -> None:  # the stats are cleared before on_val_end: copy them after every batch
        kept.update({k: list(validator.metrics.stats[k]) for k in KEYS})

    yolo.add_callback("on_val_batch_end", keep)
    yolo.val(data=str(data), split=split, imgsz=imgsz, batch=batch, device=device, plots=False, verbose=False,
             workers=0, save_json=False)
    if not kept or not kept["tp"]:
        raise RuntimeError(f"{weights}: validation on split '{split}' of {data} matched no image")
    return kept


def map50_95(stats: dict[str, list[np.ndarray]], images: np.ndarray | None = None) -> float:
    """mAP50-95 in points of the images ``images`` (indices, repeats allowed; default: all), as ultralytics."""
    from ultralytics.utils.metrics import ap_per_class

    idx = range(len(stats["tp"])) if images is None else images
    cat = {k: np.concatenate([stats[k][i] for i in idx], 0) for k in KEYS}
    if not len(cat["target_cls"]):
        return 0.0
    ap = ap_per_class(cat["tp"], cat["conf"], cat["pred_cls"], cat["target_cls"])[5]
    return 100.0 * float(ap.mean()) if len(ap) else 0.0


def paired_bootstrap(a: dict[str, list[np.ndarray]], b: dict[str, list[np.ndarray]], draws: int = 200,
                     seed: int = 0) -> dict[str, float]:
    """Resample the held-out images (same draw for both models): the difference a - b and its bootstrap sd.

    Returns:
        ``{"difference": a - b on every image, "sd": sd over the draws, "draws": draws}`` in points.
    """
    n = len(a["tp"])
    if n != len(b["tp"]):
        raise ValueError(f"paired bootstrap: the two models were evaluated on {n} and {len(b['tp'])} images")
    rng = np.random.default_rng(seed)
    diffs = [map50_95(a, idx) - map50_95(b, idx) for idx in (rng.integers(0, n, n) for _ in range(draws))]
    return {"difference": map50_95(a) - map50_95(b), "sd": float(np.std(diffs, ddof=1)), "draws": draws}
