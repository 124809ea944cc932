"""Synthetic DTLD-format generator: layout, formats, determinism, scene content, rosbag."""

from __future__ import annotations

import hashlib
import json
import re

import cv2
import numpy as np
import pytest

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


# A tiny dataset pinned byte for byte: the generator is a pure function of the seed, and moving code
# around must not change what it writes. Label files and ground truth by sha256; images by the sums of
# their 12-bit codes over four row bands (OpenCV's float blur may round a last bit differently on another
# CPU, which moves a band by a few codes; a changed draw or RNG order moves it by hundreds or more).
# Change these only with an intended change of the generated data.
PINNED_FILES = {
    "DTLD_Labels_v2.0/v2.0/Berlin.json": "a19fa1e6aed260532cde49a71702dd988acf688f21260e927be42ef919778774",
    "DTLD_Labels_v2.0/v2.0/Bochum.json": "8f36d6770a6d346a727f3b66f03b527e6c9f4f3f80e82453f48216b58aee07ae",
    "DTLD_Labels_v2.0/v2.0/DTLD_all.json": "8548a8341b8277d4c521725bcb8bcf14364105b050571b76ee30b12b86af6cd2",
    "DTLD_Labels_v2.0/v2.0/DTLD_test.json": "ec6beb0e526787c64e342df172a9e718756b0410bf6fbae048175869def0fd10",
    "DTLD_Labels_v2.0/v2.0/DTLD_train.json": "8548a8341b8277d4c521725bcb8bcf14364105b050571b76ee30b12b86af6cd2",
    "DTLD_labels_v1.0/DTLD_all.yml": "26d0d63c5c45c3d02e124279af0edafc315c6debe571c366d07c2ebf24aeb275",
    "DTLD_labels_v1.0/DTLD_test.yml": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "DTLD_labels_v1.0/DTLD_train.yml": "26d0d63c5c45c3d02e124279af0edafc315c6debe571c366d07c2ebf24aeb275",
    "synth_ground_truth.json": "5f26f7d3e73bc9ce85d58e8d84e65885d0db88f000e6b9baf90ad68a9be031ba",
}
PINNED_BAND_SUMS = [
    [292008090, 236550332, 95399727, 77887715], [283174998, 239005492, 95776239, 78041054],
    [224890529, 179654259, 59350202, 56525723], [221652088, 182632576, 59257584, 56615316],
]


def test_output_pinned_for_seed(tmp_path):
    cfg = SynthConfig(reflection_p=1.0, occlusion_p=0.5, tiny_fraction=0.3, dusk_fraction=0.5)
    ds = make_synthetic_dtld(tmp_path / "pinned", 2, 2, seed=3, config=cfg)
    labels = {p.relative_to(ds.root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
              for p in ds.root.rglob("*") if p.is_file() and p.suffix != ".tiff"}
    assert labels == PINNED_FILES
    bands = [cv2.imread(str(ds.root / f.key), cv2.IMREAD_UNCHANGED).astype(np.int64).reshape(4, -1).sum(1).tolist()
             for f in ds.frames]
    assert np.abs(np.array(bands) - np.array(PINNED_BAND_SUMS)).max() <= 100, bands


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


# lamps="camera": DTLD's state shares and the German order, the camera look of lit and unlit lamps.

def _camera_lights(n_scenes: int, n_frames: int):
    from training.data.synth.scene import _sample_lights

    cfg = SynthConfig(lamps="camera")
    for i in range(n_scenes):  # scene sampling only: the lights, no buildings, no rendering
        yield _sample_lights(np.random.default_rng([i, 0]), cfg, 40.0, n_frames, np.random.default_rng([i, 0, 7]))


def test_camera_start_states_have_dtld_shares():
    from training.data.synth.scene import DTLD_STATE_SHARES

    n = 2000
    starts = [next(li for li in lights if li.relevant).states[0] for lights in _camera_lights(n, 1)]
    total = sum(DTLD_STATE_SHARES.values())
    assert set(starts) == set(DTLD_STATE_SHARES)
    for state, share in DTLD_STATE_SHARES.items():
        p = share / total
        assert abs(starts.count(state) / n - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-3, (state, starts.count(state))


def test_uniform_state_shares_start_every_state_alike_and_keep_the_layout():
    from dataclasses import replace

    from training.data.synth.scene import _sample_lights

    cfg = SynthConfig(lamps="camera")
    uniform = replace(cfg, state_shares="uniform")
    n, starts = 2000, []
    for i in range(n):
        a = _sample_lights(np.random.default_rng([i, 0]), cfg, 40.0, 1, np.random.default_rng([i, 0, 7]))
        b = _sample_lights(np.random.default_rng([i, 0]), uniform, 40.0, 1, np.random.default_rng([i, 0, 7]))
        assert [(li.x, li.z, li.pictogram) for li in a] == [(li.x, li.z, li.pictogram) for li in b]
        starts.append(next(li for li in b if li.relevant).states[0])
    for state in ("red", "yellow", "red_yellow", "green", "off"):  # each 1/5: within 4 standard errors
        assert abs(starts.count(state) / n - 0.2) < 4 * np.sqrt(0.2 * 0.8 / n), (state, starts.count(state))
    with pytest.raises(ValueError, match="state_shares.*'uniform' with lamps 'camera'"):
        replace(cfg, lamps="flat", state_shares="uniform")
    with pytest.raises(ValueError, match="state_shares: expected one of 'dtld', 'uniform'.*'balanced'"):
        replace(cfg, state_shares="balanced")


def test_camera_phases_follow_the_german_order():
    from training.data.synth.scene import GERMAN_NEXT

    changes, runs = set(), {"red_yellow": [], "yellow": []}
    for lights in _camera_lights(2000, 60):
        for li in lights:
            if li.pictogram in ("pedestrian", "tram"):  # held through the drive, red / green / off only
                assert len(set(li.states)) == 1 and li.states[0] in ("red", "green", "off")
                continue
            if li.relevant or li.pictogram.startswith("arrow"):
                run = 1
                for a, b in zip(li.states, li.states[1:]):
                    if a == b:
                        run += 1
                        continue
                    assert b == GERMAN_NEXT.get(a), (a, b)
                    if a in runs and li.states[0] != a:  # a complete run (no state recurs within 6 s)
                        runs[a].append(run)
                    changes.add((a, b))
                    run = 1
    assert changes == set(GERMAN_NEXT.items())  # every step of the cycle happens in some drive
    # at 0.1 s per frame: red+yellow 1 s, yellow 3-4 s
    assert runs["red_yellow"] and all(9 <= r <= 11 for r in runs["red_yellow"])
    assert runs["yellow"] and all(29 <= r <= 41 for r in runs["yellow"])


def test_flat_scene_draws_nothing_new():
    from training.data.synth.scene import _sample_scene

    flat = _sample_scene(np.random.default_rng([4, 1]), SynthConfig(), 3)
    cam = _sample_scene(np.random.default_rng([4, 1]), SynthConfig(lamps="camera"), 3)
    assert "camera" not in flat and all(li.look is None for li in flat["lights"])
    assert "camera" in cam and all(li.look is not None for li in cam["lights"])
    # the camera mode keeps every layout draw: same lights in the same places, same buildings
    assert [(li.x, li.y, li.z, li.scale) for li in flat["lights"]] == [(li.x, li.y, li.z, li.scale)
                                                                      for li in cam["lights"]]
    assert flat["buildings"] == cam["buildings"] and flat["speed"] == cam["speed"]


def _lamp_hsv(state: str, lamp: int, seed: int = 1):
    """HSV (H in degrees) of a rendered head's lamp ``lamp`` and the lamp radius rho of each pixel."""
    from training.data.synth.crops import CropLook, render_light

    bgr, (x, y, w, h) = render_light(state, CropLook(height=50, neutral=True), "camera", seed=seed)
    cell = h / 3
    r = 0.36 * min(cell, w)
    yy, xx = np.mgrid[:bgr.shape[0], :bgr.shape[1]]
    rho = np.hypot(xx - (x + w / 2), yy - (y + (lamp + 0.5) * cell)) / r
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV).astype(np.float64)
    hsv[..., 0] *= 2
    return hsv, rho


def _ring_hue(hsv, rho) -> float:
    ring = hsv[(rho > 0.7) & (rho < 1.5) & (hsv[..., 1] > 150) & (hsv[..., 2] > 100)]
    assert len(ring) > 50  # a saturated coloured rim and halo
    hue = np.where(ring[:, 0] > 270, ring[:, 0] - 360, ring[:, 0])
    return float(np.median(hue))


def test_camera_lit_lamps_white_core_coloured_rim():
    hues = {}
    for state, lamp in (("red", 0), ("yellow", 1), ("green", 2)):
        hsv, rho = _lamp_hsv(state, lamp)
        core = hsv[rho < 0.25].mean(0)
        assert core[2] > 220 and core[1] < 80, (state, core)  # over-exposed, nearly white
        hues[state] = _ring_hue(hsv, rho)
    assert -2 <= hues["red"] <= 12 and 25 <= hues["yellow"] <= 50 and 120 <= hues["green"] <= 170, hues
    assert hues["yellow"] - hues["red"] >= 15
    for lamp in (0, 1):  # red+yellow lights both
        hsv, rho = _lamp_hsv("red_yellow", lamp)
        assert hsv[rho < 0.25][:, 2].mean() > 220


def test_camera_unlit_lamp_dark_but_visible():
    lit_hsv, lit_rho = _lamp_hsv("red", 0)
    off_hsv, off_rho = _lamp_hsv("off", 0)
    lit, off = lit_hsv[lit_rho < 0.8][:, 2].mean(), off_hsv[off_rho < 0.8][:, 2].mean()
    assert 15 < off < lit - 100, (off, lit)
    housing = off_hsv[(off_rho > 1.1) & (off_rho < 1.3)][:, 2].mean()
    assert off > housing  # the tinted lens shows against the housing


def test_lamps_value_checked():
    with pytest.raises(ValueError, match=r"lamps.*'flat'.*'camera'"):
        SynthConfig(lamps="bright")


def test_camera_dataset_same_layout_and_recorded(tmp_path):
    flat = make_synthetic_dtld(tmp_path / "flat", 1, 1, seed=2, config=SynthConfig(write_v1=False))
    cam = make_synthetic_dtld(tmp_path / "cam", 1, 1, seed=2, config=SynthConfig(write_v1=False, lamps="camera"))
    assert [li.box for li in flat.frames[0].lights] == [li.box for li in cam.frames[0].lights]
    assert "lamps" not in json.loads((flat.root / "synth_ground_truth.json").read_text())["config"]
    assert json.loads((cam.root / "synth_ground_truth.json").read_text())["config"]["lamps"] == "camera"


def test_cli_synth_lamps_and_crops(tmp_path, capsys):
    from training.cli import main

    rc = main(["data", "synth", "--out", str(tmp_path / "t"), "--sequences", "1", "--frames", "1", "--no-v1",
               "--lamps", "camera"])
    doc = json.loads((tmp_path / "t" / "synth_ground_truth.json").read_text())
    assert rc == 0 and doc["config"]["lamps"] == "camera"
    rc = main(["data", "synth-crops", "--out", str(tmp_path / "grid.png"), "--per-state", "1", "--lamps", "flat"])
    grid = cv2.imread(str(tmp_path / "grid.png"))
    assert rc == 0 and grid is not None and grid.shape[0] > 5 * 100


def test_camera_tram_signal_shows_its_state_as_the_bar_orientation():
    # a tram head's lamps are white whatever the state: stop (red) is a horizontal bar, go (green) a vertical one,
    # else the two states would look alike and no model could tell them apart
    from training.data.synth.crops import CropLook, render_light

    extents = {}
    for state in ("red", "green"):
        bgr, (x, y, w, h) = render_light(state, CropLook(height=60, pictogram="tram", neutral=True), "camera", seed=3)
        top = bgr[y: y + h // 3, x: x + w].max(axis=2).astype(np.float32)  # the lit first lamp
        ys, xs = np.nonzero(top > 0.8 * top.max())
        extents[state] = (np.ptp(xs), np.ptp(ys))
    (red_w, red_h), (green_w, green_h) = extents["red"], extents["green"]
    assert red_w > red_h and green_h > green_w, extents


def test_drive_truth_matches_the_bag_stamps_and_the_relevant_lights(synthetic_dtld, tmp_path):
    from rosbags.rosbag2 import Reader

    from kd_traffic_light.tools.signal_eval import read_truth
    from training.data.synth import write_drive_truth

    seq = synthetic_dtld.sequences()[0]
    n = write_drive_truth(synthetic_dtld, seq, tmp_path / "truth.json", resize_width=256)
    write_drive_bag(synthetic_dtld, seq, tmp_path / "drive", resize_width=256)
    truth = read_truth(tmp_path / "truth.json")
    with Reader(tmp_path / "drive") as reader:
        stamps = [t for conn, t, _ in reader.messages() if conn.msgtype == "sensor_msgs/msg/Image"]
    assert [f["stamp_ns"] for f in truth] == stamps and n == len(stamps)
    frames = sorted((f for f in synthetic_dtld.frames if f.key.startswith(seq)), key=lambda f: f.time_stamp)
    for f, t in zip(frames, truth):
        shown = {li.attributes["state"] for li in f.lights if li.cls == 0 and li.box is not None
                 and li.attributes["reflection"] != "reflected"}
        assert (t["state"] is None) == (not shown) and (t["state"] in shown or t["state"] is None)
        # every head in view, its box in the bag's pixels (2048 -> 256: an eighth)
        heads = [li for li in f.lights if li.box is not None and li.attributes["reflection"] != "reflected"]
        assert [(h["track"], h["state"], h["relevant"]) for h in t["lights"]] == [
            (li.track_id, li.attributes["state"], li.cls == 0) for li in heads]
        assert [h["box"] for h in t["lights"]] == [[round(v / 8, 1) for v in li.box] for li in heads]


def test_short_phases_change_within_a_drive_and_the_dataset_reads_back(tmp_path):
    from dataclasses import replace

    from training.data.synth import PRESETS, SynthDataset

    cfg = replace(PRESETS["demo"], lamps="camera", frame_interval_s=1 / 15, phase_s=(0.5, 1.0), extra_lights=(0, 0),
                  distractors=(0, 0), test_fraction=0.0, write_v1=False)
    ds = make_synthetic_dtld(tmp_path / "dtld", 1, 30, seed=3, config=cfg)
    states = [f.signal_state() for f in sorted(ds.frames, key=lambda f: f.time_stamp) if f.signal_state()]
    assert len(set(states)) >= 2 or states[0] == "off"  # 2 s of 0.5-1 s phases change (a dark signal stays dark)
    back = SynthDataset.load(tmp_path / "dtld")
    assert [(f.key, f.time_stamp, f.signal_state()) for f in back.frames] == \
        [(f.key, f.time_stamp, f.signal_state()) for f in ds.frames]
    assert json.loads((tmp_path / "dtld" / "synth_ground_truth.json").read_text())["config"]["phase_s"] == [0.5, 1.0]


def test_a_truck_ahead_hides_the_lights_for_a_while_and_changes_nothing_else(tmp_path):
    from dataclasses import replace

    from training.data.synth import PRESETS

    cfg = replace(PRESETS["demo"], lamps="camera", frame_interval_s=1 / 15, speed_mps=(1.0, 2.0), test_fraction=0.0,
                  write_v1=False, size_px=(104.0, 208.0), tiny_fraction=0.0)
    plain = make_synthetic_dtld(tmp_path / "plain", 1, 60, seed=3, config=cfg)
    truck = make_synthetic_dtld(tmp_path / "truck", 1, 60, seed=3, config=replace(cfg, truck_p=1.0))

    def relevant(ds):
        return [sorted((li.track_id, li.attributes["state"], li.box) for li in f.lights if li.cls == 0)
                for f in sorted(ds.frames, key=lambda f: f.time_stamp)]

    a, b = relevant(plain), relevant(truck)
    assert all(set(y) <= set(x) for x, y in zip(a, b))  # the truck only takes lights away, boxes and states kept
    hidden = [i for i, (x, y) in enumerate(zip(a, b)) if len(y) < len(x)]
    assert hidden and len(hidden) < len(a)  # for a while, not the whole drive
    assert json.loads((tmp_path / "truck" / "synth_ground_truth.json").read_text())["config"]["truck_p"] == 1.0


def _share(a, b):
    """Share of the smaller of two (x, y, w, h) boxes that the other covers."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0, iw) * max(0, ih) / min(a[2] * a[3], b[2] * b[3])


def test_heads_kept_apart_are_the_same_lights_less_those_behind_another(tmp_path):
    from dataclasses import replace

    from training.data.synth import PRESETS

    cfg = replace(PRESETS["demo"], lamps="camera", size_px=(104.0, 208.0), tiny_fraction=0.0, extra_lights=(4, 6),
                  test_fraction=0.0, write_v1=False)
    every = make_synthetic_dtld(tmp_path / "every", 6, 3, seed=5, config=cfg)
    apart = make_synthetic_dtld(tmp_path / "apart", 6, 3, seed=5, config=replace(cfg, max_light_overlap=0.1))

    def lights(ds):
        return [{(li.track_id, li.attributes["state"], li.x, li.y, li.w, li.h) for li in f.lights} for f in ds.frames]

    a, b = lights(every), lights(apart)
    assert all(y <= x for x, y in zip(a, b)) and sum(map(len, b)) < sum(map(len, a))  # a subset, unchanged
    crowded = sum(any(_share(p[2:], q[2:]) > 0.1 for p in x for q in x if p < q) for x in a)
    assert crowded  # the default layout stacks heads at these sizes ...
    for frame in apart.frames:  # ... kept apart, none covers more than 0.1 of another in any frame
        boxes = [(li.x, li.y, li.w, li.h) for li in frame.lights]
        assert all(_share(p, q) <= 0.1 + 1e-9 for i, p in enumerate(boxes) for q in boxes[i + 1:])
    assert json.loads((tmp_path / "apart" / "synth_ground_truth.json").read_text())["config"]["max_light_overlap"] \
        == 0.1
    with pytest.raises(ValueError, match=r"max_light_overlap: expected a share in \[0, 1\], got 1.5"):
        replace(cfg, max_light_overlap=1.5)


def test_a_head_whose_lit_lamp_is_hidden_is_labelled_unknown_and_keeps_its_signal_state():
    from training.data.synth.render import seen_state
    from training.data.synth.scene import LightSpec

    head = LightSpec(0.0, 3.0, 40.0, 1.0, "vertical", 3, "front", True, "circle", ["red"], None)
    box = (100, 100, 30, 90)  # lamps centred at y 115 (red), 145 (yellow), 175 (green)
    assert seen_state(head, box, "red", 2048, 1024) == "red"
    assert seen_state(head, (100, -20, 30, 90), "red", 2048, 1024) == "unknown"   # red lamp above the frame
    assert seen_state(head, (100, -20, 30, 90), "green", 2048, 1024) == "green"   # only unlit lamps left it
    head.occluder = (0.0, 0.0, 1.0, 0.4)                                          # covers the top lamp
    assert seen_state(head, box, "red", 2048, 1024) == "unknown"
    assert seen_state(head, box, "red_yellow", 2048, 1024) == "unknown"          # one of two lit lamps hidden
    assert seen_state(head, box, "green", 2048, 1024) == "green"
    assert seen_state(head, box, "off", 2048, 1024) == "off"


def test_seen_labels_change_only_states_and_the_signal_truth_keeps_the_phase(tmp_path):
    from dataclasses import replace

    from training.data.synth import PRESETS, SynthDataset

    cfg = replace(PRESETS["demo"], lamps="camera", size_px=(104.0, 208.0), tiny_fraction=0.0, occlusion_p=0.6,
                  test_fraction=0.0, write_v1=False)
    phase = make_synthetic_dtld(tmp_path / "phase", 6, 3, seed=5, config=cfg)
    seen = make_synthetic_dtld(tmp_path / "seen", 6, 3, seed=5, config=replace(cfg, state_label="seen"))
    changed = 0
    for p, s in zip(phase.frames, seen.frames, strict=True):
        assert [(li.track_id, li.box) for li in p.lights] == [(li.track_id, li.box) for li in s.lights]
        assert p.signal_state() == s.signal_state()
        for a, b in zip(p.lights, s.lights, strict=True):
            assert a.phase is None and b.phase == a.attributes["state"]
            assert b.attributes["state"] in (a.attributes["state"], "unknown")
            changed += b.attributes["state"] != a.attributes["state"]
    assert changed  # some heads' lit lamps are hidden at these sizes and occluders
    assert "phase" not in json.dumps(json.loads((tmp_path / "phase" / "synth_ground_truth.json").read_text()))
    back = SynthDataset.load(tmp_path / "seen")
    assert [[li.phase for li in f.lights] for f in back.frames] == [[li.phase for li in f.lights] for f in seen.frames]
    with pytest.raises(ValueError, match="state_label.*'seen' with lamps 'camera'"):
        replace(cfg, lamps="flat", state_label="seen")
