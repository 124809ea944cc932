"""Tests of the training.experiment package: strict config, resumable grid, tables with mean/spread, plots.

Training and evaluation are replaced by fakes here (the real chain runs in test_demo.py's slow smoke test).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from test.model_factory import data_yaml_text
from training import experiment as X

REPO = Path(__file__).resolve().parents[2]


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _minimal(data_yaml: Path) -> dict:
    return {
        "data": {"source": "yolo", "yaml": str(data_yaml)},
        "train": {"epochs": 2, "imgsz": 64, "batch": 2},
        "teachers": {"s": "yolov5s.yaml"},
        "students": {"n": "yolov5n.yaml"},
        "methods": {"baseline": None, "fgfi": {"distill": {"terms": {"fgfi": {"weight": 0.01}}}}},
        "seeds": [0, 1],
    }


@pytest.fixture
def data_yaml(tmp_path: Path) -> Path:
    """A data.yaml without images: training and evaluation are fakes here."""
    path = tmp_path / "data.yaml"
    path.write_text(data_yaml_text(".", test=False))
    return path


@pytest.mark.parametrize("mutate, key", [
    (lambda c: c.update(bogus=1), "bogus"),
    (lambda c: c["data"].update(sequencez=3), "sequencez"),
    (lambda c: c["train"].update(epochz=3), "epochz"),
    (lambda c: c["methods"]["fgfi"]["distill"]["terms"]["fgfi"].update(lamda=0.1), "lamda"),
    (lambda c: c.update(evaluate={"splt": "test"}), "splt"),
])
def test_unknown_key_is_an_error_naming_key_and_file(tmp_path, data_yaml, mutate, key):
    cfg = _minimal(data_yaml)
    mutate(cfg)
    path = _write(tmp_path / "exp.yaml", cfg)
    with pytest.raises(ValueError, match=key) as err:
        X.load_experiment(path)
    assert "exp.yaml" in str(err.value)


def test_method_config_file_errors_name_that_file(tmp_path, data_yaml):
    bad = _write(tmp_path / "bad_method.yaml", {"distill": {"terms": {"fgfi": {"psy": 0.5}}}})
    cfg = _minimal(data_yaml)
    cfg["methods"]["fgfi"] = str(bad)
    with pytest.raises(ValueError, match="psy"):
        X.load_experiment(_write(tmp_path / "exp.yaml", cfg))
    cfg["methods"]["fgfi"] = str(tmp_path / "missing.yaml")
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        X.load_experiment(_write(tmp_path / "exp.yaml", cfg))


def test_wrong_types_are_errors(tmp_path, data_yaml):
    cfg = _minimal(data_yaml)
    cfg["seeds"] = "0,1"
    with pytest.raises(ValueError, match="seeds"):
        X.load_experiment(_write(tmp_path / "exp.yaml", cfg))
    cfg = _minimal(data_yaml)
    cfg["data"]["source"] = "kitti"
    with pytest.raises(ValueError, match="data.source"):
        X.load_experiment(_write(tmp_path / "exp.yaml", cfg))


def test_methods_share_the_experiment_recipe(tmp_path, data_yaml):
    cfg = _minimal(data_yaml)
    cfg["methods"]["native"] = str(REPO / "training" / "configs" / "native.yaml")  # its own train: imgsz 640
    exp = X.load_experiment(_write(tmp_path / "exp.yaml", cfg))
    for name in ("baseline", "fgfi", "native"):
        assert exp.methods[name]["train"] == cfg["train"]
    assert exp.kd == {"baseline": False, "fgfi": True, "native": True}


def test_a_method_may_set_its_init_seed_and_nothing_else_of_the_recipe(tmp_path, data_yaml):
    cfg = _minimal(data_yaml)
    cfg["methods"]["spread"] = {"init": {"seed": 5}, "train": {"epochs": 99}}  # train: the experiment's, not its
    exp = X.load_experiment(_write(tmp_path / "exp.yaml", cfg))
    assert exp.methods["spread"]["init"] == {"seed": 5} and exp.methods["spread"]["train"] == cfg["train"]
    assert "init" not in exp.methods["baseline"] and not exp.kd["spread"]
    cfg["methods"]["spread"] = {"init": {"seed": "five"}}
    from training.errors import UsageError

    with pytest.raises(UsageError, match=r"methods.spread: init.seed: expected an int >= 0"):
        X.load_experiment(_write(tmp_path / "bad.yaml", cfg))


def test_a_planned_run_with_a_device_list_resolves_as_its_file_did(tmp_path, data_yaml):
    """A run's config is frozen (lists become tuples); checking it again must accept what its YAML said."""
    from training.experiment.runs import _epochs

    cfg = _minimal(data_yaml)
    cfg["train"]["device"] = [0, 1]  # multi-GPU, as on the real DTLD
    runs = X.plan_runs(X.load_experiment(_write(tmp_path / "exp.yaml", cfg)))
    assert {_epochs(run) for run in runs} == {2}


def test_shipped_configs_load_and_plan():
    demo = X.load_experiment(REPO / "training" / "configs" / "demo_cpu.yaml")
    assert [r.name for r in X.plan_runs(demo)] == [
        "teacher_s_seed0", "n_baseline_seed0", "n_from_s_ours_seed0", "n_from_s_native_seed0",
        "n_coupled_baseline_seed0", "n_coupled_from_s_ours_seed0", "n_coupled_from_s_native_seed0"]
    study = X.load_experiment(REPO / "training" / "configs" / "dtld_source_study.yaml")
    assert set(study.teachers) == {"m", "l", "x"} and set(study.students) == {"n", "s", "m", "n_coupled"}
    assert "n_coupled_from_l_response_seed0" in [r.name for r in X.plan_runs(study)]  # the published setting
    assert study.train["epochs"] == 30 and study.train["imgsz"] == 640 and study.seeds == (0, 1)
    names = [r.name for r in X.plan_runs(study)]
    assert "m_from_m_fgfi_seed0" not in names and "n_from_l_fgfi_seed1" in names
    assert len(names) == len(set(names))


def _fake_marker(run: Path, epochs: int) -> None:
    """The trainer's completion marker for a fake best.pt (``verify_run`` checks size and SHA-256 only)."""
    from training import checkpoints

    best = run / "weights" / "best.pt"
    checkpoints.marker_path(run).write_text(json.dumps({
        "format": checkpoints.MARKER_FORMAT, "complete": True, "kind": "train", "epochs": epochs,
        "epochs_done": epochs, "best": {"file": "best.pt", **checkpoints.file_digest(best), "params": 1}}))


class FakeTrainer:
    """Stands in for ``python -m training train|distill``: writes best.pt and results.csv, counts calls."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def __call__(self, cmd, check=False, **popen_kwargs):  # noqa: ANN001, ANN204
        self.calls.append(cmd)
        arg = dict(zip(cmd[::1], cmd[1::1]))
        run = Path(arg["--project"]) / arg["--name"]
        epochs = yaml.safe_load(Path(arg["--config"]).read_text())["train"]["epochs"]
        (run / "weights").mkdir(parents=True)
        (run / "weights" / "best.pt").write_bytes(b"x")
        lines = ["epoch,train/box_loss,train/cls_loss,metrics/mAP50-95(B)"]
        lines += [f"{e + 1},{1.0 / (e + 1)},{0.5 / (e + 1)},{0.1 * (e + 1)}" for e in range(epochs)]
        (run / "results.csv").write_text("\n".join(lines) + "\n")
        _fake_marker(run, epochs)

        class Done:
            returncode = 0

        return Done()


def fake_evaluate(weights, data, split="test", imgsz=640, device="cpu", batch=16, latency_reps=20,
                  project=None):  # noqa: ANN001, ANN201
    seed = int(Path(weights).parents[1].name[-1])
    teacher = "teacher" in str(weights)
    return {"map50": 0.5 + 0.01 * seed, "map50_95": (0.4 if teacher else 0.3) + 0.01 * seed, "gflops": 4.0 if
            teacher else 1.0, "fp16_mb": 1.0, "params_m": 1.0, "cpu_latency_ms": 2.0,
            "relevant_map50": 0.6, "relevant_map50_95": 0.3, "not_relevant_map50": None, "not_relevant_map50_95": None}


def test_second_run_skips_finished_runs_and_evaluates_once(tmp_path, data_yaml, monkeypatch):
    import training.evaluate

    trainer, evals = FakeTrainer(), []
    monkeypatch.setattr(subprocess, "run", trainer)
    monkeypatch.setattr(training.evaluate, "evaluate_model", lambda w, *a, **k: evals.append(w) or fake_evaluate(
        w, *a, **k))
    exp = X.load_experiment(_write(tmp_path / "exp.yaml", _minimal(data_yaml)))
    out = tmp_path / "exp"
    first = X.run_experiment(exp, out, device="cpu", workers=0)
    assert len(trainer.calls) == 5 and len(evals) == 5  # teacher, 2 baselines, 2 fgfi
    distill = [c for c in trainer.calls if "distill" in c]
    assert len(distill) == 2 and all(str(out / "runs" / "teacher_s_seed0" / "weights" / "best.pt") in c
                                     for c in distill)
    record = json.loads((out / "runs" / "n_baseline_seed1" / "results.json").read_text())
    assert record["seed"] == 1 and record["epochs"] == 2 and record["weights"].endswith("best.pt")
    second = X.run_experiment(exp, out, device="cpu", workers=0)
    assert len(trainer.calls) == 5 and len(evals) == 5  # nothing retrained, nothing re-evaluated
    assert first["groups"] == second["groups"]
    for name in ("results.md", "results.json", "runs.json", "map_vs_flops.png", "curves.png"):
        assert (out / name).is_file(), name


def test_unfinished_run_without_checkpoint_starts_anew(tmp_path, data_yaml, monkeypatch):
    trainer = FakeTrainer()
    monkeypatch.setattr(subprocess, "run", trainer)
    exp = X.load_experiment(_write(tmp_path / "exp.yaml", _minimal(data_yaml)))
    run = X.plan_runs(exp)[0]
    partial = tmp_path / "exp" / "runs" / run.name
    partial.mkdir(parents=True)
    (partial / "args.yaml").write_text("{}")
    record = X.train_run(run, tmp_path / "exp", data_yaml)
    assert len(trainer.calls) == 1 and (partial / "results.json").is_file() and record["name"] == run.name


def test_train_command_resumes_from_last_checkpoint(tmp_path, data_yaml):
    exp = X.load_experiment(_write(tmp_path / "exp.yaml", _minimal(data_yaml)))
    run = next(r for r in X.plan_runs(exp) if r.kd)
    last = tmp_path / "runs" / run.name / "weights" / "last.pt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"x")
    cmd = X.train_command(run, tmp_path, data_yaml, tmp_path / "c.yaml", "cpu", 0)
    assert cmd[3:6] == ["distill", "--resume", str(last)] and "--teacher" not in cmd


def test_aggregate_mean_and_spread_over_seeds():
    rows = [
        {"role": "student", "label": "n", "teacher": "l", "method": "fgfi", "seed": 0, "epochs": 30,
         "map50": 0.50, "map50_95": 0.20, "gflops": 7.0},
        {"role": "student", "label": "n", "teacher": "l", "method": "fgfi", "seed": 1, "epochs": 30,
         "map50": 0.52, "map50_95": 0.24, "gflops": 7.0},
        {"role": "student", "label": "n", "teacher": None, "method": "baseline", "seed": 0, "epochs": 30,
         "map50": 0.40, "map50_95": 0.15, "gflops": 7.0},
    ]
    groups = X.aggregate(rows)
    assert [(g["method"], g["n"]) for g in groups] == [("fgfi", 2), ("baseline", 1)]
    g = groups[0]
    assert g["map50_mean"] == pytest.approx(0.51) and g["map50_std"] == pytest.approx(0.0141421, rel=1e-4)
    assert g["map50_95_mean"] == pytest.approx(0.22) and g["map50_95_std"] == pytest.approx(0.0282843, rel=1e-4)
    assert groups[1]["map50_std"] == 0.0 and groups[1]["relevant_map50_mean"] is None
    md = X.to_markdown(groups)
    assert "| n | l | fgfi | 7.00 | - | - | - | 51.0 ± 1.4 | 22.0 ± 2.8 | - |" in md  # no head / params figures
    assert "| n | - | baseline | 7.00 | - | - | - | 40.0 | 15.0 | - |" in md
    for header in ("relevant mAP50", "not relevant mAP50-95", "FLOPs (G)", "head FLOPs (G)", "head params (M)",
                   "epochs"):
        assert header in md.splitlines()[0]


def test_plots_are_written(tmp_path):
    groups = X.aggregate([
        {"role": "teacher", "label": "l", "teacher": None, "method": "teacher", "seed": 0, "map50_95": 0.25,
         "gflops": 100.0},
        {"role": "student", "label": "n", "teacher": "l", "method": "fgfi", "seed": 0, "map50_95": 0.2,
         "gflops": 7.0},
        {"role": "student", "label": "n", "teacher": "l", "method": "fgfi", "seed": 1, "map50_95": 0.22,
         "gflops": 7.0},
    ])
    png = X.plot_map_vs_flops(groups, tmp_path / "plot.png")
    curves = X.plot_curves({"a": [{"epoch": 1, "metrics/mAP50-95(B)": 0.1, "train/box_loss": 1.0}]},
                           tmp_path / "curves.png")
    for p in (png, curves):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_csv_rows_strip_keys_and_skip_text(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("  epoch,  metrics/mAP50-95(B),note\n1, 0.25,abc\n")
    assert X.csv_rows(path) == [{"epoch": 1.0, "metrics/mAP50-95(B)": 0.25}]
    assert X.csv_rows(tmp_path / "missing.csv") == []


def test_finished_run_with_another_config_is_refused(tmp_path, data_yaml, monkeypatch):
    monkeypatch.setattr(subprocess, "run", FakeTrainer())
    cfg = _minimal(data_yaml)
    run = X.plan_runs(X.load_experiment(_write(tmp_path / "exp.yaml", cfg)))[0]
    X.train_run(run, tmp_path / "exp", data_yaml)
    cfg["train"]["epochs"] = 3
    changed = X.plan_runs(X.load_experiment(_write(tmp_path / "exp.yaml", cfg)))[0]
    with pytest.raises(ValueError, match="fingerprint"):
        X.train_run(changed, tmp_path / "exp", data_yaml)


def test_a_default_written_out_keeps_a_finished_run(tmp_path, data_yaml, monkeypatch):
    """nbs: 64 is ultralytics' default: writing it into the config defines the same run, not a stale one."""
    monkeypatch.setattr(subprocess, "run", FakeTrainer())
    cfg = _minimal(data_yaml)
    run = X.plan_runs(X.load_experiment(_write(tmp_path / "exp.yaml", cfg)))[0]
    first = X.train_run(run, tmp_path / "exp", data_yaml)
    cfg["train"]["nbs"] = 64
    same = X.plan_runs(X.load_experiment(_write(tmp_path / "exp.yaml", cfg)))[0]
    assert X.train_run(same, tmp_path / "exp", data_yaml) == first
    cfg["train"]["nbs"] = 16
    changed = X.plan_runs(X.load_experiment(_write(tmp_path / "exp.yaml", cfg)))[0]
    with pytest.raises(ValueError, match="fingerprint"):
        X.train_run(changed, tmp_path / "exp", data_yaml)


def test_synth_scene_overrides_are_checked_like_configs():
    base = {**X.DATA_KEYS, "preset": "demo"}
    cfg = X.synth_config(X.DataSpec(**{**base, "scene": {"test_fraction": 0.5, "distractors": [4, 10],
                                                          "write_v1": False}}))
    assert cfg.test_fraction == 0.5 and cfg.distractors == (4, 10) and cfg.write_v1 is False
    for scene, message in (({"fog": 1}, "unknown key 'fog'"), ({"distractors": [4]}, "expected [min, max]"),
                           ({"test_fraction": "half"}, "expected float"), ({"test_fraction": True}, "expected float"),
                           ({"distractors": [4, 1.5]}, "expected int")):
        with pytest.raises(ValueError, match=re.escape(message)):
            X.synth_config(X.DataSpec(**{**base, "scene": scene}))


def test_trained_pt_teacher_is_used_as_is(tmp_path, data_yaml, monkeypatch):
    teacher = tmp_path / "models" / "teacher_l.pt"
    teacher.parent.mkdir()
    teacher.write_bytes(b"checkpoint")
    cfg = _minimal(data_yaml)
    cfg["teachers"] = {"l": "models/teacher_l.pt"}  # relative to the experiment file
    cfg["seeds"] = [0]
    exp = X.load_experiment(_write(tmp_path / "exp.yaml", cfg))
    trainer = FakeTrainer()
    monkeypatch.setattr(subprocess, "run", trainer)
    out = tmp_path / "exp"
    records = [X.train_run(run, out, data_yaml) for run in X.plan_runs(exp)]
    assert [c[3] for c in trainer.calls] == ["train", "distill"]  # the teacher is not trained
    distill = trainer.calls[1]
    assert distill[distill.index("--teacher") + 1] == str(teacher.resolve())
    assert records[0]["weights"] == str(teacher.resolve()) and records[2]["weights"].endswith("best.pt")


def test_missing_pt_teacher_is_an_error_naming_the_field(tmp_path, data_yaml):
    from training.errors import UsageError

    cfg = _minimal(data_yaml)
    cfg["teachers"] = {"l": "models/missing_l.pt"}
    with pytest.raises(UsageError, match=r"exp\.yaml: teachers\.l: teacher checkpoint not found: models/missing_l\.pt"):
        X.load_experiment(_write(tmp_path / "exp.yaml", cfg))


def test_results_without_verified_checkpoint_are_trained_again(tmp_path, data_yaml, monkeypatch):
    trainer = FakeTrainer()
    monkeypatch.setattr(subprocess, "run", trainer)
    run = X.plan_runs(X.load_experiment(_write(tmp_path / "exp.yaml", _minimal(data_yaml))))[0]
    out = tmp_path / "exp"
    X.train_run(run, out, data_yaml)
    run_path = out / "runs" / run.name
    (run_path / "weights" / "best.pt").write_bytes(b"")  # torn after results.json was written
    (run_path / "eval_test_64.json").write_text("{}")
    X.train_run(run, out, data_yaml)
    assert len(trainer.calls) == 2 and not (run_path / "eval_test_64.json").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_training_child_dies_with_its_launcher(tmp_path):
    """A launcher killed for memory (a Ray worker) must not leave its training process running beside a retry."""
    script = f"""
import subprocess, sys, time
from training.experiment.runs import _die_with_parent
p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], preexec_fn=_die_with_parent)
open({str(tmp_path / "child")!r}, "w").write(str(p.pid))
time.sleep(120)
"""
    launcher = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2])
    pidfile = tmp_path / "child"
    for _ in range(600):
        if pidfile.is_file() and pidfile.read_text():
            break
        time.sleep(0.05)
    child = int(pidfile.read_text())
    launcher.kill()
    launcher.wait()

    def state() -> str:
        try:
            return Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return "gone"

    for _ in range(200):
        if state() in ("Z", "X", "gone"):
            break
        time.sleep(0.05)
    assert state() in ("Z", "X", "gone"), f"training child {child} outlived its launcher (state {state()})"


def test_a_method_may_set_its_sampling_and_the_data_its_scheme_and_lamps(tmp_path, data_yaml):
    from training.errors import UsageError

    cfg = _minimal(data_yaml)
    cfg["methods"]["rare"] = {"sampling": {"repeat_thr": 0.1}}
    exp = X.load_experiment(_write(tmp_path / "exp.yaml", cfg))
    assert exp.methods["rare"]["sampling"] == {"repeat_thr": 0.1} and "sampling" not in exp.methods["baseline"]
    assert exp.data.classes == "relevance"
    synth = {"source": "synth", "classes": "relevance_state", "scene": {"lamps": "camera"}}
    exp = X.load_experiment(_write(tmp_path / "state.yaml", {**cfg, "data": synth}))
    assert exp.data.classes == "relevance_state" and X.synth_config(exp.data).lamps == "camera"
    for data, msg in (({**synth, "classes": "colour"}, r"data.classes: expected one of relevance, relevance_state"),
                      ({**synth, "scene": {"lamps": "bright"}}, r"data.scene.lamps: .*expected one of 'flat'")):
        with pytest.raises(UsageError, match=msg):
            X.load_experiment(_write(tmp_path / "bad.yaml", {**cfg, "data": data}))


def test_data_made_from_another_data_section_is_not_reused(tmp_path, data_yaml):
    from training.errors import UsageError
    from training.experiment.data import _check_same_data

    cfg = {**_minimal(data_yaml), "data": {"source": "synth", "sequences": 4}}
    exp = X.load_experiment(_write(tmp_path / "exp.yaml", cfg))
    done = tmp_path / "done.json"
    old = exp.data.to_dict()
    del old["classes"]  # a record written before the key existed reads as its default
    done.write_text(json.dumps({"data": old}))
    _check_same_data(exp, done)
    state = {**cfg, "data": {**cfg["data"], "classes": "relevance_state"}}
    exp = X.load_experiment(_write(tmp_path / "exp.yaml", state))
    with pytest.raises(UsageError, match=r"data.classes: 'relevance_state', but .*done.json was made with 'relevance'"):
        _check_same_data(exp, done)


def test_state_table_only_for_models_with_state_metrics():
    from training.experiment.tables import aggregate, state_markdown

    plain = {"role": "student", "label": "n", "method": "baseline", "seed": 0, "map50": 0.5}
    state = {"role": "student", "label": "n", "method": "ours", "state_matched": 10, "state_accuracy": 0.9,
             "red_recall": 0.5, "red_to_green": 1, "red_yellow_to_green": 0}
    assert state_markdown(aggregate([plain])) == ""
    table = state_markdown(aggregate([plain, {**state, "seed": 0}, {**state, "seed": 1, "state_accuracy": 0.8}]))
    rows = table.splitlines()
    assert len(rows) == 3 and "| ours |" in rows[2] and "85.0 ± 7.1" in rows[2]  # percent, mean ± sd of 2 seeds
    assert "| 50.0 ± 0.0 |" in rows[2] and "| 10 | 85.0" in rows[2] and "| 1 | 0 |" in rows[2]  # counts whole
