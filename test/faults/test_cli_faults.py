"""Bad input to ``python -m training train|distill|evaluate|export``: one ``error:`` line, the right exit status.

Each probe gives one wrong thing and expects exit 2 (the command line or a config is wrong) or 1 (well-formed
but cannot be carried out), and a message naming the file or flag, the field and what was expected. Almost every
probe fails before any model is built; the two that need the trainer use the tiny 64 px dataset.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from test.model_factory import data_yaml_text, make_untrained_pt, write_tiny_config, write_tiny_yolo_dataset

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "training" / "configs" / "tiny_cpu.yaml"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Good and bad input files shared by the probes (read-only)."""
    root = tmp_path_factory.mktemp("inputs")
    data = write_tiny_yolo_dataset(root / "ds", 4, 2, 64, 0)
    noimg = root / "noimg" / "data.yaml"
    noimg.parent.mkdir()
    noimg.write_text(data_yaml_text(noimg.parent, test=False))
    empty = root / "empty"
    for split in ("train", "val"):
        (empty / "images" / split).mkdir(parents=True)
    (empty / "data.yaml").write_text(data_yaml_text(empty, test=False))
    notmodel = root / "notmodel.pt"
    notmodel.write_text("hello, not a model\n")
    afile = root / "afile"
    afile.write_text("x")
    plain = write_tiny_config(root / "plain.yaml")
    return {"root": root, "data": data, "noimg": noimg, "empty": empty / "data.yaml", "notmodel": notmodel,
            "afile": afile, "plain": plain, "tiny": TINY}


@pytest.fixture(scope="module")
def teacher_pt(tmp_path_factory) -> Path:
    """An untrained model file named teacher.pt (the probes' messages name it)."""
    return make_untrained_pt(tmp_path_factory.mktemp("teacher") / "teacher.pt")


def _config(root: Path, name: str, train: dict | None = None, text: str | None = None) -> str:
    path = root / f"{name}.yaml"
    if text is None:
        return str(write_tiny_config(path, train=train))
    path.write_text(text)
    return str(path)


def _train(f: dict, config: str, *extra: str, data: str | None = None) -> list[str]:
    return ["train", "--model", "yolov5n.yaml", "--data", data or str(f["data"]), "--config", config,
            "--project", str(f["out"]), *extra]


def _cfg(train=None, text=None):
    """A probe whose config file holds ``train`` overrides (or the raw ``text``)."""
    return lambda f, name: _train(f, _config(f["root"], name, train, text))


def _flags(*extra):
    return lambda f, name: _train(f, str(f["plain"]), *extra)


# id -> (argv builder, exit code, substrings of the error line: file or flag, field, expectation)
PROBES = {
    # config values: type and range of every train key, checked on load (exit 2)
    "epochs-str": (_cfg({"epochs": "three"}), 2, ["epochs-str.yaml", "train.epochs", "expected an int >= 1",
                                                  "'three'"]),
    "imgsz-list": (_cfg({"imgsz": [64, "x"]}), 2, ["imgsz-list.yaml", "train.imgsz", "expected an int >= 32"]),
    "imgsz-negative": (_cfg({"imgsz": -64}), 2, ["train.imgsz", "expected an int >= 32", "-64"]),
    "batch-negative": (_cfg({"batch": -5}), 2, ["train.batch", "-1 (AutoBatch)", "got -5"]),
    "batch-fraction-too-big": (_cfg({"batch": 1.5}), 2, ["train.batch", "(0, 1)", "1.5"]),
    "lr0-out-of-range": (_cfg({"lr0": 5}), 2, ["train.lr0", "[0, 1]", "got 5"]),
    "plots-not-bool": (_cfg({"plots": "no"}), 2, ["train.plots", "true or false", "'no'"]),
    "epochs-bool": (_cfg({"epochs": True}), 2, ["train.epochs", "expected an int"]),
    "optimizer-unknown": (_cfg({"optimizer": "sgd"}), 2, ["train.optimizer", "one of SGD", "'sgd'"]),
    "workers-negative": (_cfg({"workers": -2}), 2, ["train.workers", ">= 0"]),
    "amp-bad": (_cfg({"amp": "fp8"}), 2, ["train.amp", "fp8"]),
    "train-key-unknown": (_cfg({"epoch": 3}), 2, ["train-key-unknown.yaml", "train: unknown key 'epoch'"]),
    "train-key-is-a-flag": (_cfg({"project": "elsewhere"}), 2, ["train-key-is-a-flag.yaml", "train.project",
                                                                 "--project", "remove it"]),
    # config file shape (exit 2)
    "yaml-broken": (_cfg(text="train:\n  epochs: [1\n"), 2, ["yaml-broken.yaml", "invalid YAML at line"]),
    "config-is-list": (_cfg(text="- 1\n- 2\n"), 2, ["config-is-list.yaml", "expected a mapping", "got list"]),
    "train-is-list": (_cfg(text="train: [1, 2]\n"), 2, ["train-is-list.yaml", "train: expected a mapping"]),
    "config-missing": (lambda f, n: _train(f, str(f["root"] / "nosuch.yaml")), 2, ["nosuch.yaml: file not found"]),
    # flags: the same checks as the config's (exit 2)
    "flag-batch-negative": (_flags("--batch", "-5"), 2, ["--batch", "-1 (AutoBatch)", "got -5"]),
    "flag-epochs-zero": (_flags("--epochs", "0"), 2, ["--epochs", "expected an int >= 1", "got 0"]),
    "flag-imgsz-negative": (_flags("--imgsz", "-64"), 2, ["--imgsz", "expected an int >= 32", "-64"]),
    "flag-workers-negative": (_flags("--workers", "-1"), 2, ["--workers", ">= 0", "-1"]),
    "flag-device-unknown": (_flags("--device", "xyz"), 2, ["--device", "'device=xyz'"]),
    "flag-model-unknown": (lambda f, n: ["train", "--model", "yolov5q.yaml", "--data", str(f["data"]), "--config",
                                         str(f["plain"]), "--project", str(f["out"])], 2,
                           ["--model", "yolov5q.yaml", "not found"]),
    "flag-data-missing": (lambda f, n: _train(f, str(f["plain"]), data=str(f["root"] / "nodata.yaml")), 2,
                          ["--data: ", "nodata.yaml: data.yaml not found"]),
    "flag-teacher-missing": (lambda f, n: ["distill", "--student", "yolov5n.yaml", "--data", str(f["data"])], 2,
                             ["--teacher: required"]),
    "kd-terms-without-teacher": (lambda f, n: _train(f, str(f["tiny"])), 2,
                                 ["tiny_cpu.yaml: distill.terms: expected none", "distill --teacher"]),
    # inputs that are well-formed but unusable (exit 1)
    "data-images-missing": (lambda f, n: _train(f, str(f["plain"]), data=str(f["noimg"])), 1,
                            ["--data", "noimg/data.yaml", "images not found", "images/val"]),
    "teacher-not-a-model": (lambda f, n: ["distill", "--teacher", str(f["notmodel"]), "--student", "yolov5n.yaml",
                                          "--data", str(f["data"]), "--config", str(f["tiny"]),
                                          "--project", str(f["out"])], 1,
                            ["--teacher", "notmodel.pt", "not a model checkpoint"]),
    "resume-not-a-checkpoint": (lambda f, n: ["distill", "--resume", str(f["notmodel"])], 1,
                                ["--resume", "notmodel.pt: not a training checkpoint ("]),
    "resume-model-not-a-run": (lambda f, n: ["train", "--resume", str(f["teacher"])], 1,
                               ["--resume", "teacher.pt: not a training checkpoint (", "nothing to resume"]),
    "resume-missing": (lambda f, n: ["distill", "--resume", str(f["root"] / "last.pt")], 2,
                       ["--resume: ", "last.pt: checkpoint not found"]),
    "project-under-a-file": (lambda f, n: ["train", "--model", "yolov5n.yaml", "--data", str(f["data"]),
                                           "--config", str(f["plain"]), "--project", str(f["afile"] / "sub")], 1,
                             ["--project", "afile", "is not a directory"]),
    # evaluate / export take the same file checks
    "evaluate-not-a-model": (lambda f, n: ["evaluate", "--weights", str(f["notmodel"]), "--data", str(f["data"]),
                                           "--out", str(f["out"])], 1,
                             ["--weights", "notmodel.pt", "not a model checkpoint"]),
    "evaluate-imgsz-negative": (lambda f, n: ["evaluate", "--weights", str(f["teacher"]), "--data", str(f["data"]),
                                              "--out", str(f["out"]), "--imgsz", "-1"], 2,
                                ["--imgsz", "expected an int >= 32", "-1"]),
    "evaluate-data-images-missing": (lambda f, n: ["evaluate", "--weights", str(f["teacher"]), "--data",
                                                   str(f["noimg"]), "--out", str(f["out"])], 1,
                                     ["--data", "images not found"]),
    "export-not-a-model": (lambda f, n: ["export", "--weights", str(f["notmodel"])], 1,
                           ["--weights", "notmodel.pt", "not a model checkpoint"]),
    "export-imgsz-zero": (lambda f, n: ["export", "--weights", str(f["teacher"]), "--imgsz", "0"], 2,
                          ["--imgsz", "expected an int >= 32", "got 0"]),
    "export-format-unknown": (lambda f, n: ["export", "--weights", str(f["teacher"]), "--formats", "foo"], 2,
                              ["--formats", "'foo'", "expected some of"]),
}


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("probe", list(PROBES))
def test_bad_input_is_one_named_error(probe, inputs, teacher_pt, tmp_path, capsys):
    from training.cli import main

    build, code, needles = PROBES[probe]
    f = {**inputs, "teacher": teacher_pt, "root": tmp_path, "out": tmp_path / "runs"}
    f["root"].mkdir(exist_ok=True)
    assert main(build(f, probe)) == code
    line = _error_line(capsys.readouterr().err)
    for needle in needles:
        assert needle in line, line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # no run directory left


def test_unknown_flag_value_is_argparse_usage(inputs, capsys):
    from training.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "--model", "yolov5n.yaml", "--data", str(inputs["data"]), "--epochs", "three"])
    assert exc.value.code == 2 and "--epochs: invalid int value: 'three'" in capsys.readouterr().err


def test_unwritable_project_is_named(inputs, tmp_path, monkeypatch, capsys):
    """A project directory that cannot be written (the permission check is faked where tests run as root)."""
    import tempfile

    from training.cli import main

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    real = tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        if Path(kwargs.get("dir", "")) == ro:
            raise PermissionError(13, "Permission denied")
        return real(*args, **kwargs)

    if os.geteuid() == 0:
        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    try:
        code = main(_train({"data": inputs["data"], "out": ro / "runs"}, str(inputs["plain"])))
    finally:
        ro.chmod(0o700)
    assert code == 1
    line = _error_line(capsys.readouterr().err)
    assert "--project" in line and str(ro) in line and "Permission denied" in line
    assert list(ro.iterdir()) == []


def test_failed_run_leaves_no_directory_and_name_stays(inputs, tmp_path, capsys):
    """A run that fails inside the trainer (no images in the folders) removes its directory: the retry with good
    data goes to <project>/<name>, not <name>-2; a directory holding a finished run is then refused."""
    from training.cli import main

    project = tmp_path / "runs"
    base = ["train", "--model", "yolov5n.yaml", "--config", str(inputs["plain"]), "--project", str(project),
            "--name", "teacher", "--device", "cpu"]
    assert main([*base, "--data", str(inputs["empty"])]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = _error_line(err)
    assert str(project / "teacher") in line and "run failed" in line and "images/train" in line
    assert not (project / "teacher").exists()

    (project / "teacher").mkdir(parents=True)  # leftovers of a crashed attempt: args.yaml, no checkpoint
    (project / "teacher" / "args.yaml").write_text("epochs: 1\n")
    assert main([*base, "--data", str(inputs["data"])]) == 0
    assert sorted(p.name for p in project.iterdir()) == ["teacher"]
    assert (project / "teacher" / "weights" / "best.pt").is_file()

    assert main([*base, "--data", str(inputs["data"])]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "--name" in line and "already holds a run" in line and "--resume" in line
    assert sorted(p.name for p in project.iterdir()) == ["teacher"]


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["train", "--model", "yolov5n.yaml", "--data", "{data}", "--config", "{cfg}", "--batch", "-5"], 2,
         "error: --batch: expected an int >= 1"),
        (["distill", "--resume", "{notmodel}"], 1, "error: --resume: {notmodel}: not a training checkpoint ("),
    ],
)
def test_real_process_exit_status_and_no_traceback(argv, code, needle, inputs, tmp_path):
    subs = {"data": str(inputs["data"]), "cfg": str(inputs["plain"]), "notmodel": str(inputs["notmodel"])}
    argv = [a.format(**subs) for a in argv]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "training", *argv], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == code, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert needle.format(**subs) in proc.stderr
    assert not (tmp_path / "runs").exists()
