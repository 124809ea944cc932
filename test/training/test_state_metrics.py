"""Light-state metrics (training/state_metrics.py) and their place in `python -m training evaluate`.

Golden tests on hand-built predictions: every expected number is worked out in the comments. The few end-to-end
tests run an untrained model (nothing trained, a few seconds) and assert against what ultralytics itself computed
in the same pass, never against an accuracy.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from kd_traffic_light.core.atomic_io import TMP_MARK
from kd_traffic_light.core.classes import STATES, class_names
from training import evaluate
from training.state_metrics import (
    BACKGROUND,
    MISSED,
    box_iou,
    flat_row,
    match_lights,
    plot_confusion,
    state_metrics,
    state_of,
    tp_matrix,
)

NAMES = class_names("relevance_state")
ID = {name: cid for cid, name in NAMES.items()}
#: ultralytics' AP of a perfectly ranked class (101-point interpolation ends on the recall-1 sentinel at 0).
PERFECT_AP = 0.995


def box(k: int, dx: float = 0.0) -> list[float]:
    """Light ``k``: a 10 x 10 box, 20 px right of light ``k - 1`` (no two lights overlap), shifted by ``dx``."""
    return [20.0 * k + dx, 0.0, 20.0 * k + 10 + dx, 10.0]


def image(gt: list[tuple[int, str]], preds: list[tuple[int, str, float]] | list) -> dict[str, np.ndarray]:
    """One image: labels ``(light, class name)``, predictions ``(light or box, class name, score)``."""
    def boxes(ks):
        return np.array([k if isinstance(k, list) else box(k) for k in ks], float).reshape(-1, 4)

    return {"gt_boxes": boxes([k for k, _ in gt]), "gt_cls": np.array([ID[c] for _, c in gt], int),
            "pred_boxes": boxes([k for k, _, _ in preds]), "pred_cls": np.array([ID[c] for _, c, _ in preds], int),
            "pred_scores": np.array([s for _, _, s in preds], float)}


def cell(result, true: str, pred: str) -> int:
    conf = result["confusion"]
    return conf["counts"][conf["rows"].index(true)][conf["columns"].index(pred)]


# ---------------------------------------------------------------------------------------------------- golden
def test_state_of_reads_the_state_and_merges_relevance():
    assert state_of([0, 5, 3, 9, 2], NAMES).tolist() == [STATES.index(s) for s in
                                                          ("red", "red", "green", "off", "red_yellow")]
    assert state_of(np.array([3.0]), list(NAMES.values())).tolist() == [STATES.index("green")]
    with pytest.raises(ValueError, match="names: class 0 'relevant' carries no state"):
        state_of([0], class_names("relevance"))
    with pytest.raises(ValueError, match=r"class_ids: class ids \[10\] are not in names"):
        state_of([10], NAMES)
    with pytest.raises(ValueError, match="class_ids: expected integer class ids"):
        state_of([1.5], NAMES)


def test_perfect_predictions_score_one_everywhere():
    gt = [(k, f"relevant_{s}") for k, s in enumerate(STATES)] + [(5, "not_relevant_red")]
    r = state_metrics([image(gt, [(k, c, 0.9) for k, c in gt])], NAMES)
    assert (r["state_accuracy"], r["matched"], r["images"]) == (1.0, 6, 1)
    for s in STATES:
        ps = r["per_state"][s]
        assert (ps["recall"], ps["precision"], ps["support"]) == (1.0, 1.0, 2 if s == "red" else 1)
        assert (ps["ap50"], ps["ap50_95"]) == (pytest.approx(PERFECT_AP), pytest.approx(PERFECT_AP))
    assert r["critical"] == {"red_to_green": 0, "red_yellow_to_green": 0, "yellow_to_green": 0}
    counts = np.array(r["confusion"]["counts"])
    assert np.array_equal(counts, np.diag([2, 1, 1, 1, 1, 0]))
    assert r["confusion"]["rows"][-1] == BACKGROUND and r["confusion"]["columns"][-1] == MISSED
    json.dumps(r)  # JSON-able as it is


def test_relevance_is_merged():
    """A red light found as red with the wrong relevance is a correct state (AP too: relabelled by state)."""
    gt = [(0, "relevant_red"), (1, "not_relevant_red")]
    r = state_metrics([image(gt, [(0, "not_relevant_red", 0.9), (1, "relevant_red", 0.8)])], NAMES)
    assert (r["state_accuracy"], r["per_state"]["red"]["recall"]) == (1.0, 1.0)
    assert r["per_state"]["red"]["ap50"] == pytest.approx(PERFECT_AP)


def test_red_predicted_green_is_counted_everywhere_it_should_be():
    # 4 red lights and 2 green ones; light 3 (red) is read as green, everything else right.
    gt = [(k, "relevant_red") for k in range(4)] + [(4, "relevant_green"), (5, "relevant_green")]
    preds = [(0, "relevant_red", 0.9), (1, "relevant_red", 0.9), (2, "relevant_red", 0.9),
             (3, "relevant_green", 0.9), (4, "relevant_green", 0.9), (5, "relevant_green", 0.9)]
    r = state_metrics([image(gt, preds)], NAMES)
    assert r["critical"]["red_to_green"] == 1 and r["critical"]["red_yellow_to_green"] == 0
    assert r["matched"] == 6 and r["state_accuracy"] == pytest.approx(5 / 6)  # 1/6 lower than perfect
    red, green = r["per_state"]["red"], r["per_state"]["green"]
    assert (red["recall"], red["precision"]) == (pytest.approx(3 / 4), 1.0)  # a miss of red, not a red FP
    assert (green["recall"], green["precision"]) == (1.0, pytest.approx(2 / 3))  # a green FP
    assert (cell(r, "red", "red"), cell(r, "red", "green"), cell(r, "green", "green")) == (3, 1, 2)
    assert (cell(r, "red", MISSED), cell(r, BACKGROUND, "green")) == (0, 0)
    row = flat_row(r)
    assert (row["red_to_green"], row["state_accuracy"], row["state_matched"]) == (1, r["state_accuracy"], 6)


def test_red_yellow_and_yellow_to_green_are_critical_too():
    gt = [(0, "relevant_red_yellow"), (1, "not_relevant_yellow"), (2, "relevant_green")]
    r = state_metrics([image(gt, [(0, "relevant_green", 0.9), (1, "relevant_green", 0.9),
                                  (2, "relevant_green", 0.9)])], NAMES)
    assert r["critical"] == {"red_to_green": 0, "red_yellow_to_green": 1, "yellow_to_green": 1}
    assert r["state_accuracy"] == pytest.approx(1 / 3) and r["per_state"]["green"]["precision"] == pytest.approx(1 / 3)


def test_missed_light_lands_in_missed_column():
    r = state_metrics([image([(0, "relevant_red"), (1, "relevant_red")], [(0, "relevant_red", 0.9)])], NAMES)
    assert (cell(r, "red", MISSED), cell(r, "red", "red")) == (1, 1)
    assert (r["matched"], r["state_accuracy"]) == (1, 1.0)  # a miss is not a state error
    assert (r["per_state"]["red"]["recall"], r["per_state"]["red"]["precision"]) == (0.5, 1.0)


def test_duplicate_prediction_is_background():
    # the same green light found twice (IoU 0.82 with each other and with the label): the lower score is spare
    dup = [image([(0, "relevant_green")], [(0, "relevant_green", 0.9),
                                           ([1.0, 0.0, 11.0, 10.0], "not_relevant_green", 0.8)])]
    r = state_metrics(dup, NAMES, nms_iou=None)
    assert (cell(r, "green", "green"), cell(r, BACKGROUND, "green"), r["matched"]) == (1, 1, 1)
    assert (r["per_state"]["green"]["recall"], r["per_state"]["green"]["precision"]) == (1.0, 0.5)
    # the nodes' class-agnostic NMS (IoU 0.45) publishes only the first, so by default it is not counted
    r = state_metrics(dup, NAMES)
    assert (cell(r, "green", "green"), cell(r, BACKGROUND, "green")) == (1, 0)
    assert r["per_state"]["green"]["precision"] == 1.0


def test_highest_score_is_matched_first():
    # a wrong-state duplicate that scores higher takes the light; the right one is then background
    r = state_metrics([image([(0, "relevant_green")], [(0, "relevant_green", 0.5), (0, "relevant_red", 0.9)])],
                      NAMES, nms_iou=None)
    assert (cell(r, "green", "red"), cell(r, BACKGROUND, "green"), r["state_accuracy"]) == (1, 1, 0.0)


def test_low_overlap_is_no_match():
    # IoU 50 / 150 = 0.33 < 0.5: a false detection and a missed light
    r = state_metrics([image([(0, "relevant_red")], [(box(0, dx=5.0), "relevant_red", 0.9)])], NAMES)
    assert (cell(r, BACKGROUND, "red"), cell(r, "red", MISSED), r["matched"]) == (1, 1, 0)
    assert r["state_accuracy"] is None


def test_state_without_labels_is_none_not_zero():
    r = state_metrics([image([(0, "relevant_red")], [(0, "relevant_red", 0.9)])], NAMES)
    for s in ("yellow", "red_yellow", "green", "off"):
        assert r["per_state"][s] == {"support": 0, "predicted": 0, "correct": 0, "precision": None,
                                     "recall": None, "ap50": None, "ap50_95": None}
        assert (flat_row(r)[f"{s}_recall"], flat_row(r)[f"{s}_ap50"]) == (None, None)
    # predictions of a state without labels: recall and AP stay None, precision is defined (all wrong)
    r = state_metrics([image([(0, "relevant_red")], [(1, "relevant_off", 0.9)])], NAMES)
    off = r["per_state"]["off"]
    assert (off["recall"], off["ap50"], off["precision"], off["predicted"]) == (None, None, 0.0, 1)
    # no labels at all: nothing defined but precision
    r = state_metrics([image([], [])], NAMES)
    assert r["state_accuracy"] is None and r["matched"] == 0
    assert all(v["recall"] is None and v["ap50"] is None for v in r["per_state"].values())


def test_conf_threshold_excludes_low_scores_from_all_but_ap():
    img = image([(0, "relevant_red")], [(0, "relevant_red", 0.2)])
    r = state_metrics([img], NAMES)  # default 0.25: the 0.2 prediction does not count
    assert (r["conf"], r["matched"], r["state_accuracy"], cell(r, "red", MISSED)) == (0.25, 0, None, 1)
    red = r["per_state"]["red"]
    assert (red["recall"], red["precision"], red["predicted"]) == (0.0, None, 0)
    assert red["ap50"] == pytest.approx(PERFECT_AP)  # AP is over all predictions, whatever their score
    r = state_metrics([img], NAMES, conf=0.2)  # a score equal to conf counts
    assert (r["matched"], r["per_state"]["red"]["recall"]) == (1, 1.0)


def test_ap50_95_counts_the_iou_thresholds_passed():
    # IoU 62 / 100 = 0.62: a true positive at 0.50, 0.55, 0.60 only, so AP50-95 = 3/10 of AP50
    r = state_metrics([image([(0, "relevant_red")], [([0.0, 0.0, 6.2, 10.0], "relevant_red", 0.9)])], NAMES)
    red = r["per_state"]["red"]
    assert red["ap50"] == pytest.approx(PERFECT_AP) and red["ap50_95"] == pytest.approx(0.3 * PERFECT_AP)


def test_matching_helpers():
    gt = np.array([box(0), box(1)])
    assert box_iou(np.array([box(0)]), np.array([box(0, dx=5.0)]))[0, 0] == pytest.approx(1 / 3)
    # light 1 twice (the 0.95 one, IoU 0.82, takes it first), light 0 once, one prediction on nothing
    preds = np.array([box(1), box(0), box(1, dx=1.0), box(3)])
    assert match_lights(preds, [0.9, 0.8, 0.95, 0.7], gt).tolist() == [-1, 0, 1, -1]
    assert match_lights(preds[:0], [], gt).tolist() == []
    assert match_lights(preds, [0.5] * 4, gt[:0]).tolist() == [-1] * 4


def test_tp_matrix_equals_ultralytics_match_predictions():
    """Same greedy label-aware matching as DetectionValidator at the 10 IoU thresholds, on random crowded scenes."""
    import torch
    from ultralytics.models.yolo.detect.val import DetectionValidator

    rng = np.random.default_rng(0)
    fake = SimpleNamespace(iouv=torch.linspace(0.5, 0.95, 10))
    for _ in range(20):
        gt = rng.uniform(0, 40, (6, 2))
        gt = np.concatenate([gt, gt + rng.uniform(5, 15, (6, 2))], 1)
        pred = np.repeat(gt, 3, 0) + rng.normal(0, 2.0, (18, 4))
        scores = np.sort(rng.uniform(0, 1, 18))[::-1]  # ultralytics expects descending scores
        gl, pl = rng.integers(0, 3, 6), rng.integers(0, 3, 18)
        ref = DetectionValidator.match_predictions(fake, torch.from_numpy(pl), torch.from_numpy(gl),
                                                   torch.from_numpy(box_iou(gt, pred))).numpy()
        assert np.array_equal(tp_matrix(pred, scores, pl, gt, gl), ref)


def test_bad_input_is_named():
    good = image([(0, "relevant_red")], [(0, "relevant_red", 0.9)])
    with pytest.raises(ValueError, match="images: expected a list"):
        state_metrics(good, NAMES)
    with pytest.raises(ValueError, match=r"images\[1\]: missing keys \['gt_cls'\]"):
        state_metrics([good, {k: v for k, v in good.items() if k != "gt_cls"}], NAMES)
    with pytest.raises(ValueError, match=r"images\[0\]\['pred_boxes'\]: expected shape \(n, 4\)"):
        state_metrics([{**good, "pred_boxes": np.zeros((1, 3))}], NAMES)
    with pytest.raises(ValueError, match=r"images\[0\]\['pred_scores'\]: expected 1 scores"):
        state_metrics([{**good, "pred_scores": np.zeros(2)}], NAMES)
    with pytest.raises(ValueError, match=r"images\[0\]\['gt_cls'\]: class ids \[12\] are not in names"):
        state_metrics([{**good, "gt_cls": np.array([12])}], NAMES)
    with pytest.raises(ValueError, match=r"conf: expected a number in \[0, 1\]"):
        state_metrics([good], NAMES, conf=1.5)
    with pytest.raises(ValueError, match="names: class 0 'relevant' carries no state"):
        state_metrics([good], class_names("relevance"))


# ------------------------------------------------------------------------------------------------------ plot
def test_plot_confusion_writes_a_png_atomically(tmp_path):
    r = state_metrics([image([(0, "relevant_red"), (1, "relevant_red_yellow")],
                             [(0, "relevant_green", 0.9), (1, "relevant_green", 0.9)])], NAMES)
    path = plot_confusion(r, tmp_path / "sub" / "confusion.png", title="m")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir() if TMP_MARK in p.name] == []
    with pytest.raises(ValueError, match="path: expected a .png file"):
        plot_confusion(r, tmp_path / "c.jpg")
    with pytest.raises(ValueError, match="result: expected the dict returned by state_metrics"):
        plot_confusion({"confusion": {"counts": [[1]]}}, tmp_path / "c.png")


# -------------------------------------------------------------------------------------------------- evaluate
def _state_row(model: str = "yolov5n (rs)") -> dict:
    r = state_metrics([image([(0, "relevant_red")], [(0, "relevant_green", 0.9)])], NAMES)
    return {"model": model, "map50": 0.5, **flat_row(r), "state": r}


def test_markdown_adds_state_columns_only_when_a_row_has_them():
    plain = {"model": "yolov5n", "map50": 0.5}
    assert evaluate.to_markdown([plain]).splitlines()[0].endswith("| CPU latency (ms) |")
    header, _, plain_line, state_line = evaluate.to_markdown([plain, _state_row()]).splitlines()
    heads = [h.strip() for h in header.strip("|").split("|")]
    assert heads[len(evaluate.COLUMNS):] == [h for _, h in evaluate.STATE_COLUMNS]
    cells = dict(zip(heads, (c.strip() for c in state_line.strip("|").split("|"))))
    assert (cells["state acc."], cells["matched"], cells["red->green"], cells["red R"], cells["green P"]) == (
        "0.0", "1", "1", "0.0", "0.0")
    assert (cells["yellow R"], cells["mAP50"]) == ("-", "50.0")
    assert plain_line.endswith("| - | - | - |")


def test_write_report_plots_each_state_row(tmp_path):
    rows = [{"model": "yolov5n", "map50": 0.5}, _state_row(), _state_row()]
    json_path, md_path = evaluate.write_report(rows, tmp_path)
    written = json.loads(json_path.read_text())
    assert "confusion_plot" not in written[0]
    assert [w["confusion_plot"] for w in written[1:]] == ["confusion_yolov5n_rs.png", "confusion_yolov5n_rs_2.png"]
    for w in written[1:]:
        assert (tmp_path / w["confusion_plot"]).read_bytes()[:4] == b"\x89PNG"
    assert "confusion_plot" not in rows[1]  # the caller's rows are left as they were
    assert md_path.read_text() == evaluate.to_markdown(rows)


# ------------------------------------------------------------------------------- end to end (untrained model)
@pytest.fixture(scope="module")
def state_model(tmp_path_factory):
    """An untrained relevance_state YOLOv5n and a 4-image tiny dataset whose names are the 10 folded classes."""
    from test.model_factory import data_yaml_text, make_untrained_pt, write_tiny_yolo_dataset

    root = tmp_path_factory.mktemp("state_data")
    data = write_tiny_yolo_dataset(root, n_train=1, n_val=4)  # labels 0 / 1: relevant_red / relevant_yellow
    data.write_text(data_yaml_text(root, names=NAMES))
    return make_untrained_pt(root / "rs.pt", names=NAMES), data


def _label_states(data) -> list[int]:
    ids = [int(line.split()[0]) for f in sorted((data.parent / "labels" / "val").glob("*.txt"))
           for line in f.read_text().splitlines() if line.strip()]
    return state_of(ids, NAMES).tolist()


def test_collected_images_are_what_ultralytics_matched(state_model, tmp_path):
    """Per image, the captured labels and predictions are the validator's own (same frame, same matching)."""
    from ultralytics import YOLO

    weights, data = state_model
    yolo = YOLO(str(weights), task="detect")
    images, ref_boxes, kept = [], [], {}
    yolo.add_callback("on_val_start", evaluate.collect_images(images))

    def spy(validator):
        update = validator.update_metrics

        def update_metrics(preds, batch):
            ref_boxes.extend(validator._prepare_batch(si, batch)["bboxes"].cpu().numpy() for si in range(len(preds)))
            update(preds, batch)

        validator.update_metrics = update_metrics

    yolo.add_callback("on_val_start", spy)
    yolo.add_callback("on_val_batch_end", lambda v: kept.update(
        {k: list(v.metrics.stats[k]) for k in ("tp", "conf", "pred_cls", "target_cls")}))
    yolo.val(data=str(data), split="val", imgsz=64, batch=2, device="cpu", plots=False, verbose=False, workers=0,
             project=str(tmp_path), name="val")
    assert len(images) == len(kept["tp"]) == len(ref_boxes) == 4
    for im, ref, tp, conf, pcls, tcls in zip(images, ref_boxes, kept["tp"], kept["conf"], kept["pred_cls"],
                                             kept["target_cls"]):
        assert np.allclose(im["gt_boxes"], ref) and np.array_equal(im["gt_cls"], tcls)
        assert np.allclose(im["pred_scores"], conf) and np.array_equal(im["pred_cls"], pcls)
        assert np.array_equal(tp_matrix(im["pred_boxes"], im["pred_scores"], im["pred_cls"], im["gt_boxes"],
                                        im["gt_cls"]), tp)
    assert sorted(state_of(np.concatenate([im["gt_cls"] for im in images]), NAMES).tolist()) == sorted(
        _label_states(data))


def test_evaluate_model_adds_state_metrics_for_relevance_state(state_model, tmp_path):
    weights, data = state_model
    # conf 0: every prediction of the untrained model counts, so the confusion matrix is not empty
    row = evaluate.evaluate_model(weights, data, split="val", imgsz=64, batch=2, latency_reps=0,
                                  project=tmp_path / "val", state_conf=0.0)
    state = row["state"]
    assert {k: row[k] for k in flat_row(state)} == flat_row(state) and state["conf"] == 0.0
    for name in NAMES.values():  # the 10 folded classes come out of per_class_map
        assert f"{name}_map50" in row and f"{name}_map50_95" in row
    labels = _label_states(data)
    assert {s: v["support"] for s, v in state["per_state"].items()} == {s: labels.count(i)
                                                                        for i, s in enumerate(STATES)}
    counts = np.array(state["confusion"]["counts"])
    assert counts[:-1, :-1].sum() == state["matched"] and counts[:, -1].sum() == len(labels) - state["matched"]
    assert counts[:, :-1].sum() > 0  # the model's predictions all landed somewhere
    evaluate.write_report([row], tmp_path / "out")
    assert (tmp_path / "out" / json.loads((tmp_path / "out" / "evaluation.json").read_text())[0][
        "confusion_plot"]).is_file()
    assert "state acc." in (tmp_path / "out" / "evaluation.md").read_text()
    with pytest.raises(ValueError, match=r"state_conf: expected a number in \[0, 1\]"):
        evaluate.evaluate_model(weights, data, state_conf=2.0)


def test_relevance_model_row_is_unchanged(tmp_path, tiny_yolo_data):
    from test.model_factory import make_untrained_pt

    weights = make_untrained_pt(tmp_path / "rel.pt")
    row = evaluate.evaluate_model(weights, tiny_yolo_data, split="val", imgsz=64, batch=2, latency_reps=0,
                                  project=tmp_path / "val")
    assert "state" not in row and not set(row) & {"state_accuracy", "state_matched", "red_to_green", "red_recall"}
    assert "state acc." not in evaluate.to_markdown([row])
    evaluate.write_report([row], tmp_path / "out")
    assert not list((tmp_path / "out").glob("confusion_*.png"))
