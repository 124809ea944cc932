"""Bag writer: one synthetic drive sequence as a rosbag2 (mcap) with sensor_msgs/Image and CameraInfo."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from training.data.synth.camera import D_LEFT, K_LEFT, P_LEFT, R_LEFT
from training.data.synth.model import SynthDataset

#: Width of a DTLD (and synthetic) frame in pixels; truth boxes are scaled to the bag's width.
DTLD_WIDTH = 2048


def _camera_info(ts: Any, header: Any, h: int, w: int, s: float) -> Any:
    """Build the CameraInfo of the DTLD left camera with the intrinsics scaled by ``s`` (the image resize factor)."""
    Info, Roi = ts.types["sensor_msgs/msg/CameraInfo"], ts.types["sensor_msgs/msg/RegionOfInterest"]
    k = np.array(K_LEFT, np.float64) * np.array([s, 1, s, 1, s, s, 1, 1, 1]) if s != 1.0 else np.array(K_LEFT)
    p = np.array(P_LEFT, np.float64)
    p[[0, 2, 5, 6]] *= s
    return Info(header=header, height=h, width=w, distortion_model="plumb_bob",
                d=np.array(D_LEFT, np.float64), k=k, r=np.array(R_LEFT, np.float64), p=p,
                binning_x=0, binning_y=0,
                roi=Roi(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


def stamp_ns(time_stamp: float) -> int:
    """Return the bag stamp (ns) of a frame's DTLD time stamp (seconds, microsecond resolution)."""
    return int(round(time_stamp * 1e6)) * 1000


def _frame_messages(ts: Any, path: Path, time_stamp: float, frame_id: str, resize_width: int | None
                    ) -> tuple[int, Any, Any]:
    """Build (stamp in ns, Image, CameraInfo) of one frame: the official 8-bit decode, optionally resized."""
    import cv2

    from training.data.dtld import read_dtld_image

    Image = ts.types["sensor_msgs/msg/Image"]
    Header, Time = ts.types["std_msgs/msg/Header"], ts.types["builtin_interfaces/msg/Time"]
    bgr = read_dtld_image(path)
    s = 1.0
    if resize_width:
        s = resize_width / bgr.shape[1]
        bgr = cv2.resize(bgr, (resize_width, round(bgr.shape[0] * s)), interpolation=cv2.INTER_AREA)
    ns = stamp_ns(time_stamp)
    header = Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id=frame_id)
    h, w = bgr.shape[:2]
    img = Image(header=header, height=h, width=w, encoding="bgr8", is_bigendian=0, step=w * 3,
                data=np.ascontiguousarray(bgr).reshape(-1))
    return ns, img, _camera_info(ts, header, h, w, s)


def write_drive_bag(dataset: SynthDataset, sequence: str, bag: str | os.PathLike,
                    image_topic: str = "/camera/image_raw", info_topic: str = "/camera/camera_info",
                    frame_id: str = "camera_left", resize_width: int | None = None) -> int:
    """Write one drive sequence as a rosbag2 (mcap) with sensor_msgs/Image (bgr8) and CameraInfo.

    The image is the official 8-bit decode of the TIFF (optionally resized, intrinsics scaled alike);
    stamps are the frames' DTLD time stamps, also used as the bag receive times.

    Args:
        dataset: from :func:`~training.data.synth.make_synthetic_dtld`.
        sequence: ``City/Route/Sequence`` (see :meth:`SynthDataset.sequences`).
        bag: output bag directory (must not exist).
        image_topic: Image topic.
        info_topic: CameraInfo topic.
        frame_id: header frame id of both.
        resize_width: optional output width (aspect kept).

    Returns:
        Number of frames written.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    frames = [f for f in dataset.frames if f.key.rsplit("/", 1)[0] == sequence]
    if not frames:
        raise ValueError(f"sequence {sequence!r} not in dataset; have {dataset.sequences()}")
    ts = get_typestore(Stores.ROS2_HUMBLE)
    image_type = ts.types["sensor_msgs/msg/Image"].__msgtype__
    info_type = ts.types["sensor_msgs/msg/CameraInfo"].__msgtype__
    with Writer(Path(bag), version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP) as writer:
        c_img = writer.add_connection(image_topic, image_type, typestore=ts)
        c_info = writer.add_connection(info_topic, info_type, typestore=ts)
        for frame in frames:
            ns, img, info = _frame_messages(ts, dataset.root / frame.key, frame.time_stamp, frame_id, resize_width)
            writer.write(c_img, ns, ts.serialize_cdr(img, image_type))
            writer.write(c_info, ns, ts.serialize_cdr(info, info_type))
    return len(frames)


def write_drive_truth(dataset: SynthDataset, sequence: str, path: str | os.PathLike,
                      resize_width: int | None = None) -> int:
    """Write the true state of the governing signal, and of every head in view, per frame of a drive.

    JSON ``{"frames": [{"stamp_ns": int, "state": str | null, "lights": [{"track": str, "state": str,
    "relevant": bool, "box": [x1, y1, x2, y2]}]}, ...]}`` in stamp order (``state`` ``null``: no relevant light
    in view; boxes in the pixels of a bag written with the same ``resize_width``; reflections left out).
    ``bag_eval --truth`` scores the nodes' signal and per-light tracks against it. Returns the number of frames.
    """
    from kd_traffic_light.core.atomic_io import atomic_write_json

    frames = sorted((f for f in dataset.frames if f.key.rsplit("/", 1)[0] == sequence), key=lambda f: f.time_stamp)
    if not frames:
        raise ValueError(f"sequence {sequence!r} not in dataset; have {dataset.sequences()}")
    scale = (resize_width or DTLD_WIDTH) / DTLD_WIDTH
    atomic_write_json(Path(path), {"sequence": sequence, "frames": [
        {"stamp_ns": stamp_ns(f.time_stamp), "state": f.signal_state(), "lights": [
            {"track": li.track_id, "state": li.signal, "relevant": li.cls == 0,
             "box": [round(v * scale, 1) for v in li.box]}
            for li in f.lights if li.box is not None and li.attributes.get("reflection") != "reflected"]}
        for f in frames]})
    return len(frames)
