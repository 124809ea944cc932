import threading

from kd_traffic_light.core.runtime import LatestSlot, NodeStats


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
