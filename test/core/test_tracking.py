"""Track ids on constructed sequences: fast motion, an occlusion, a miss, the gate, birth and death in seconds."""

from __future__ import annotations

from kd_traffic_light.core.config import TrackingConfig
from kd_traffic_light.core.tracking import LightTracker
from kd_traffic_light.core.types import Detection


def light(cx: float, cy: float, h: float = 12.0, label: str = "relevant_red", score: float = 0.9) -> Detection:
    w = h / 2.5
    return Detection(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score, 0, label)


def ids_over(frames: list[list[Detection]], cfg: TrackingConfig | None = None, dt: float = 0.1
             ) -> list[dict[int, int]]:
    """Per frame ``{detection index: track id}`` of the matched tracks."""
    tr = LightTracker(cfg or TrackingConfig(track_birth_s=0.0))
    out = []
    for i, dets in enumerate(frames):
        tracks = tr.update(dets, i * dt)
        out.append({next(j for j, d in enumerate(dets) if d is t.detection): t.id for t in tracks if t.detection})
    return out


def test_fast_small_lights_keep_their_ids_where_iou_is_zero():
    # two 12 px lights moving 9 px a frame sideways (no overlap between frames), 40 px apart
    frames = [[light(100 + 9 * i, 50), light(140 + 9 * i, 50)] for i in range(10)]
    ids = ids_over(frames)
    assert all(f == ids[0] for f in ids) and len(set(ids[0].values())) == 2


def test_an_occluded_light_keeps_its_id_and_a_new_one_gets_a_new_id():
    frames = [[light(100 + 5 * i, 50)] for i in range(5)]
    frames += [[] for _ in range(4)]  # hidden for 0.4 s behind a truck (death_s 0.7)
    frames += [[light(100 + 5 * i, 50)] for i in range(9, 12)]
    ids = ids_over(frames)
    assert {ids[0][0]} == {f[0] for f in ids if f}
    # after a longer gap the light is a new track
    frames = [[light(100, 50)]] * 2 + [[] for _ in range(10)] + [[light(100, 50)]]
    ids = ids_over(frames)
    assert ids[-1][0] != ids[0][0]


def test_a_single_miss_does_not_swap_two_neighbours():
    frames = [[light(100 + 4 * i, 50), light(125 + 4 * i, 52)] for i in range(4)]
    frames.append([light(125 + 16, 52)])  # the left light is missed for one frame
    frames += [[light(100 + 4 * i, 50), light(125 + 4 * i, 52)] for i in range(5, 8)]
    ids = ids_over(frames)
    left, right = ids[0][0], ids[0][1]
    assert ids[4] == {0: right}
    assert all(f == {0: left, 1: right} for f in ids[5:])


def test_a_detection_far_outside_the_gate_or_of_another_size_starts_a_new_track():
    ids = ids_over([[light(100, 50)], [light(160, 50)]])  # 60 px = 5 box heights away
    assert ids[0][0] != ids[1][0]
    ids = ids_over([[light(100, 50, h=10)], [light(101, 50, h=30)]])  # three times the height
    assert ids[0][0] != ids[1][0]


def test_birth_and_death_are_in_seconds_whatever_the_frame_rate():
    for hz in (10, 30):
        tr = LightTracker(TrackingConfig(track_birth_s=0.2, track_death_s=0.5))
        confirmed_at = dead_at = None
        for i in range(int(2 * hz)):
            t = i / hz
            dets = [light(100, 50)] if t < 1.0 else []
            tracks = tr.update(dets, t)
            if confirmed_at is None and tracks and tracks[0].confirmed:
                confirmed_at = t
            if t >= 1.0 and not tracks and dead_at is None:
                dead_at = t
        assert abs(confirmed_at - 0.2) <= 1 / hz + 1e-9
        assert abs(dead_at - (1.0 - 1 / hz + 0.5)) <= 1 / hz + 1e-9


def test_a_stamp_going_back_starts_over_with_new_ids():
    tr = LightTracker(TrackingConfig(track_birth_s=0.0))
    first = tr.update([light(100, 50)], 5.0)[0].id
    again = tr.update([light(100, 50)], 1.0)
    assert len(again) == 1 and again[0].id != first


def test_a_detection_of_another_group_never_continues_a_track():
    tr = LightTracker(TrackingConfig(track_birth_s=0.0))
    head = tr.update([light(100, 50)], 0.0, ["relevant"])[0].id
    tr.update([], 0.1, [])
    tracks = tr.update([light(103, 52)], 0.2, ["not_relevant"])  # next to the coasting head, other relevance
    assert {t.id: t.group for t in tracks} == {head: "relevant", head + 1: "not_relevant"}
    assert next(t for t in tracks if t.id == head).detection is None
