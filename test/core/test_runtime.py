import threading

import pytest

from kd_traffic_light.core.runtime import LatestSlot, NodeStats


class FakeClock:
    """A settable clock for the slot's arrival times (waits themselves run on real time)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.read = threading.Event()  # set on every reading: tells a test the slot looked at the time

    def __call__(self) -> float:
        self.read.set()
        return self.now


def _periodic_slot(period: float, fresh_wait: float = 0.75, arrivals: int = 3) -> tuple[LatestSlot, FakeClock]:
    """A slot whose key 'cam' received `arrivals` frames `period` seconds apart (frames 0..n-1, the last pending)."""
    clock = FakeClock()
    slot = LatestSlot(fresh_wait, clock=clock)
    for i in range(arrivals):
        clock.now = i * period
        slot.put("cam", i)
    return slot, clock


def test_slot_keeps_only_the_latest_item_per_key_and_reports_drops():
    slot = LatestSlot()
    assert slot.put("cam0", 1) is False
    assert slot.put("cam0", 2) is True  # replaced: 1 was dropped
    assert slot.put("cam1", 10) is False
    assert slot.get(timeout=0.1) == ("cam0", 2)
    assert slot.get(timeout=0.1) == ("cam1", 10)
    assert slot.get(timeout=0.05) is None


def test_slot_close_wakes_a_waiting_consumer():
    slot = LatestSlot()
    got = []
    t = threading.Thread(target=lambda: got.append(slot.get(timeout=5)))
    t.start()
    slot.close()
    t.join(timeout=2)
    assert not t.is_alive() and got == [None]


def test_slot_clear_counts_pending():
    slot = LatestSlot()
    slot.put(0, "a")
    slot.put(1, "b")
    assert slot.clear() == 2
    assert slot.get(timeout=0.01) is None


def test_slot_period_is_the_median_arrival_interval():
    slot, clock = _periodic_slot(0.1, arrivals=2)
    assert slot.period("cam") is None  # one interval is not an estimate
    clock.now = 0.5  # one late frame does not move the median
    slot.put("cam", 2)
    clock.now = 0.6
    slot.put("cam", 3)
    assert slot.period("cam") == pytest.approx(0.1)


def test_fresh_wait_supersedes_a_stale_frame_with_the_next_one():
    slot, clock = _periodic_slot(10.0)  # frame 2 arrived at 20 s; the next is due at 30 s
    clock.now = 29.0  # it has waited 0.9 of the interval > 0.75: wait for frame 3
    got = []
    clock.read.clear()
    consumer = threading.Thread(target=lambda: got.append(slot.get(timeout=1.0)))
    consumer.start()
    # the consumer took frame 2 and read the clock (under the slot's lock) to decide to wait: from here on, put()
    # can only run once it waits, however slowly the thread started
    assert clock.read.wait(timeout=10)
    assert got == []  # still waiting for the fresher frame
    clock.now = 30.0
    slot.put("cam", 3)
    consumer.join(timeout=5)
    assert got == [("cam", 3)] and slot.superseded == 1
    assert slot.get(timeout=0.01) is None  # frame 3 was taken, not left pending


def waits(slot: LatestSlot) -> list:
    """Record the timeout of every wait on the slot's condition: the item wait of ``get``, then any fresh wait."""
    calls, real = [], slot._cond.wait_for

    def wait_for(predicate, timeout=None):
        calls.append(timeout)
        return real(predicate, timeout)

    slot._cond.wait_for = wait_for
    return calls


def test_fresh_wait_takes_a_frame_that_waited_less_than_the_fraction():
    slot, clock = _periodic_slot(10.0)
    clock.now = 27.0  # waited 0.7 of the interval
    calls = waits(slot)
    assert slot.get(timeout=1.0) == ("cam", 2)
    assert calls == [1.0] and slot.superseded == 0  # the item wait only, no fresh wait


def test_fresh_wait_never_waits_for_a_stalled_input_or_while_another_camera_is_pending():
    slot, clock = _periodic_slot(10.0)
    clock.now = 45.0  # past the due time plus slack: the camera stalled, take what there is
    calls = waits(slot)
    assert slot.get(timeout=1.0) == ("cam", 2)
    assert calls == [1.0] and slot.superseded == 0
    slot, clock = _periodic_slot(10.0)
    slot.put("other", "x")
    clock.now = 29.0
    calls = waits(slot)
    assert slot.get(timeout=1.0) == ("cam", 2)  # stale, but another camera's frame is waiting to be served
    assert slot.get(timeout=1.0) == ("other", "x")
    assert calls == [1.0, 1.0] and slot.superseded == 0


def test_fresh_wait_gives_up_at_the_deadline_and_serves_the_frame_it_had():
    slot, clock = _periodic_slot(1.0)  # frame 2 at 2 s; deadline 2 + 1.1 s
    clock.now = 2.9
    calls = waits(slot)
    assert slot.get(timeout=1.0) == ("cam", 2)
    assert calls == [1.0, pytest.approx(0.2)] and slot.superseded == 0  # waited only until the deadline


def test_fresh_wait_zero_never_waits_and_bad_fractions_are_refused():
    slot, clock = _periodic_slot(10.0, fresh_wait=0.0)
    clock.now = 29.0
    calls = waits(slot)
    assert slot.get(timeout=1.0) == ("cam", 2)
    assert calls == [1.0]
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="fresh_wait"):
            LatestSlot(bad)


def test_stats_summary_counts_and_reasons():
    stats = NodeStats()
    for _ in range(3):
        stats.received()
    stats.reject("bad_step")
    stats.reject("bad_step")
    stats.count("stale")
    stats.processed(10.0, 20.0)
    stats.processed(30.0, 40.0)
    s = stats.summary()
    assert s["received"] == 3 and s["rejected"] == 2 and s["rejected_bad_step"] == 2 and s["stale"] == 1
    assert s["processed"] == 2 and s["processing_ms_mean"] == 20.0 and s["stamp_age_ms_max"] == 40.0
