"""core/summary.py: the rolling student-vs-teacher summary pools the last paired frames into a levelled summary."""

import pytest

from kd_traffic_light.core.matching import Counts, compare_frame
from kd_traffic_light.core.summary import Level, RollingSummary, level_for
from kd_traffic_light.core.types import Detection


def box(x1, y1, x2, y2, cls=0, score=0.9):
    return Detection(float(x1), float(y1), float(x2), float(y2), score, cls)


def test_rolling_summary_pools_the_window():
    good = compare_frame([box(0, 0, 10, 10)], [box(0, 0, 10, 10)])  # tp 1
    bad = compare_frame([box(0, 0, 10, 10)], [box(50, 0, 60, 10)])  # fp 1, fn 1
    roll = RollingSummary(window=2, warn_f1=0.8, error_f1=0.4)
    assert roll.summary().level == Level.STALE
    roll.add(bad, 0.1, 0.5)
    roll.add(good, 0.2, 0.7)
    s = roll.summary(student_only=3, teacher_only=1)
    assert (s.frames, s.counts) == (2, Counts(1, 1, 1))
    assert s.counts.f1 == pytest.approx(0.5) and s.level == Level.WARN
    assert s.student_latency_mean == pytest.approx(0.15) and s.teacher_latency_max == pytest.approx(0.7)
    assert (s.student_only, s.teacher_only, s.total_paired) == (3, 1, 2)
    roll.add(good, 0.1, 0.1)  # pushes `bad` out of the window
    s = roll.summary()
    assert s.counts == Counts(2, 0, 0) and s.level == Level.OK and s.total_paired == 3
    assert s.mean_iou == 1.0 and s.class_agreement == 1.0
    roll.add(bad, 0, 0)
    roll.add(bad, 0, 0)
    assert roll.summary().level == Level.ERROR


def test_rolling_summary_rejects_bad_window():
    with pytest.raises(ValueError, match="window"):
        RollingSummary(window=0)


def test_level_for_thresholds():
    assert level_for(0.9, 0.8, 0.5) == Level.OK
    assert level_for(0.8, 0.8, 0.5) == Level.OK
    assert level_for(0.79, 0.8, 0.5) == Level.WARN
    assert level_for(0.49, 0.8, 0.5) == Level.ERROR
    assert [int(x) for x in Level] == [0, 1, 2, 3]  # DiagnosticStatus OK, WARN, ERROR, STALE
