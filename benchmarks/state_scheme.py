r"""state-scheme: what folding the state into the detector's classes costs the detection of lights.

The baseline student of the kd-gain state profile (``training/configs/kd_gain_state_quick.yaml``: camera-like
lamps, the quick profile's sizes and recipe) trains on the same scenes twice per seed: with the ten
``relevance_state`` classes and with the two ``relevance`` classes. Each model is then validated once on the
same held-out labels, the folded scheme's (lights whose state DTLD calls unknown, seen from the back or the
side, are not in them), with every class as one (``single_cls``): a light's detection whatever class it got,
as mAP50-95 of "a light" and as precision and recall at the nodes' conf 0.25 after class-agnostic NMS 0.45.
Recall compares like with like; the two-class model also finds the unlabelled back and side lights it was
trained on, which count as false positives here, so its precision and mAP are understated. The paired
differences (folded - two classes) over the seeds, with 95 % t intervals, say what the folded scheme costs; a
crop classifier after the detector would keep the two-class detector's figures and add its own cost.

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


def get_args_parser() -> argparse.ArgumentParser:
    """Build the flags: seeds, launcher, where to write."""
    p = argparse.ArgumentParser(prog="state_scheme", description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds of the baseline runs")
    p.add_argument("--launcher", choices=("ray", "local"), default="ray", help="ray: two runs at a time on 2 cores")
    p.add_argument("--exp-dir", default="runs/bench/state_scheme", help="experiment directories' prefix")
    p.add_argument("--out", default="runs/bench/state_scheme.json", help="JSON result file")
    return p


def scheme_experiment(scheme: str, seeds: list[int], exp_dir: str) -> dict[str, Any]:
    """Return the state profile's experiment with only the baseline, in the class scheme ``scheme``."""
    raw = copy.deepcopy(read_yaml(CONFIG))
    raw["data"] = {**raw["data"], "classes": scheme}
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
    result = {"benchmark": "state-scheme", "config": CONFIG.name, "seeds": args.seeds, "split": exp.evaluate.split,
              "labels": "relevance_state (lights of unknown state left out)",
              "conf": 0.25, "nms_iou": 0.45, "schemes": per_scheme, "folded_minus_two_classes_pts": diffs,
              "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
              "seconds": round(time.perf_counter() - t0, 1)}
    atomic_write_json(Path(args.out), result)
    for key, d in diffs.items():
        print(f"state-scheme {key}: folded - two classes {format_interval(d)} pts", flush=True)
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
