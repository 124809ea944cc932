"""The benchmark's input: synthetic 2048x1024 street-like frames and their serialised ``sensor_msgs/Image``.

numpy at import; cv2 and rclpy only in the functions that need them (the core worker runs in the runtime venv).
"""

from __future__ import annotations

import numpy as np

WIDTH, HEIGHT = 2048, 1024


def make_frames(n: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Synthetic 2048x1024 street-like frames: gradient sky, noise, a few lit lamp housings."""
    import cv2

    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        y = np.linspace(0, 1, HEIGHT, dtype=np.float32)[:, None, None]
        img = (np.array([200, 150, 90], np.float32) * (1 - y) + np.array([60, 60, 60], np.float32) * y)
        img = np.broadcast_to(img, (HEIGHT, WIDTH, 3)) + rng.normal(0, 12, (HEIGHT, WIDTH, 3))
        img = np.clip(img, 0, 255).astype(np.uint8)
        for _ in range(6):
            x0, y0 = int(rng.integers(0, WIDTH - 40)), int(rng.integers(50, HEIGHT // 2))
            w, h = int(rng.integers(10, 30)), int(rng.integers(25, 80))
            cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), (20, 20, 20), -1)
            lamp = [(0, 0, 255), (0, 200, 255), (0, 255, 0)][int(rng.integers(0, 3))]
            cv2.circle(img, (x0 + w // 2, y0 + h // 4), max(2, w // 3), lamp, -1)
        frames.append(np.ascontiguousarray(img))
    return frames


def image_msg(bgr: np.ndarray) -> bytes:
    """Serialize the frame as a sensor_msgs/Image (plain CDR, little endian); the stamp is patched per send.

    Publishing these bytes (rclpy's raw publish) keeps the load generator cheap: converting a 6.3 MB
    message to C and serialising it for every send would cost this process more CPU than the node's
    transport, on the same cores.
    """
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header.frame_id = "camera"
    msg.height, msg.width = bgr.shape[:2]
    msg.encoding, msg.is_bigendian, msg.step = "bgr8", 0, bgr.shape[1] * 3
    msg.data = bgr.tobytes()  # bytes: an ndarray assignment costs ~50x more
    raw = serialize_message(msg)
    assert raw[:2] == b"\x00\x01", "expected plain little-endian CDR"
    return raw
