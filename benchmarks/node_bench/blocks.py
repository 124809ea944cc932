"""One repetition's measured blocks: serial, core, low rate, high rate, teacher (reversed on odd repetitions).

The input rates are set once from the student's predict time P (:func:`input_rates`): capacity = 1/P,
low = ``--low-factor`` x capacity, high = ``--high-rate`` (1.5 x capacity where it is below 1.2 x capacity).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmarks.node_bench.bench import Bench
from benchmarks.node_bench.core_worker import CoreWorker, core_block
from benchmarks.node_bench.figures import med, repetition_ratios


def input_rates(worker: CoreWorker, high_rate: float, low_factor: float) -> tuple[float, float, float, float]:
    """Return the student predict time P, capacity 1/P and the low and high input rates (Hz) set from it."""
    p0 = med(worker.times(10))  # capacity estimate, taken while the nodes are up and idle
    capacity = 1.0 / p0
    high = high_rate if high_rate >= 1.2 * capacity else 1.5 * capacity
    low = low_factor * capacity
    print(f"nodes answering; student predict {p0 * 1000:.1f} ms -> capacity {capacity:.1f} Hz; "
          f"low {low:.1f} Hz, high {high:.1f} Hz; measuring ...", flush=True)
    return p0, capacity, low, high


@dataclass
class Blocks:
    """The measured blocks of a repetition; each fills its keys of the repetition's dict ``r``."""

    bench: Bench
    worker: CoreWorker
    teacher_core: Any
    frames: list
    msgs: list
    prof: dict
    p0: float
    low: float
    high: float

    def serial(self, r: dict) -> None:
        """Measure student and relay end-to-end latencies, alternating frame by frame."""
        timeout = max(3.0, 20 * self.p0)
        r["serial_s"], r["serial_lost"] = [], 0
        r["relay_s"], r["relay_lost"] = [], 0
        for _ in range(self.prof["serial_frames"]):
            for target, key in (("student", "serial"), ("relay", "relay")):
                lat, lost = self.bench.serial(target, self.msgs, 1, timeout)
                r[f"{key}_s"] += lat
                r[f"{key}_lost"] += lost

    def core(self, r: dict) -> None:
        """Time core predicts: the student's in its worker, the teacher's in this process."""
        r["core_s"] = self.worker.times(self.prof["core_frames"])
        r["core_teacher_s"] = core_block(self.teacher_core, self.frames, max(3, self.prof["core_frames"] // 3))

    def low_rate(self, r: dict) -> None:
        """Send to the student at the sustainable input rate."""
        r["low"] = self.bench.at_rate("student", self.msgs, self.low, self.prof["duration"],
                                      drain=max(0.3, 4 * self.p0))

    def high_rate(self, r: dict) -> None:
        """Send to the student above capacity."""
        r["high"] = self.bench.at_rate("student", self.msgs, self.high, self.prof["duration"],
                                       drain=max(0.3, 4 * self.p0))

    def teacher(self, r: dict) -> None:
        """Send to the teacher above capacity (drained for its own predict time where already measured)."""
        pt = med(r.get("core_teacher_s") or [10 * self.p0])
        r["teacher"] = self.bench.at_rate("teacher", self.msgs, self.high, self.prof["teacher_duration"],
                                          drain=max(0.5, 3 * pt))

    def repetition(self, rep: int) -> dict:
        """Run every block, in reverse order on odd repetitions; the measurements and this repetition's ratios."""
        r: dict = {}
        blocks = [self.serial, self.core, self.low_rate, self.high_rate, self.teacher]
        for block in blocks if rep % 2 == 0 else blocks[::-1]:
            block(r)
        repetition_ratios(r)
        return r
