"""From one camera's detections to per-light tracks with revised states and the one signal that governs the lane.

:class:`SignalRevision` runs, per frame: the tracker (:mod:`kd_traffic_light.core.tracking`), one state filter
per track (:mod:`kd_traffic_light.core.state_filter`), and :func:`fuse`, a confidence-weighted vote of the
confirmed tracks the model calls ``relevant``. Nothing here knows ROS: the node turns a :class:`Signal` into
``autoware_perception_msgs/TrafficLightGroupArray`` (kd_traffic_light/conversions.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kd_traffic_light.core.classes import split_label
from kd_traffic_light.core.config import TrackingConfig
from kd_traffic_light.core.state_filter import StateFilter
from kd_traffic_light.core.tracking import LightTracker, Track
from kd_traffic_light.core.types import Detection

#: Weight of the newest score in a track's confidence (exponential smoothing; a coasting frame adds a 0).
_CONFIDENCE_SMOOTHING = 0.3


@dataclass(frozen=True)
class LightReading:
    """One track in one frame: its detection (None while it coasts), what it is and its revised state.

    Attributes:
        track_id: The track's id (never reused within a node's life).
        confirmed: Whether the track has lived ``track_birth_s`` (only confirmed tracks vote and carry an id).
        detection: This frame's detection, or None while the track coasts.
        relevant: The model's relevance of the track (None: a model without relevance). A track keeps the relevance
            it was born with: a detection of the other relevance starts its own track.
        observed: The state the model read in this frame (None: not detected or a model without states).
        state: The revised state (core/state_filter.py): a state of core/classes.py or ``unknown``.
        flashing: Whether the revised state is flashing.
        confidence: The track's smoothed score in [0, 1].
    """

    track_id: int
    confirmed: bool
    detection: Detection | None
    relevant: bool | None
    observed: str | None
    state: str
    flashing: bool
    confidence: float


@dataclass(frozen=True)
class Signal:
    """The governing signal of one camera in one frame.

    Attributes:
        state: A state of core/classes.py, or ``unknown`` (no relevant light, or a tie).
        flashing: Whether that state is flashing.
        confidence: The winning state's share of the vote in [0, 1] (0 when unknown).
        voters: Relevant confirmed tracks that voted.
    """

    state: str
    flashing: bool
    confidence: float
    voters: int


UNKNOWN_SIGNAL = Signal("unknown", False, 0.0, 0)


def fuse(readings: Iterable[LightReading]) -> Signal:
    """Vote the relevant confirmed tracks' revised states, weighted by confidence; a tie or no vote is unknown.

    A track whose revised state is ``unknown`` does not vote (it says nothing); ``off`` votes like a colour.
    A flashing state is its own candidate (flashing yellow is not yellow).
    """
    votes: dict[tuple[str, bool], float] = {}
    voters = 0
    for r in readings:
        if not (r.confirmed and r.relevant) or r.state == "unknown":
            continue
        voters += 1
        key = (r.state, r.flashing)
        votes[key] = votes.get(key, 0.0) + max(r.confidence, 1e-6)
    if not votes:
        return UNKNOWN_SIGNAL
    ranked = sorted(votes.items(), key=lambda kv: kv[1], reverse=True)
    if len(ranked) > 1 and abs(ranked[0][1] - ranked[1][1]) <= 1e-9 * ranked[0][1]:
        return Signal("unknown", False, 0.0, voters)
    (state, flashing), weight = ranked[0]
    return Signal(state, flashing, weight / sum(votes.values()), voters)


def frame_signal(dets: Iterable[Detection]) -> Signal:
    """Return one frame's signal without tracks or revision: the relevant detections' states, score-weighted.

    What a planner would get from the detector alone (the "raw" side of the revision's evaluation).
    """
    readings = []
    for det in dets:
        relevance, state = split_label(det.label)
        if state is not None:
            readings.append(LightReading(0, True, det, relevance == "relevant", state, state, False, det.score))
    return fuse(readings)


class SignalRevision:
    """Tracks, revised states and the fused signal of one camera (:meth:`update` once per frame, in stamp order)."""

    def __init__(self, cfg: TrackingConfig | None = None) -> None:
        self.cfg = cfg or TrackingConfig()
        self.tracker = LightTracker(self.cfg)
        self._filters: dict[int, StateFilter] = {}
        self._confidence: dict[int, float] = {}

    def update(self, dets: Sequence[Detection], t: float) -> tuple[list[LightReading], Signal]:
        """Feed one frame's detections at stamp ``t`` (seconds); return every live track's reading and the signal."""
        restarted = self.tracker.last_t is not None and t < self.tracker.last_t
        tracks = self.tracker.update(dets, t, [split_label(d.label)[0] for d in dets])
        if restarted:
            self._filters.clear()
            self._confidence.clear()
        live = {tr.id for tr in tracks}
        for store in (self._filters, self._confidence):
            for tid in [k for k in store if k not in live]:
                del store[tid]
        readings = [self._read(tr, t) for tr in tracks]
        return readings, fuse(readings)

    def _read(self, tr: Track, t: float) -> LightReading:
        det = tr.detection
        observed = split_label(det.label)[1] if det is not None else None
        score = det.score if det is not None else 0.0
        a = _CONFIDENCE_SMOOTHING
        self._confidence[tr.id] = score if tr.id not in self._confidence else (
            (1 - a) * self._confidence[tr.id] + a * score)
        filt = self._filters.setdefault(tr.id, StateFilter(self.cfg))
        state = filt.update(observed, t)
        return LightReading(tr.id, tr.confirmed, det, None if tr.group is None else tr.group == "relevant", observed,
                            state, filt.flashing, self._confidence[tr.id])
