"""Smoke test of the end-to-end demo in quick mode (64 px, 1 epoch, a handful of images) and its resumption."""

from __future__ import annotations

import json

import pytest
import yaml

from test.seeds import seed


def demo_config(tmp_path):
    """The demo's experiment file with the suite's training seeds (test/seeds.py); its data seed is kept."""
    from training.demo import DEMO_CONFIG

    raw = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    raw["seeds"], raw["teacher_seeds"] = [seed(s) for s in raw["seeds"]], [seed(s) for s in raw["teacher_seeds"]]
    path = tmp_path / "demo_cpu.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return str(path)


@pytest.mark.slow
def test_demo_quick_writes_a_complete_report_and_resumes(tmp_path):
    from training import demo

    out = tmp_path / "demo"
    argv = ["--quick", "--out", str(out), "--config", demo_config(tmp_path)]
    assert demo.main(argv) == 0
    report = (out / "REPORT.md").read_text()
    for part in ("## Held-out results", "relevant mAP50-95", "not relevant mAP50", "map_vs_flops.png",
                 "curves.png", "## Speed", "ONNX Runtime (ms)", "OpenVINO (ms)", "## Node run",
                 "## Stages and time taken", "head FLOPs (G)", "head params (M)", "## Distillation gain"):
        assert part in report, part
    stages = json.loads((out / "stages.json").read_text())
    assert stages["mode"] == "quick"
    assert all(s["status"] != "failed" for s in stages["stages"].values())
    s = seed(0)
    for name in (f"teacher_s_seed{s}", f"n_baseline_seed{s}", f"n_from_s_ours_seed{s}", f"n_from_s_native_seed{s}",
                 f"n_coupled_baseline_seed{s}", f"n_coupled_from_s_ours_seed{s}"):
        assert (out / "experiment" / "runs" / name / "results.json").is_file(), name
    assert not (out / "experiment" / "runs" / f"n_coupled_from_s_native_seed{s}").exists()  # not a demo stage
    assert len(stages["stages"]) == 17  # every stage of the list ran (nodes included)
    exports = json.loads((out / "exports.json").read_text())
    assert (out / exports["student"]["exports"]["onnx"]).is_file()
    if (out / "node_run" / "summary.json").is_file():  # the node run needs rclpy in the venv
        assert "overlay.mp4" in report and "Comparison summary" in report
        # the bag's truth scores both detectors' raw and revised signals, with the timeline
        assert "The governing signal: raw detector against revised" in report
        assert (out / "node_run" / "signal_timeline.png").is_file() and (out / "bag_truth.json").is_file()
    # two-class detectors, the state read by the crop classifier trained on the same frames' state labels: the
    # state table and each detector's confusion matrix, whatever they learnt; the nodes run with the classifier
    assert "## Light state (two-class detector + crop classifier)" in report and "red_yellow->green" in report
    assert all((out / f"state_confusion_{role}.png").is_file() for role in ("teacher", "student"))
    assert yaml.safe_load((out / "experiment" / "data" / "yolo" / "data.yaml").read_text())["nc"] == 2
    state_yaml = out / "experiment" / "data" / "yolo_relevance_state" / "data.yaml"
    assert yaml.safe_load(state_yaml.read_text())["nc"] == 10
    assert (out / "state_classifier" / "state_classifier.onnx").is_file()
    params = yaml.safe_load((out / "nodes" / "student.yaml").read_text())["/**"]["ros__parameters"]
    assert params["state_model"] == str((out / "state_classifier" / "state_classifier.onnx").resolve())
    exports = json.loads((out / "exports.json").read_text())  # the params file runs the model the bag ran
    assert params["model"] == str((out / exports["student"]["exports"]["onnx"]).resolve())
    # a second invocation finds every output and skips every stage
    before = {p: p.stat().st_mtime_ns for p in (out / "experiment" / "runs").rglob("best.pt")}
    assert demo.main(argv) == 0
    assert before == {p: p.stat().st_mtime_ns for p in (out / "experiment" / "runs").rglob("best.pt")}


def test_quick_mode_refuses_a_full_demo_directory(tmp_path):
    from training import demo

    (tmp_path / "stages.json").write_text(json.dumps({"mode": "full", "stages": {}}))
    with pytest.raises(ValueError, match="full demo"):
        demo.Stages(tmp_path, "quick")


def test_quick_experiment_is_tiny():
    from training import demo

    exp = demo.demo_experiment(demo.DEMO_CONFIG, quick=True)
    assert exp.train["imgsz"] == 64 and exp.train["epochs"] == 1 and exp.teacher_train["epochs"] == 1
    full = demo.demo_experiment(demo.DEMO_CONFIG, quick=False)
    assert full.teacher_train["epochs"] > full.train["epochs"]


def test_report_recipe_names_the_optimizer_actually_used():
    from training.report import recipe_text

    assert recipe_text({"optimizer": "SGD", "lr0": 0.01, "lrf": 0.1}) == "SGD lr0 0.01 -> lrf 0.1"
    auto = recipe_text({"optimizer": "auto", "lr0": 0.01})
    assert "AdamW" in auto and "lr0 0.01" not in auto  # ultralytics ignores lr0 with optimizer=auto


def test_report_quotes_the_kd_gain_benchmark(tmp_path):
    from training.report import gain_section

    assert "no kd-gain result" in gain_section((tmp_path / "missing.json",))
    result = {"profile": "quick", "machine": {"cpu": "x86"}, "chosen": {"ours": "ours_a", "native": "native_b"},
              "map50_95": {"teacher": 30.0, "baseline": {"0": 10.0, "1": 11.0}, "ours": {"0": 12.0, "1": 13.5},
                           "native": {"0": 10.5, "1": 11.0}},
              "D_ours": {"mean": 2.25, "ci95": [-0.9, 5.4]}, "D_native": {"mean": 0.25, "ci95": None},
              "kd_gap": 0.11, "goals": {"D_ours_ci_excludes_zero": False}}
    (tmp_path / "kd.json").write_text(json.dumps(result))
    text = gain_section((tmp_path / "kd.json",), replication=None)
    assert "| ours | 12.00 | 13.50 |" in text and "+2.25 (95 % CI -0.90 to +5.40)" in text
    assert "ours = `ours_a`" in text and "kd-gap 0.11" in text
    assert "no goal is called met" in text and " met" not in text.replace("no goal is called met", "")


def test_report_calls_a_goal_met_only_where_it_held_on_both_scene_sets(tmp_path):
    from training.report import gain_section

    base = {"profile": "quick", "chosen": {"ours": "o", "native": "n"}, "D_ours": {"mean": 2.0, "ci95": [1.0, 3.0]},
            "D_native": {"mean": 0.5, "ci95": None}, "kd_gap": 0.5,
            "map50_95": {"teacher": 30.0, "baseline": {"0": 10.0}, "ours": {"0": 12.0}, "native": {"0": 10.5}}}
    tuning = {**base, "goals": {"D_ours_ci_excludes_zero": True, "D_ours_vs_native": True, "kd_gap_ge_0.4": True}}
    replication = {**base, "goals": {"D_ours_ci_excludes_zero": False, "D_ours_vs_native": True,
                                     "kd_gap_ge_0.4": True}}
    (tmp_path / "t.json").write_text(json.dumps(tuning))
    (tmp_path / "r.json").write_text(json.dumps(replication))
    text = gain_section((tmp_path / "t.json",), replication=tmp_path / "r.json")
    assert "Met on both scene sets: D_ours >= 2 x D_native, kd-gap >= 0.4." in text
    assert "Not carried by the evidence: the interval of D_ours excludes 0." in text
    assert "the interval of D_ours excludes 0: held" in text and "the interval of D_ours excludes 0: not held" in text


def test_report_reads_the_benchmarks_own_second_scene_set(tmp_path):
    from training.report import gain_section

    base = {"chosen": {"ours": "o", "native": "n"}, "D_ours": {"mean": 2.0, "ci95": [1.0, 3.0]},
            "D_native": {"mean": 0.5, "ci95": None}, "kd_gap": 0.5,
            "map50_95": {"teacher": 30.0, "baseline": {"0": 10.0}, "ours": {"0": 12.0}, "native": {"0": 10.5}}}
    second = {**base, "data_seed": 7, "map50_95": {**base["map50_95"], "ours": {"0": 11.25}},
              "goals": {"D_ours_ci_excludes_zero": True, "D_ours_vs_native": False}}
    result = {**base, "profile": "quick", "goals": {"D_ours_ci_excludes_zero": True, "D_ours_vs_native": True},
              "second_set": second}
    (tmp_path / "kd.json").write_text(json.dumps(result))
    (tmp_path / "r.json").write_text(json.dumps({**base, "goals": {"D_ours_ci_excludes_zero": False}}))
    text = gain_section((tmp_path / "kd.json",), replication=tmp_path / "r.json")  # its own second set wins
    assert "data seed 7, nothing chosen on them" in text and "| ours | 11.25 |" in text
    assert "Met on both scene sets: the interval of D_ours excludes 0." in text
    assert "Not carried by the evidence: D_ours >= 2 x D_native." in text


def test_runs_trained_with_another_config_are_set_aside_with_what_was_made_from_them(tmp_path):
    """A demo directory from before a recipe change: the changed run and the students of a changed teacher are
    moved to <name>.stale and trained again; the table, exports, speed and node run are redone."""
    from dataclasses import replace

    from training import demo
    from training.experiment.runs import run_fingerprint

    exp = demo.demo_experiment(demo.DEMO_CONFIG, quick=True)
    runs, names = demo.demo_runs(exp)
    data_yaml = tmp_path / "experiment" / "data" / "yolo" / "data.yaml"
    data_yaml.parent.mkdir(parents=True)
    data_yaml.write_text("names: {0: relevant, 1: not_relevant}\n")
    for name, run in runs.items():
        d = tmp_path / "experiment" / "runs" / name
        d.mkdir(parents=True)
        (d / "results.json").write_text(json.dumps({"name": name, "fingerprint": run_fingerprint(run, data_yaml)}))
    for rel in demo.DERIVED:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("{}")
    assert demo.set_aside_stale_runs(tmp_path, runs, data_yaml) == []  # nothing changed: nothing moves
    assert all((tmp_path / rel).is_file() for rel in demo.DERIVED)

    ours, teacher = runs[names["ours"]], runs[names["teacher"]]
    changed = {**runs, names["ours"]: replace(ours, config={**ours.config, "distill": {"terms": {"lad": {}}}}),
               names["teacher"]: replace(teacher, config={**teacher.config,
                                                          "train": {**teacher.config["train"], "epochs": 99}})}
    stale = demo.set_aside_stale_runs(tmp_path, changed, data_yaml)
    students_of_teacher = {n for n, r in runs.items() if r.teacher_run == names["teacher"]}
    assert set(stale) == {names["ours"], names["teacher"]} | students_of_teacher
    assert names["baseline"] not in stale
    for name in stale:
        assert (tmp_path / "experiment" / "runs" / f"{name}.stale" / "results.json").is_file()
        assert not (tmp_path / "experiment" / "runs" / name).exists()
    assert not any((tmp_path / rel).exists() for rel in demo.DERIVED)


def test_data_made_from_another_data_section_is_set_aside_with_everything_trained_on_it(tmp_path):
    from training.demo import demo_experiment, set_aside_stale_data

    exp = demo_experiment(demo_config(tmp_path), quick=True)
    out = tmp_path / "demo"
    data, run = out / "experiment" / "data", out / "experiment" / "runs" / "n_baseline_seed0"
    data.mkdir(parents=True)
    run.mkdir(parents=True)
    (out / "exports.json").write_text("{}")
    (out / "bag").mkdir()
    old = {**exp.data.to_dict(), "classes": "relevance_state"}  # a demo from before the crop classifier
    (data / "done.json").write_text(json.dumps({"data": old}))
    assert set_aside_stale_data(out, exp) == ["classes"]
    assert (out / "experiment" / "data.stale" / "done.json").is_file() and not data.exists()
    assert (out / "experiment" / "runs" / "n_baseline_seed0.stale").is_dir() and not run.exists()
    assert not (out / "exports.json").exists() and not (out / "bag").exists()
    assert set_aside_stale_data(out, exp) == []  # nothing left to move: the demo starts over
