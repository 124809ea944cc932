"""convert-dtld faults: nothing to convert is a failure, boxes without area are counted, every write is a kill point.

Tiny 64x32 frames (``ConvertOptions.size``) keep it fast. The kill points are chosen by hooking the
converter's one artefact writer (``training.data.dtld.output.atomic_write_bytes``) in a child process: at the Nth
call it leaves a torn temporary and dies with ``os._exit``, or dies right after the last write. A re-run
must then end byte-identical to an uninterrupted conversion.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import training.data.dtld as dtld
import training.data.dtld.output as dtld_output
from training.cli import main as cli_main
from training.errors import RunError

REPO = Path(__file__).resolve().parents[2]
SIZE = (64, 32)
SEQ = ("Berlin/Berlin1/2015-04-17_10-50-05", "Essen/Essen1/2015-04-20_11-20-03")
KILLED = 86


def _light(x, y, w, h, relevance="relevant"):
    attrs = {"direction": "front", "relevance": relevance, "occlusion": "not_occluded", "orientation": "vertical",
             "aspects": "three_aspects", "state": "red", "pictogram": "circle", "reflection": "not_reflected"}
    return {"x": x, "y": y, "w": w, "h": h, "unique_id": 1, "track_id": "1", "attributes": attrs}


def _tree(root: Path, entries: dict[str, list[tuple[str, list]]], write_images: bool = True) -> dict[str, Path]:
    """Write 64x32 uint16 Bayer TIFFs and one v2.0 label file per split; return the label files by split."""
    files = {}
    root.mkdir(parents=True, exist_ok=True)
    for split, images in entries.items():
        for key, _ in images:
            if write_images:
                (root / key).parent.mkdir(parents=True, exist_ok=True)
                raw = (np.arange(SIZE[0] * SIZE[1], dtype=np.uint16).reshape(SIZE[1], SIZE[0]) * 3) % 4096
                assert cv2.imwrite(str(root / key), raw)
        label = root / f"DTLD_{split}.json"
        label.write_text(json.dumps({"images": [{"image_path": f"./{k}", "labels": ls} for k, ls in images]}))
        files[split] = label
    return files


def _entries():
    return {
        "train": [(f"{SEQ[0]}/a_k0.tiff", [_light(4, 2, 6, 14), _light(60, 20, 10, 20, "not_relevant")]),
                  (f"{SEQ[0]}/b_k0.tiff", []),
                  (f"{SEQ[1]}/c_k0.tiff", [_light(10, 10, 4, 8)])],
        "test": [(f"{SEQ[1]}/d_k0.tiff", [_light(30, 5, 5, 12, "not_relevant")])],
    }


def _opts(files, **kw):
    return dtld.ConvertOptions(train=[files["train"]], test=[files.get("test")] if "test" in files else [],
                               size=SIZE, **kw)


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _convert_cli(root, out, *label_args):
    return cli_main(["data", "convert-dtld", "--root", str(root), "--out", str(out), *label_args, "--no-progress"])


def test_root_without_images_fails_and_writes_nothing(tmp_path, capsys):
    files = _tree(tmp_path / "dtld", _entries(), write_images=False)
    out = tmp_path / "out"
    rc = _convert_cli(tmp_path / "dtld", out, "--train", str(files["train"]), "--test", str(files["test"]))
    err = capsys.readouterr().err.strip()
    assert rc == 1, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert str(tmp_path / "dtld") in err and "none of the 3 images of split 'train' found" in err
    assert "searched" in err and "DTLD_train.json" in err and f"{SEQ[0]}/a_k0.tiff" in err
    assert not out.exists()  # no data.yaml, summary.json or state


def test_missing_root_is_a_failure_not_a_usage_error(tmp_path, capsys):
    files = _tree(tmp_path / "dtld", _entries())
    assert _convert_cli(tmp_path / "nope", tmp_path / "out", "--train", str(files["train"])) == 1
    assert "DTLD root directory not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("empty_split", ["train", "test"])
def test_empty_split_fails_and_writes_nothing(tmp_path, capsys, empty_split):
    entries = _entries()
    entries[empty_split] = []
    files = _tree(tmp_path / "dtld", entries)
    out = tmp_path / "out"
    rc = _convert_cli(tmp_path / "dtld", out, "--train", str(files["train"]), "--test", str(files["test"]))
    err = capsys.readouterr().err
    assert rc == 1 and f"split {empty_split!r} has no image" in err and f"DTLD_{empty_split}.json" in err, err
    assert not out.exists()


@pytest.mark.parametrize("workers", ["0", "-2"])
def test_bad_workers_is_a_usage_error_naming_the_flag(tmp_path, capsys, workers):
    files = _tree(tmp_path / "dtld", _entries())
    rc = _convert_cli(tmp_path / "dtld", tmp_path / "out", "--train", str(files["train"]), "--workers", workers)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith(f"error: --workers {workers}: "), err
    assert not (tmp_path / "out").exists()


def test_val_draw_that_empties_train_fails(tmp_path, capsys):
    files = _tree(tmp_path / "dtld", {"train": _entries()["train"]})
    rc = _convert_cli(tmp_path / "dtld", tmp_path / "out", "--train", str(files["train"]), "--val-images", "99")
    assert rc == 1 and "--val-images 99 moved every train sequence to val" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_no_image_converted_fails_without_dataset_files(tmp_path):
    root = tmp_path / "dtld"
    files = _tree(root, {"train": _entries()["train"]})
    for key, _ in _entries()["train"]:
        (root / key).write_bytes((root / key).read_bytes()[:40])  # truncated TIFFs: present but unreadable
    out = tmp_path / "out"
    with pytest.raises(RunError, match=r"no image of split 'train' converted \(3 listed; 3 unreadable_image\)"):
        dtld.convert_dtld(root, out, _opts(files), progress=False)
    assert not out.exists()  # the state file and empty folders of this run are removed again


def test_zero_width_and_negative_boxes_are_counted_warnings(tmp_path):
    entries = {"train": [(f"{SEQ[0]}/a_k0.tiff", [_light(4, 2, 0, 14), _light(10, 2, 5, -3), _light(20, 2, -4, -4),
                                                   _light(30, 2, 6, 10), _light(60, 2, 10, 10)])]}
    files = _tree(tmp_path / "dtld", entries)
    summary = dtld.convert_dtld(tmp_path / "dtld", tmp_path / "out", _opts(files), progress=False)
    assert summary["warning_counts"]["empty_box"] == 3
    assert summary["warning_counts"]["box_outside_image"] == 1  # the clipped one, as before
    empty = [w for w in summary["warnings"] if w["kind"] == "empty_box"]
    assert [(w["file"], w["field"]) for w in empty] == [
        ("DTLD_train.json", f"images[0].labels[{j}].w/h") for j in range(3)]
    assert "w=0 h=14" in empty[0]["message"] and "w=5 h=-3" in empty[1]["message"] and "dropped" in empty[2]["message"]
    split = summary["splits"]["train"]
    assert split["dropped_empty"] == 3 and split["clipped"] == 1 and split["boxes"]["relevant"] == 2
    assert len((tmp_path / "out" / "labels" / "train" / SEQ[0] / "a_k0.txt").read_text().splitlines()) == 2


_KILL_DRIVER = """
import json, os, sys
from pathlib import Path
import training.data.dtld as dtld
import training.data.dtld.output as dtld_output
from kd_traffic_light.core.atomic_io import tmp_path_for

root, out, train, test, mode, n = sys.argv[1:7]
n, calls, write = int(n), [0], dtld_output.atomic_write_bytes

def hooked(path, data):
    calls[0] += 1
    if calls[0] == n and mode == "torn":  # killed while writing: a half-written temporary, no target
        tmp_path_for(Path(path)).parent.mkdir(parents=True, exist_ok=True)
        tmp_path_for(Path(path)).write_bytes(data[: len(data) // 2])
        os._exit(KILLED)
    write(path, data)
    if calls[0] == n and mode == "after":
        os._exit(KILLED)

dtld_output.atomic_write_bytes = hooked
dtld.convert_dtld(root, out, dtld.ConvertOptions(train=[train], test=[test], size=(64, 32)), progress=False)
sys.exit(0)
""".replace("KILLED", str(KILLED))


def test_kill_at_every_artefact_write_then_rerun_is_byte_identical(tmp_path, monkeypatch):
    root = tmp_path / "dtld"
    files = _tree(root, _entries())
    reference = tmp_path / "reference"
    written = []
    real_write = dtld_output.atomic_write_bytes

    def counting(path, data):
        written.append(Path(path).relative_to(reference).as_posix())
        real_write(path, data)

    with monkeypatch.context() as m:
        m.setattr(dtld_output, "atomic_write_bytes", counting)
        dtld.convert_dtld(root, reference, _opts(files), progress=False)
    want = _tree_bytes(reference)
    # every artefact goes through the hooked writer, each exactly once
    assert sorted(written) == sorted(want) and len(written) == len(set(written)) == 11

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    points = [("torn", n) for n in range(1, len(written) + 1)] + [("after", len(written))]
    for mode, n in points:
        out = tmp_path / f"killed_{mode}_{n}"
        proc = subprocess.run([sys.executable, "-c", _KILL_DRIVER, str(root), str(out), str(files["train"]),
                               str(files["test"]), mode, str(n)], cwd=REPO, env=env, capture_output=True, text=True)
        assert proc.returncode == KILLED, (mode, n, proc.stderr[-2000:])
        assert (out / "summary.json").exists() == (mode == "after"), (mode, n, written[n - 1])
        summary = dtld.convert_dtld(root, out, _opts(files), progress=False)
        assert _tree_bytes(out) == want, (mode, n, written[n - 1])
        assert summary == json.loads(want["summary.json"])
