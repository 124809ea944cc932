"""Sensor model: GRBG Bayer sampling, shot and read noise, 12-bit companding (and its DTLD inverse)."""

from __future__ import annotations

import numpy as np


def compand(linear: np.ndarray) -> np.ndarray:
    """Map linear 16-bit values to 12-bit DTLD codes (inverse of the kneepoint decompanding LUT)."""
    v = np.clip(np.asarray(linear, dtype=np.float32), 0, 65535)
    c = np.where(v < 1024, v, np.where(v < 4096, 1024 + (v - 1024) / 2,
                                       np.where(v < 32768, 2560 + (v - 4096) / 32, 3456 + (v - 32768) / 64)))
    return np.clip(np.rint(c), 0, 3967).astype(np.uint16)


def decompand(codes: np.ndarray) -> np.ndarray:
    """Decompand 12-bit codes to 16-bit linear as the DTLD C++ LUT (kneepoints 1023/2559/3455/3967)."""
    c = np.asarray(codes, dtype=np.int64)
    v = np.where(c <= 1023, c, np.where(c <= 2559, 1024 + 2 * (c - 1024),
                                        np.where(c <= 3455, 4096 + 32 * (c - 2560), 32768 + 64 * (c - 3456))))
    return np.clip(v, 0, 65535).astype(np.uint16)


def mosaic_grbg(bgr: np.ndarray) -> np.ndarray:
    """Sample a (H, W, 3) BGR image on the DTLD GRBG Bayer pattern (G R / B G at the top-left)."""
    h, w = bgr.shape[:2]
    out = np.empty((h, w), dtype=bgr.dtype)
    out[0::2, 0::2] = bgr[0::2, 0::2, 1]
    out[0::2, 1::2] = bgr[0::2, 1::2, 2]
    out[1::2, 0::2] = bgr[1::2, 0::2, 0]
    out[1::2, 1::2] = bgr[1::2, 1::2, 1]
    return out


def encode_raw(radiance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Linear BGR radiance (16-bit units) -> noisy GRBG mosaic -> 12-bit companded uint16 codes."""
    raw = mosaic_grbg(radiance).astype(np.float32)
    noise = rng.standard_normal(raw.shape, dtype=np.float32)
    raw += noise * np.sqrt(np.maximum(raw, 0) * 0.6 + 16.0)
    return compand(raw)
