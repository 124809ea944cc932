"""Golden tests of the ROS-free matching and per-frame metrics (core/matching.py)."""

import math

import pytest

from kd_traffic_light.core.matching import (
    Counts,
    compare_frame,
    iou_matrix,
    match_detections,
)
from kd_traffic_light.core.types import Detection


def box(x1, y1, x2, y2, cls=0, score=0.9):
    return Detection(float(x1), float(y1), float(x2), float(y2), score, cls)


# ---------------------------------------------------------------- IoU
def test_iou_golden_values():
    a = [box(0, 0, 10, 10)]
    b = [box(0, 0, 10, 10), box(5, 0, 15, 10), box(20, 20, 30, 30), box(0, 0, 10, 5)]
    m = iou_matrix(a, b)
    assert m.shape == (1, 4)
    assert m[0, 0] == pytest.approx(1.0)
    assert m[0, 1] == pytest.approx(50 / 150)  # half overlap: 50 / (100 + 100 - 50)
    assert m[0, 2] == 0.0
    assert m[0, 3] == pytest.approx(0.5)  # contained half box


def test_iou_degenerate_and_empty():
    assert iou_matrix([box(0, 0, 0, 0)], [box(0, 0, 0, 0)])[0, 0] == 0.0
    assert iou_matrix([], [box(0, 0, 1, 1)]).shape == (0, 1)


# ---------------------------------------------------------------- matching
def test_threshold_is_inclusive():
    s, t = [box(0, 0, 10, 5)], [box(0, 0, 10, 10)]  # IoU exactly 0.5
    assert len(match_detections(s, t, 0.5)) == 1
    assert match_detections(s, t, 0.51) == []


def test_same_class_required():
    s, t = [box(0, 0, 10, 10, cls=1)], [box(0, 0, 10, 10, cls=0)]
    assert match_detections(s, t) == []
    assert len(match_detections(s, t, same_class=False)) == 1


def test_greedy_takes_highest_iou_first_and_one_to_one():
    t = [box(0, 0, 10, 10)]
    s = [box(1, 0, 11, 10), box(0, 0, 10, 10)]  # s1 is the exact match
    (m,) = match_detections(s, t)
    assert (m.student_index, m.teacher_index, m.iou) == (1, 0, pytest.approx(1.0))


def test_hungarian_finds_more_pairs_than_greedy():
    # Greedy trap: s0-t0 is the best single pair and blocks s1's only partner.
    t = [box(0, 0, 10, 10), box(3, 0, 13, 10)]
    s = [box(1, 0, 11, 10), box(-3, 0, 7, 10)]
    # IoUs: s0-t0 = 90/110 = .818, s0-t1 = 80/120 = .667, s1-t0 = 70/130 = .538, s1-t1 = 40/160 = .25
    greedy = match_detections(s, t, method="greedy")
    assert [(m.student_index, m.teacher_index) for m in greedy] == [(0, 0)]
    hung = match_detections(s, t, method="hungarian")
    assert [(m.student_index, m.teacher_index) for m in hung] == [(0, 1), (1, 0)]
    assert [m.iou for m in hung] == [pytest.approx(80 / 120), pytest.approx(70 / 130)]


def test_hungarian_prefers_larger_iou_sum_among_equal_counts():
    t = [box(0, 0, 10, 10), box(100, 0, 110, 10)]
    s = [box(100, 0, 110, 10), box(1, 0, 11, 10)]
    hung = match_detections(s, t, method="hungarian")
    assert [(m.student_index, m.teacher_index) for m in hung] == [(0, 1), (1, 0)]


def test_hungarian_rectangular_both_ways():
    t = [box(0, 0, 10, 10), box(100, 0, 110, 10), box(200, 0, 210, 10)]
    s = [box(100, 0, 110, 10)]
    assert [(m.student_index, m.teacher_index) for m in match_detections(s, t, method="hungarian")] == [(0, 1)]
    assert [(m.student_index, m.teacher_index) for m in match_detections(t, s, method="hungarian")] == [(1, 0)]


def test_unknown_method_rejected():
    with pytest.raises(ValueError, match="hungarian"):
        match_detections([box(0, 0, 1, 1)], [box(0, 0, 1, 1)], method="magic")


# ---------------------------------------------------------------- per-frame metrics
def test_compare_frame_golden_case():
    teacher = [box(0, 0, 10, 10, 0), box(20, 0, 30, 10, 0), box(40, 0, 50, 10, 1), box(60, 0, 70, 10, 1)]
    student = [
        box(0, 0, 10, 10, 0),  # TP class 0, IoU 1
        box(20, 0, 30, 5, 0),  # TP class 0, IoU 0.5
        box(40, 0, 50, 10, 0),  # overlaps a class-1 teacher box with the wrong class: FP (class 0)
        box(90, 0, 99, 10, 1),  # FP class 1, no overlap
    ]
    fm = compare_frame(student, teacher)
    assert (fm.counts.tp, fm.counts.fp, fm.counts.fn) == (2, 2, 2)
    assert fm.precision == pytest.approx(0.5)
    assert fm.recall == pytest.approx(0.5)
    assert fm.f1 == pytest.approx(0.5)
    assert fm.mean_iou == pytest.approx(0.75)
    assert fm.per_class[0] == Counts(tp=2, fp=1, fn=0)
    assert fm.per_class[1] == Counts(tp=0, fp=1, fn=2)
    assert fm.per_class[0].precision == pytest.approx(2 / 3) and fm.per_class[0].recall == 1.0
    assert fm.per_class[0].f1 == pytest.approx(0.8)
    assert fm.per_class[1].f1 == 0.0
    # class-agnostic pairs: the three overlapping boxes; two agree on class
    assert (fm.class_pairs, fm.class_agree) == (3, 2)
    assert fm.class_agreement == pytest.approx(2 / 3)


def test_compare_frame_identical_is_perfect():
    dets = [box(0, 0, 10, 10, 0), box(50, 50, 60, 70, 1)]
    fm = compare_frame(dets, dets)
    assert (fm.precision, fm.recall, fm.f1, fm.mean_iou, fm.class_agreement) == (1.0, 1.0, 1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("n_student", "n_teacher", "expected"),
    [(0, 0, (1.0, 1.0, 1.0)), (0, 2, (0.0, 0.0, 0.0)), (2, 0, (0.0, 0.0, 0.0))],
)
def test_compare_frame_empty_conventions(n_student, n_teacher, expected):
    s = [box(10 * i, 0, 10 * i + 5, 5) for i in range(n_student)]
    t = [box(100 + 10 * i, 0, 100 + 10 * i + 5, 5) for i in range(n_teacher)]
    fm = compare_frame(s, t)
    assert (fm.precision, fm.recall, fm.f1) == expected
    assert math.isnan(fm.mean_iou) and math.isnan(fm.class_agreement)


# ---------------------------------------------------------------- light state
def lit(x1, cls, label):
    return Detection(float(x1), 0.0, float(x1) + 10, 20.0, 0.9, cls, label)


def test_state_agreement_reads_the_state_from_the_labels_relevance_aside():
    teacher = [lit(0, 0, "relevant_red"), lit(20, 3, "relevant_green"), lit(40, 8, "not_relevant_green"),
               lit(60, 0, "relevant_red")]
    student = [lit(1, 5, "not_relevant_red"),   # same state, other relevance: state agrees, class does not
               lit(21, 0, "relevant_red"),      # green read as red
               lit(41, 8, "not_relevant_green")]  # agrees; the teacher's 4th light is missed
    m = compare_frame(student, teacher)
    assert (m.state_pairs, m.state_agree) == (3, 2) and m.state_agreement == pytest.approx(2 / 3)
    assert (m.class_pairs, m.class_agree) == (3, 1)


def test_no_state_pairs_without_state_labels():
    m = compare_frame([lit(0, 0, "relevant")], [lit(0, 0, "relevant")])
    assert m.state_pairs == 0 and math.isnan(m.state_agreement) and m.class_agreement == 1.0
