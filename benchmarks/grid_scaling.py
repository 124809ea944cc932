r"""Grid scaling: a tiny experiment grid's wall time run one run after the other vs on a local Ray.

The grid is the one of test/training/test_experiment_ray.py (imgsz 32, 4 training images, 1 epoch, teachers 2):
2 teachers, one student with a baseline and KD from each teacher, ``--seeds`` seeds: 2 + 3 x seeds runs in two
tiers. It runs once with the local launcher and once with ``--launcher ray`` (a local Ray with every CPU, each run
holding ``--cpus`` of them), each into a fresh directory, and the ratio sequential / Ray is reported (ideal with N
parallel slots: N, less the teacher tier's idle slots and Ray's start-up). The load average before and after is
written too: the figure means little on a machine that is busy with something else.

Usage: ``python benchmarks/grid_scaling.py [--seeds 2] [--cpus 1] [--out runs/bench/grid_scaling.json]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from _setup import REPO

from kd_traffic_light.core.atomic_io import atomic_write_json


def get_args_parser() -> argparse.ArgumentParser:
    """Return the parser of the benchmark's flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=2, help="seeds of every student run")
    p.add_argument("--cpus", type=float, default=1, help="CPUs each run holds on Ray")
    p.add_argument("--out", default="runs/bench/grid_scaling.json", help="JSON result file")
    return p


def tiny_grid(root: Path, seeds: int, cpus: float) -> dict:
    """Write the tiny dataset and return the resolved experiment."""
    import yaml

    from training.data.tiny import write_tiny_yolo_dataset
    from training.experiment import load_experiment

    data = write_tiny_yolo_dataset(root / "data", n_train=4, n_val=2, size=32)
    exp = {"data": {"source": "yolo", "yaml": str(data)},
           "train": {"epochs": 1, "imgsz": 32, "batch": 4, "plots": False, "amp": False, "warmup_epochs": 0,
                     "mosaic": 0.0},
           "teacher_train": {"epochs": 2},
           "teachers": {"s": "yolov5n.yaml", "t": "yolov5n.yaml"},
           "students": {"c": "training/configs/models/yolov5n-coupled.yaml"},
           "methods": {"baseline": None, "kd": {"distill": {"terms": {"response": {"weight": 1.0}}}}},
           "seeds": list(range(seeds)), "device": "cpu", "workers": 0, "resources": {"cpus": cpus, "gpus": 0},
           "evaluate": {"imgsz": 32, "batch": 4, "latency_reps": 1, "device": "cpu"}}
    (root / "exp.yaml").write_text(yaml.safe_dump(exp, sort_keys=False))
    return load_experiment(root / "exp.yaml")


def main(args: argparse.Namespace) -> int:
    """Run the grid both ways, print and write the figures."""
    os.chdir(REPO)  # model yamls of the grid are relative to the repository
    from training.experiment import run_experiment

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        exp = tiny_grid(Path(tmp), args.seeds, args.cpus)
        t0 = time.perf_counter()
        seq = run_experiment(exp, Path(tmp) / "seq")
        seq_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_experiment(exp, Path(tmp) / "ray", launcher="ray")
        ray_s = time.perf_counter() - t0
    result = {"runs": len(seq["runs"]), "cpus": os.cpu_count(), "cpus_per_run": args.cpus,
              "slots": int((os.cpu_count() or 1) // args.cpus), "sequential_s": round(seq_s, 1),
              "ray_s": round(ray_s, 1), "ratio": round(seq_s / ray_s, 2),
              "load_before": [round(v, 2) for v in load_before], "load_after": [round(v, 2) for v in os.getloadavg()]}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, result)
    print(f"grid of {result['runs']} runs, {result['slots']} slots: sequential {result['sequential_s']} s, "
          f"ray {result['ray_s']} s, ratio {result['ratio']} (load before {result['load_before'][0]}, "
          f"after {result['load_after'][0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
