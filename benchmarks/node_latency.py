"""Detector node figures: node-overhead, node-throughput, node-bounded, node-start, runtime-size, student-vs-teacher.

The student (ONNX, runtime venv), the teacher (``.pt``) and a relay (the transport floor) run as separate node
processes fed 2048x1024 bgr8 frames; the ratios are printed last and written to JSON. The code is the package
``benchmarks/node_bench/``; what is measured, the goals and the values: docs/benchmarks.md, "Node figures".

    python benchmarks/node_latency.py --quick          # imgsz 320, fewer/shorter reps (a few minutes)
    python benchmarks/node_latency.py                  # imgsz 640, full profile
    python benchmarks/node_latency.py --out runs/bench/node_latency.json
"""

from __future__ import annotations

import sys

import _setup  # noqa: F401  (the repository on sys.path, ultralytics offline)

from benchmarks.node_bench.driver import main

if __name__ == "__main__":
    sys.exit(main())
