"""core/pairing.py: results of one frame are paired by exact (stamp, frame_id) key in a bounded cache.

The comparison node's :class:`FramePairer` and its per-side accounting (a side far
ahead, timeouts, lost messages, duplicates, a bag loop); the real node under overload is checked in
test/faults/test_comparison_overload.py.
"""


from kd_traffic_light.core.pairing import FramePairer


# ---------------------------------------------------------------- FramePairer: the comparison node's rules
def key(t: int, frame: str = "cam") -> tuple[int, str]:
    return (t, frame)


def counts(p: FramePairer, side: str) -> dict[str, int]:
    return {k: v for k, v in p.ledger[side].as_dict().items() if v}


def test_a_side_far_ahead_is_not_one_sided():
    """The teacher's queue drained 300 frames ahead of the student's (cache 100): every frame still pairs."""
    p = FramePairer(capacity=100, timeout_s=5.0)
    for t in range(300):
        p.add("teacher", key(t), t, now=0.0, source=("T", t + 1))
    pairs = [p.add("student", key(t), t, now=0.0, source=("S", t + 1)) for t in range(300)]
    # the oldest 200 teacher results were pushed out of the cache: dropped (with the reason), never "teacher-only"
    assert counts(p, "teacher") == {"received": 300, "paired": 100, "dropped_cache_full": 200}
    assert counts(p, "student") == {"received": 300, "paired": 100, "dropped_late": 200}
    assert sum(x is not None for x in pairs) == 100


def test_other_side_past_the_stamp_settles_at_once_and_gaps_count_as_mate_lost():
    p = FramePairer(capacity=100, timeout_s=5.0)
    p.add("teacher", key(1), "t1", 0.0, ("T", 1))
    p.add("teacher", key(2), "t2", 0.0, ("T", 2))  # a genuine teacher-only frame
    p.add("teacher", key(3), "t3", 0.0, ("T", 3))
    p.add("teacher", key(4), "t4", 0.0, ("T", 4))
    assert p.add("student", key(1), "s1", 0.0, ("S", 1)).teacher == "t1"
    assert p.add("student", key(3), "s3", 0.0, ("S", 2)).teacher == "t3"  # student passed 2: teacher-only now
    assert counts(p, "teacher") == {"received": 4, "paired": 2, "unpaired": 1}
    # the student's message of frame 4 is lost in transport (sequence 3 never comes), frame 5 arrives
    p.add("teacher", key(5), "t5", 0.0, ("T", 5))
    assert p.add("student", key(5), "s5", 0.0, ("S", 4)).student == "s5"
    assert counts(p, "teacher") == {"received": 5, "paired": 3, "unpaired": 1, "mate_lost": 1}
    assert counts(p, "student") == {"received": 3, "paired": 3, "lost_in_transport": 1}
    assert p.pending("student") == p.pending("teacher") == 0


def test_timeout_then_a_late_mate_is_not_one_sided():
    p = FramePairer(capacity=10, timeout_s=1.0)
    p.add("teacher", key(1), "t1", now=0.0)
    assert p.expire(now=0.5) == 0 and p.expire(now=1.5) == 1
    assert counts(p, "teacher") == {"received": 1, "unpaired": 1}  # nothing came within the timeout
    assert p.add("student", key(1), "s1", now=2.0) is None  # ... then the student's came after all
    assert counts(p, "teacher") == {"received": 1, "dropped_timed_out": 1}
    assert counts(p, "student") == {"received": 1, "dropped_late": 1}


def test_unseen_before_first_duplicates_and_a_bag_loop():
    p = FramePairer(capacity=10, timeout_s=5.0)
    p.add("teacher", key(10), "a", 0.0, ("T", 8))  # 7 published before this node saw the teacher
    p.add("teacher", key(10), "b", 0.0, ("T", 9))  # the same frame again: replaces the first
    assert p.add("student", key(10), "s", 0.0, ("S", 1)).teacher == "b"
    # the bag starts over: stamps go back on both sides; the old epoch's watermark decides nothing
    p.add("teacher", key(1), "t1", 0.0, ("T", 10))
    assert p.pending("teacher") == 1  # the student's latest stamp (10) is of the previous loop
    assert p.add("student", key(1), "s1", 0.0, ("S", 2)) is not None
    assert counts(p, "teacher") == {"received": 3, "paired": 2, "dropped_duplicate": 1, "unseen_before_first": 7}
    p.add("student", key(2), "s2", 0.0, ("S", 3))
    p.close()
    assert counts(p, "student") == {"received": 3, "paired": 2, "dropped_pending_at_close": 1}
    for side in ("student", "teacher"):
        led = p.ledger[side]
        assert led.received == led.accounted
