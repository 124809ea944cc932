"""Each class of bad input gives its error or counted warning (file + field), the rest still converts."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from test.training.data.helpers_dtld import read_yolo
from training.cli import main as cli_main
from training.data.dtld import ConvertOptions, DtldFormatError, convert_dtld, load_labels


def _light(x, y, w, h, **attrs):
    base = {"direction": "front", "relevance": "relevant", "occlusion": "not_occluded",
            "orientation": "vertical", "aspects": "three_aspects", "state": "red", "pictogram": "circle",
            "reflection": "not_reflected"}
    return {"x": x, "y": y, "w": w, "h": h, "unique_id": 1, "track_id": "1", "attributes": {**base, **attrs}}


@pytest.fixture()
def bad_tree(synthetic_dtld, tmp_path):
    root = tmp_path / "dtld"
    keys = [f.key for f in synthetic_dtld.frames[:3]]
    for key in keys:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(synthetic_dtld.root / key, root / key)
    seq = keys[0].rsplit("/", 1)[0]
    data = (root / keys[1]).read_bytes()
    (root / seq / "truncated_k0.tiff").write_bytes(data[: len(data) // 2])
    cv2.imwrite(str(root / seq / "small_k0.tiff"), np.zeros((512, 1024), np.uint16))
    images = [
        {"image_path": f"./{keys[0]}", "labels": [
            _light(10, 20, 30, 90), _light(2030, 500, 40, 90, relevance="not_relevant"),
            _light(100, 100, 20, 60, state="purple"), {"x": "12", "y": 1, "w": 2, "h": 3}]},
        {"image_path": f"./{seq}/missing_k0.tiff", "labels": []},
        {"image_path": f"./{seq}/truncated_k0.tiff", "labels": [_light(1, 1, 5, 5)]},
        {"image_path": f"./{seq}/small_k0.tiff", "labels": [_light(1, 1, 5, 5)]},
        {"image_path": f"./{keys[0]}", "labels": []},
        {"image_path": f"./{keys[2]}", "labels": [_light(-50, 10, 20, 40), _light(500, 300, 10, 30,
                                                                             relevance="maybe")]},
    ]
    label = root / "bad.json"
    label.write_text(json.dumps({"images": images}))
    return root, label, keys


def test_bad_inputs_are_counted_and_named(bad_tree, tmp_path):
    root, label, keys = bad_tree
    out = tmp_path / "out"
    summary = convert_dtld(root, out, ConvertOptions(train=[label]), progress=False)
    counts = summary["warning_counts"]
    assert counts["missing_image"] == 1 and summary["missing_files"] == 1
    assert counts["unreadable_image"] == 1
    assert counts["wrong_size"] == 1
    assert counts["duplicate_image"] == 1
    assert counts["malformed_entry"] == 1
    assert counts["unknown_attribute"] == 2  # state "purple", relevance "maybe"
    assert counts["box_outside_image"] == 2  # one clipped, one empty after clipping
    by_kind = {w["kind"]: w for w in summary["warnings"]}
    assert by_kind["missing_image"]["file"] == "bad.json"
    assert by_kind["missing_image"]["field"] == "images[1].image_path"
    assert by_kind["wrong_size"]["field"] == "images[3].image_path"
    assert "1024x512" in by_kind["wrong_size"]["message"]
    assert by_kind["duplicate_image"]["field"] == "images[4].image_path"
    assert any(w["field"] == "images[0].labels[2].attributes.state" for w in summary["warnings"])
    # the good images still convert, with the clipped box and without the empty one
    got = read_yolo(out)
    assert got == {keys[0]: [(0, (10, 20, 40, 110)), (0, (100, 100, 120, 160)), (1, (2030, 500, 2048, 590))],
                   keys[2]: []}
    split = summary["splits"]["train"]
    assert split["images"] == 2 and split["images_failed"] == 3
    assert split["clipped"] == 1 and split["dropped_empty"] == 1 and split["dropped_unknown_relevance"] == 1


def test_malformed_json_is_an_error_naming_the_position(tmp_path):
    bad = tmp_path / "DTLD_train.json"
    bad.write_text('{"images": [\n {"image_path": "./a/b/c/d.tiff",,}]}')
    with pytest.raises(DtldFormatError, match=r"DTLD_train.json: malformed JSON at line 2"):
        load_labels(bad, [])
    (tmp_path / "noimages.json").write_text('{"frames": []}')
    with pytest.raises(DtldFormatError, match="'images'"):
        load_labels(tmp_path / "noimages.json", [])


def test_malformed_yaml_is_an_error_and_cli_exits_2(tmp_path, capsys):
    bad = tmp_path / "DTLD_train.yml"
    bad.write_text("- objects: [\n  path: /x/a/b/c/d.tiff\n")
    with pytest.raises(DtldFormatError, match="DTLD_train.yml: malformed YAML"):
        load_labels(bad, [])
    rc = cli_main(["data", "convert-dtld", "--root", str(tmp_path), "--out", str(tmp_path / "o"),
                   "--train", str(bad), "--no-progress"])
    assert rc == 2 and "malformed YAML" in capsys.readouterr().err


def test_v1_unknown_digit_and_bad_class_id_are_counted(tmp_path):
    text = (
        "- objects:\n"
        "  - {x: 10, y: 20, width: 8, height: 23, class_id: 112346, unique_id: 1, track_id: TrafficLight_1}\n"
        "  - {x: 30, y: 20, width: 8, height: 23, class_id: 1234, unique_id: 2, track_id: TrafficLight_2}\n"
        "  - {x: 50, y: 20, width: 8, height: 23, class_id: 132340, unique_id: 3, track_id: TrafficLight_3}\n"
        "  - {x: 70, y: 20, width: 8, height: 23, class_id: 142340, unique_id: 4, track_id: TrafficLight_4}\n"
        "  path: /scratch/fs2/DTLD_final/Essen/Essen1/2015-04-20_11-20-03/"
        "DE_BBBR667_2015-04-20_11-20-11-123456_k0.tiff\n"
        "  latitude: 51.4\n"
    )
    (tmp_path / "a.yml").write_text(text)
    warns = []
    frames = load_labels(tmp_path / "a.yml", warns)
    assert frames[0].key == "Essen/Essen1/2015-04-20_11-20-03/DE_BBBR667_2015-04-20_11-20-11-123456_k0.tiff"
    rel = [li.attributes["relevance"] for li in frames[0].lights]
    assert rel == ["relevant", "relevant", "not_relevant"]  # digit 2: 1 and 3 relevant, 4 (occluded) not
    assert frames[0].lights[2].attributes["occlusion"] == "occluded"
    assert [(w.kind, w.field) for w in warns] == [("unknown_attribute", "[0].objects[0].class_id"),
                                                  ("malformed_entry", "[0].objects[1].class_id")]


def test_unknown_label_file_type(tmp_path):
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ValueError, match="unknown label file type"):
        load_labels(tmp_path / "x.txt", [])
    with pytest.raises(FileNotFoundError, match="label file not found"):
        load_labels(tmp_path / "nope.json", [])
