r"""kd-gain and kd-gap: our distillation against ultralytics' native mode and the plain baseline.

Baseline, native distillation and our distillation train with an identical recipe (the experiment's ``train``
and ``augment`` sections) over >= 2 seeds, through ``training.experiment`` (same grid runner, same per-run
``results.json`` resumability). Figures (mAP50-95 points on the held-out split, mean over seeds)::

    kd-gain:  D_ours = ours - baseline, D_native = native - baseline
              goal: D_ours >= 2 x D_native (D_ours > 0 where D_native <= 0) and D_ours >= 2 x baseline seed std
    kd-gap:   (ours - baseline) / (teacher - baseline)    goal >= 0.4

Profiles:

* ``quick`` (default): the demo's synthetic DTLD-format data with another seed, 256 px, teacher yolov5s
  16 epochs, students yolov5n 8 epochs, 2 seeds; about 35 minutes on 2 CPU cores. Recipe and KD terms of
  ``ours`` are those of ``training/configs/demo_cpu.yaml``.
* ``full``: the real DTLD (``--dtld-root``), 640 px, 30 epochs, teacher yolov5l, student yolov5n,
  ``training/configs/combined.yaml`` as ours; GPU.

Weights are tuned on train/val only: run with ``--split val --exp-dir <another dir>`` while tuning (the
held-out split is never looked at); the held-out split is evaluated once per configuration (cached per run).

    python benchmarks/kd_gain.py                       # quick CPU profile
    python benchmarks/kd_gain.py --profile full --dtld-root datasets/DTLD --device 0
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def get_args_parser() -> argparse.ArgumentParser:
    """Build the flags: which profile, where the data is, where to write."""
    p = argparse.ArgumentParser(prog="kd_gain", description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=("quick", "full"), default="quick", help="quick (CPU) or full (GPU)")
    p.add_argument("--quick", action="store_true", help="same as --profile quick (for benchmarks/run_all.py)")
    p.add_argument("--dtld-root", default=None, help="DTLD base directory (full profile)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds of every student run (>= 2)")
    p.add_argument("--ours-config", default=None,
                   help="config whose distill.terms are 'ours' (default: demo_cpu.yaml's for quick, "
                   "training/configs/combined.yaml for full)")
    p.add_argument("--split", default="test", choices=("val", "test"),
                   help="evaluation split: test = held-out (default); val while tuning weights")
    p.add_argument("--device", default=None, help="training device (default: cpu for quick, 0 for full)")
    p.add_argument("--workers", type=int, default=None, help="dataloader workers")
    p.add_argument("--exp-dir", default=None, help="experiment directory (default runs/bench/kd_gain_<profile>)")
    p.add_argument("--out", default="runs/bench/kd_gain.json", help="JSON result file")
    return p


def profile_experiment(args: argparse.Namespace) -> dict[str, Any]:
    """Return the raw experiment mapping of the chosen profile (see the module docstring)."""
    if args.profile == "quick":
        demo = yaml.safe_load((REPO / "training" / "configs" / "demo_cpu.yaml").read_text(encoding="utf-8"))
        ours = args.ours_config or demo["methods"]["ours"]
        return {
            "data": {**demo["data"], "seed": 1},
            "train": {**demo["train"], "epochs": 8, "imgsz": 256},
            "teacher_train": {"epochs": 16},
            "augment": demo["augment"],
            "teachers": {"s": "yolov5s.yaml"}, "students": {"n": "yolov5n.yaml"},
            "methods": {"baseline": None, "ours": ours, "native": "training/configs/native.yaml"},
            "seeds": args.seeds, "teacher_seeds": [0], "device": args.device or "cpu", "workers": args.workers or 2,
            "evaluate": {"split": args.split, "imgsz": 256, "batch": 16, "latency_reps": 5, "device": "cpu"},
        }
    if not args.dtld_root:
        raise SystemExit("kd_gain: --dtld-root is required with --profile full")
    study = yaml.safe_load((REPO / "training" / "configs" / "dtld_source_study.yaml").read_text(encoding="utf-8"))
    device = args.device or "0"
    return {
        "data": {**study["data"], "root": args.dtld_root},
        "train": study["train"], "augment": study["augment"],
        "teachers": {"l": "yolov5l.yaml"}, "students": {"n": "yolov5n.yaml"},
        "methods": {"baseline": None, "ours": args.ours_config or "training/configs/combined.yaml",
                    "native": "training/configs/native.yaml"},
        "seeds": args.seeds, "teacher_seeds": [0], "device": device, "workers": args.workers,
        "evaluate": {**study["evaluate"], "split": args.split, "device": device},
    }


def figures(groups: list[dict[str, Any]]) -> dict[str, Any]:
    """kd-gain and kd-gap from the experiment's groups (mAP50-95 in points).

    Args:
        groups: ``training.experiment.aggregate`` output holding the methods baseline, ours, native and a teacher.

    Returns:
        Means, deltas, the baseline's seed std, kd-gap of both methods and whether each goal is met.
    """
    by = {g["method"]: g for g in groups}
    missing = [m for m in ("baseline", "ours", "native", "teacher") if m not in by]
    if missing:
        raise ValueError(f"kd_gain: groups {missing} missing from the experiment")

    def pts(m: str) -> float:
        return 100.0 * by[m]["map50_95_mean"]

    base, ours, native, teacher = pts("baseline"), pts("ours"), pts("native"), pts("teacher")
    std = 100.0 * (by["baseline"]["map50_95_std"] or 0.0)
    d_ours, d_native = ours - base, native - base
    gap_den = teacher - base
    gain_vs_native = d_ours >= 2 * d_native if d_native > 0 else d_ours > 0
    return {
        "map50_95_points": {"baseline": base, "ours": ours, "native": native, "teacher": teacher},
        "per_seed": {m: [None if v is None else 100 * v for v in by[m]["map50_95_values"]]
                     for m in ("baseline", "ours", "native", "teacher")},
        "baseline_seed_std": std,
        "D_ours": d_ours, "D_native": d_native,
        "kd_gap_ours": d_ours / gap_den if gap_den > 0 else None,
        "kd_gap_native": d_native / gap_den if gap_den > 0 else None,
        "teacher_minus_baseline": gap_den,
        "goals": {
            "D_ours_vs_native": gain_vs_native,
            "D_ours_vs_seed_std": d_ours >= 2 * std,
            "kd_gap_ours_ge_0.4": gap_den > 0 and d_ours / gap_den >= 0.4,
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Run (or resume) the grid, print the figures last, write the JSON."""
    args = get_args_parser().parse_args(argv)
    if args.quick:
        args.profile = "quick"
    if len(args.seeds) < 2:
        raise SystemExit("kd_gain: --seeds needs at least 2 seeds")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    from training.experiment import resolve_experiment, run_experiment, write_atomic, write_json

    raw = profile_experiment(args)
    exp_dir = Path(args.exp_dir or f"runs/bench/kd_gain_{args.profile}")
    exp_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(exp_dir / "kd_gain_experiment.yaml", yaml.safe_dump(raw, sort_keys=False))
    exp = resolve_experiment(raw, f"kd_gain:{args.profile}")
    t0 = time.perf_counter()
    result = run_experiment(exp, exp_dir, workers=args.workers)
    fig = figures(result["groups"])
    out = {"benchmark": "kd-gain", "profile": args.profile, "split": args.split, "seeds": args.seeds,
           "experiment_dir": str(exp_dir), "seconds": round(time.perf_counter() - t0, 1), **fig}
    write_json(Path(args.out), out)
    p = fig["map50_95_points"]
    print(f"mAP50-95 ({args.split}, mean over seeds {args.seeds}): baseline {p['baseline']:.2f}, ours "
          f"{p['ours']:.2f}, native {p['native']:.2f}, teacher {p['teacher']:.2f}; baseline seed std "
          f"{fig['baseline_seed_std']:.2f}")
    gap = "n/a (teacher not above baseline)" if fig["kd_gap_ours"] is None else f"{fig['kd_gap_ours']:.2f}"
    print(f"kd-gain: D_ours {fig['D_ours']:+.2f} pts, D_native {fig['D_native']:+.2f} pts; "
          f"goals: vs native {fig['goals']['D_ours_vs_native']}, vs 2 x seed std {fig['goals']['D_ours_vs_seed_std']}")
    print(f"kd-gap: {gap} (goal >= 0.4: {fig['goals']['kd_gap_ours_ge_0.4']})")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
