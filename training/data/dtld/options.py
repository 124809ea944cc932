"""Options of one DTLD -> YOLO conversion (:class:`ConvertOptions`), validated before anything is read.

Usage: ``ConvertOptions(train=[...], test=[...], val_images=800, exclude={"reflection": ["reflected"]})``,
passed to :func:`training.data.dtld.convert_dtld`; the CLI flags of ``python -m training data convert-dtld``
map one to one. Every option is recorded in the output's fingerprint and summary (docs/training.md).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from kd_traffic_light.core.classes import DEFAULT_SCHEME, SCHEMES
from training.data.dtld.images import IMAGE_HEIGHT, IMAGE_WIDTH
from training.errors import UsageError


@dataclass
class ConvertOptions:
    """Options of one conversion (all recorded in the output fingerprint and summary)."""

    train: Sequence[str | os.PathLike] = ()
    test: Sequence[str | os.PathLike] = ()
    val: Sequence[str | os.PathLike] = ()
    val_images: int = 0
    seed: int = 0
    image_format: str = "png"
    jpeg_quality: int = 95
    resize_width: int | None = None
    include: dict[str, list[str]] = field(default_factory=dict)
    exclude: dict[str, list[str]] = field(default_factory=dict)
    size: tuple[int, int] = (IMAGE_WIDTH, IMAGE_HEIGHT)
    classes: str = DEFAULT_SCHEME

    def validate(self) -> None:
        """Raise UsageError (a ValueError) naming the option when a value is not allowed."""
        if self.classes not in SCHEMES:
            raise UsageError(f"classes {self.classes!r}: expected one of {sorted(SCHEMES)}")
        if self.image_format not in ("png", "jpg"):
            raise UsageError(f"image_format {self.image_format!r}: expected 'png' or 'jpg'")
        if not 1 <= self.jpeg_quality <= 100:
            raise UsageError(f"jpeg_quality {self.jpeg_quality}: expected 1..100")
        if self.resize_width is not None and self.resize_width < 8:
            raise UsageError(f"resize_width {self.resize_width}: expected >= 8")
        if self.val_images < 0:
            raise UsageError(f"val_images {self.val_images}: expected >= 0")
        if not (self.train or self.test or self.val):
            raise UsageError("no label files given: pass at least one of train / val / test")

    def resize(self) -> tuple[int, int] | None:
        """Output (width, height) or None to keep the frame size."""
        if self.resize_width is None:
            return None
        w = int(self.resize_width)
        return w, max(1, round(w * self.size[1] / self.size[0]))
