"""state_scheme: the same baseline in both class schemes, validated as one class (lights found, whatever class)."""

from __future__ import annotations

import pytest

from test.benchmarks import load_benchmark


def test_both_experiments_differ_only_in_the_class_scheme():
    from training.experiment import resolve_experiment

    bench = load_benchmark("state_scheme")
    raws = {s: bench.scheme_experiment(s, [0, 1], "runs/x") for s in bench.SCHEMES}
    exps = {s: resolve_experiment(raw, s) for s, raw in raws.items()}
    assert {s: e.data.classes for s, e in exps.items()} == {"relevance_state": "relevance_state",
                                                             "relevance": "relevance"}
    assert exps["relevance"].data.to_dict() == {**exps["relevance_state"].data.to_dict(), "classes": "relevance"}
    for e in exps.values():
        assert list(e.methods) == ["baseline"] and e.seeds == (0, 1) and dict(e.data.scene)["lamps"] == "camera"
    assert raws["relevance"]["out"] != raws["relevance_state"]["out"]


@pytest.mark.slow
def test_light_detection_counts_every_label_and_says_none_over_nothing(tmp_path):
    from test.model_factory import make_untrained_pt, write_tiny_yolo_dataset

    bench = load_benchmark("state_scheme")
    data = write_tiny_yolo_dataset(tmp_path / "data", n_train=2, n_val=4, size=64)
    (tmp_path / "run" / "weights").mkdir(parents=True)
    weights = make_untrained_pt(tmp_path / "run" / "weights" / "best.pt")
    labels = sum(len(p.read_text().splitlines()) for p in (tmp_path / "data" / "labels" / "val").glob("*.txt"))
    r = bench.light_detection(weights, data, "val", 64, conf=0.0, nms_iou=0.45)
    assert r["labels"] == labels > 0
    assert 0.0 <= r["recall"] <= 1.0 and 0.0 <= r["map50_95"] <= r["map50"] <= 1.0
    # a threshold above every score of an untrained head finds nothing, and says so instead of 0 / 0
    none = bench.light_detection(weights, data, "val", 64, conf=1.0)
    assert none["recall"] == 0.0 and none["precision"] is None
