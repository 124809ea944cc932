"""The revised state of one tracked light: a small state machine over the detector's per-frame states.

A detector reads a light's state frame by frame, and one wrong frame is a phantom stop or a run red light. The
filter turns that stream into the state a planner can act on, with these rules (``docs/tracking.md`` draws them
as a state machine; parameters are :class:`~kd_traffic_light.core.config.TrackingConfig`'s):

1. **Stop states fast.** ``red``, ``yellow`` and ``red_yellow`` are taken after ``stop_frames`` (2) frames in a
   row that show them: a true change is published at its second frame, and one frame misread as red is not.
2. **Green slowly.** ``green`` is taken only after ``green_frames`` consecutive green frames. The one
   exception: a light whose last revised colour was green and that was lost for less than ``hold_s`` returns
   to green at once (nothing else could have happened in between that is not itself a colour we take fast).
3. **Plausible order.** German signals run red -> red_yellow -> green -> yellow -> red. ``yellow`` read while
   the revised state is ``red`` is implausible (the light would have shown red_yellow) and keeps ``red``.
4. **Hold, never green.** When the light is read ``off`` or not detected, a revised ``red``, ``yellow`` or
   ``red_yellow`` is held for at most ``hold_s`` seconds after the last frame that showed it; then the state is
   ``off`` if the light is being read off, else ``unknown``. A revised ``green`` is **not** held: it becomes
   ``unknown`` at once (as Autoware: a car that loses its green must not keep driving on a guess). The one knob:
   ``green_hold_s`` (default 0, never) lets a green ride over frames in which the light was *not detected* for
   that long, never over a frame that read it off (docs/tracking.md measures what it buys).
   A revised ``off`` is held like a stop state through frames in which the light is not detected.
5. **Flashing.** When, within the last ``flash_window_s`` seconds, one colour (yellow or green) and frames read
   ``off`` alternate at least ``flash_toggles`` times, the state is that colour with ``flashing`` set (German
   night-mode yellow, a blinking green). Frames in which the light was not detected are left out: a light the
   detector loses now and then is not flashing, and a missed frame follows rule 4 (a flashing green is not
   held either). It ends when the window no longer shows the pattern.

The filter is fed the states of a track's frames in stamp order; a frame in which the track had no detection
is fed ``None``. It keeps no more than ``flash_window_s`` of history.
"""

from __future__ import annotations

from collections import deque

from kd_traffic_light.core.classes import STATES
from kd_traffic_light.core.config import TrackingConfig

#: The revised states: the model's states and ``unknown`` (no reading a planner may act on).
REVISED_STATES: tuple[str, ...] = (*STATES, "unknown")
#: States taken at their first frame (rule 1).
STOP_STATES = frozenset({"red", "yellow", "red_yellow"})
#: What a light is read as while dark in a flashing cycle (a frame in which it was not detected says nothing).
_DARK = frozenset({"off"})
#: Least share of dark frames in the window for flashing: a steady light with a few missed frames is not flashing.
_FLASH_DARK_SHARE = 0.25


class StateFilter:
    """Revised state of one light (:meth:`update` once per frame of its track, in stamp order)."""

    def __init__(self, cfg: TrackingConfig | None = None) -> None:
        self.cfg = cfg or TrackingConfig()
        self.state = "unknown"
        self.flashing = False
        self._last_lit_t: float | None = None  # last frame that showed the revised colour (for the hold)
        self._last_colour = "unknown"  # the last revised colour a light showed (not off / unknown)
        self._last_off_t: float | None = None  # last frame read off
        self._run_state: str | None = None  # the observed state of the current run of equal frames (missed
        # frames left out)
        self._run = 0
        self._last_seen_t = float("-inf")  # last frame in which the light was detected
        self._window: deque[tuple[float, str | None]] = deque()

    def update(self, observed: str | None, t: float) -> str:
        """Feed one frame's observed state (``None``: not detected) at time ``t``; return the revised state."""
        if observed is not None and observed not in STATES:
            raise ValueError(f"observed state {observed!r}: expected one of {STATES} or None")
        p = self.cfg
        if observed is None:  # a frame that did not see the light neither extends nor breaks a run ...
            pass
        elif observed == self._run_state and t - self._last_seen_t <= p.hold_s:  # ... unless it was lost too long
            self._run += 1
        else:
            self._run_state, self._run = observed, 1
        if observed is not None:
            self._last_seen_t = t
        if observed is not None:  # flashing is read from frames that saw the light, lit or dark
            self._window.append((t, observed))
        while self._window and t - self._window[0][0] > p.flash_window_s:
            self._window.popleft()
        flash = self._flash_colour() if observed is not None else None
        if flash is not None:
            self.flashing, self.state, self._last_colour, self._last_lit_t = True, flash, flash, t
            return self.state
        self.flashing = False
        self.state = self._next(observed, t)
        if self.state not in ("off", "unknown"):
            self._last_colour = self.state
        return self.state

    def _next(self, observed: str | None, t: float) -> str:
        p, cur = self.cfg, self.state
        if observed in STOP_STATES:
            if cur == "red" and observed == "yellow":  # rule 3: yellow after red is implausible
                self._last_lit_t = t
                return "red"
            if self._run < p.stop_frames and not self._resumes(observed, t):
                return cur
            self._last_lit_t = t
            return observed
        if observed == "green":
            if cur == "green" or self._run >= p.green_frames or self._resumes("green", t):
                self._last_lit_t = t
                return "green"
            return cur
        # dark or missed (rule 4)
        since = None if self._last_lit_t is None else t - self._last_lit_t
        if cur in STOP_STATES and since is not None and since <= p.hold_s:
            return cur
        if cur == "green" and observed is None and since is not None and since <= p.green_hold_s:
            return cur  # only a missed frame, only if asked for (green_hold_s > 0): never a light read off
        if observed == "off":
            self._last_off_t = t
        elif cur == "off" and self._last_off_t is not None and t - self._last_off_t <= p.hold_s:
            return cur  # a dark light lost for a moment is still dark
        if observed == "off" and (cur == "off" or self._run >= p.off_frames):
            return "off"
        return "unknown"

    def _resumes(self, colour: str, t: float) -> bool:
        """Whether ``colour`` is the colour the light showed before it was lost less than ``hold_s`` ago."""
        return (self.state == "unknown" and self._last_colour == colour and self._last_lit_t is not None
                and t - self._last_lit_t <= self.cfg.hold_s)

    def _flash_colour(self) -> str | None:
        """Return the colour that alternates with dark frames in the window often enough, else None (rule 5)."""
        lit = {s for _, s in self._window if s not in _DARK}
        if len(lit) != 1:
            return None
        colour = next(iter(lit))
        if colour not in ("yellow", "green"):
            return None
        seq = [s not in _DARK for _, s in self._window]
        toggles = sum(a != b for a, b in zip(seq, seq[1:], strict=False))
        dark = 1.0 - sum(seq) / len(seq)
        return colour if toggles >= self.cfg.flash_toggles and dark >= _FLASH_DARK_SHARE else None
