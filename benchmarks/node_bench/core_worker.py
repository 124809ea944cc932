"""The student's core predict time, measured in a process like the node's (its Python, no torch loaded).

``python -m benchmarks.node_bench.core_worker MODEL IMGSZ DEVICE [THREADS]`` loads the detector, prints
``{"ready": backend}``, then for each line ``N`` read from stdin prints the N predict times (s) as a JSON list.
:class:`CoreWorker` is the driver's side; :func:`core_block` also times the teacher in the driver itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.node_bench.frames import HEIGHT, WIDTH, make_frames

MODULE = "benchmarks.node_bench.core_worker"


def core_block(det: Any, frames: list, n: int) -> list[float]:
    """Time ``n`` calls of ``det.predict`` on ``frames`` in turn; the seconds of each."""
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        det.predict(frames[i % len(frames)])
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    """Serve predict times on stdin/stdout until stdin closes (arguments: model, imgsz, device, threads)."""
    from kd_traffic_light.core.config import DetectorConfig
    from kd_traffic_light.core.detector import TrafficLightDetector

    model, imgsz, device, *rest = sys.argv[1:] if argv is None else argv
    threads = int(rest[0]) if rest else 0
    det = TrafficLightDetector(DetectorConfig(model=model, imgsz=int(imgsz), device=device, threads=threads))
    frames = make_frames()
    det.warmup((HEIGHT, WIDTH))
    print(json.dumps({"ready": det.backend}), flush=True)
    for line in sys.stdin:
        print(json.dumps(core_block(det, frames, int(line))), flush=True)
    return 0


class CoreWorker:
    """The worker process started with the node's Python (``env`` must let it import ``benchmarks``)."""

    def __init__(self, python: str, model: Path, imgsz: int, device: str, env: dict, threads: int = 0) -> None:
        self.proc = subprocess.Popen([python, "-m", MODULE, str(model), str(imgsz), device, str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        ready = json.loads(self.proc.stdout.readline())
        self.backend = ready["ready"]

    def times(self, n: int) -> list[float]:
        """``n`` predict times (s) on the benchmark frames."""
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        """End the worker."""
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
