"""core/pairing.py: results of one frame are paired by exact (stamp, frame_id) key in a bounded cache.

The comparison node's :class:`FramePairer` under overload is checked in test/faults/test_comparison_overload.py.
"""

import pytest

from kd_traffic_light.core.pairing import StampPairer, stamp_key


def test_pairer_pairs_by_exact_key_either_order():
    p = StampPairer(capacity=3)
    k = stamp_key(1, 5, "cam")
    assert p.add("teacher", k, "T") is None
    pair = p.add("student", k, "S")
    assert (pair.student, pair.teacher, pair.key) == ("S", "T", (1_000_000_005, "cam"))
    assert p.add("student", stamp_key(2, 0, "cam"), "S2") is None
    assert p.add("teacher", stamp_key(2, 0, "cam2"), "T2") is None  # other camera: no pair
    assert p.paired == 1 and p.pending("student") == 1 and p.pending("teacher") == 1


def test_pairer_evicts_oldest_as_unmatched_and_flushes():
    p = StampPairer(capacity=2)
    for i in range(5):
        p.add("student", stamp_key(i, 0, "c"), i)
    assert p.unmatched == {"student": 3, "teacher": 0}
    assert p.add("teacher", stamp_key(0, 0, "c"), "late") is None  # frame 0 was evicted: not compared
    assert p.add("teacher", stamp_key(4, 0, "c"), "t4").student == 4
    p.add("student", stamp_key(9, 0, "c"), 9)
    p.add("student", stamp_key(9, 0, "c"), 9)
    assert p.duplicates["student"] == 1
    p.flush()
    assert p.unmatched == {"student": 5, "teacher": 1} and p.pending("student") == 0


def test_pairer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="cache_size"):
        StampPairer(0)
    with pytest.raises(ValueError, match="side"):
        StampPairer(1).add("pupil", (0, ""), 1)
