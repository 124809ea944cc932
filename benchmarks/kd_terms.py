r"""kd-terms: each KD term's magnitude and gradient share against the detection loss, on real batches.

For every term of the registry at its default weight: the weighted loss and the norm of its gradient into the
student (whole network, class branch ``cv3``, box branch ``cv2``) next to the detection losses' own; ``lad`` adds
no loss, its row is what it does to the label assignment. Method and values: docs/benchmarks.md (kd-terms).

    python benchmarks/kd_terms.py --teacher runs/bench/kd_gain_quick/runs/teacher_s_seed0/weights/best.pt \
        --data runs/bench/kd_gain_quick/data/yolo/data.yaml --imgsz 160

Writes ``runs/bench/kd_terms.json`` and prints a table (gradient norms; share = term / detection class loss).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import _setup  # noqa: F401  (the repository on sys.path, ultralytics offline)


def get_args_parser() -> argparse.ArgumentParser:
    """Build the flags: which teacher, data and student; how many batches."""
    p = argparse.ArgumentParser(prog="kd_terms", description=__doc__.split("\n\n")[0])
    p.add_argument("--teacher", required=True, help="trained teacher .pt")
    p.add_argument("--data", required=True, help="data.yaml of the teacher's data")
    p.add_argument("--student", default="yolov5n.yaml", help="student model yaml (a cold student)")
    p.add_argument("--student-weights", default=None, help="optional trained student .pt (a warm student)")
    p.add_argument("--imgsz", type=int, default=160, help="training image size")
    p.add_argument("--batch", type=int, default=16, help="batch size")
    p.add_argument("--batches", type=int, default=4, help="batches averaged")
    p.add_argument("--out", default="runs/bench/kd_terms.json", help="JSON result file")
    return p


def _batches(args: argparse.Namespace, data: dict, n: int) -> list[dict]:
    """``n`` preprocessed training batches (mosaic off, fixed seed) from the train split."""
    import torch
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_dataloader, build_yolo_dataset

    cfg = get_cfg(overrides={"imgsz": args.imgsz, "mosaic": 0.0, "seed": 0, "workers": 0})
    ds = build_yolo_dataset(cfg, data["train"], args.batch, data, mode="train", stride=32)
    loader = build_dataloader(ds, args.batch, 0, shuffle=True, rank=-1)
    out = []
    for batch in loader:
        batch["img"] = batch["img"].float() / 255
        out.append({k: batch[k] for k in ("img", "batch_idx", "cls", "bboxes")})
        if len(out) == n:
            break
    torch.manual_seed(0)
    return out


def _student(args: argparse.Namespace, data: dict) -> Any:
    """Build a student DetectionModel with ultralytics' default hyperparameters attached."""
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel, load_checkpoint

    import training.distill.heads  # noqa: F401  (coupled-head yamls)

    model = DetectionModel(args.student, nc=data["nc"], verbose=False)
    if args.student_weights:
        model.load(load_checkpoint(args.student_weights)[0])
    model.names = data["names"]
    model.args = get_cfg(overrides={"imgsz": args.imgsz})
    return model


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Gradient norms per loss component, averaged over batches."""
    import torch
    from ultralytics.data.utils import check_det_dataset

    from training.distill.model import KDDistillationModel
    from training.distill.terms import TERMS

    data = check_det_dataset(args.data)
    terms = {n: {} for n in TERMS if n != "lad"}
    model = KDDistillationModel(args.teacher, _student(args, data), terms).train()
    model.kd_progress = {"epoch": 1, "epochs": 10, "iteration": 100, "total_iterations": 1000, "batches": 20}
    head = f"model.{len(model.student_model.model) - 1}."  # the Detect head's parameter prefix
    named = list(model.student_model.named_parameters())
    groups = {
        "student": [p for p in model.student_model.parameters() if p.requires_grad],
        "cls_branch": [p for n, p in named if n.startswith(head + "cv3.")],
        "box_branch": [p for n, p in named if n.startswith(head + "cv2.")],
    }
    names = ["box_loss", "cls_loss", "dfl_loss", *model.kd_columns]
    sums: dict[str, dict[str, float]] = {n: {"value": 0.0, **dict.fromkeys(groups, 0.0)} for n in names}
    lad = {"stock_pos": 0.0, "stock_tss": 0.0, "lad_pos": 0.0, "lad_tss": 0.0}
    batches = _batches(args, data, args.batches)
    for batch in batches:
        total, _ = model.loss(batch)
        for i, name in enumerate(names):
            sums[name]["value"] += float(total[i].detach()) / batch["img"].shape[0]
            for g, params in groups.items():
                grads = torch.autograd.grad(total[i], params, retain_graph=True, allow_unused=True)
                sums[name][g] += float(torch.sqrt(sum((x.float() ** 2).sum() for x in grads if x is not None)))
        lad_batch = _assignment_stats(model, batch)
        for k in lad:
            lad[k] += lad_batch[k]
    n = len(batches)
    rows = {k: {m: v / n for m, v in d.items()} for k, d in sums.items()}
    return {"rows": rows, "lad": {k: v / n for k, v in lad.items()}, "batches": n, "imgsz": args.imgsz,
            "student": args.student_weights or args.student, "teacher": args.teacher}


def _assignment_stats(model: Any, batch: dict) -> dict[str, float]:
    """Positives and target-score sum of the stock assignment and of the fully teacher-assigned one."""
    import torch

    from training.distill.config import freeze_terms

    out: dict[str, float] = {}
    crit = model._student_criterion()
    stock, kept = crit.assigner, model.kd_terms
    for label, terms in (("stock", {"lad": {"weight": 0.0}}), ("lad", {"lad": {"schedule": "constant"}})):
        model.kd_terms = freeze_terms(terms)  # the same model with lad alone (no copy: hooks stay registered)
        seen: dict[str, float] = {}

        def spy(*a, seen=seen, **k):
            res = stock(*a, **k)
            seen["pos"], seen["tss"] = float(res[3].sum()), float(res[2].sum())
            return res

        crit.assigner = spy
        try:
            with torch.no_grad():
                model.loss(batch)
        finally:
            crit.assigner, model.kd_terms = stock, kept
        out[f"{label}_pos"], out[f"{label}_tss"] = seen["pos"], seen["tss"]
    return out


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table, write the JSON."""
    args = get_args_parser().parse_args(argv)
    from kd_traffic_light.core.atomic_io import atomic_write_json

    res = measure(args)
    cls = res["rows"]["cls_loss"]["student"] or 1.0
    print(f"{'component':<10} {'value':>9} {'grad student':>13} {'grad cls':>10} {'grad box':>10} {'share':>7}")
    for name, r in res["rows"].items():
        print(f"{name:<10} {r['value']:9.4f} {r['student']:13.3f} {r['cls_branch']:10.3f} {r['box_branch']:10.3f} "
              f"{r['student'] / cls:7.3f}")
    lad = res["lad"]
    print(f"lad: positives per batch {lad['stock_pos']:.0f} (stock) -> {lad['lad_pos']:.0f} (teacher-assigned); "
          f"target-score sum {lad['stock_tss']:.2f} -> {lad['lad_tss']:.2f}")
    atomic_write_json(Path(args.out), res)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
