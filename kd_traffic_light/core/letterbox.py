"""Letterbox a BGR frame into the network input, and map boxes back to the frame's pixels.

The arithmetic follows ultralytics 8.4's ``LetterBox`` (predict mode) and ``ops.scale_boxes`` step for step,
so an exported model sees exactly the input ultralytics would give it: the frame is resized with
``cv2.INTER_LINEAR`` to ``round(side * r)`` (r = the smaller of the two size ratios), padded with grey 114
centred (``round(pad - 0.1)`` before, ``round(pad + 0.1)`` after), converted BGR -> RGB, HWC -> CHW and
scaled to [0, 1] as float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114


@dataclass(frozen=True)
class LetterboxInfo:
    """How a frame was placed into the network input (what :func:`scale_boxes` undoes).

    Attributes:
        frame_hw: Height and width of the original frame.
        input_hw: Height and width of the network input.
        gain: Resize factors ``(gain_x, gain_y)`` (resized side / original side).
        pad: Left and top padding in input pixels ``(pad_x, pad_y)``.
    """

    frame_hw: tuple[int, int]
    input_hw: tuple[int, int]
    gain: tuple[float, float]
    pad: tuple[int, int]


def input_shape(frame_hw: tuple[int, int], imgsz: tuple[int, int], auto: bool, stride: int = 32) -> tuple[int, int]:
    """Network input ``(h, w)`` for a frame: ``imgsz`` itself, or with ``auto`` the smallest stride multiple.

    Args:
        frame_hw: Frame height and width.
        imgsz: Target ``(h, w)`` (a static model's input size, or the requested size of a dynamic one).
        auto: Minimum rectangle (dynamic-shape models, as ultralytics' ``rect`` predict mode): pad only up
            to a multiple of ``stride``.
        stride: The model's largest stride.
    """
    if not auto:
        return int(imgsz[0]), int(imgsz[1])
    h, w = frame_hw
    r = min(imgsz[0] / h, imgsz[1] / w)
    new_w, new_h = max(round(w * r), 1), max(round(h * r), 1)
    return new_h + (imgsz[0] - new_h) % stride, new_w + (imgsz[1] - new_w) % stride


def letterbox(bgr: np.ndarray, out_hw: tuple[int, int]) -> tuple[np.ndarray, LetterboxInfo]:
    """Resize and pad ``bgr`` (H, W, 3 uint8) into an ``out_hw`` image, keeping the aspect ratio.

    Returns:
        The padded BGR uint8 image of shape ``(*out_hw, 3)`` and the placement.
    """
    h, w = bgr.shape[:2]
    r = min(out_hw[0] / h, out_hw[1] / w)
    new_w, new_h = max(round(w * r), 1), max(round(h * r), 1)
    dw, dh = (out_hw[1] - new_w) / 2, (out_hw[0] - new_h) / 2
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    img = bgr if (w, h) == (new_w, new_h) else cv2.resize(bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    if top or bottom or left or right:
        img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    info = LetterboxInfo(frame_hw=(h, w), input_hw=(int(img.shape[0]), int(img.shape[1])),
                         gain=(new_w / w, new_h / h), pad=(left, top))
    return img, info


def to_blob(img: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """BGR uint8 (H, W, 3) -> RGB ``dtype`` (1, 3, H, W) in [0, 1] (uint8 / 255, as ultralytics divides)."""
    chw = np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1))
    blob = chw.astype(np.float32)
    blob /= 255.0
    return blob[None].astype(dtype, copy=False)


def scale_boxes(xyxy: np.ndarray, info: LetterboxInfo) -> np.ndarray:
    """Map ``(N, 4)`` xyxy boxes from network-input pixels to frame pixels (in place), clipped to the frame.

    Returns:
        ``xyxy`` itself.
    """
    pad_x, pad_y = info.pad
    gain_x, gain_y = info.gain
    xyxy[:, [0, 2]] -= pad_x
    xyxy[:, [1, 3]] -= pad_y
    xyxy[:, [0, 2]] /= gain_x
    xyxy[:, [1, 3]] /= gain_y
    h, w = info.frame_hw
    xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, w)
    xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, h)
    return xyxy
