"""Smoke test of the end-to-end demo in quick mode (64 px, 1 epoch, a handful of images) and its resumption."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_demo_quick_writes_a_complete_report_and_resumes(tmp_path):
    from training import demo

    out = tmp_path / "demo"
    assert demo.main(["--quick", "--out", str(out)]) == 0
    report = (out / "REPORT.md").read_text()
    for part in ("## Held-out results", "relevant mAP50-95", "not relevant mAP50", "map_vs_flops.png",
                 "curves.png", "## Speed", "ONNX Runtime (ms)", "OpenVINO (ms)", "## Node run",
                 "## Stages and time taken"):
        assert part in report, part
    stages = json.loads((out / "stages.json").read_text())
    assert stages["mode"] == "quick"
    assert all(s["status"] != "failed" for s in stages["stages"].values())
    for name in ("teacher_s_seed0", "n_baseline_seed0", "n_from_s_ours_seed0", "n_from_s_native_seed0"):
        assert (out / "experiment" / "runs" / name / "results.json").is_file(), name
    exports = json.loads((out / "exports.json").read_text())
    assert (out / exports["student"]["exports"]["onnx"]).is_file()
    if (out / "node_run" / "summary.json").is_file():  # the node run needs rclpy in the venv
        assert "overlay.mp4" in report and "Comparison summary" in report
    # a second invocation finds every output and skips every stage
    before = {p: p.stat().st_mtime_ns for p in (out / "experiment" / "runs").rglob("best.pt")}
    assert demo.main(["--quick", "--out", str(out)]) == 0
    assert before == {p: p.stat().st_mtime_ns for p in (out / "experiment" / "runs").rglob("best.pt")}


def test_quick_mode_refuses_a_full_demo_directory(tmp_path):
    from training import demo

    (tmp_path / "stages.json").write_text(json.dumps({"mode": "full", "stages": {}}))
    with pytest.raises(ValueError, match="full demo"):
        demo.Stages(tmp_path, "quick")


def test_quick_experiment_is_tiny():
    from training import demo

    exp = demo.demo_experiment(demo.DEMO_CONFIG, quick=True)
    assert exp["train"]["imgsz"] == 64 and exp["train"]["epochs"] == 1 and exp["teacher_train"]["epochs"] == 1
    full = demo.demo_experiment(demo.DEMO_CONFIG, quick=False)
    assert full["teacher_train"]["epochs"] > full["train"]["epochs"]


def test_report_recipe_names_the_optimizer_actually_used():
    from training.report import recipe_text

    assert recipe_text({"optimizer": "SGD", "lr0": 0.01, "lrf": 0.1}) == "SGD lr0 0.01 -> lrf 0.1"
    auto = recipe_text({"optimizer": "auto", "lr0": 0.01})
    assert "AdamW" in auto and "lr0 0.01" not in auto  # ultralytics ignores lr0 with optimizer=auto
