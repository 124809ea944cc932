"""Student-vs-teacher agreement on one frame (ROS-free); the rolling window is in `core.summary`.

The teacher is the reference: a student box is a true positive when it overlaps an unmatched teacher box
of the same class at IoU >= the threshold (one-to-one), a false positive otherwise; an unmatched teacher
box is a false negative. Empty-set conventions (chosen so that "both saw nothing" is perfect agreement):

* precision = TP / (TP + FP); with no student boxes it is 1.0 if the teacher has none either, else 0.0;
* recall = TP / (TP + FN); with no teacher boxes it is 1.0 if the student has none either, else 0.0;
* F1 = 2PR / (P + R), 0.0 when P + R = 0;
* mean IoU and class agreement are NaN when there is nothing to average (no matches / no pairs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kd_traffic_light.core.classes import split_label
from kd_traffic_light.core.config import MATCH_METHODS
from kd_traffic_light.core.types import Detection


@dataclass(frozen=True)
class Match:
    """One student box paired with one teacher box."""

    student_index: int
    teacher_index: int
    iou: float


@dataclass(frozen=True)
class Counts:
    """True positives, false positives and false negatives with the derived rates."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 1.0 or 0.0 when the student has no boxes (see module docstring)."""
        if self.tp + self.fp == 0:
            return 1.0 if self.fn == 0 else 0.0
        return self.tp / (self.tp + self.fp)

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 1.0 or 0.0 when the teacher has no boxes (see module docstring)."""
        if self.tp + self.fn == 0:
            return 1.0 if self.fp == 0 else 0.0
        return self.tp / (self.tp + self.fn)

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall (0.0 when both are 0)."""
        p, r = self.precision, self.recall
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)


@dataclass(frozen=True)
class FrameMetrics:
    """Agreement of the student with the teacher on one frame."""

    n_student: int
    n_teacher: int
    matches: tuple[Match, ...]
    counts: Counts
    per_class: dict[int, Counts]
    class_pairs: int
    class_agree: int
    state_pairs: int = 0
    state_agree: int = 0

    @property
    def precision(self) -> float:
        """Overall precision of the student."""
        return self.counts.precision

    @property
    def recall(self) -> float:
        """Overall recall of the student."""
        return self.counts.recall

    @property
    def f1(self) -> float:
        """Overall F1 of the student."""
        return self.counts.f1

    @property
    def mean_iou(self) -> float:
        """Mean IoU of the same-class matches (NaN without matches)."""
        return float(np.mean([m.iou for m in self.matches])) if self.matches else math.nan

    @property
    def class_agreement(self) -> float:
        """Fraction of class-agnostic IoU pairs whose classes agree (NaN without pairs)."""
        return self.class_agree / self.class_pairs if self.class_pairs else math.nan

    @property
    def state_agreement(self) -> float:
        """Fraction of class-agnostic IoU pairs, both with a light state in their label, whose states agree.

        NaN without such pairs (models of the ``relevance`` scheme have none).
        """
        return self.state_agree / self.state_pairs if self.state_pairs else math.nan


def iou_matrix(a: Sequence[Detection], b: Sequence[Detection]) -> np.ndarray:
    """Pairwise IoU of two box lists.

    Args:
        a: First boxes (rows).
        b: Second boxes (columns).

    Returns:
        Array of shape (len(a), len(b)); degenerate (zero-area) boxes give IoU 0.
    """
    if not a or not b:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    ba = np.array([d.xyxy for d in a], dtype=np.float64)[:, None, :]
    bb = np.array([d.xyxy for d in b], dtype=np.float64)[None, :, :]
    iw = np.clip(np.minimum(ba[..., 2], bb[..., 2]) - np.maximum(ba[..., 0], bb[..., 0]), 0, None)
    ih = np.clip(np.minimum(ba[..., 3], bb[..., 3]) - np.maximum(ba[..., 1], bb[..., 1]), 0, None)
    inter = iw * ih
    area_a = np.clip(ba[..., 2] - ba[..., 0], 0, None) * np.clip(ba[..., 3] - ba[..., 1], 0, None)
    area_b = np.clip(bb[..., 2] - bb[..., 0], 0, None) * np.clip(bb[..., 3] - bb[..., 1], 0, None)
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _greedy(score: np.ndarray, valid: np.ndarray) -> list[tuple[int, int]]:
    """Pick valid pairs by descending score, each row and column at most once (ties: lowest indices)."""
    rows, cols = np.nonzero(valid)
    order = sorted(zip(rows.tolist(), cols.tolist()), key=lambda rc: (-score[rc], rc[0], rc[1]))
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for r, c in order:
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            pairs.append((r, c))
    return pairs


def _hungarian(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost assignment for an n x m matrix (n <= m), O(n^2 m) shortest augmenting paths."""
    n, m = cost.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    p = np.zeros(m + 1, dtype=int)  # p[j]: row (1-based) assigned to column j
    way = np.zeros(m + 1, dtype=int)
    for i in range(1, n + 1):
        p[0], j0 = i, 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while p[j0] != 0:
            used[j0] = True
            i0, delta, j1 = p[j0], np.inf, 0
            for j in range(1, m + 1):
                if not used[j]:
                    cur = cost[i0 - 1, j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j], way[j] = cur, j0
                    if minv[j] < delta:
                        delta, j1 = minv[j], j
            for j in range(m + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    return [(int(p[j]) - 1, j - 1) for j in range(1, m + 1) if p[j]]


def _assign(score: np.ndarray, valid: np.ndarray, method: str) -> list[tuple[int, int]]:
    """One-to-one pairs among `valid` maximising `score` (greedy or optimal)."""
    if method not in MATCH_METHODS:
        raise ValueError(f"match method must be one of {MATCH_METHODS}, got {method!r}")
    if not valid.any():
        return []
    if method == "greedy":
        return _greedy(score, valid)
    # Maximise the number of valid pairs first, then their summed IoU.
    cost = np.where(valid, -(1.0 + score), 0.0)
    transposed = cost.shape[0] > cost.shape[1]
    pairs = _hungarian(cost.T if transposed else cost)
    pairs = [(c, r) for r, c in pairs] if transposed else pairs
    return sorted((r, c) for r, c in pairs if valid[r, c])


def match_detections(
    student: Sequence[Detection],
    teacher: Sequence[Detection],
    iou_threshold: float = 0.5,
    same_class: bool = True,
    method: str = "greedy",
) -> list[Match]:
    """Pair student and teacher boxes one-to-one at IoU >= `iou_threshold`.

    Args:
        student: Student detections of one frame.
        teacher: Teacher detections of the same frame.
        iou_threshold: Minimum IoU of a pair (inclusive).
        same_class: Only pair boxes with equal `class_id`.
        method: "greedy" (highest IoU first) or "hungarian" (most pairs, then largest summed IoU).

    Returns:
        Matches sorted by student index.
    """
    ious = iou_matrix(student, teacher)
    valid = ious >= iou_threshold
    if same_class and valid.size:
        sc = np.array([d.class_id for d in student])[:, None]
        tc = np.array([d.class_id for d in teacher])[None, :]
        valid &= sc == tc
    pairs = _assign(ious, valid, method)
    return sorted((Match(r, c, float(ious[r, c])) for r, c in pairs), key=lambda m: m.student_index)


def compare_frame(
    student: Sequence[Detection],
    teacher: Sequence[Detection],
    iou_threshold: float = 0.5,
    method: str = "greedy",
) -> FrameMetrics:
    """Student precision/recall/F1 against the teacher on one frame, overall and per class.

    Args:
        student: Student detections.
        teacher: Teacher detections (the reference).
        iou_threshold: Minimum IoU of a match.
        method: Matching method, see `match_detections`.

    Returns:
        The frame's metrics; `class_pairs`/`class_agree` come from a class-agnostic matching, and so do
        `state_pairs`/`state_agree`: the pairs whose labels both carry a state (core/classes.py) and those
        whose states are equal.
    """
    matches = match_detections(student, teacher, iou_threshold, True, method)
    per_class: dict[int, Counts] = {}
    for cid in sorted({d.class_id for d in student} | {d.class_id for d in teacher}):
        tp = sum(1 for m in matches if student[m.student_index].class_id == cid)
        n_s = sum(1 for d in student if d.class_id == cid)
        n_t = sum(1 for d in teacher if d.class_id == cid)
        per_class[cid] = Counts(tp, n_s - tp, n_t - tp)
    agnostic = match_detections(student, teacher, iou_threshold, False, method)
    agree = sum(1 for m in agnostic if student[m.student_index].class_id == teacher[m.teacher_index].class_id)
    states = [(split_label(student[m.student_index].label)[1], split_label(teacher[m.teacher_index].label)[1])
              for m in agnostic]
    states = [(s, t) for s, t in states if s is not None and t is not None]
    counts = Counts(len(matches), len(student) - len(matches), len(teacher) - len(matches))
    return FrameMetrics(len(student), len(teacher), tuple(matches), counts, per_class, len(agnostic), agree,
                        len(states), sum(s == t for s, t in states))

