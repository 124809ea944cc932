"""Class schemes: names, ids and reading a name back as relevance and state."""

from __future__ import annotations

import pytest

from kd_traffic_light.core.classes import SCHEMES, class_id, class_names, scheme_of, split_label


def test_relevance_state_is_relevance_major():
    names = class_names("relevance_state")
    assert len(names) == 10 and names[0] == "relevant_red" and names[4] == "relevant_off"
    assert names[5] == "not_relevant_red" and names[9] == "not_relevant_off"
    assert class_names() == {0: "relevant", 1: "not_relevant"}


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_every_name_reads_back_to_its_id(scheme):
    for cid, name in class_names(scheme).items():
        rel, state = split_label(name)
        assert class_id(scheme, rel, state) == cid


@pytest.mark.parametrize(("name", "expected"), [
    ("relevant", ("relevant", None)), ("not_relevant", ("not_relevant", None)),
    ("not_relevant_red_yellow", ("not_relevant", "red_yellow")), ("relevant_off", ("relevant", "off")),
    ("relevant_unknown", (None, None)), ("car", (None, None)), ("", (None, None)),
])
def test_split_label(name, expected):
    assert split_label(name) == expected


def test_scheme_of_and_bad_scheme():
    assert scheme_of(class_names("relevance_state")) == "relevance_state"
    assert scheme_of(["relevant", "not_relevant"]) == "relevance"
    assert scheme_of({0: "a"}) is None
    assert class_id("relevance_state", "relevant", "unknown") is None
    with pytest.raises(ValueError, match="class scheme 'x': expected one of"):
        class_names("x")
