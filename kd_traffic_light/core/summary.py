"""Rolling student-vs-teacher summary over the last paired frames, its level and the message accounting (ROS-free)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from kd_traffic_light.core.matching import Counts, FrameMetrics
from kd_traffic_light.core.pairing import SideLedger


class Level(IntEnum):
    """Summary levels, numerically equal to diagnostic_msgs/DiagnosticStatus levels."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


def level_for(f1: float, warn_f1: float, error_f1: float) -> Level:
    """Level of an F1 value: ERROR below `error_f1`, WARN below `warn_f1`, else OK."""
    if f1 < error_f1:
        return Level.ERROR
    if f1 < warn_f1:
        return Level.WARN
    return Level.OK


@dataclass
class _Entry:
    metrics: FrameMetrics
    student_latency: float
    teacher_latency: float


def _mean(values: Iterable[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else math.nan


@dataclass(frozen=True)
class Summary:
    """Pooled agreement over the last `frames` paired frames, with totals since start.

    `student_only` / `teacher_only` count frames one side sent and the other did not (it moved past the
    stamp, or nothing came within the timeout); `ledgers` holds every side's full accounting
    (:class:`kd_traffic_light.core.pairing.SideLedger`), empty when the caller has none.
    """

    frames: int
    counts: Counts
    per_class: dict[int, Counts]
    mean_iou: float
    class_agreement: float
    student_latency_mean: float
    student_latency_max: float
    teacher_latency_mean: float
    teacher_latency_max: float
    total_paired: int
    student_only: int
    teacher_only: int
    level: Level
    message: str
    ledgers: Mapping[str, SideLedger] = field(default_factory=dict)
    state_agreement: float = math.nan


@dataclass
class RollingSummary:
    """Aggregates the last `window` paired frames (micro-averaged counts) into a levelled summary.

    Args:
        window: Number of most recent paired frames pooled.
        warn_f1: F1 below this is WARN.
        error_f1: F1 below this is ERROR.
    """

    window: int
    warn_f1: float = 0.8
    error_f1: float = 0.5
    _entries: deque = field(init=False, repr=False)
    total_paired: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        self._entries = deque(maxlen=self.window)

    def add(self, metrics: FrameMetrics, student_latency: float, teacher_latency: float) -> None:
        """Add one paired frame with both stamp ages (seconds)."""
        self._entries.append(_Entry(metrics, student_latency, teacher_latency))
        self.total_paired += 1

    def summary(self, student_only: int = 0, teacher_only: int = 0,
                ledgers: Mapping[str, SideLedger] | None = None) -> Summary:
        """Pool the window; `student_only`/`teacher_only` (or `ledgers`, which override them) are the pairer's."""
        if ledgers:
            student_only, teacher_only = ledgers["student"].unpaired, ledgers["teacher"].unpaired
        entries = list(self._entries)
        counts, per_class = Counts(), {}
        for e in entries:
            counts = counts + e.metrics.counts
            for cid, c in e.metrics.per_class.items():
                per_class[cid] = per_class.get(cid, Counts()) + c
        ious = [m.iou for e in entries for m in e.metrics.matches]
        pairs = sum(e.metrics.class_pairs for e in entries)
        agree = sum(e.metrics.class_agree for e in entries)
        s_pairs = sum(e.metrics.state_pairs for e in entries)
        s_agree = sum(e.metrics.state_agree for e in entries)
        s_lat = [e.student_latency for e in entries]
        t_lat = [e.teacher_latency for e in entries]
        if not entries:
            level, message = Level.STALE, "no paired student/teacher frames yet"
        else:
            level = level_for(counts.f1, self.warn_f1, self.error_f1)
            message = f"F1 {counts.f1:.3f} over {len(entries)} frames" + (
                "" if level == Level.OK else f" (warn < {self.warn_f1}, error < {self.error_f1})"
            )
        lost = sum(led.lost for led in (ledgers or {}).values())
        if entries and lost:
            message += f"; {lost} detection messages lost or dropped (see the counts)"
            level = max(level, Level.WARN)
        return Summary(
            frames=len(entries),
            counts=counts,
            per_class=dict(sorted(per_class.items())),
            mean_iou=_mean(ious),
            class_agreement=agree / pairs if pairs else math.nan,
            student_latency_mean=_mean(s_lat),
            student_latency_max=max(s_lat, default=math.nan),
            teacher_latency_mean=_mean(t_lat),
            teacher_latency_max=max(t_lat, default=math.nan),
            total_paired=self.total_paired,
            student_only=student_only,
            teacher_only=teacher_only,
            level=level,
            message=message,
            ledgers=dict(ledgers or {}),
            state_agreement=s_agree / s_pairs if s_pairs else math.nan,
        )
