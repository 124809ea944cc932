"""Training-time blur and CLAHE contrast equalisation, applied inside ultralytics' dataset transforms.

The source study augments with image blur and contrast equalisation (CLAHE). :class:`BlurClahe` is an
ultralytics-style transform (a callable on the labels dict, ``labels["img"]`` a BGR uint8 HxWx3 array);
:func:`add_to_dataset` inserts it into a ``YOLODataset``'s ``transforms`` just before the final
``Format`` step (after mosaic/affine/HSV/flip, so it sees the final training image), and keeps it there
when the trainer rebuilds the transforms (``close_mosaic``). Nothing is written to disk.
"""

from __future__ import annotations

import random
from typing import Any


class BlurClahe:
    """Blur (Gaussian, random odd kernel) with probability ``blur_p``, then CLAHE with ``clahe_p``.

    Args:
        blur_p: probability of blurring an image.
        clahe_p: probability of CLAHE on the L channel (LAB).
        blur_kernel: (min, max) Gaussian kernel size in pixels (odd sizes are drawn).
        clahe_clip: CLAHE clip limit.
        clahe_grid: CLAHE tile grid size.
    """

    def __init__(self, blur_p: float = 0.0, clahe_p: float = 0.0, blur_kernel: tuple[int, int] = (3, 7),
                 clahe_clip: float = 2.0, clahe_grid: int = 8):
        for name, p in (("blur_p", blur_p), ("clahe_p", clahe_p)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name}={p}: expected a probability in [0, 1]")
        if blur_kernel[0] < 1 or blur_kernel[1] < blur_kernel[0]:
            raise ValueError(f"blur_kernel={blur_kernel}: expected 1 <= min <= max")
        self.blur_p, self.clahe_p = blur_p, clahe_p
        self.blur_kernel, self.clahe_clip, self.clahe_grid = blur_kernel, clahe_clip, clahe_grid

    def __call__(self, labels: dict[str, Any]) -> dict[str, Any]:
        """Apply to ``labels["img"]`` (BGR uint8) in place of the image; boxes are unchanged."""
        import cv2

        img = labels["img"]
        if self.blur_p and random.random() < self.blur_p:
            sizes = [k for k in range(self.blur_kernel[0], self.blur_kernel[1] + 1) if k % 2] or [3]
            k = random.choice(sizes)
            img = cv2.GaussianBlur(img, (k, k), 0)
        if self.clahe_p and random.random() < self.clahe_p:
            clahe = cv2.createCLAHE(clipLimit=self.clahe_clip, tileGridSize=(self.clahe_grid, self.clahe_grid))
            lab = cv2.cvtColor(img, cv2.COLOR_BGR2LAB)
            lab[..., 0] = clahe.apply(lab[..., 0])
            img = cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)
        labels["img"] = img
        return labels

    def __repr__(self) -> str:
        return f"{type(self).__name__}(blur_p={self.blur_p}, clahe_p={self.clahe_p})"


def insert_transform(transforms: Any, transform: BlurClahe) -> None:
    """Insert ``transform`` into an ultralytics ``Compose`` just before its last step (``Format``)."""
    steps = transforms.transforms
    index = len(steps) - 1 if steps and type(steps[-1]).__name__.endswith("Format") else len(steps)
    transforms.insert(index, transform)


def add_to_dataset(dataset: Any, blur_p: float, clahe_p: float, **kwargs: Any) -> BlurClahe | None:
    """Add :class:`BlurClahe` to an ultralytics ``YOLODataset`` (no offline copies).

    The transform is inserted before ``Format`` now and again whenever the dataset rebuilds its
    transforms (``close_mosaic`` calls ``build_transforms``). Nothing is added when both probabilities
    are 0.

    Args:
        dataset: an ultralytics ``YOLODataset`` (``dataset.transforms`` is a ``Compose``).
        blur_p: blur probability.
        clahe_p: CLAHE probability.
        **kwargs: further :class:`BlurClahe` arguments.

    Returns:
        The inserted transform, or None.
    """
    if not blur_p and not clahe_p:
        return None
    transform = BlurClahe(blur_p, clahe_p, **kwargs)
    if getattr(dataset, "_blur_clahe", None) is not None:
        raise ValueError("add_to_dataset: the dataset already has a BlurClahe transform")
    build = dataset.build_transforms

    def build_with_augment(hyp: Any = None) -> Any:
        composed = build(hyp=hyp)
        insert_transform(composed, transform)
        return composed

    dataset.build_transforms = build_with_augment
    dataset._blur_clahe = transform
    insert_transform(dataset.transforms, transform)
    return transform
