"""Repeat-factor sampling of a train dataset, so that images of rare classes are seen more often.

The rule is LVIS' (Gupta et al., CVPR 2019): for each class ``c``, ``f_c`` is the fraction of train images that
contain it; an image's repeat factor is ``r = max(1, max over its classes of sqrt(t / f_c))``, and the image is
listed ``round(r)`` times (at least once) in the epoch. Classes in at least a fraction ``t`` of the images are not
repeated. Rounding is fixed rather than drawn per epoch, so a run's data order stays a function of its seed.

Usage: ``repeat_rare(dataset, t)`` on an ultralytics ``YOLODataset`` right after it is built (the trainer's
``build_dataset``, ``sampling.repeat_thr`` in a config), before any image is loaded.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

# per-image lists of a YOLODataset that follow its image index (ultralytics.data.base.BaseDataset.__init__)
_PER_IMAGE = ("im_files", "labels", "ims", "im_hw0", "im_hw", "npy_files", "label_files")


def repeat_counts(image_classes: Sequence[Sequence[int]], thr: float) -> list[int]:
    """Return how many times each image is listed: ``round(max(1, max_c sqrt(thr / f_c)))`` (1 without labels)."""
    if not 0 <= thr < 1:
        raise ValueError(f"repeat_thr {thr}: expected a fraction of images in [0, 1)")
    n = len(image_classes)
    if n == 0 or thr == 0:
        return [1] * n
    freq = Counter(c for classes in image_classes for c in set(classes))
    counts = []
    for classes in image_classes:
        r = max([1.0] + [math.sqrt(thr / (freq[c] / n)) for c in set(classes)])
        counts.append(max(1, round(r)))
    return counts


def repeat_rare(dataset: Any, thr: float) -> dict[str, int]:
    """Repeat the images of ``dataset`` in place by :func:`repeat_counts`; return ``{"images", "listed"}``.

    Raises ValueError when the dataset has already loaded images (RAM cache) or is rectangular (its batches are
    fixed by image shape), where a repeated list would be wrong.
    """
    if getattr(dataset, "rect", False) or any(im is not None for im in getattr(dataset, "ims", [])):
        raise ValueError("repeat-factor sampling needs a dataset without rect batches or cached images "
                         "(train.rect: false, train.cache: false)")
    classes = [np.asarray(lb["cls"]).reshape(-1).astype(int).tolist() for lb in dataset.labels]
    counts = repeat_counts(classes, thr)
    index = [i for i, k in enumerate(counts) for _ in range(k)]
    n = len(dataset.labels)
    for name in _PER_IMAGE:
        values = getattr(dataset, name, None)
        if isinstance(values, list) and len(values) == n:
            setattr(dataset, name, [values[i] for i in index])
    dataset.ni = len(index)
    dataset.max_buffer_length = min(dataset.max_buffer_length or 0, dataset.ni) if dataset.augment else 0
    return {"images": n, "listed": len(index)}
