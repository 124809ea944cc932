"""Training, evaluating and exporting the state classifier; what it is trained to do is not asserted, only that
the exported reader answers as the trained network does and that bad input is named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kd_traffic_light.core.classes import STATES
from kd_traffic_light.core.state_classifier import StateClassifier, crop_boxes, to_input
from training.errors import UsageError
from training.state_classifier.train import Settings, class_weights, figures


def test_class_weights_lift_rare_states_and_skip_absent_ones():
    states = np.array([3] * 16 + [0] * 4 + [1])    # green 16, red 4, yellow 1, no red_yellow, no off
    assert class_weights(states, "none").tolist() == [1, 1, 0, 1, 0]
    assert class_weights(states, "sqrt").tolist() == [2, 4, 0, 1, 0]
    assert class_weights(states, "inverse").tolist() == [4, 16, 0, 1, 0]


def test_figures_count_recall_precision_and_the_confusions_that_kill():
    true = np.array([0, 0, 0, 2, 3, 3])
    pred = np.array([0, 3, 0, 3, 3, 1])
    f = figures(pred, true)
    assert f["accuracy"] == pytest.approx(3 / 6)
    assert f["per_state"]["red"] == {"support": 3, "correct": 2, "recall": pytest.approx(2 / 3), "precision": 1.0}
    assert f["per_state"]["off"]["recall"] is None and f["per_state"]["yellow"]["precision"] == 0.0
    assert f["balanced_accuracy"] == pytest.approx((2 / 3 + 0 + 1 / 2) / 3)
    assert (f["red_to_green"], f["red_yellow_to_green"]) == (1, 1)


def test_training_exports_a_reader_that_answers_as_the_trained_network(state_yolo_dataset, tmp_path):
    import cv2
    import torch
    from ultralytics.data.utils import img2label_paths

    from training.state_classifier.data import dataset_info, read_labels, split_images
    from training.state_classifier.model import StateNet
    from training.state_classifier.train import train_state_classifier

    metrics = train_state_classifier(state_yolo_dataset, tmp_path, Settings(epochs=2, batch=16, jitter=1, upright=True),
                                     progress=False)
    for name in ("state_classifier.pt", "state_classifier.onnx", "metrics.json", "confusion.png"):
        assert (tmp_path / name).is_file(), name
    assert metrics["onnx_parity"]["max_abs_logit_diff"] < 1e-4 and metrics["onnx_parity"]["argmax_agreement"] == 1
    assert len(metrics["history"]) == 2
    scores = [h["val_balanced_accuracy"] for h in metrics["history"]]
    assert metrics["best_epoch"] == max(i + 1 for i, v in enumerate(scores) if v == max(scores))  # latest of equals

    info = dataset_info(state_yolo_dataset)
    image = split_images(info, "val")[0]
    bgr = cv2.imread(str(image))
    rows = read_labels(Path(img2label_paths([str(image)])[0]), bgr.shape[1], bgr.shape[0], info["names"])
    assert len(rows), "the fixture's first val image has lights"
    assert metrics["val"]["crops"] == sum(
        len(read_labels(Path(lf), *cv2.imread(str(f)).shape[1::-1], info["names"]))
        for f, lf in zip(split_images(info, "val"), img2label_paths([str(f) for f in split_images(info, "val")]),
                         strict=True))

    ckpt = torch.load(tmp_path / "state_classifier.pt", weights_only=False)
    net = StateNet(len(STATES), tuple(ckpt["settings"]["crop_hw"]), ckpt["settings"]["width"])
    net.load_state_dict(ckpt["state_dict"])
    with torch.no_grad():
        logits = net.eval()(torch.from_numpy(to_input(crop_boxes(bgr, rows[:, :4], upright=True)))).numpy()
    reader = StateClassifier(tmp_path / "state_classifier.onnx")
    assert reader.upright  # the export says horizontal heads were turned upright, as it was trained
    states, probs = reader.classify(bgr, rows[:, :4])
    assert states.tolist() == logits.argmax(1).tolist()
    e = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(probs, (e / e.sum(1, keepdims=True)).max(1), rtol=1e-4)


def test_a_relevance_dataset_is_refused_naming_the_file_and_field(yolo_dataset, tmp_path, capsys):
    from training.cli import main

    code = main(["state-classifier", "--data", str(yolo_dataset), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert f"error: {yolo_dataset}: field 'names' is ['relevant', 'not_relevant']" in err
    assert "relevance_state dataset" in err


def test_bad_settings_are_named():
    with pytest.raises(UsageError, match=r"balance='most', crop_hw=\(30, 16\).*balance one of"):
        Settings(balance="most", crop_hw=(30, 16))


def test_the_green_threshold_curve_moves_unsure_greens_to_the_next_state(tmp_path):
    from test.core.lean_models import make_colour_state_onnx
    from training.state_classifier.data import Crops
    from training.state_classifier.evaluate import green_threshold_curve

    reader = make_colour_state_onnx(tmp_path / "colour.onnx")     # reads a crop's mean colour
    images = np.zeros((4, 32, 16, 3), np.uint8)
    images[:2, ..., 2] = 255                                       # two red crops (BGR)
    images[2:, ..., 1] = 255                                       # two green crops
    crops = Crops(images, np.array([0, 0, 3, 3]))
    argmax, unreachable = green_threshold_curve(reader, crops, (0.0, 1.0))
    assert (argmax["red_recall"], argmax["green_recall"], argmax["red_to_green_share"]) == (1.0, 1.0, 0.0)
    assert unreachable["green_recall"] == 0.0 and unreachable["red_recall"] == 1.0


def test_node_state_metrics_account_for_every_labelled_light(state_yolo_dataset, untrained_pt, tmp_path):
    """An untrained two-class detector with the colour classifier: whatever it finds, every label of the split is
    either matched or missed, and the classes are the folded ones."""
    import yaml

    from test.core.lean_models import make_colour_state_onnx
    from training.state_classifier.data import dataset_info, split_images
    from training.state_classifier.evaluate import node_state_metrics

    reader = make_colour_state_onnx(tmp_path / "colour.onnx")
    result = node_state_metrics(untrained_pt, state_yolo_dataset, "val", 64, reader, conf=0.0)
    from ultralytics.data.utils import img2label_paths

    files = [str(f) for f in split_images(dataset_info(state_yolo_dataset), "val")]
    labels = sum(len([row for row in Path(p).read_text().splitlines() if row.strip()])
                 for p in img2label_paths(files) if Path(p).is_file())
    counts = np.asarray(result["confusion"]["counts"])
    assert result["images"] == len(split_images(dataset_info(state_yolo_dataset), "val"))
    assert counts[:len(STATES)].sum() == labels > 0                # rows: every true light, matched or missed
    assert yaml.safe_load(state_yolo_dataset.read_text())["nc"] == 10


def test_a_split_of_several_folders_gives_the_crops_of_each_in_order(state_yolo_dataset, tmp_path):
    """More scenes for the classifier than for the detector: a data.yaml lists several train folders."""
    from training.errors import RunError
    from training.state_classifier.data import dataset_info, load_crops, split_images

    info = dataset_info(state_yolo_dataset)
    train, val = split_images(info, "train"), split_images(info, "val")
    both = {**info, "train": [info["train"], info["val"]]}
    assert split_images(both, "train") == train + val
    one, two = (load_crops(i, "train", (32, 16), 0.15) for i in (info, both))
    extra = load_crops({**info, "train": info["val"]}, "train", (32, 16), 0.15)
    assert len(two) == len(one) + len(extra)
    assert np.array_equal(two.states, np.concatenate([one.states, extra.states]))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RunError, match=f"{empty}: no images in the 'train' split"):
        split_images({**info, "train": [info["train"], str(empty)]}, "train")
