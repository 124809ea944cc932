"""Per-light tracks across frames: predicted centres, gated by distance relative to box size, solved optimally.

Traffic lights are 5-15 px tall at range and slide across the image as the vehicle turns or approaches, so box
IoU between two frames is often zero for the same light (yolo_ros' ByteTrack gates on IoU alone). Here a
detection may continue a track when its centre is within ``track_gate`` box heights of the track's predicted centre
(constant velocity in pixels per second, smoothed) and its height within a factor ``track_max_scale_change`` of the
track's; the assignment minimising the summed normalised distance is solved by scipy's
``linear_sum_assignment``. Times are the frames' stamps in seconds, so birth and death mean the same at 10 Hz
and at 30 Hz:

- a track is *tentative* until it has been matched for ``track_birth_s`` (and in at least two frames when
  ``track_birth_s`` > 0); it carries an id from the start, but only confirmed tracks are published with it and feed
  the signal;
- a track not matched for more than ``track_death_s`` is ended; until then it coasts on its prediction, so a light
  hidden for a few frames by a truck keeps its id.

The tracker keeps no image and knows nothing of ROS; :class:`kd_traffic_light.core.signal.SignalRevision`
drives it frame by frame; its settings are :class:`~kd_traffic_light.core.config.TrackingConfig` (docs/tracking.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from kd_traffic_light.core.config import TrackingConfig
from kd_traffic_light.core.types import Detection

#: Cost of a pair outside the gate: never chosen over a gated pair (the solver needs finite costs).
_FORBIDDEN = 1e6
#: Weight of the newest velocity measurement (exponential smoothing of the centre's velocity).
_VELOCITY_SMOOTHING = 0.5


@dataclass
class Track:
    """One light followed over frames (box in image pixels, velocity of its centre in pixels per second)."""

    id: int
    box: tuple[float, float, float, float]
    first_t: float
    last_t: float
    velocity: tuple[float, float] = (0.0, 0.0)
    group: str | None = None  # what the detection that started it was (its relevance): only the same continues it
    confirmed: bool = False
    detection: Detection | None = None  # this frame's detection; None while the track coasts

    @property
    def center(self) -> tuple[float, float]:
        """Centre of the last matched box."""
        x1, y1, x2, y2 = self.box
        return (x1 + x2) / 2.0, (y1 + y2) / 2.0

    @property
    def height(self) -> float:
        """Height of the last matched box (at least one pixel)."""
        return max(self.box[3] - self.box[1], 1.0)

    def predicted_center(self, t: float) -> tuple[float, float]:
        """Centre at time ``t`` under constant velocity from the last match."""
        cx, cy = self.center
        dt = t - self.last_t
        return cx + self.velocity[0] * dt, cy + self.velocity[1] * dt


def cost_matrix(tracks: Sequence[Track], dets: Sequence[Detection], t: float, cfg: TrackingConfig,
                groups: Sequence[str | None] | None = None) -> np.ndarray:
    """Normalised centre distance of every (track, detection) pair at time ``t``; :data:`_FORBIDDEN` outside the gate.

    The distance is divided by the larger of the two box heights, so the gate scales with the light; a pair
    whose heights differ by more than ``track_max_scale_change``, or whose groups differ (``groups``: one per
    detection), is outside the gate whatever its distance.
    """
    cost = np.full((len(tracks), len(dets)), _FORBIDDEN, dtype=np.float64)
    if not len(tracks) or not len(dets):
        return cost
    pred = np.array([tr.predicted_center(t) for tr in tracks], dtype=np.float64)
    th = np.array([tr.height for tr in tracks], dtype=np.float64)
    dc = np.array([d.center for d in dets], dtype=np.float64)
    dh = np.array([max(d.height, 1.0) for d in dets], dtype=np.float64)
    dist = np.linalg.norm(pred[:, None, :] - dc[None, :, :], axis=2) / np.maximum(th[:, None], dh[None, :])
    ratio = np.maximum(th[:, None] / dh[None, :], dh[None, :] / th[:, None])
    ok = (dist <= cfg.track_gate) & (ratio <= cfg.track_max_scale_change)
    if groups is not None:
        ok &= np.array([[tr.group == g for g in groups] for tr in tracks], dtype=bool).reshape(ok.shape)
    cost[ok] = dist[ok]
    return cost


class LightTracker:
    """Frame-to-frame tracks of one camera's lights (:meth:`update` once per frame, in stamp order)."""

    def __init__(self, cfg: TrackingConfig | None = None) -> None:
        self.cfg = cfg or TrackingConfig()
        self.tracks: list[Track] = []
        self._next_id = 1
        self.last_t: float | None = None

    def reset(self) -> None:
        """Forget every track (ids keep counting up, so an id is never reused)."""
        self.tracks.clear()
        self.last_t = None

    def update(self, dets: Sequence[Detection], t: float, groups: Sequence[str | None] | None = None
               ) -> list[Track]:
        """Match this frame's detections at time ``t`` (seconds) and return the live tracks.

        ``groups`` (one per detection, e.g. its relevance) keeps lights apart that sit close in the image: a
        detection continues only a track of its own group. A frame older than the previous one (a bag played
        again, a clock jump back) starts over: tracks are dropped rather than predicted backwards. Each returned
        track's ``detection`` is its detection in this frame, or None while it coasts.
        """
        if self.last_t is not None and t < self.last_t:
            self.reset()
        self.last_t = t
        p = self.cfg
        cost = cost_matrix(self.tracks, dets, t, p, groups)
        rows, cols = linear_sum_assignment(cost) if cost.size else ((), ())
        matched_dets: set[int] = set()
        for tr in self.tracks:
            tr.detection = None
        for r, c in zip(rows, cols, strict=True):
            if cost[r, c] >= _FORBIDDEN:
                continue
            self._match(self.tracks[r], dets[c], t)
            matched_dets.add(int(c))
        self.tracks = [tr for tr in self.tracks if t - tr.last_t <= p.track_death_s]
        for i, det in enumerate(dets):
            if i not in matched_dets:
                self.tracks.append(self._birth(det, t, None if groups is None else groups[i]))
        return list(self.tracks)

    def _birth(self, det: Detection, t: float, group: str | None) -> Track:
        tr = Track(id=self._next_id, box=det.xyxy, first_t=t, last_t=t, group=group, detection=det)
        self._next_id += 1
        tr.confirmed = self.cfg.track_birth_s <= 0.0
        return tr

    def _match(self, tr: Track, det: Detection, t: float) -> None:
        dt = t - tr.last_t
        if dt > 0:
            (ox, oy), (nx, ny) = tr.center, det.center
            a = _VELOCITY_SMOOTHING
            tr.velocity = ((1 - a) * tr.velocity[0] + a * (nx - ox) / dt, (1 - a) * tr.velocity[1] + a * (ny - oy) / dt)
        tr.box, tr.last_t, tr.detection = det.xyxy, t, det
        if not tr.confirmed and t - tr.first_t >= self.cfg.track_birth_s - 1e-9:
            tr.confirmed = True

