"""Kill points around every artefact write of ``train`` / ``distill``, and what readers make of the remains.

A run is killed (``os._exit``) at a write chosen by hooking the write itself: right after a named file has
been written or renamed into place, half-way through writing it (a torn file), or just before the completion
marker is renamed into place. After each kill no reader (``experiment``'s skip check, ``verify_run``) may take
the run as finished, every ``best.pt`` / ``last.pt`` left must load, and the next ``experiment`` attempt must
resume or start over as appropriate, until the run completes with a verified student-only ``best.pt``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test.model_factory import make_untrained_pt, write_tiny_yolo_dataset
from test.seeds import seed
from training import checkpoints
from training import experiment as X
from training.errors import RunError

REPO = Path(__file__).resolve().parents[2]
RUN = subprocess.run  # the real one: tests replace experiment's (the module's) run with a Runner
STUDENT_PARAMS = 2_508_854  # yolov5n, 2 classes: a best.pt holding more carries teacher parts or adapters

# Runs ``python -m training ...`` with the writes hooked; KILL_AT=<mode>:<file name>:<n> kills the process with
# exit status 9 at the n-th matching write of this process. Modes: after (the file is complete under its name:
# written in place or renamed into place), torn (half of its bytes written, to it or to a temporary sibling),
# before (just before a temporary file is renamed onto it).
WRAPPER = r"""
import io, os, pathlib, sys
mode, name, nth = os.environ["KILL_AT"].split(":")
nth, seen, P = int(nth), [0], pathlib.Path
def hit():
    seen[0] += 1
    return seen[0] == nth
_replace = os.replace
def replace(src, dst, *a, **k):
    if mode == "before" and P(dst).name == name and hit():
        os._exit(9)
    out = _replace(src, dst, *a, **k)
    if mode == "after" and P(dst).name == name and hit():
        os._exit(9)
    return out
os.replace = replace
_write_bytes = P.write_bytes
def write_bytes(self, data):
    if mode == "torn" and self.name.startswith(name) and hit():
        _write_bytes(self, data[: len(data) // 2])
        os._exit(9)
    out = _write_bytes(self, data)
    if mode == "after" and self.name == name and hit():
        os._exit(9)
    return out
P.write_bytes = write_bytes
import torch  # hooked before ultralytics wraps torch.save
_save = torch.save
def save(obj, f, *a, **k):
    target = P(f).name if isinstance(f, (str, os.PathLike)) else ""
    if mode == "torn" and target.startswith(name) and hit():
        buf = io.BytesIO()
        _save(obj, buf, *a, **k)
        _write_bytes(P(f), buf.getvalue()[: len(buf.getvalue()) // 2])
        os._exit(9)
    out = _save(obj, f, *a, **k)
    if mode == "after" and target == name and hit():
        os._exit(9)
    return out
torch.save = save
from training.cli import main
sys.exit(main(sys.argv[1:]))
"""


class Runner:
    """Stands in for ``subprocess.run`` in ``training.experiment``: the real command, optionally killed."""

    def __init__(self, log: Path):
        self.kill: str | None = None
        self.calls: list[list[str]] = []
        self.log = log

    def __call__(self, cmd, check=False, **popen_kwargs):  # noqa: ANN001, ANN204
        self.calls.append(cmd)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        if self.kill:
            assert cmd[1:3] == ["-m", "training"]
            cmd = [cmd[0], "-c", WRAPPER, *cmd[3:]]
            env["KILL_AT"] = self.kill
        with open(self.log, "a", encoding="utf-8") as fh:
            fh.write(f"\n### {self.kill}: {' '.join(cmd[3:])}\n")
            fh.flush()
            return RUN(cmd, check=check, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=str(REPO),
                       timeout=300, **popen_kwargs)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny dataset, an untrained yolov5n teacher .pt and an experiment with a baseline and a KD run."""
    root = tmp_path_factory.mktemp("ckfaults")
    data = write_tiny_yolo_dataset(root / "data", n_train=4, n_val=2, size=64)
    teacher = make_untrained_pt(root / "teacher_n.pt")
    train = yaml.safe_load((REPO / "training" / "configs" / "tiny_cpu.yaml").read_text())["train"]
    train.update(epochs=2, imgsz=32, batch=2)
    exp = X.resolve_experiment({
        "data": {"source": "yolo", "yaml": str(data)},
        "train": train,
        "teachers": {"t": str(teacher)},  # a trained teacher, used as is
        "students": {"n": "yolov5n.yaml"},
        "methods": {"baseline": None, "kd": {"distill": {"terms": {"response": {}}}}},
        "seeds": [seed(0)],  # the suite's seed (test/seeds.py)
    })
    runs = {r.method: r for r in X.plan_runs(exp)}
    return {"root": root, "data": data, "runs": runs}


def _check_not_finished(run_path: Path, distill: bool) -> None:
    """No reader takes the run as finished, and every checkpoint left under its own name is complete."""
    assert not checkpoints.is_complete(run_path)[0]
    assert not X._finished(run_path)
    assert not (run_path / "results.json").exists()
    for name in ("best.pt", "last.pt"):
        path = run_path / "weights" / name
        if path.exists():
            ckpt = checkpoints.load(path)  # never torn
            model = ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"]
            if distill and name == "best.pt":
                assert type(model).__name__ == "DetectionModel", "best.pt must hold the student alone"


def _attempt(runner: Runner, run: X.Run, out: Path, data: Path, kill: str | None) -> list[str]:
    """One ``experiment`` attempt at ``run`` (killed at ``kill``); returns the command it ran."""
    runner.kill = kill
    before = len(runner.calls)
    if kill is None:
        X.train_run(run, out, data, device="cpu", workers=0)
    else:
        with pytest.raises(RunError, match="exit 9"):
            X.train_run(run, out, data, device="cpu", workers=0)
    assert len(runner.calls) == before + 1
    return runner.calls[-1]


def _check_done(run_path: Path) -> dict:
    marker = checkpoints.verify_run(run_path, load_weights=True)
    assert marker["best"]["params"] == STUDENT_PARAMS and marker["best"]["model"] == "DetectionModel"
    assert marker["epochs_done"] == 2
    record = json.loads((run_path / "results.json").read_text())
    assert record["weights"].endswith("best.pt") and record["epochs"] == 2
    return marker


# kill point, then what the next attempt does: start over, resume, or nothing (the run is complete)
DISTILL_CHAIN = [
    ("after:provenance.json:1", "fresh"),  # set up, nothing trained
    ("torn:best.pt:1", "fresh"),  # first best.pt half written
    ("after:best.pt:1", "fresh"),  # student-only best.pt in place, last.pt not yet
    ("after:last.pt:1", "resume"),  # epoch 1 of 2 saved
    ("torn:last.pt:1", "resume"),  # (resumed) epoch 2's last.pt half written: epoch 1's must survive
    ("before:COMPLETE.json:1", "resume"),  # (resumed) trained and evaluated, marker written but not in place
    ("after:best.pt:1", "resume"),  # (completing) best.pt's final strip in place, no marker
    ("after:last.pt:1", "done"),  # (completing) marker in place, killed after last.pt's final strip
]
TRAIN_CHAIN = [
    ("after:best.pt:1", "fresh"),  # epoch 1 best.pt (with optimizer) in place, no last.pt
    ("after:last.pt:2", "resume"),  # both epochs saved, killed before the final strip: ultralytics says "finished"
    ("before:COMPLETE.json:1", "resume"),  # (completing) best.pt stripped, marker not in place
    (None, "done"),
]


@pytest.mark.slow
@pytest.mark.parametrize("method, chain", [("kd", DISTILL_CHAIN), ("baseline", TRAIN_CHAIN)], ids=["distill", "train"])
def test_kill_points_then_experiment_completes(world, tmp_path, monkeypatch, method, chain):
    run, out = world["runs"][method], tmp_path / "exp"
    run_path = out / "runs" / run.name
    log = tmp_path / "train.log"
    runner = Runner(log)
    monkeypatch.setattr(subprocess, "run", runner)
    expect = "fresh"
    for kill, then in chain:
        cmd = _attempt(runner, run, out, world["data"], kill)
        assert ("--resume" in cmd) == (expect == "resume"), (kill, cmd, log.read_text()[-3000:])
        if method == "kd" and "--resume" not in cmd:
            assert "--teacher" in cmd and str(Path(run.teacher_model).resolve()) in cmd  # the .pt as is
        if then != "done":
            _check_not_finished(run_path, distill=method == "kd")
        expect = then
    assert checkpoints.is_complete(run_path)[0] and X._finished(run_path)
    calls = len(runner.calls)
    X.train_run(run, out, world["data"], device="cpu", workers=0)
    assert len(runner.calls) == calls  # finished and verified: not trained again
    _check_done(run_path)
    assert checkpoints.resume_state(run_path / "weights" / "last.pt")["stripped"]
    assert not list((run_path / "weights").glob("*.tmp-*"))  # torn temporaries cleared
    rows = X.csv_rows(run_path / "results.csv")
    assert [r["epoch"] for r in rows] == [1.0, 2.0]  # no torn or repeated rows from the killed attempts

    if method == "baseline":
        # best.pt torn after the fact (an older writer, a full disk): no longer taken as finished; last.pt is
        # final, so the run starts over and ends verified
        best = run_path / "weights" / "best.pt"
        best.write_bytes(best.read_bytes()[:1000])
        assert not X._finished(run_path)
        cmd = _attempt(runner, run, out, world["data"], None)
        assert "--resume" not in cmd
        _check_done(run_path)


@pytest.mark.slow
def test_resume_of_a_finished_loop_completes_the_run(world, tmp_path, monkeypatch):
    """``distill --resume`` on a run killed after its last epoch (ultralytics: "nothing to resume")."""
    run, out = world["runs"]["kd"], tmp_path / "exp"
    runner = Runner(tmp_path / "train.log")
    monkeypatch.setattr(subprocess, "run", runner)
    _attempt(runner, run, out, world["data"], "after:last.pt:2")  # epoch 2 saved, nothing stripped
    last = out / "runs" / run.name / "weights" / "last.pt"
    assert checkpoints.resume_state(last)["epoch"] == 1
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = RUN([sys.executable, "-m", "training", "distill", "--resume", str(last)], env=env,
                          cwd=str(REPO), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "completing the run without training" in proc.stdout + proc.stderr
    marker = checkpoints.verify_run(last.parents[1], load_weights=True)
    assert marker["best"]["params"] == STUDENT_PARAMS and marker["epochs_done"] == 2


def test_resume_of_a_torn_checkpoint_is_a_clear_error(tmp_path):
    last = tmp_path / "run" / "weights" / "last.pt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"PK\x03\x04 torn")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = RUN([sys.executable, "-m", "training", "distill", "--resume", str(last)], env=env,
                          cwd=str(REPO), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and str(last) in proc.stderr  # one line naming the file


# ---------------------------------------------------------------------------------- marker, no training
def _save(path: Path, model, optimizer=None) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model, "ema": None, "optimizer": optimizer, "epoch": -1}, path)
    return path


def _student():
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 2, 1))


def test_marker_vouches_for_one_best_pt(tmp_path):
    run = tmp_path / "run"
    best = _save(run / "weights" / "best.pt", _student())
    (run / "results.csv").write_text("epoch,x\n1,0\n2,0\n")
    checkpoints.write_marker(run, kind="train", epochs=2)
    marker = checkpoints.verify_run(run, load_weights=True)
    assert marker["epochs_done"] == 2 and marker["best"]["params"] == 4 * 3 * 9 + 4 + 2 * 4 + 2
    assert X._finished(run)
    best.write_bytes(best.read_bytes()[:-10])  # truncated after the marker was written
    ok, why = checkpoints.is_complete(run)
    assert not ok and "differs" in why and not X._finished(run)
    with pytest.raises(checkpoints.CheckpointError, match="torn or truncated"):
        checkpoints.load(best)


def test_marker_refused_for_half_written_or_teacher_laden_models(tmp_path):
    from torch import nn

    run = tmp_path / "run"
    model = _student()
    model.teacher_model = nn.Conv2d(3, 8, 3)
    _save(run / "weights" / "best.pt", model)
    with pytest.raises(checkpoints.CheckpointError, match="distillation model"):
        checkpoints.write_marker(run, kind="distill", epochs=1)
    _save(run / "weights" / "best.pt", _student(), optimizer={"state": {}})
    with pytest.raises(checkpoints.CheckpointError, match="optimizer"):
        checkpoints.write_marker(run, kind="train", epochs=1)
    assert not checkpoints.marker_path(run).exists()
    checkpoints.marker_path(run).write_text('{"format": 1, "complete": tr')  # torn marker
    assert not checkpoints.is_complete(run)[0] and not X._finished(run)


def test_old_run_dirs_without_marker_are_not_finished(tmp_path):
    """best.pt and a results.csv row per epoch no longer mean finished: only the marker does."""
    run = tmp_path / "run"
    _save(run / "weights" / "best.pt", _student())
    (run / "results.csv").write_text("epoch,x\n1,0\n")
    assert not X._finished(run)


def test_runs_finished_before_markers_are_adopted_only_when_whole(tmp_path):
    """A finished legacy run (stripped last.pt, student-only best.pt, every epoch's row) gets its marker, not a
    retrain; a legacy run that stopped early, kept its optimizer or holds an unloadable best.pt does not."""
    import torch

    def legacy(name: str, rows: int = 2, last_optimizer=None, best_bytes: bytes | None = None) -> Path:
        run = tmp_path / name
        last = _save(run / "weights" / "last.pt", _student(), optimizer=last_optimizer)
        if last_optimizer is not None:  # a training checkpoint of epoch 1: the loop had not finished
            torch.save({"model": None, "ema": _student(), "optimizer": last_optimizer, "epoch": 0}, last)
        best = _save(run / "weights" / "best.pt", _student())
        if best_bytes is not None:
            best.write_bytes(best_bytes)
        (run / "results.csv").write_text("epoch,x\n" + "".join(f"{i + 1},0\n" for i in range(rows)))
        return run

    whole = legacy("whole")
    assert X._finished(whole, 2)
    assert checkpoints.verify_run(whole)["kind"] == "adopted"
    assert not X._finished(legacy("short", rows=1), 2)
    opt = torch.optim.SGD(_student().parameters(), lr=0.1).state_dict()
    assert not X._finished(legacy("unstripped", last_optimizer=opt), 2)
    assert not X._finished(legacy("torn", best_bytes=b"PK\x03\x04half"), 2)
    for name in ("short", "unstripped", "torn"):
        assert not checkpoints.marker_path(tmp_path / name).exists()
