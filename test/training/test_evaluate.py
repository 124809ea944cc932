"""`python -m training evaluate` (training/evaluate.py): table, provenance, per-class metrics, e2e run."""

from __future__ import annotations

import argparse
import json
from types import SimpleNamespace

import numpy as np
import pytest

from training import evaluate

ROW = {
    "model": "yolov5n", "teacher": "teacher_l", "gflops": 7.1234, "map50": 0.509, "map50_95": 0.232,
    "relevant_map50": 0.6, "relevant_map50_95": 0.3, "not_relevant_map50": None,
    "not_relevant_map50_95": None, "epochs": 30, "params_m": 2.5, "fp16_mb": 5.0, "cpu_latency_ms": 12.345,
    "head_gflops": 0.1234, "head_params_m": 0.75,
}


def test_markdown_has_study_columns_percent_and_dashes():
    lines = evaluate.to_markdown([ROW]).splitlines()
    assert lines[0].startswith(
        "| model | teacher | FLOPs (G) | head FLOPs (G) | mAP50 | mAP50-95 | relevant mAP50 | relevant mAP50-95 | "
        "not relevant mAP50 | not relevant mAP50-95 | epochs | params (M) | head params (M) |"
    )
    assert lines[2] == ("| yolov5n | teacher_l | 7.12 | 0.123 | 50.9 | 23.2 | 60.0 | 30.0 | - | - | 30 | 2.50 | "
                        "0.750 | 5.00 | 12.35 |")


def test_per_class_map_marks_class_without_labels_none():
    box = SimpleNamespace(ap_class_index=np.array([1]), ap50=np.array([0.5]), ap=np.array([0.25]))
    out = evaluate.per_class_map(SimpleNamespace(box=box), {0: "relevant", 1: "not_relevant"})
    assert out == {"relevant_map50": None, "relevant_map50_95": None,
                   "not_relevant_map50": 0.5, "not_relevant_map50_95": 0.25}


def test_run_info_prefers_provenance_then_train_args_then_dash(tmp_path):
    weights = tmp_path / "n_from_l" / "weights" / "best.pt"
    weights.parent.mkdir(parents=True)
    info = evaluate.run_info(weights, {}, "yolov5n.yaml")
    assert (info["model"], info["teacher"], info["epochs"]) == ("yolov5n (n_from_l)", "-", "-")
    assert evaluate.run_info(weights, {"epochs": 3, "distill_model": "x/yolov5l.pt"})["teacher"] == "yolov5l"
    (tmp_path / "n_from_l" / "provenance.json").write_text(
        json.dumps({"teacher": "runs/teacher_l/weights/best.pt", "epochs": 30}))
    info = evaluate.run_info(weights, {"epochs": 3}, "yolov5n.yaml")
    assert (info["teacher"], info["epochs"], info["provenance"]) == ("teacher_l", 30, True)
    # the distill trainer's provenance.json: teacher path at the top, epochs inside train_args
    (tmp_path / "n_from_l" / "provenance.json").write_text(
        json.dumps({"teacher": "runs/x/weights/last.pt", "train_args": {"epochs": 12}}))
    assert evaluate.run_info(weights, {"epochs": 3})["epochs"] == 12


def test_write_report_is_json_and_markdown(tmp_path):
    json_path, md_path = evaluate.write_report([ROW], tmp_path / "out")
    assert json.loads(json_path.read_text()) == [ROW]
    assert md_path.read_text() == evaluate.to_markdown([ROW])


def test_missing_inputs_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="--weights"):
        evaluate.evaluate_model(tmp_path / "a.pt", tmp_path / "data.yaml")


def test_cli_flags():
    parser = argparse.ArgumentParser()
    evaluate.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["evaluate", "--weights", "a.pt", "b.pt", "--data", "d.yaml", "--out", "o"])
    assert [str(w) for w in args.weights] == ["a.pt", "b.pt"]
    assert (args.split, args.imgsz, args.device, args.func) == ("test", 640, "cpu", evaluate.main)


@pytest.mark.slow
def test_evaluate_trained_checkpoint_writes_table(coupled_run, tiny_yolo_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative output directory stays where it was asked for
    rows = evaluate.evaluate_models([coupled_run / "weights" / "best.pt"], tiny_yolo_data, "out",
                                    split="test", imgsz=64, latency_reps=2, batch=2)
    assert (tmp_path / "out" / "val").is_dir() and not (tmp_path / "runs").exists()
    tmp_path = tmp_path / "out"
    (row,) = rows
    for key in ("map50", "map50_95", "relevant_map50", "not_relevant_map50_95"):
        assert row[key] is None or 0.0 <= row[key] <= 1.0
    assert row["gflops"] > 0 and 1.0 < row["params_m"] < 3.0 and 2.0 < row["fp16_mb"] < 6.0
    assert row["cpu_latency_ms"] > 0 and row["epochs"] == 1 and row["teacher"] == "-"
    assert json.loads((tmp_path / "evaluation.json").read_text())[0]["model"] == row["model"]
    assert "yolov5n-coupled" in (tmp_path / "evaluation.md").read_text()
