"""DTLD camera frames: read a 12-bit GRBG Bayer ``_k0.tiff`` and decode it exactly as the official parser does.

Usage: ``bgr = read_dtld_image(path)`` (uint8 BGR, 1024x2048x3), or :func:`decode_bayer` on a raw uint16 array.
The decode is ``cv2.COLOR_BAYER_GB2BGR`` (bilinear demosaic), right shift by 4 (floor(x / 16)), cast to uint8;
why, and the frame facts it relies on: docs/dtld_format.md, section 2.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: Size of a DTLD camera frame in pixels.
IMAGE_WIDTH = 2048
IMAGE_HEIGHT = 1024


def decode_bayer(raw: np.ndarray) -> np.ndarray:
    """Decode a raw DTLD frame exactly as the official Python parser does.

    Args:
        raw: uint16 array (H, W), 12-bit GRBG Bayer codes, LSB aligned.

    Returns:
        uint8 BGR image (H, W, 3) = uint8(floor(demosaic_GB2BGR(raw) / 16)) (wraps above 4095 like the
        official ``astype(np.uint8)``).
    """
    import cv2

    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise ValueError(f"expected a 2-D uint16 Bayer image, got {raw.dtype} shape {raw.shape}")
    bgr16 = cv2.cvtColor(raw, cv2.COLOR_BAYER_GB2BGR)
    return np.right_shift(bgr16, 4).astype(np.uint8)


def read_dtld_image(path: str | os.PathLike, size: tuple[int, int] = (IMAGE_WIDTH, IMAGE_HEIGHT)) -> np.ndarray:
    """Read a ``_k0.tiff`` and return its official 8-bit BGR decode.

    Args:
        path: TIFF file.
        size: expected (width, height) of the raw frame.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: unreadable/truncated TIFF, wrong dtype or wrong size (message names the file).
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image file not found")
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ValueError(f"{path}: unreadable or truncated TIFF (OpenCV could not decode it)")
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise ValueError(f"{path}: expected 1-channel uint16 Bayer TIFF, got {raw.dtype} shape {raw.shape}")
    if (raw.shape[1], raw.shape[0]) != tuple(size):
        raise ValueError(
            f"{path}: image size {raw.shape[1]}x{raw.shape[0]}, expected {size[0]}x{size[1]}"
        )
    return decode_bayer(raw)

