"""The relevance_state scheme in the converter: v2.0 strings and v1.0 digits to one class, unknown dropped."""

from __future__ import annotations

import pytest
import yaml

from test.training.data.helpers_dtld import read_yolo
from training.data.dtld import ConvertOptions, convert_dtld
from training.data.dtld.labels import DtldLight, light_class, v1_attributes
from training.errors import UsageError

# (v2.0 relevance, v2.0 state) -> class id in relevance_state, written out by hand from the documented order
GOLDEN_V2 = [
    ("relevant", "red", 0), ("relevant", "yellow", 1), ("relevant", "red_yellow", 2), ("relevant", "green", 3),
    ("relevant", "off", 4), ("not_relevant", "red", 5), ("not_relevant", "yellow", 6),
    ("not_relevant", "red_yellow", 7), ("not_relevant", "green", 8), ("not_relevant", "off", 9),
    ("relevant", "unknown", None), ("not_relevant", "unknown", None), ("unknown", "green", None),
]
# v1.0 class ids (digits: direction, relevance, orientation, aspects, state, pictogram) -> class id
GOLDEN_V1 = [
    (112310, 0),  # front, relevant, vertical, three aspects, red, circle
    (112320, 1),  # ... yellow
    (112330, 2),  # ... red_yellow
    (112340, 3),  # ... green
    (112300, 4),  # ... off
    (102340, 8),  # not relevant (digit 2 = 0), green
    (132310, 0),  # digit 2 = 3 is relevant too
    (142310, 5),  # occluded (4) counts as not relevant
    (112350, None),  # state 5 = unknown: dropped
]


@pytest.mark.parametrize(("relevance", "state", "expected"), GOLDEN_V2)
def test_v2_strings_map_to_the_folded_class(relevance, state, expected):
    light = DtldLight(0, 0, 4, 10, attributes={"relevance": relevance, "state": state})
    assert light_class(light, "relevance_state") == expected
    assert light_class(light) == {"relevant": 0, "not_relevant": 1}.get(relevance)  # default scheme unchanged


@pytest.mark.parametrize(("digits", "expected"), GOLDEN_V1)
def test_v1_digits_map_to_the_folded_class(digits, expected):
    warns = []
    attrs = v1_attributes(digits, "f.yml", "objects[0]", warns)
    assert not warns
    assert light_class(DtldLight(0, 0, 4, 10, attributes=attrs), "relevance_state") == expected


def test_a_missing_state_is_unknown():
    assert light_class(DtldLight(0, 0, 4, 10, attributes={"relevance": "relevant"}), "relevance_state") is None


def test_conversion_writes_the_state_classes_and_counts_unknown(synthetic_dtld, tmp_path):
    out = tmp_path / "state"
    opts = ConvertOptions(train=[synthetic_dtld.v2["train"]], test=[synthetic_dtld.v2["test"]],
                          classes="relevance_state")
    summary = convert_dtld(synthetic_dtld.root, out, opts, progress=False)
    names = ("red", "yellow", "red_yellow", "green", "off")
    expected, unknown = {}, 0
    for f in synthetic_dtld.frames:
        boxes = []
        for li in f.lights:
            if li.box is None:
                continue
            state, rel = li.attributes["state"], li.attributes["relevance"]
            if state == "unknown":
                unknown += 1
                continue
            boxes.append(((0 if rel == "relevant" else 5) + names.index(state), li.box))
        expected[f.key] = sorted(boxes)
    assert read_yolo(out) == expected
    assert unknown > 0 and any(expected.values())  # the fixture has both kinds
    assert sum(s["dropped_unknown_state"] for s in summary["splits"].values()) == unknown
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["nc"] == 10 and data["names"][0] == "relevant_red" and data["names"][9] == "not_relevant_off"
    assert summary["classes"] == list(data["names"].values())


def test_unknown_scheme_is_refused(synthetic_dtld, tmp_path):
    opts = ConvertOptions(train=[synthetic_dtld.v2["train"]], classes="colour")
    with pytest.raises(UsageError, match=r"classes 'colour': expected one of \['relevance', 'relevance_state'\]"):
        convert_dtld(synthetic_dtld.root, tmp_path / "x", opts, progress=False)
