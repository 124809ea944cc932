"""Synthetic DTLD-format generator: layout, formats, determinism, scene content, rosbag."""

from __future__ import annotations

import json
import re

import cv2
import numpy as np

from training.data.dtld import ATTRIBUTE_VALUES, read_dtld_image
from training.data.synth import SynthConfig, make_synthetic_dtld, write_drive_bag

NAME = re.compile(r"^DE_BBBR667_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d-\d{6}_k0\.tiff$")
V1_OBJ = re.compile(r"^  - \{x: -?\d+, y: -?\d+, width: \d+, height: \d+, class_id: [1-4][0-4]\d[1-4][0-5]\d, "
                    r"unique_id: \d+, track_id: TrafficLight_\d+\}$")


def test_tree_layout_and_image_format(synthetic_dtld):
    root = synthetic_dtld.root
    for f in synthetic_dtld.frames:
        city, route, seq, name = f.key.split("/")
        assert route.startswith(city) and re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", seq) and NAME.match(name)
    raw = cv2.imread(str(root / synthetic_dtld.frames[0].key), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.shape == (1024, 2048) and raw.max() <= 3967
    bgr = read_dtld_image(root / synthetic_dtld.frames[0].key)
    assert 10 < bgr.mean() < 140  # DTLD look: dark scene
    assert bgr.max() > 180  # bright lamps
    for name in ("DTLD_all.json", "DTLD_train.json", "DTLD_test.json"):
        assert (root / "DTLD_Labels_v2.0" / "v2.0" / name).is_file()


def test_v2_json_has_every_attribute(synthetic_dtld):
    doc = json.loads(synthetic_dtld.v2["all"].read_text())
    assert len(doc["images"]) == len(synthetic_dtld.frames)
    for img in doc["images"]:
        assert img["image_path"].startswith("./")
        assert {"disparity_image_path", "time_stamp", "velocity", "yaw_rate", "longitude", "latitude"} <= img.keys()
        for lab in img["labels"]:
            assert set(lab["attributes"]) == set(ATTRIBUTE_VALUES)
            for k, v in lab["attributes"].items():
                assert v in ATTRIBUTE_VALUES[k]


def test_v1_yaml_line_layout(synthetic_dtld):
    lines = synthetic_dtld.v1["all"].read_text().splitlines()
    keys = ["path", "disp_path", "time_stamp", "velocity", "yaw_rate", "longitude", "latitude"]
    i, items = 0, 0
    while i < len(lines):
        assert lines[i] in ("- objects:", "- objects: []")
        i += 1
        while lines[i].startswith("  - {"):
            assert V1_OBJ.match(lines[i]), lines[i]
            i += 1
        for key in keys:
            assert lines[i].startswith(f"  {key}: "), lines[i]
            i += 1
        items += 1
    assert items == len(synthetic_dtld.frames)
    assert "/scratch/fs2/DTLD_final/" in lines[-6]


def test_deterministic_from_seed(tmp_path):
    cfg = SynthConfig(write_v1=False)
    a = make_synthetic_dtld(tmp_path / "a", 1, 1, seed=5, config=cfg)
    b = make_synthetic_dtld(tmp_path / "b", 1, 1, seed=5, config=cfg)
    files = sorted(p.relative_to(a.root) for p in a.root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b.root) for p in b.root.rglob("*") if p.is_file())
    assert all((a.root / f).read_bytes() == (b.root / f).read_bytes() for f in files)
    c = make_synthetic_dtld(tmp_path / "c", 1, 1, seed=6, config=cfg)
    assert c.frames[0].key != a.frames[0].key


def test_scene_content_and_sizes(synthetic_dtld):
    lights = [li for f in synthetic_dtld.frames for li in f.lights]
    attrs = {k: {li.attributes[k] for li in lights} for k in ATTRIBUTE_VALUES}
    assert {"relevant", "not_relevant"} <= attrs["relevance"]
    assert len(attrs["state"]) >= 4 and len(attrs["direction"]) >= 2
    # relevance follows the scene: every relevant light faces the ego vehicle with a circle pictogram
    assert all(li.attributes["direction"] == "front" and li.attributes["pictogram"] == "circle"
               for li in lights if li.cls == 0)
    short = [min(li.box[2] - li.box[0], li.box[3] - li.box[1]) for li in lights
             if li.attributes["direction"] == "front" and li.attributes["occlusion"] == "not_occluded"]
    assert np.median(short) >= 40  # demo preset: >= ~14 px after 2048 -> 512


def test_hard_preset_makes_tiny_lights(tmp_path):
    ds = make_synthetic_dtld(tmp_path / "hard", 2, 1, seed=1, config=SynthConfig(size_px=(3, 10), write_v1=False))
    short = [min(li.box[2] - li.box[0], li.box[3] - li.box[1]) for f in ds.frames for li in f.lights if li.box]
    assert short and np.median(short) <= 12


def test_drive_bag_round_trip(synthetic_dtld, tmp_path):
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore

    seq = synthetic_dtld.sequences()[0]
    bag = tmp_path / "drive"
    n = write_drive_bag(synthetic_dtld, seq, bag, resize_width=256)
    frames = [f for f in synthetic_dtld.frames if f.key.startswith(seq)]
    assert n == len(frames)
    ts = get_typestore(Stores.ROS2_HUMBLE)
    stamps, infos = [], 0
    with Reader(bag) as reader:
        assert any(p.suffix == ".mcap" for p in bag.iterdir())
        for conn, t, data in reader.messages():
            msg = ts.deserialize_cdr(data, conn.msgtype)
            assert msg.header.frame_id == "camera_left"
            assert t == msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            if conn.msgtype == "sensor_msgs/msg/Image":
                assert (msg.encoding, msg.width, msg.height) == ("bgr8", 256, 128)
                img = np.asarray(msg.data).reshape(128, 256, 3)
                ref = cv2.resize(read_dtld_image(synthetic_dtld.root / frames[len(stamps)].key), (256, 128),
                                 interpolation=cv2.INTER_AREA)
                assert np.array_equal(img, ref)
                stamps.append(t)
            else:
                infos += 1
                assert msg.k[0] == 2290.51 * 256 / 2048 and msg.distortion_model == "plumb_bob"
    assert infos == n and stamps == sorted(stamps) and len(set(stamps)) == n
    assert abs(stamps[0] / 1e9 - frames[0].time_stamp) < 1e-6


def test_cli_synth(tmp_path, capsys):
    from training.cli import main

    rc = main(["data", "synth", "--out", str(tmp_path / "t"), "--sequences", "1", "--frames", "1", "--no-v1"])
    assert rc == 0 and (tmp_path / "t" / "DTLD_Labels_v2.0" / "v2.0" / "DTLD_all.json").is_file()
    assert not (tmp_path / "t" / "DTLD_labels_v1.0").exists()
