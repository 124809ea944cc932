"""The node benchmark's command line: flags and profiles, one session, the JSON and the printed figures.

``python benchmarks/node_latency.py [flags]`` (or ``python -m benchmarks.node_bench``); see docs/benchmarks.md,
"Node figures".
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

from benchmarks.node_bench.figures import summarize
from benchmarks.node_bench.frames import HEIGHT, WIDTH
from benchmarks.node_bench.report import print_summary
from benchmarks.node_bench.session import run, runtime_size
from kd_traffic_light.core.atomic_io import atomic_write_json
from kd_traffic_light.core.classes import DEFAULT_SCHEME, SCHEMES
from kd_traffic_light.core.config import ConfigError, NodeConfig
from kd_traffic_light.tools.processes import FASTDDS_PROFILE

DESCRIPTION = ("Detector node figures: node-overhead, node-throughput, node-bounded, node-start, runtime-size, "
               "student-vs-teacher.")
PROFILES = {  # --quick and the full default
    "quick": {"imgsz": 320, "reps": 4, "serial_frames": 8, "core_frames": 8, "duration": 4.0,
              "teacher_duration": 5.0, "start_reps": 2},
    "full": {"imgsz": 640, "reps": 7, "serial_frames": 20, "core_frames": 20, "duration": 12.0,
             "teacher_duration": 15.0, "start_reps": 3},
}


def get_args_parser() -> argparse.ArgumentParser:
    """Return the parser of the benchmark's flags."""
    p = argparse.ArgumentParser(description=DESCRIPTION)
    p.add_argument("--quick", action="store_true", help="quick profile: imgsz 320, 4 short repetitions")
    p.add_argument("--imgsz", type=int, default=None, help="inference size (default 640, 320 with --quick)")
    p.add_argument("--reps", type=int, default=None, help="repetitions of the alternating blocks")
    p.add_argument("--serial-frames", type=int, default=None, help="frames per serial (one-at-a-time) block")
    p.add_argument("--core-frames", type=int, default=None, help="core predict calls per core block")
    p.add_argument("--duration", type=float, default=None, help="seconds of each low/high-rate student block")
    p.add_argument("--teacher-duration", type=float, default=None, help="seconds of each teacher high-rate block")
    p.add_argument("--high-rate", type=float, default=30.0,
                   help="input Hz above capacity (raised to 1.5 x capacity where it is not above it)")
    p.add_argument("--low-factor", type=float, default=0.5, help="sustainable input rate as a fraction of capacity")
    p.add_argument("--student-cfg", default="yolov5n.yaml", help="student model yaml (built untrained)")
    p.add_argument("--teacher-cfg", default="yolov5l.yaml", help="teacher model yaml (built untrained)")
    p.add_argument("--classes", choices=tuple(SCHEMES), default=DEFAULT_SCHEME,
                   help="class scheme of the models: relevance (2 classes) or relevance_state (10)")
    p.add_argument("--device", default="cpu", help="device for the nodes and the core (cpu, cuda:0)")
    p.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                   help="the student's inference threads (node parameter threads), also for its core predict time; "
                        "default: one core fewer than the machine has, leaving one to the camera and the transport "
                        "(0: the runtime's default, every core)")
    p.add_argument("--fresh-wait", type=float, default=None,
                   help="the student's fresh_wait node parameter (default: the node's default; 0: always serve the "
                        "pending frame, a pure latest-frame slot)")
    p.add_argument("--tracking", choices=("on", "off"), default="on",
                   help="the student's tracking parameter: tracks, revised states and ~/traffic_signals (default on, "
                        "as the node)")
    p.add_argument("--fastdds-profile", default=None, metavar="XML",
                   help="Fast DDS XML profiles file of every participant (FASTDDS_DEFAULT_PROFILES_FILE); default: "
                        "the shipped config/fastdds_large_frames.xml; 'none': FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA")
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: random in 215..232)")
    p.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait for a node to be up")
    p.add_argument("--out", default="runs/bench/node_latency.json", help="JSON output path")
    p.add_argument("--node-python", default=None,
                   help="Python of the ONNX student and the relay (default: .venv-runtime's when it exists, "
                        "else this one)")
    p.add_argument("--start-reps", type=int, default=None, help="fresh starts per model for node-start")
    return p


def profile(args: argparse.Namespace) -> dict:
    """Return the run's settings: the ``--quick`` or full profile, each value overridden by its flag when given."""
    prof = dict(PROFILES["quick" if args.quick else "full"])
    for k in ("imgsz", "reps", "serial_frames", "core_frames", "duration", "teacher_duration", "start_reps"):
        if getattr(args, k) is not None:
            prof[k] = getattr(args, k)
    return prof


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark with ``argv`` (default: the command line); write the JSON, print the figures."""
    args = get_args_parser().parse_args(argv)
    try:  # the node's own check, before any process starts; the value used is recorded in the JSON
        fresh_wait = NodeConfig(**({} if args.fresh_wait is None else {"fresh_wait": args.fresh_wait})).fresh_wait
    except ConfigError as exc:
        raise SystemExit(f"node_latency: --fresh-wait: {exc}") from None
    prof = profile(args)
    print(f"node_latency ({'quick' if args.quick else 'full'}): {prof}", flush=True)
    with tempfile.TemporaryDirectory(prefix="node_latency_") as tmp:
        res = run(args, prof, Path(tmp))
    res["runtime_size"] = runtime_size()
    summary = summarize(res)
    import torch

    out = {"benchmark": "node_latency", "profile": "quick" if args.quick else "full", "settings": prof,
           "frame": f"{WIDTH}x{HEIGHT} bgr8", "student_cfg": args.student_cfg, "teacher_cfg": args.teacher_cfg,
           "classes": args.classes,
           "device": args.device, "threads": args.threads,
           "fresh_wait": fresh_wait, "tracking": args.tracking,
           "fastdds_profile": args.fastdds_profile or "/".join(FASTDDS_PROFILE),
           "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
           "load_avg": os.getloadavg(), "python": platform.python_version(), **summary,
           "run": {k: v for k, v in res.items() if k != "reps"},
           "reps": res["reps"]}
    path = Path(args.out)
    atomic_write_json(path, out)
    print_summary(res, summary, path)
    return 0
