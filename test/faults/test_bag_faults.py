"""Broken bags: bag_eval and replay fail with exit 1 and one line naming the file and what is wrong.

Each kind (truncated, without images, camera topic of an unknown type, image topic without messages,
corrupt, not a bag, missing) is refused before any node starts: bag_eval writes nothing and reports no
metrics. Metrics undefined over nothing are null, never 1.0. Bad flags exit with status 2.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header, String

from kd_traffic_light.conversions import bgr_to_image_msg
from kd_traffic_light.tools import bag_eval, replay
from test.nodes.ros_helpers import write_bag

REPO = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000_000_000_000
N = 3
SUPPORTED = "supported image types: sensor_msgs/msg/Image, sensor_msgs/msg/CompressedImage"


def _header(i):
    stamp = T0 + i * 100_000_000
    return stamp, Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="cam")


def _storage(bag: Path) -> Path:
    return next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    """Every broken kind, plus a good bag, keyed by name; 'missing' does not exist."""
    base = tmp_path_factory.mktemp("bags")
    images, no_images, unknown = [], [], []
    for i in range(N):
        stamp, header = _header(i)
        images.append(("/camera/image_raw", bgr_to_image_msg(np.full((64, 128, 3), i, np.uint8), header), stamp))
        no_images.append(("/chatter", String(data="no camera"), stamp))
        unknown += [("/camera/image_raw", String(data="not an image"), stamp),
                    ("/camera/camera_info", CameraInfo(header=header, width=16, height=8), stamp + 1)]
    out = {"good": write_bag(base / "good", images, "mcap"),
           "no_images": write_bag(base / "no_images", no_images, "mcap"),
           "unknown_type": write_bag(base / "unknown_type", unknown, "sqlite3")}
    for storage in ("mcap", "sqlite3"):
        bag = write_bag(base / f"truncated_{storage}", images, storage)
        data = _storage(bag).read_bytes()
        _storage(bag).write_bytes(data[: len(data) // 2])
        out[f"truncated_{storage}"] = bag
    corrupt = base / "corrupt"  # footer intact, a chunk overwritten: fails while reading, not when opening
    shutil.copytree(out["good"], corrupt)
    data = bytearray(_storage(corrupt).read_bytes())
    data[len(data) // 4: len(data) // 2] = b"\xff" * (len(data) // 2 - len(data) // 4)
    _storage(corrupt).write_bytes(bytes(data))
    out["corrupt"] = corrupt
    (base / "not_a_bag.mcap").write_bytes(os.urandom(512))
    out["not_a_bag"] = base / "not_a_bag.mcap"
    (base / "bad_metadata").mkdir()
    (base / "bad_metadata" / "metadata.yaml").write_text("rosbag2_bagfile_information: [broken\n")
    out["bad_metadata"] = base / "bad_metadata"
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    with Writer(base / "no_messages", version=9) as writer:  # the image topic is declared, never written
        writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=get_typestore(Stores.ROS2_KILTED))
    out["no_messages"] = base / "no_messages"
    out["missing"] = base / "missing"
    return out


# kind -> (file the message names, what it says)
EXPECTED = {
    "truncated_mcap": (lambda b: _storage(b), "truncated or corrupt? (File end magic is invalid."),
    "truncated_sqlite3": (lambda b: _storage(b), "truncated or corrupt? (Cannot open database"),
    "corrupt": (lambda b: _storage(b), "reading failed after"),
    "not_a_bag": (lambda b: b, "cannot read the bag, truncated or corrupt?"),
    "bad_metadata": (lambda b: b / "metadata.yaml", "Could not load YAML"),
    "missing": (lambda b: b, "no such bag (file or directory not found)"),
    "no_messages": (lambda b: b, "image topic(s) /camera/image_raw (sensor_msgs/msg/Image) have no messages"),
}


def _one_error_line(err: str, prog: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("kind", [*EXPECTED, "no_images", "unknown_type"])
def test_bag_eval_refuses_broken_bag_before_starting_anything(bags, kind, tmp_path, capsys):
    out = tmp_path / "eval"
    rc = bag_eval.main([str(bags[kind]), "--student-model", "s.onnx", "--teacher-model", "t.onnx", "--out", str(out)])
    captured = capsys.readouterr()
    line = _one_error_line(captured.err, "bag_eval")
    assert rc == 1 and not captured.out and not out.exists(), line  # no summary, no metrics
    if kind == "no_images":
        assert "topics ['/camera/image_raw'] are not in the bag; it has /chatter (std_msgs/msg/String)" in line
        assert SUPPORTED in line
    elif kind == "unknown_type":
        assert f"{bags[kind]}: no image topic to replay: the bag has /camera/image_raw (std_msgs/msg/String)" in line
        assert SUPPORTED in line
    else:
        path, what = EXPECTED[kind]
        assert f"{path(bags[kind])}: " in line and what in line, line


@pytest.mark.parametrize("kind", [k for k in EXPECTED if k != "corrupt"] + ["no_images"])
def test_replay_refuses_broken_bag(bags, kind, capsys):
    assert replay.main([str(bags[kind]), "--rate", "0"]) == 1
    line = _one_error_line(capsys.readouterr().err, "replay")
    if kind == "no_images":
        assert "no image topic to replay: the bag has /chatter (std_msgs/msg/String)" in line and SUPPORTED in line
    else:
        path, what = EXPECTED[kind]
        assert f"{path(bags[kind])}: " in line and what in line, line


def _run_replay(args, tmp_path):
    env = {**os.environ, "ROS_LOG_DIR": str(tmp_path / "ros_log"), "RCUTILS_COLORIZED_OUTPUT": "0"}
    return subprocess.run([sys.executable, "-m", "kd_traffic_light.tools.replay", *map(str, args)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_replay_camera_topic_of_unknown_type_exits_1_naming_it(bags, tmp_path):
    """The camera topic is a String, the bag also has CameraInfo: nothing is published, exit 1."""
    proc = _run_replay([bags["unknown_type"], "--rate", "0"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    line = _one_error_line(proc.stderr, "replay")
    assert "/camera/image_raw (std_msgs/msg/String)" in line and "/camera/camera_info" in line and SUPPORTED in line
    assert "published" not in proc.stderr + proc.stdout


def test_replay_corrupt_in_the_middle_exits_1_naming_the_file(bags, tmp_path):
    proc = _run_replay([bags["corrupt"], "--rate", "0"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("replay: error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{_storage(bags['corrupt'])}: reading failed after" in errors[0] and "truncated or corrupt?" in errors[0]


def test_replay_paced_by_a_topic_nobody_publishes_exits_1(bags, tmp_path):
    """Images but no detections: every frame timed out, which is not a successful paced replay."""
    proc = _run_replay([bags["good"], "--pace-topic", "/nobody/detections", "--pace-timeout", "0.2",
                        "--wait-timeout", "0"], tmp_path)  # 0: start at once, do not wait for a publisher
    assert proc.returncode == 1, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("replay: error:")]
    assert len(errors) == 1 and f"none of the {N} images" in errors[0] and "/nobody/detections" in errors[0]


def test_replay_whose_consumers_never_appear_exits_1_naming_each(bags, tmp_path):
    """Nothing is published to nobody: every missing subscriber, pace publisher and the start file is named."""
    start_file = tmp_path / "go"
    proc = _run_replay([bags["good"], "--pace-topic", "/nobody/detections", "--wait-subscribers", "2",
                        "--start-file", start_file, "--wait-timeout", "0.5"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    line = _one_error_line("\n".join(ln for ln in proc.stderr.splitlines() if ln.startswith("replay: ")), "replay")
    assert f"{bags['good']}: nothing replayed: after --wait-timeout 0.5 s" in line, line
    assert "image topic /camera/image_raw has 0 of 2 subscribers" in line, line
    assert "pace topic /nobody/detections has no publisher" in line
    assert f"start file {start_file} was not created" in line
    assert "published 0 messages" in proc.stderr


def test_bag_eval_truncated_bag_as_a_process(bags, tmp_path):
    out = tmp_path / "eval"
    proc = subprocess.run([sys.executable, "-m", "kd_traffic_light.tools.bag_eval", str(bags["truncated_mcap"]),
                           "--student-model", "s.onnx", "--teacher-model", "t.onnx", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and not proc.stdout and not out.exists(), proc.stderr
    assert str(_storage(bags["truncated_mcap"])) in _one_error_line(proc.stderr, "bag_eval")


def test_bad_flags_exit_2(bags, tmp_path):
    with pytest.raises(SystemExit) as exc:
        replay.main([str(bags["good"]), "--loop", "--pace-topic", "/det"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        replay.main([str(bags["good"]), "--rate", "-1"])
    assert exc.value.code == 2
    for flags in (["--fps", "0"], ["--records", "records.txt"], ["--pace-timeout", "-1"]):
        with pytest.raises(SystemExit) as exc:
            bag_eval.main([str(bags["good"]), "--student-model", "s", "--teacher-model", "t", "--out",
                           str(tmp_path / "eval"), *flags])
        assert exc.value.code == 2, flags
    assert not (tmp_path / "eval").exists()


def test_metrics_over_nothing_are_null_not_one(tmp_path):
    assert bag_eval.pooled_metrics(tmp_path / "absent.csv") == {
        "frames": 0, "tp": 0, "fp": 0, "fn": 0, "precision": None, "recall": None, "f1": None}
    empty = tmp_path / "records.jsonl"
    empty.write_text("")
    assert bag_eval.pooled_metrics(empty)["f1"] is None
    no_boxes = tmp_path / "records.csv"
    no_boxes.write_text("stamp_ns,tp,fp,fn\n1,0,0,0\n2,0,0,0\n")
    assert bag_eval.pooled_metrics(no_boxes) == {
        "frames": 2, "tp": 0, "fp": 0, "fn": 0, "precision": None, "recall": None, "f1": None}
    only_fn = tmp_path / "fn.csv"
    only_fn.write_text("stamp_ns,tp,fp,fn\n1,0,0,2\n")
    assert bag_eval.pooled_metrics(only_fn) == {
        "frames": 1, "tp": 0, "fp": 0, "fn": 2, "precision": None, "recall": 0.0, "f1": 0.0}
    torn = tmp_path / "torn.jsonl"
    torn.write_text('{"tp": 1, "fp": 0, "fn": 0}\n{"tp": 1, "f')
    with pytest.raises(ValueError, match="torn.jsonl: malformed records file"):
        bag_eval.pooled_metrics(torn)


def test_run_that_compared_no_frame_is_failed(tmp_path):
    """Processes all exited 0 but the comparison wrote no record: failed, not a result."""
    metrics = bag_eval.pooled_metrics(tmp_path / "records.csv")
    why = bag_eval.outcome(metrics, {"replay": 0, "student": 0, "teacher": 0, "comparison": 0}, tmp_path)
    assert why is not None and why.startswith("no frame was compared")
    (tmp_path / "replay.log").write_text("replay: error: bag.mcap: reading failed after 0 messages\n")
    why = bag_eval.outcome(metrics, {"replay": 1, "student": 0}, tmp_path)
    assert "{'replay': 1}" in why and "replay: error: bag.mcap: reading failed" in why
    ok = {"frames": 2, "tp": 1, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert bag_eval.outcome(ok, {"replay": 0}, tmp_path) is None


def test_run_with_metrics_but_no_overlay_is_failed_and_fewer_overlays_warn(tmp_path):
    """Overlays asked for (no --no-video) and not one saved: failed, although the metrics are valid."""
    ok = {"frames": 4, "tp": 4, "fp": 4, "fn": 4, "precision": 0.5, "recall": 0.5, "f1": 0.5}
    codes = {"replay": 0, "student": 0, "teacher": 0, "comparison": 0}
    why = bag_eval.outcome(ok, codes, tmp_path, overlay_frames=0)
    assert why is not None and "4 frames were compared" in why and "no overlay" in why, why
    assert bag_eval.OVERLAY_TOPIC in why and "--no-video" in why
    assert bag_eval.outcome(ok, codes, tmp_path, overlay_frames=None) is None  # --no-video: none expected
    assert bag_eval.outcome(ok, codes, tmp_path, overlay_frames=3) is None
    assert bag_eval.overlay_warnings(ok, 3) == [
        f"only 3 of the 4 compared frames have an overlay ({bag_eval.OVERLAY_TOPIC})"]
    assert bag_eval.overlay_warnings(ok, 4) == [] and bag_eval.overlay_warnings(ok, None) == []
    nothing = bag_eval.pooled_metrics(tmp_path / "absent.csv")  # no frame compared wins: that is the cause
    assert bag_eval.outcome(nothing, codes, tmp_path, overlay_frames=0).startswith("no frame was compared")


class _FakeProc:
    returncode = 0

    def poll(self):
        return 0


class _FakeSaver:
    """Stands in for the overlay saver; ``saved`` overlays arrive (their JPEGs are written) when it is made."""

    saved = 0

    def __init__(self, frames_dir):
        import cv2

        self.count = self.saved
        for i in range(self.saved):
            cv2.imwrite(str(frames_dir / f"{i:020d}_cam.jpg"), np.zeros((16, 32, 3), np.uint8))

    def ready(self):
        return True

    def close(self):
        pass


def _fake_processes(monkeypatch, out, playback):
    """Fake every process of bag_eval.run: the comparison 'writes' 2 records; ``playback`` stands in for
    _await_playback. Returns the roles started, in order."""
    started = []
    monkeypatch.setattr(bag_eval, "OVERLAY_DRAIN_S", 0.1)
    monkeypatch.setattr(bag_eval, "_await_playback", playback)
    monkeypatch.setattr(bag_eval, "_wait_records_settle", lambda records: None)
    monkeypatch.setattr(bag_eval.processes, "stop", lambda proc, timeout=15.0: 0)

    def start_process(cmd, env, log_path):
        Path(log_path).write_text(f"log of {Path(log_path).stem}\n")
        started.append(Path(log_path).stem)
        if "kd_traffic_light.comparison_node" in cmd:
            (out / "records.csv").write_text("stamp_ns,tp,fp,fn\n1,1,1,1\n2,1,1,1\n")
        return _FakeProc()

    monkeypatch.setattr(bag_eval.processes, "start_process", start_process)
    return started


def _bag_eval(bags, out):
    return bag_eval.main([str(bags["good"]), "--student-model", "s.onnx", "--teacher-model", "t.onnx", "--out",
                          str(out)])


def test_bag_eval_saver_that_got_no_overlay_fails_with_the_metrics_in_the_summary(bags, tmp_path, monkeypatch,
                                                                                  capsys):
    """The whole run() with its processes faked: every frame compared, the saver got nothing."""
    out = tmp_path / "eval"
    monkeypatch.setattr(bag_eval, "OverlaySaver", _FakeSaver)
    _fake_processes(monkeypatch, out, lambda *a: (None, False))
    rc = _bag_eval(bags, out)
    captured = capsys.readouterr()
    assert rc == 1 and "bag_eval: error: 2 frames were compared" in captured.err, captured.err
    assert '"f1"' not in captured.out  # no metrics printed for a failed run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed" and "no overlay" in summary["error"] and summary["overlay_frames"] == 0
    assert summary["metrics"]["frames"] == 2 and summary["metrics"]["f1"] == 0.5  # still valid, still there
    assert not (out / "overlay.mp4").exists() and not (out / "logs" / bag_eval.START_FILE).exists()


def test_bag_eval_restarts_every_process_after_a_discovery_stall(bags, tmp_path, monkeypatch, capsys):
    """Nodes up but not matched: everything starts again, the stalled attempt's logs are kept; then ok."""
    out = tmp_path / "eval"
    monkeypatch.setattr(bag_eval, "OverlaySaver", type("Saver2", (_FakeSaver,), {"saved": 2}))
    answers = iter([("the replay is waiting for: pace topic /student/detector/detections has no publisher", True),
                    (None, False)])
    started = _fake_processes(monkeypatch, out, lambda *a: next(answers))
    assert _bag_eval(bags, out) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "start-up attempt 1 stalled: the replay is waiting for: pace topic" in err, err
    assert started == [*bag_eval.ROLES, *bag_eval.ROLES]
    assert (out / "logs" / "student.attempt1.log").read_text() == "log of student\n"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["warnings"] == [] and summary["overlay_frames"] == 2


def test_bag_eval_gives_up_after_the_last_stalled_attempt_naming_it(bags, tmp_path, monkeypatch, capsys):
    out = tmp_path / "eval"
    monkeypatch.setattr(bag_eval, "OverlaySaver", _FakeSaver)
    started = _fake_processes(monkeypatch, out, lambda *a: ("the overlay saver has not matched", True))
    assert _bag_eval(bags, out) == 1
    assert len(started) == len(bag_eval.ROLES) * bag_eval.START_ATTEMPTS
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"].startswith("the overlay saver has not matched")
    assert f"attempt {bag_eval.START_ATTEMPTS} of {bag_eval.START_ATTEMPTS}" in summary["error"]
    assert "nothing was replayed" in capsys.readouterr().err


def test_state_agreement_is_pooled_from_the_counts_not_averaged(tmp_path):
    records = tmp_path / "records.csv"
    records.write_text("stamp_ns,tp,fp,fn,state_pairs,state_agree,state_agreement\n"
                       "1,3,0,0,3,0,0.0\n2,1,0,0,1,1,1.0\n3,0,0,0,0,0,nan\n")
    m = bag_eval.pooled_metrics(records)
    assert m["state_pairs"] == 4 and m["state_agreement"] == 0.25  # mean of the ratios would say 0.5
    assert "state_agreement" not in bag_eval.pooled_metrics(tmp_path / "absent.csv")
