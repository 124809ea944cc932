"""The governing signal: the vote of relevant confirmed tracks (ties, weights, who votes) and the pipeline per frame."""

from __future__ import annotations

from kd_traffic_light.core.config import TrackingConfig
from kd_traffic_light.core.signal import LightReading, SignalRevision, fuse
from test.core.test_tracking import light


def reading(state: str, confidence: float = 0.8, relevant: bool | None = True, confirmed: bool = True,
            flashing: bool = False, tid: int = 1) -> LightReading:
    return LightReading(tid, confirmed, None, relevant, None, state, flashing, confidence)


def test_the_vote_is_weighted_by_confidence_and_ignores_who_has_no_say():
    sig = fuse([reading("red", 0.9), reading("green", 0.5), reading("green", 0.3)])
    assert sig.state == "red" and abs(sig.confidence - 0.9 / 1.7) < 1e-9 and sig.voters == 3
    # not relevant, tentative and unknown tracks do not vote
    sig = fuse([reading("green", 0.9, relevant=False), reading("green", 0.9, confirmed=False),
                reading("unknown", 0.9), reading("red", 0.2)])
    assert (sig.state, sig.voters) == ("red", 1)


def test_a_tie_or_no_vote_is_unknown():
    assert fuse([reading("red", 0.6), reading("green", 0.6)]).state == "unknown"
    assert fuse([]).state == "unknown" and fuse([]).confidence == 0.0
    # flashing yellow and steady yellow are different answers
    assert fuse([reading("yellow", 0.6, flashing=True), reading("yellow", 0.6)]).state == "unknown"


def test_one_light_through_a_phase_change_and_a_lost_frame():
    rev = SignalRevision(TrackingConfig(track_birth_s=0.1, green_frames=3))
    seq = ["relevant_red"] * 4 + ["relevant_red_yellow"] * 2 + ["relevant_green"] * 5 + [None] + ["relevant_green"]
    signals, ids = [], set()
    for i, label in enumerate(seq):
        dets = [light(100 + i, 50, label=label)] if label else []
        readings, sig = rev.update(dets, i / 15)
        ids |= {r.track_id for r in readings}
        signals.append(sig.state)
    assert len(ids) == 1
    # tentative until 0.1 s (frame 2 at 15 Hz), red (two red frames), red_yellow at its second frame,
    # green after 3 frames, lost for one frame (green is not held), back at once
    assert signals == ["unknown", "unknown", "red", "red", "red", "red_yellow", "red_yellow", "red_yellow",
                       "green", "green", "green", "unknown", "green"]


def test_a_track_keeps_its_relevance_and_a_model_without_states_gives_unknown():
    # a not-relevant green light right behind the relevant head, after the head is lost: it starts its own
    # track instead of continuing the head's (which would publish its green for the head)
    rev = SignalRevision(TrackingConfig(track_birth_s=0.0))
    for i in range(3):
        rev.update([light(100, 50, label="relevant_red")], i / 10)
    readings, sig = rev.update([light(104, 56, label="not_relevant_green")], 0.3)
    by_id = {r.track_id: r for r in readings}
    assert len(by_id) == 2 and sorted((r.relevant, r.observed) for r in readings) == [(False, "green"), (True, None)]
    assert sig.state == "red"  # the head's red is held while it coasts; the other light does not vote
    rev = SignalRevision(TrackingConfig(track_birth_s=0.0))
    for i in range(5):
        readings, sig = rev.update([light(100, 50, label="relevant")], i / 10)
    assert readings[0].relevant is True and readings[0].observed is None and sig.state == "unknown"


def test_the_raw_frame_signal_is_the_score_weighted_vote_of_relevant_detections():
    from kd_traffic_light.core.signal import frame_signal

    dets = [light(10, 10, label="relevant_green", score=0.6), light(50, 10, label="relevant_red", score=0.7),
            light(90, 10, label="not_relevant_green", score=0.99), light(120, 10, label="relevant", score=0.9)]
    sig = frame_signal(dets)
    assert (sig.state, sig.voters) == ("red", 2) and abs(sig.confidence - 0.7 / 1.3) < 1e-9
    assert frame_signal([]).state == "unknown"
