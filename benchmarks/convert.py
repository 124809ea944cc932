"""Benchmark ``convert``: DTLD conversion images/s with N workers / (N x single-process images/s).

Both sides run in this process on the same synthetic 2048x1024 DTLD tree, alternating A (single process:
read + demosaic + write PNG per image, no pool) and B (``convert_dtld`` with ``--workers N``, including pool
start-up and label handling) over several repetitions; the figure is the median of the per-repetition
ratios (goal >= 0.8, docs/benchmarks.md). Absolute images/s are reported for context. Prints the ratio last and
writes JSON (default ``runs/bench/convert.json``).

Usage: ``python benchmarks/convert.py [--frames 32] [--workers 2] [--reps 3] [--out runs/bench/convert.json]``
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _setup  # noqa: F401  (the repository on sys.path, ultralytics offline)

from kd_traffic_light.core.atomic_io import atomic_write_json
from training.data.dtld import ConvertOptions, convert_dtld
from training.data.dtld.jobs import ImageJob, convert_image
from training.data.synth import SynthConfig, make_synthetic_dtld


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=32, help="2048x1024 frames in the synthetic tree")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="workers of side B")
    p.add_argument("--reps", type=int, default=3, help="alternating repetitions (median reported)")
    p.add_argument("--seed", type=int, default=0, help="synthetic tree seed")
    p.add_argument("--out", default="runs/bench/convert.json", help="JSON result file")
    return p


def single_process(root: Path, keys: list[str], out: Path) -> float:
    """Images/s of read + official decode + PNG write, one image after the other, in this process."""
    t0 = time.perf_counter()
    for key in keys:
        convert_image(ImageJob(str(root / key), str(out / Path(key).with_suffix(".png")), key, ".png", 95, None,
                               (2048, 1024)))
    return len(keys) / (time.perf_counter() - t0)


def parallel(root: Path, label: Path, out: Path, workers: int) -> float:
    """Images/s of the full ``convert_dtld`` run with ``workers`` processes."""
    t0 = time.perf_counter()
    summary = convert_dtld(root, out, ConvertOptions(train=[label]), workers=workers, progress=False)
    n = summary["splits"]["train"]["images"]
    return n / (time.perf_counter() - t0)


def main(args: argparse.Namespace) -> int:
    import cv2

    cv2.setNumThreads(1)  # side A is one single-threaded process, like each worker of side B
    logging.getLogger("training.data.dtld").setLevel(logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="bench_convert_"))
    try:
        n_seq = max(1, args.frames // 4)
        cfg = SynthConfig(write_v1=False, test_fraction=0.0)
        ds = make_synthetic_dtld(tmp / "dtld", n_seq, max(1, args.frames // n_seq), args.seed, cfg,
                                 workers=args.workers)
        keys = [f.key for f in ds.frames]
        reps = []
        for r in range(args.reps):
            a = single_process(ds.root, keys, tmp / f"a{r}")
            b = parallel(ds.root, ds.v2["all"], tmp / f"b{r}", args.workers)
            reps.append({"single_ips": a, "parallel_ips": b, "ratio": b / (args.workers * a)})
            print(f"rep {r}: single {a:.2f} img/s, {args.workers} workers {b:.2f} img/s, "
                  f"ratio {reps[-1]['ratio']:.3f}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "figure": "convert", "goal": ">= 0.8", "frames": len(keys), "frame_size": [2048, 1024],
        "workers": args.workers, "cpus": os.cpu_count(), "reps": reps,
        "single_ips_median": statistics.median(r["single_ips"] for r in reps),
        "parallel_ips_median": statistics.median(r["parallel_ips"] for r in reps),
        "ratio_median": statistics.median(r["ratio"] for r in reps),
        "python": platform.python_version(), "machine": platform.machine(),
        "command": "python benchmarks/convert.py " + " ".join(sys.argv[1:]),
    }
    out = Path(args.out)
    atomic_write_json(out, result)
    print(f"single-process {result['single_ips_median']:.2f} img/s (2048x1024), "
          f"{args.workers} workers {result['parallel_ips_median']:.2f} img/s -> {out}")
    print(f"convert ratio (goal >= 0.8): {result['ratio_median']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
