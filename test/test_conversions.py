"""conversions.py: every malformed input is an InvalidImageError with its reason; good ones decode exactly."""

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from kd_traffic_light.conversions import (
    InvalidImageError,
    bgr_to_image_msg,
    detections_to_msg,
    image_msg_to_bgr,
    label_info_msg,
    msg_to_detections,
    validate_image_msg,
)
from kd_traffic_light.core.types import Detection

HDR = Header(stamp=Time(sec=5, nanosec=6), frame_id="cam")


def hdr() -> Header:
    return Header(stamp=Time(sec=5, nanosec=6), frame_id="cam")


def raw(encoding: str, arr: np.ndarray, pad: int = 0) -> Image:
    h, w = arr.shape[:2]
    row = arr[0].nbytes
    msg = Image(header=hdr(), height=h, width=w, encoding=encoding, step=row + pad)
    padded = np.zeros((h, row + pad), np.uint8)
    padded[:, :row] = arr.reshape(h, -1).view(np.uint8)
    msg.data = padded.tobytes()
    return msg


def test_rgb_with_row_padding_decodes_to_bgr():
    rgb = np.random.default_rng(0).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    out = image_msg_to_bgr(raw("rgb8", rgb, pad=7))
    assert np.array_equal(out, rgb[..., ::-1])


def test_mono16_big_endian():
    mono = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000
    msg = raw("mono16", mono.byteswap())
    msg.is_bigendian = 1
    out = image_msg_to_bgr(msg)
    assert out.shape == (3, 4, 3) and np.array_equal(out[..., 0], (mono * (255.0 / 65535.0)).astype(np.uint8))


def test_bgr_roundtrip_through_image_msg():
    img = np.random.default_rng(1).integers(0, 255, (6, 8, 3), dtype=np.uint8)
    assert np.array_equal(image_msg_to_bgr(bgr_to_image_msg(img, HDR)), img)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda m: setattr(m, "encoding", "weird8"), "unknown_encoding"),
        (lambda m: setattr(m, "step", 3), "bad_step"),
        (lambda m: setattr(m, "data", bytes(m.data)[:-1]), "bad_size"),
        (lambda m: setattr(m, "width", 0), "zero_size"),
        (lambda m: setattr(m.header, "stamp", Time()), "zero_stamp"),
        (lambda m: setattr(m.header, "frame_id", ""), "empty_frame_id"),
    ],
)
def test_malformed_raw_images_name_their_reason(mutate, reason):
    msg = raw("bgr8", np.zeros((4, 5, 3), np.uint8))
    mutate(msg)
    with pytest.raises(InvalidImageError) as err:
        validate_image_msg(msg)
        image_msg_to_bgr(msg)
    assert err.value.reason == reason


def test_too_many_pixels_rejected():
    with pytest.raises(InvalidImageError, match="max_image_pixels") as err:
        validate_image_msg(raw("mono8", np.zeros((10, 10), np.uint8)), max_pixels=99)
    assert err.value.reason == "too_large"


def test_compressed_good_truncated_and_garbage():
    img = np.full((16, 16, 3), (10, 120, 240), np.uint8)
    ok, jpeg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 100])
    good = CompressedImage(header=HDR, format="jpeg", data=jpeg.tobytes())
    assert np.abs(image_msg_to_bgr(good).astype(int) - img).max() <= 3
    for data, reason in [(jpeg.tobytes()[: len(jpeg) // 2], "corrupt_compressed"), (b"\x00" * 50, "corrupt_compressed"),
                         (b"", "zero_size")]:
        with pytest.raises(InvalidImageError) as err:
            image_msg_to_bgr(CompressedImage(header=HDR, format="jpeg", data=data))
        assert err.value.reason == reason


def test_detections_roundtrip_and_mapping():
    dets = [Detection(10, 20, 30, 60, 0.9, 0, "relevant"), Detection(0, 0, 4, 8, 0.3, 1, "not_relevant")]
    msg = detections_to_msg(dets, HDR)
    d0 = msg.detections[0]
    assert msg.header == HDR and d0.header == HDR
    assert (d0.bbox.center.position.x, d0.bbox.center.position.y, d0.bbox.size_x, d0.bbox.size_y) == (20, 40, 20, 40)
    assert d0.bbox.center.theta == 0.0 and d0.id == ""
    assert d0.results[0].hypothesis.class_id == "0" and d0.results[0].hypothesis.score == pytest.approx(0.9)
    assert msg_to_detections(msg, {0: "relevant", 1: "not_relevant"}) == dets
    named = detections_to_msg(dets, HDR, class_id_as_name=True)
    assert named.detections[1].results[0].hypothesis.class_id == "not_relevant"
    assert msg_to_detections(named, {0: "relevant", 1: "not_relevant"}) == dets


def test_label_info():
    info = label_info_msg({1: "not_relevant", 0: "relevant"}, 0.25, HDR)
    assert [(c.class_id, c.class_name) for c in info.class_map] == [(0, "relevant"), (1, "not_relevant")]
    assert info.threshold == pytest.approx(0.25)
