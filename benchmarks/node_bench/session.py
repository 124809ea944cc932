"""One measuring session: build the models, start the nodes, run every repetition's blocks, then node-start.

Returns the raw results that :func:`benchmarks.node_bench.figures.summarize` turns into the figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks._setup import REPO
from benchmarks.node_bench.bench import Bench
from benchmarks.node_bench.blocks import Blocks, input_rates
from benchmarks.node_bench.core_worker import CoreWorker
from benchmarks.node_bench.frames import HEIGHT, WIDTH, image_msg, make_frames
from benchmarks.node_bench.models import export_onnx, gflops, untrained_pt, venv_size_mb
from benchmarks.node_bench.nodes import (
    RUNTIME_VENV,
    TARGETS,
    bench_env,
    module_env,
    node_python,
    node_start,
    start_commands,
    start_nodes,
    wait_nodes,
)
from kd_traffic_light.tools.processes import rss_mb, stop


def run(args: argparse.Namespace, prof: dict, tmp: Path) -> dict:
    """Start the nodes, measure every repetition's blocks, then node-start; return the raw results for ``summarize``."""
    from tqdm import tqdm

    from kd_traffic_light.core.config import DetectorConfig
    from kd_traffic_light.core.detector import TrafficLightDetector
    from kd_traffic_light.tools.probe import ProbeNode

    imgsz = prof["imgsz"]
    student_pt = untrained_pt(tmp / "student_bench.pt", args.student_cfg, args.classes)
    models = {"student": export_onnx(student_pt, imgsz),
              "teacher": untrained_pt(tmp / "teacher_bench.pt", args.teacher_cfg, args.classes)}
    node_py = node_python(args.node_python)
    dom, env = bench_env(args.domain_id, args.fastdds_profile, tmp)
    procs: dict = {}
    try:
        # The probe joins first: a participant joining after several others started together often never
        # discovers one of them with Fast DDS LARGE_DATA (test/nodes/discovery_repro.py)
        with ProbeNode("node_latency_bench", env) as probe:
            logs = start_nodes(procs, node_py, models, imgsz, args.device, env, tmp, args.threads, args.fresh_wait,
                               args.tracking == "on")
            print(f"nodes started (ROS_DOMAIN_ID={dom}); loading the core models here ...", flush=True)
            frames = make_frames()
            teacher_core = TrafficLightDetector(DetectorConfig(model=str(models["teacher"]), imgsz=imgsz,
                                                               device=args.device))
            teacher_core.warmup((HEIGHT, WIDTH))
            worker = CoreWorker(node_py, models["student"], imgsz, args.device, module_env(env), args.threads)
            msgs = [image_msg(f) for f in frames]
            bench = Bench(probe, TARGETS)
            wait_nodes(bench, procs, logs, msgs, args.startup_timeout)
            p0, capacity, low, high = input_rates(worker, args.high_rate, args.low_factor)
            blocks = Blocks(bench, worker, teacher_core, frames, msgs, prof, p0, low, high)
            reps = [blocks.repetition(rep) for rep in tqdm(range(prof["reps"]), desc="repetitions", unit="rep")]
            time.sleep(1.2)  # one more diagnostics period
            diag = dict(bench.diag)
            rss = {name: rss_mb(proc.pid) for name, proc in procs.items()}
            rss["core_worker"] = rss_mb(worker.proc.pid)
            worker.close()
            for proc in procs.values():
                stop(proc)
            print("main blocks done; node-start: fresh starts of the ONNX and the .pt student ...", flush=True)
            start = node_start(bench, start_commands(node_py, models["student"], student_pt, imgsz, args.device,
                                                     args.threads),
                               env, tmp, msgs[0], prof["start_reps"], min(60.0, args.startup_timeout))
    finally:
        codes = {name: (stop(proc) if proc.poll() is None else proc.returncode) for name, proc in procs.items()}
    return {"imgsz": imgsz, "reps": reps, "capacity_hz": capacity, "low_hz": low, "high_hz": high,
            "domain_id": dom, "node_exit_codes": codes, "diagnostics": diag, "node_rss_mb": rss,
            "node_start": start, "student_model": models["student"].name,
            "student_python": str(Path(node_py).relative_to(REPO)) if Path(node_py).is_relative_to(REPO) else node_py,
            "gflops": {"student": gflops(args.student_cfg, imgsz, args.classes),
                       "teacher": gflops(args.teacher_cfg, imgsz, args.classes)}}


def runtime_size() -> dict:
    """runtime-size: installed MiB of .venv-runtime (None when absent) and of this Python's venv."""
    return {"runtime_venv_mb": venv_size_mb(RUNTIME_VENV) if RUNTIME_VENV.exists() else None,
            "full_venv_mb": venv_size_mb(Path(sys.prefix))}
