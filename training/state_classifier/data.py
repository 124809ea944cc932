"""Crops of the labelled lights of a ``relevance_state`` YOLO dataset, cut as the node cuts them.

Each label of a split's images is cut with :func:`kd_traffic_light.core.state_classifier.crop_boxes` (the same
margin and size as the runtime). For training, every light is cut ``jitter`` times with its box shifted and
scaled at random by up to ``jitter_frac`` of its size, as a detector's box would be off; evaluation cuts the
labelled box once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kd_traffic_light.core.classes import RELEVANCE, STATES, scheme_of, split_label
from kd_traffic_light.core.state_classifier import crop_boxes
from training.errors import RunError, UsageError


@dataclass(frozen=True)
class Crops:
    """Crops of one split.

    Attributes:
        images: uint8 BGR ``(n, h, w, 3)``.
        states: ``(n,)`` indices into ``STATES``.
    """

    images: np.ndarray
    states: np.ndarray

    def __len__(self) -> int:
        return int(len(self.states))


def dataset_info(data_yaml: str | Path) -> dict:
    """``check_det_dataset`` of ``data_yaml``, refused unless its names are the ``relevance_state`` scheme.

    Raises:
        UsageError: the file is missing or its ``names`` are not ``relevance_state`` (naming the file and field).
    """
    from ultralytics.data.utils import check_det_dataset

    path = Path(data_yaml)
    if not path.is_file():
        raise UsageError(f"{path}: no such data.yaml (--data)")
    info = check_det_dataset(str(path), autodownload=False)
    if scheme_of(info["names"]) != "relevance_state":
        raise UsageError(f"{path}: field 'names' is {list(info['names'].values())}; the state classifier learns "
                         "from a relevance_state dataset (convert with --classes relevance_state)")
    return info


def split_images(info: dict, split: str) -> list[Path]:
    """Return the image files of ``split`` of a checked dataset (one folder or a list of them, in order).

    Raises:
        RunError: the split is not in the dataset, or one of its folders holds no image (naming it).
    """
    from ultralytics.data.utils import IMG_FORMATS

    roots = info.get(split)
    if not roots:
        raise RunError(f"the dataset has no '{split}' split (field '{split}' of its data.yaml)")
    files = []
    for root in roots if isinstance(roots, list) else [roots]:  # a list of folders, as ultralytics reads it
        found = sorted(p for p in Path(root).rglob("*") if p.suffix.lower().lstrip(".") in IMG_FORMATS)
        if not found:
            raise RunError(f"{root}: no images in the '{split}' split")
        files += found
    return files


def read_labels(label_file: Path, width: int, height: int, names: dict[int, str]) -> np.ndarray:
    """YOLO label rows -> ``(m, 6)``: x1, y1, x2, y2 in pixels, state index, relevance index.

    Raises:
        RunError: a row is not ``class cx cy w h`` with a class of ``names`` (naming the file and line).
    """
    rows = []
    if not label_file.is_file():
        return np.zeros((0, 6))
    for n, line in enumerate(label_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            cls, cx, cy, w, h = int(parts[0]), *map(float, parts[1:5])
        except (ValueError, IndexError):
            raise RunError(f"{label_file}:{n}: expected 'class cx cy w h', got {line!r}") from None
        if cls not in names:
            raise RunError(f"{label_file}:{n}: class {cls} is not in the dataset's names {sorted(names)}")
        rel, state = split_label(names[cls])
        rows.append(((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height,
                     STATES.index(state), RELEVANCE.index(rel)))
    return np.asarray(rows, np.float64).reshape(-1, 6)


def jittered(boxes: np.ndarray, rng: np.random.Generator, frac: float) -> np.ndarray:
    """``boxes`` (xyxy) with centre shifted and sides scaled by up to ``frac`` of their size, each on its own."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 + rng.uniform(-frac, frac, len(boxes)) * w
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 + rng.uniform(-frac, frac, len(boxes)) * h
    w = w * (1 + rng.uniform(-frac, frac, len(boxes)))
    h = h * (1 + rng.uniform(-frac, frac, len(boxes)))
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def labelled_frames(info: dict, split: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each image of ``split`` as ``(bgr, rows)``, rows as :func:`read_labels` gives them.

    Raises:
        RunError: an image is not readable (naming it), or a label file is malformed.
    """
    import cv2
    from ultralytics.data.utils import img2label_paths

    files = split_images(info, split)
    for image_file, label_file in zip(files, img2label_paths([str(f) for f in files]), strict=True):
        bgr = cv2.imread(str(image_file))
        if bgr is None:
            raise RunError(f"{image_file}: not a readable image")
        yield bgr, read_labels(Path(label_file), bgr.shape[1], bgr.shape[0], info["names"])


def load_crops(info: dict, split: str, hw: tuple[int, int], margin: float, jitter: int = 0,
               jitter_frac: float = 0.15, seed: int = 0, upright: bool = False) -> Crops:
    """Cut every labelled light of ``split`` (``jitter`` jittered copies each when ``jitter`` > 0, else once).

    ``upright``: horizontal heads turned upright (:func:`~kd_traffic_light.core.state_classifier.crop_boxes`).
    """
    rng = np.random.default_rng(seed)
    images, states = [], []
    for bgr, rows in labelled_frames(info, split):
        if not len(rows):
            continue
        for _ in range(max(1, jitter)):
            boxes = jittered(rows[:, :4], rng, jitter_frac) if jitter else rows[:, :4]
            images.append(crop_boxes(bgr, boxes, hw, margin, upright))
            states.append(rows[:, 4])
    if not images:
        raise RunError(f"the '{split}' split has no labelled lights")
    return Crops(np.concatenate(images), np.concatenate(states).astype(np.int64))
