"""The CDR reader of the raw subscription against rclpy's own serialisation."""

import numpy as np
import pytest
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image

from kd_traffic_light.cdr_image import CdrError, read_compressed, read_image


@pytest.mark.parametrize(("frame_id", "encoding", "w", "h", "pad", "big"),
                         [("cam", "bgr8", 5, 3, 0, 0), ("", "mono16", 4, 2, 6, 1),
                          ("camera_front_left", "rgb8", 1, 1, 1, 0), ("é", "bayer_rggb8", 7, 5, 3, 0),
                          ("abc", "", 0, 0, 0, 0)])
def test_image_fields_equal_rclpy(frame_id, encoding, w, h, pad, big):
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=big, step=w * 3 + pad)
    msg.header.frame_id, msg.header.stamp.sec, msg.header.stamp.nanosec = frame_id, -3, 999_999_999
    msg.data = np.random.default_rng(0).integers(0, 255, (h * (w * 3 + pad)), dtype=np.uint8).tobytes()
    v = read_image(serialize_message(msg))
    assert (v.header.stamp.sec, v.header.stamp.nanosec, v.header.frame_id) == (-3, 999_999_999, frame_id)
    assert (v.height, v.width, v.encoding, v.is_bigendian, v.step) == (h, w, encoding, big, w * 3 + pad)
    assert bytes(v.data) == bytes(msg.data)


def test_compressed_fields_equal_rclpy():
    msg = CompressedImage(format="jpeg", data=b"\xff\xd8abc\xff\xd9")
    msg.header.frame_id, msg.header.stamp.sec = "cam", 17
    v = read_compressed(serialize_message(msg))
    assert (v.header.stamp.sec, v.header.frame_id, v.format, bytes(v.data)) == (17, "cam", "jpeg", bytes(msg.data))


def test_truncated_or_foreign_bytes_raise():
    msg = Image(height=2, width=2, encoding="bgr8", step=6, data=bytes(12))
    raw = serialize_message(msg)
    for cut in (0, 3, 10, len(raw) - 1):
        with pytest.raises(CdrError):
            read_image(raw[:cut])
    with pytest.raises(CdrError, match="encapsulation"):
        read_image(b"\x00\x09" + raw[2:])
