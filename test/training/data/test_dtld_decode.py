"""The decode equals the official parser: GRBG Bayer, COLOR_BAYER_GB2BGR, floor(/16), BGR."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from training.data.dtld import decode_bayer, read_dtld_image
from training.data.synth import compand, decompand, mosaic_grbg


def _patch_raw(bgr12: tuple[int, int, int], size: int = 16) -> np.ndarray:
    """A uniform colour patch (12-bit BGR) sampled on the GRBG mosaic by hand (G R / B G)."""
    b, g, r = bgr12
    raw = np.empty((size, size), np.uint16)
    raw[0::2, 0::2] = g
    raw[0::2, 1::2] = r
    raw[1::2, 0::2] = b
    raw[1::2, 1::2] = g
    return raw


@pytest.mark.parametrize(("colour", "bgr12", "dominant"), [
    ("red", (100, 200, 4000), 2), ("green", (150, 3900, 120), 1), ("blue", (3800, 300, 90), 0)])
def test_patch_decodes_to_its_colour(colour, bgr12, dominant):
    out = decode_bayer(_patch_raw(bgr12))
    assert out.dtype == np.uint8 and out.shape == (16, 16, 3)
    centre = out[4:12, 4:12].reshape(-1, 3)
    # a uniform patch demosaics to itself (bilinear): exactly floor(value / 16) per BGR channel
    assert (centre == np.array(bgr12) // 16).all(), colour
    assert (centre.argmax(axis=1) == dominant).all()


def test_equals_floor_of_independent_bilinear_demosaic():
    """Reference: hand-written bilinear GRBG demosaic (numpy) on the interior, then floor(/16)."""
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 4096, (32, 48)).astype(np.uint16)
    f = raw.astype(np.int64)
    h, w = raw.shape
    ref = np.zeros((h, w, 3), np.float64)
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            cross = (f[y - 1, x] + f[y + 1, x] + f[y, x - 1] + f[y, x + 1]) / 4
            diag = (f[y - 1, x - 1] + f[y - 1, x + 1] + f[y + 1, x - 1] + f[y + 1, x + 1]) / 4
            horiz, vert = (f[y, x - 1] + f[y, x + 1]) / 2, (f[y - 1, x] + f[y + 1, x]) / 2
            site = ("G", "R", "B", "G")[(y % 2) * 2 + (x % 2)]
            if site == "R":
                bgr = (diag, cross, f[y, x])
            elif site == "B":
                bgr = (f[y, x], cross, diag)
            elif y % 2 == 0:  # G on a G R row: R left/right, B above/below
                bgr = (vert, f[y, x], horiz)
            else:  # G on a B G row
                bgr = (horiz, f[y, x], vert)
            ref[y, x] = bgr
    demosaic = cv2.cvtColor(raw, cv2.COLOR_BAYER_GB2BGR)
    inner = (slice(1, h - 1), slice(1, w - 1))
    assert np.abs(demosaic[inner].astype(np.float64) - ref[inner]).max() <= 1.0  # OpenCV rounds the mean
    assert (decode_bayer(raw) == demosaic >> 4).all()
    assert (decode_bayer(raw)[inner] == np.floor(demosaic[inner] / 16)).all()


def test_wrong_pattern_would_swap_red_and_blue():
    raw = _patch_raw((100, 200, 4000))
    wrong = (cv2.cvtColor(raw, cv2.COLOR_BAYER_GR2BGR) >> 4).astype(np.uint8)
    assert wrong[8, 8].argmax() == 0 and decode_bayer(raw)[8, 8].argmax() == 2


def test_mosaic_of_synth_matches_hand_layout():
    bgr = np.zeros((4, 4, 3), np.uint16)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 1, 2, 3
    assert mosaic_grbg(bgr)[:2, :2].tolist() == [[2, 3], [1, 2]]


def test_compand_inverts_kneepoint_lut():
    codes = np.arange(0, 3968)
    linear = decompand(codes)
    assert linear[1023] == 1023 and linear[2559] == 4094 and linear[3455] == 32736 and linear[3967] == 65472
    assert (compand(linear) == codes).all()


def test_read_dtld_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.tiff"):
        read_dtld_image(tmp_path / "missing.tiff")
    cv2.imwrite(str(tmp_path / "small.tiff"), np.zeros((8, 16), np.uint16))
    with pytest.raises(ValueError, match="image size 16x8, expected 2048x1024"):
        read_dtld_image(tmp_path / "small.tiff")
    (tmp_path / "bad.tiff").write_bytes(b"II*\x00garbage")
    with pytest.raises(ValueError, match="unreadable"):
        read_dtld_image(tmp_path / "bad.tiff")
