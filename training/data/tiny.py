"""A tiny coloured-box YOLO dataset for smoke runs (benchmarks, tests): written here, nothing is downloaded.

* :func:`write_tiny_yolo_dataset` writes ``size`` px PNGs with 1-2 coloured boxes each, their labels and a
  data.yaml (used by ``benchmarks/grid_scaling.py`` and, through ``test/model_factory.py``, the tests);
* :func:`data_yaml_text` is the data.yaml of a YOLO tree.

Torch-free; cv2 and numpy are imported by the writer.
"""

from __future__ import annotations

from pathlib import Path

from kd_traffic_light.core.types import CLASS_NAMES


def data_yaml_text(root: Path, test: bool = True, names: dict[int, str] | None = None) -> str:
    """Return the data.yaml text of a YOLO tree at ``root`` (``images/train``, ``images/val``; ``test`` reuses val)."""
    lines = [f"path: {Path(root).as_posix()}", "train: images/train", "val: images/val"]
    lines += ["test: images/val"] if test else []
    lines += ["names:"] + [f"  {k}: {v}" for k, v in (names or CLASS_NAMES).items()]
    return "\n".join(lines) + "\n"


def write_tiny_yolo_dataset(root: Path, n_train: int = 8, n_val: int = 4, size: int = 64, seed: int = 0) -> Path:
    """Write a YOLO dataset of ``size`` px PNGs with 1-2 coloured boxes each; return the data.yaml path.

    Class 0 (relevant) is a green box, class 1 (not_relevant) a red one; the val split doubles as test.
    """
    import cv2
    import numpy as np

    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            img = np.full((size, size, 3), 60, np.uint8)
            rows = []
            for _ in range(1 + k % 2):
                cls = int(rng.integers(0, 2))
                w, h = (int(v) for v in rng.integers(size // 6, size // 3, 2))
                x0, y0 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
                img[y0 : y0 + h, x0 : x0 + w] = (30, 220, 30) if cls == 0 else (30, 30, 230)
                rows.append(f"{cls} {(x0 + w / 2) / size:.6f} {(y0 + h / 2) / size:.6f} {w / size:.6f} {h / size:.6f}")
            cv2.imwrite(str(root / "images" / split / f"{k:03d}.png"), img)
            (root / "labels" / split / f"{k:03d}.txt").write_text("\n".join(rows) + "\n")
    data = root / "data.yaml"
    data.write_text(data_yaml_text(root))
    return data
