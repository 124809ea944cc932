r"""state-scheme: what folding the state into the detector's classes costs the detection of lights.

The baseline student of the kd-gain state profile (``training/configs/kd_gain_state_quick.yaml``: camera-like
lamps, the quick profile's sizes and recipe, with heads kept apart and labelled with the state the frame shows:
:data:`SCENE`) trains on the same scenes twice per seed: with the ten
``relevance_state`` classes and with the two ``relevance`` classes. Each model is then validated once on the
same held-out labels, the folded scheme's (lights whose state DTLD calls unknown, seen from the back or the
side, are not in them), with every class as one (``single_cls``): a light's detection whatever class it got,
as mAP50-95 of "a light" and as precision and recall at the nodes' conf 0.25 after class-agnostic NMS 0.45.
Recall compares like with like; the two-class model also finds the unlabelled back and side lights it was
trained on, which count as false positives here, so its precision and mAP are understated. The paired
differences (folded - two classes) over the seeds, with 95 % t intervals, say what the folded scheme costs.

The third scheme keeps the two-class detector and reads each box's state with the crop classifier
(``python -m training state-classifier``, kd_traffic_light/core/state_classifier.py), trained per seed on the
folded dataset's train split and chosen by its own val split. Both state-reading schemes then run as the node
runs them (``TrafficLightDetector`` at conf 0.25, class-agnostic NMS 0.45) on the held-out images, and their
state figures (state accuracy on matched lights, per-state recall, red -> green) are paired per seed. The
classifier's cost is timed on one frame with 20 lights (ONNX Runtime, median of repeated runs). The classifier
reads green only above the node's default ``state_green_min_prob``; its val curve over that threshold (red read as
green, red and green recall) is recorded per seed. A second classifier candidate learns from more scenes than the
detector: the train split plus ``--classifier-scenes`` scenes drawn with every state as often (the rare states are
a few dozen lights in the train split); the two candidates are paired per seed.

    python benchmarks/state_scheme.py                  # 5 seeds x 2 schemes, two runs at a time on 2 cores
"""

from __future__ import annotations

import argparse
import copy
import platform
import sys
import time
from pathlib import Path
from typing import Any

import _setup  # noqa: F401  (the repository on sys.path, ultralytics offline)
from _setup import REPO

from kd_traffic_light.core.atomic_io import atomic_write_json, read_yaml

CONFIG = REPO / "training" / "configs" / "kd_gain_state_quick.yaml"
SCHEMES = ("relevance_state", "relevance")
#: On top of the profile's scenes: heads kept apart and labelled with the state the frame shows (the scenes the
#: kd-gain figures were measured on had neither; docs/training.md "Light state" says why these matter here).
SCENE = {"max_light_overlap": 0.1, "state_label": "seen"}


def get_args_parser() -> argparse.ArgumentParser:
    """Build the flags: seeds, launcher, where to write."""
    p = argparse.ArgumentParser(prog="state_scheme", description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds of the baseline runs")
    p.add_argument("--launcher", choices=("ray", "local"), default="ray", help="ray: two runs at a time on 2 cores")
    p.add_argument("--exp-dir", default="runs/bench/state_scheme", help="experiment directories' prefix")
    p.add_argument("--out", default="runs/bench/state_scheme.json", help="JSON result file")
    p.add_argument("--classifier-scenes", type=int, default=192, metavar="N",
                   help="extra train scenes (sequences) for the second classifier candidate, every state as often "
                        "(default 192, twice the profile's train scenes; 0: no second candidate)")
    return p


def scheme_experiment(scheme: str, seeds: list[int], exp_dir: str) -> dict[str, Any]:
    """Return the state profile's experiment with only the baseline, in the class scheme ``scheme``."""
    raw = copy.deepcopy(read_yaml(CONFIG))
    raw["data"] = {**raw["data"], "classes": scheme, "scene": {**raw["data"]["scene"], **SCENE}}
    raw["methods"] = {"baseline": None}
    raw["seeds"] = seeds
    raw["out"] = f"{exp_dir}_{scheme}"
    return raw


def light_detection(weights: Path, data_yaml: Path, split: str, imgsz: int, conf: float = 0.25,
                    nms_iou: float = 0.45) -> dict[str, float | None]:
    """One class-agnostic validation pass: mAP50 / mAP50-95 of a light and precision / recall at ``conf``."""
    from ultralytics import YOLO

    from training.evaluate import collect_images
    from training.state_metrics import match_lights, published

    images: list[dict[str, Any]] = []
    yolo = YOLO(str(weights), task="detect")
    yolo.add_callback("on_val_start", collect_images(images))
    metrics = yolo.val(data=str(data_yaml), split=split, imgsz=imgsz, batch=32, device="cpu", single_cls=True,
                       plots=False, verbose=False, project=str(weights.parent.parent / "val_any"), name="val",
                       exist_ok=True)
    found = predicted = labels = 0
    for im in images:
        keep = published(im["pred_boxes"], im["pred_scores"], conf, nms_iou)
        match = match_lights(im["pred_boxes"][keep], im["pred_scores"][keep], im["gt_boxes"])
        found, predicted, labels = found + int((match >= 0).sum()), predicted + len(keep), labels + len(im["gt_boxes"])
    return {"map50": float(metrics.box.map50), "map50_95": float(metrics.box.map),
            "precision": found / predicted if predicted else None, "recall": found / labels if labels else None,
            "labels": labels}


def classifier_ms(state_model: Path, data_yaml: Path, split: str, lights: int = 20, reps: int = 50) -> dict:
    """Median and p95 ms of reading ``lights`` boxes' states on one held-out frame (crops, ONNX Runtime)."""
    import statistics

    import cv2
    import numpy as np

    from kd_traffic_light.core.state_classifier import StateClassifier
    from training.state_classifier.data import dataset_info, split_images

    bgr = cv2.imread(str(split_images(dataset_info(data_yaml), split)[0]))
    h, w = bgr.shape[:2]
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, w - 30, lights), rng.uniform(0, h - 60, lights)
    boxes = np.stack([x, y, x + rng.uniform(8, 30, lights), y + rng.uniform(20, 60, lights)], 1)
    reader = StateClassifier(state_model)
    times = []
    for _ in range(reps + 5):
        reader.classify(bgr, boxes)
        times.append(reader.last_ms)
    times = sorted(times[5:])
    return {"lights": lights, "median_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))],
            "frame_hw": [h, w]}


def extra_scenes(exp_dir: str, sequences: int, data_yaml: Path) -> Path:
    """Return a data.yaml: ``data_yaml`` with ``sequences`` extra train scenes of the profile's (with :data:`SCENE`).

    The extra scenes (training/state_classifier/scenes.py) are drawn with a data seed of their own, every state
    as often: only the classifier learns from them; its val and test splits stay the detector's, with DTLD's shares.
    """
    from training.experiment import resolve_experiment
    from training.state_classifier.scenes import extra_scenes as make
    from training.state_classifier.scenes import with_extra_train

    raw = scheme_experiment("relevance_state", [0], exp_dir)
    out = Path(f"{exp_dir}_classifier_scenes")
    extra = make(resolve_experiment(raw, f"{CONFIG.name} (classifier scenes)"), out, sequences, workers=2)
    return with_extra_train(data_yaml, extra, out / "data_with_extra_train.yaml")


def crop_classifier(exp_dir: str, seeds: list[int], split: str, imgsz: int, extra_sequences: int) -> dict[str, Any]:
    """Train the classifier candidates per seed; the node-run state figures of folded and of two classes + each.

    Candidates: ``classifier`` learns from the detector's train split, ``classifier_more_scenes`` from it plus
    ``extra_sequences`` scenes of :func:`extra_scenes` (none with 0). Each runs with the node's default
    ``state_green_min_prob``; its val curve over that threshold is recorded per seed (where the default was
    chosen).
    """
    from training.state_classifier.data import dataset_info, load_crops
    from training.state_classifier.evaluate import green_threshold_curve, node_state_metrics
    from training.state_classifier.train import Settings, train_state_classifier
    from training.state_metrics import flat_row

    folded_dir, two_dir = Path(f"{exp_dir}_relevance_state"), Path(f"{exp_dir}_relevance")
    data_yaml = folded_dir / "data" / "yolo" / "data.yaml"
    candidates = {"": data_yaml}
    if extra_sequences:
        candidates["_more_scenes"] = extra_scenes(exp_dir, extra_sequences, data_yaml)
    out: dict[str, Any] = {"folded": {}}
    val_crops = load_crops(dataset_info(data_yaml), "val", Settings().crop_hw, Settings().margin,
                           upright=Settings().upright)
    for s in seeds:
        out["folded"][str(s)] = flat_row(node_state_metrics(
            folded_dir / "runs" / f"n_baseline_seed{s}" / "weights" / "best.pt", data_yaml, split, imgsz))
        for tag, train_yaml in candidates.items():
            cdir = Path(f"{exp_dir}_classifier{tag}") / f"seed{s}"
            print(f"state_scheme: crop classifier{tag.replace('_', ' ')}, seed {s}, in {cdir}", flush=True)
            m = train_state_classifier(train_yaml, cdir, Settings(seed=s))
            row = {k: m[k] for k in ("best_epoch", "val", "test", "onnx_parity", "settings", "train_lights_per_state")}
            row["val_green_threshold"] = green_threshold_curve(cdir / "state_classifier.onnx", val_crops)
            out.setdefault(f"classifier{tag}", {})[str(s)] = row
            out.setdefault(f"two_classes_classifier{tag}", {})[str(s)] = flat_row(node_state_metrics(
                two_dir / "runs" / f"n_baseline_seed{s}" / "weights" / "best.pt", data_yaml, split, imgsz,
                cdir / "state_classifier.onnx"))
    if extra_sequences:
        from training.state_classifier.scenes import EXTRA_SCENE, SEED_OFFSET

        out["more_scenes"] = {"sequences": extra_sequences, "seed": read_yaml(CONFIG)["data"]["seed"] + SEED_OFFSET,
                              "scene": EXTRA_SCENE}
    out["cost"] = classifier_ms(Path(f"{exp_dir}_classifier") / f"seed{seeds[0]}" / "state_classifier.onnx",
                                data_yaml, split)
    return out


def main(argv: list[str] | None = None) -> int:
    """Train (or find) the baselines of both schemes, validate them class-agnostically, write the JSON."""
    from training.experiment import resolve_experiment, run_experiment
    from training.stats import format_interval, paired_interval

    args = get_args_parser().parse_args(argv)
    t0 = time.perf_counter()
    per_scheme: dict[str, dict[str, dict[str, Any]]] = {}
    labels = Path(f"{args.exp_dir}_{SCHEMES[0]}") / "data" / "yolo" / "data.yaml"  # the folded scheme's: common
    for scheme in SCHEMES:
        raw = scheme_experiment(scheme, args.seeds, args.exp_dir)
        exp = resolve_experiment(raw, f"{CONFIG.name} ({scheme})")
        out = Path(raw["out"])
        print(f"state_scheme: {scheme}: baseline on seeds {args.seeds} in {out}", flush=True)
        run_experiment(exp, out, launcher=args.launcher, only={f"n_baseline_seed{s}" for s in args.seeds})
        per_scheme[scheme] = {
            str(s): light_detection(out / "runs" / f"n_baseline_seed{s}" / "weights" / "best.pt", labels,
                                    exp.evaluate.split, exp.eval_imgsz()) for s in args.seeds}
    folded, two = per_scheme["relevance_state"], per_scheme["relevance"]
    diffs = {key: paired_interval({s: 100 * (v[key] or 0.0) for s, v in folded.items()},
                                  {s: 100 * (v[key] or 0.0) for s, v in two.items()})
             for key in ("map50_95", "map50", "recall", "precision")}
    states = crop_classifier(args.exp_dir, args.seeds, exp.evaluate.split, exp.eval_imgsz(), args.classifier_scenes)
    keys = ("state_accuracy", "red_recall", "yellow_recall", "red_yellow_recall", "green_recall", "off_recall")

    def pts(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
        return {key: {s: 100 * (v[key] or 0.0) for s, v in rows.items()} for key in keys}

    folded_pts, clf_pts = pts(states["folded"]), pts(states["two_classes_classifier"])
    state_diffs = {key: paired_interval(clf_pts[key], folded_pts[key]) for key in keys}
    if "two_classes_classifier_more_scenes" in states:
        more = pts(states["two_classes_classifier_more_scenes"])
        states["more_scenes_minus_same_pts"] = {key: paired_interval(more[key], clf_pts[key]) for key in keys}
    result = {"benchmark": "state-scheme", "config": CONFIG.name, "scene": SCENE, "seeds": args.seeds,
              "split": exp.evaluate.split,
              "labels": "relevance_state (lights of unknown state left out)",
              "conf": 0.25, "nms_iou": 0.45, "schemes": per_scheme, "folded_minus_two_classes_pts": diffs,
              "state_reading": states, "classifier_minus_folded_pts": state_diffs,
              "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
              "seconds": round(time.perf_counter() - t0, 1)}
    atomic_write_json(Path(args.out), result)
    for key, d in diffs.items():
        print(f"state-scheme {key}: folded - two classes {format_interval(d)} pts", flush=True)
    for key, d in state_diffs.items():
        print(f"state-scheme {key}: two classes + classifier - folded {format_interval(d)} pts", flush=True)
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
