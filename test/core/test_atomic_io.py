"""The atomic I/O module: a failed write leaves the old file, a bad file is named in the error."""

from __future__ import annotations

import pytest

from kd_traffic_light.core import atomic_io


def test_write_json_round_trip_and_no_temporaries_left(tmp_path):
    path = tmp_path / "sub" / "a.json"
    atomic_io.atomic_write_json(path, {"x": 1, "p": tmp_path})
    assert atomic_io.read_json(path) == {"x": 1, "p": str(tmp_path)}
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_failed_writer_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    atomic_io.atomic_write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_io.atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_temporary_name_carries_the_mark(tmp_path):
    assert atomic_io.TMP_MARK in atomic_io.tmp_path_for(tmp_path / "best.pt").name


@pytest.mark.parametrize(("reader", "text", "expected"), [
    (atomic_io.read_json, '{"a": 1', "invalid JSON at line 1"),
    (atomic_io.read_yaml, "a: [1, 2\nb: 3\n", "invalid YAML at line"),
])
def test_malformed_files_are_named(tmp_path, reader, text, expected):
    path = tmp_path / "broken.cfg"
    path.write_text(text)
    with pytest.raises(ValueError, match=expected) as info:
        reader(path)
    assert str(path) in str(info.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        atomic_io.read_json(tmp_path / "nope.json")


def test_keep_suffix_for_writers_that_choose_the_format_by_extension(tmp_path):
    path = tmp_path / "overlay.mp4"
    assert atomic_io.tmp_path_for(path, keep_suffix=True).suffix == ".mp4"
    assert atomic_io.tmp_path_for(path).suffix != ".mp4"  # a torn temporary never matches *.mp4
    with atomic_io.atomic_path(path, keep_suffix=True) as tmp:
        tmp.write_bytes(b"video")
    assert path.read_bytes() == b"video" and [p.name for p in tmp_path.iterdir()] == ["overlay.mp4"]
