"""Scene sampling: the physical lights of a sequence, buildings, distractors, daylight; pure functions of an RNG.

Every draw from the generator happens in a fixed order, so a scene is a pure function of the seed. Keep
that order when editing: moving one draw changes every image and label generated after it.

``lamps="camera"`` (:class:`~training.data.synth.model.SynthConfig`) makes every draw of the layout generator
exactly as ``flat`` does, so a seed gives the same layout in both modes; the states it draws are discarded and
redrawn, with everything else the camera look adds, from a second generator (``lamp_rng``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from training.data.synth.camera import FX, project
from training.data.synth.model import SynthConfig

HOUSING_W = 0.32  # m, width of a signal head


@dataclass
class LightSpec:
    """A physical light of a sequence (world position of the housing's bottom centre, appearance)."""

    x: float
    y: float
    z: float
    scale: float  # housing size multiplier (lets a config choose pixel sizes independent of distance)
    orientation: str
    aspects: int
    direction: str
    relevant: bool
    pictogram: str
    states: list[str]  # per frame
    occluder: tuple[float, float, float, float] | None  # fractions (x0, y0, x1, y1) of the box covered
    reflected: bool = False
    track: int = 0
    z_now: float = 1.0  # distance at the frame being drawn
    look: dict[str, Any] | None = None  # lamps="camera" only: sun, backlit, level, pulse (see _camera_look)


    def box(self, z: float) -> tuple[float, float, float, float]:
        """Box (x, y, w, h) in pixels at camera distance z."""
        long_side = self.aspects * 0.3 + 0.1
        w_m, h_m = HOUSING_W * self.scale, long_side * self.scale
        if self.orientation == "horizontal":
            w_m, h_m = h_m, w_m
        if self.direction in ("left", "right"):
            w_m *= 0.45  # seen edge-on
        u, v_bottom = project(self.x, self.y, z)
        w_px, h_px = FX * w_m / z, FX * h_m / z
        return u - w_px / 2, v_bottom - h_px, w_px, h_px


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _phase(rng: np.random.Generator, n_frames: int) -> list[str]:
    """Ego signal state per frame: one state, or a realistic change part-way through the approach."""
    start = str(rng.choice(["red", "yellow", "red_yellow", "green", "off", "red", "green"]))
    nxt = {"red": "red_yellow", "red_yellow": "green", "green": "yellow", "yellow": "red", "off": "off"}[start]
    cut = int(rng.integers(1, max(2, n_frames))) if rng.random() < 0.4 and n_frames > 1 else n_frames
    return [start if i < cut else nxt for i in range(n_frames)]


#: Share of each state among DTLD's front-facing lights (the published statistics), renormalised over these five.
DTLD_STATE_SHARES = {"green": 0.56, "red": 0.30, "off": 0.05, "yellow": 0.04, "red_yellow": 0.02}
#: German signal order (RiLSA): red -> red+yellow -> green -> yellow -> red.
GERMAN_NEXT = {"red": "red_yellow", "red_yellow": "green", "green": "yellow", "yellow": "red"}


def _state_duration(rng: np.random.Generator, state: str, phase_s: tuple[float, float] = (10.0, 40.0)) -> float:
    """Seconds a signal shows ``state``: red+yellow 1 s, yellow 3-4 s (50-60 km/h), red and green ``phase_s``."""
    if state == "red_yellow":
        return 1.0
    if state == "yellow":
        return float(rng.uniform(3.0, 4.0))
    return float(rng.uniform(*phase_s))


def state_shares(cfg: SynthConfig) -> dict[str, float]:
    """Return the start-state shares of ``cfg.state_shares``: DTLD's, or the five states alike."""
    return DTLD_STATE_SHARES if cfg.state_shares == "dtld" else dict.fromkeys(DTLD_STATE_SHARES, 0.2)


def _draw_state(rng: np.random.Generator, shares: dict[str, float]) -> str:
    names = list(shares)
    p = np.array([shares[k] for k in names], np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _camera_phase(rng: np.random.Generator, n_frames: int, frame_interval_s: float,
                  shares: dict[str, float] = DTLD_STATE_SHARES, phase_s: tuple[float, float] = (10.0, 40.0)
                  ) -> list[str]:
    """State per frame (lamps="camera"): the start state drawn with ``shares``, then the German cycle in time.

    The drive starts at a uniform point of the start state's duration, so the first frame has exactly the
    drawn shares; a dark signal stays dark. More than one change fits in a drive (red+yellow lasts 1 s).
    """
    state = _draw_state(rng, shares)
    if state not in GERMAN_NEXT:
        return [state] * n_frames
    change = float(rng.uniform()) * _state_duration(rng, state, phase_s)  # time of the next change
    states = []
    for i in range(n_frames):
        while i * frame_interval_s >= change:
            state = GERMAN_NEXT[state]
            change += _state_duration(rng, state, phase_s)
        states.append(state)
    return states


def _scale_for(rng: np.random.Generator, cfg: SynthConfig, z: float) -> float:
    lo, hi = cfg.tiny_px if rng.random() < cfg.tiny_fraction else cfg.size_px
    return _log_uniform(rng, lo, hi) * z / (FX * HOUSING_W)


def _ego_heads(rng: np.random.Generator, cfg: SynthConfig, z_int: float, phase: list[str]) -> list[LightSpec]:
    """Sample the relevant heads of the ego lane, all showing ``phase``."""
    lights: list[LightSpec] = []
    mounts = [(3.6, 2.6), (0.2, 5.2), (2.6, 3.0)]  # right pole, mast arm over the ego lane, far-side repeater
    for k in range(int(rng.integers(cfg.ego_heads[0], cfg.ego_heads[1] + 1))):
        mx, my = mounts[k % 3]
        z = z_int + (18.0 if k == 2 else 0.0) + rng.uniform(-1, 1)
        aspects = int(rng.choice([3, 3, 3, 4])) if "red_yellow" in phase else int(rng.choice([2, 3, 3, 4]))
        if "yellow" in phase and aspects == 2:
            aspects = 3
        orient = "horizontal" if rng.random() < 0.15 else "vertical"
        lights.append(LightSpec(mx + rng.uniform(-0.3, 0.3), my, z, _scale_for(rng, cfg, z), orient, aspects,
                                "front", True, "circle", phase, None))
    return lights


def _extra_light(rng: np.random.Generator, cfg: SynthConfig, z_int: float, n_frames: int,
                 lamp_rng: np.random.Generator | None = None) -> LightSpec:
    """Sample one light that does not govern the ego lane (other lane, pedestrian, tram, side street, back).

    With ``lamp_rng`` (lamps="camera") the states drawn from ``rng`` are replaced by ones from ``lamp_rng``.
    """
    kind = str(rng.choice(["other_lane", "pedestrian", "tram", "side", "back"]))
    z = z_int + rng.uniform(-4, 20)
    pict, direction, aspects, orient = "circle", "front", 3, "vertical"
    if kind == "other_lane":  # left-turn lane signal with its own phase
        x, y, pict = rng.uniform(-6.5, -3.0), rng.choice([2.8, 5.2]), "arrow_left"
        states = [str(rng.choice(["red", "green", "yellow", "red_yellow", "off"]))] * n_frames
    elif kind == "pedestrian":
        x, y, pict, aspects = rng.choice([-1, 1]) * rng.uniform(5.5, 8.0), 2.2, "pedestrian", 2
        states = [str(rng.choice(["red", "green"]))] * n_frames
    elif kind == "tram":
        x, y, pict, aspects = rng.uniform(-4.5, -2.5), 3.2, "tram", int(rng.integers(1, 4))
        states = [str(rng.choice(["red", "green", "off"]))] * n_frames
        orient = "horizontal" if rng.random() < 0.5 else "vertical"
    elif kind == "side":  # cross-street signal seen edge-on
        x, y = rng.choice([-1, 1]) * rng.uniform(7.0, 14.0), 2.8
        direction = "left" if x < 0 else "right"
        states = ["unknown"] * n_frames
        pict = "unknown"
    else:  # heads for the oncoming traffic, seen from the back
        x, y, direction = rng.uniform(-7.0, -3.0), rng.choice([2.6, 5.2]), "back"
        states, pict = ["unknown"] * n_frames, "unknown"
        aspects = int(rng.integers(1, 5))
    if rng.random() < 0.15 and direction == "front" and kind != "tram":
        orient = "horizontal"
    if lamp_rng is not None:
        states = _camera_extra_states(lamp_rng, kind, n_frames, cfg, states)
    return LightSpec(float(x), float(y), z, _scale_for(rng, cfg, z), orient, aspects, direction,
                     False, pict, states, None)


def _camera_extra_states(rng: np.random.Generator, kind: str, n_frames: int, cfg: SynthConfig,
                         states: list[str]) -> list[str]:
    """States of a not-relevant light for lamps="camera": ``cfg``'s shares over the lamps the light has."""
    if kind == "other_lane":  # an arrow signal runs its own German cycle
        return _camera_phase(rng, n_frames, cfg.frame_interval_s, state_shares(cfg), cfg.phase_s)
    if kind in ("pedestrian", "tram"):  # red / green / dark only, held through the drive
        shares = {k: state_shares(cfg)[k] for k in ("green", "red", "off")}
        return [_draw_state(rng, shares)] * n_frames
    return states  # side streets and backs: unknown


def _sample_lights(rng: np.random.Generator, cfg: SynthConfig, z_int: float, n_frames: int,
                   lamp_rng: np.random.Generator | None = None) -> list[LightSpec]:
    """Sample the lights of a sequence; with ``lamp_rng`` (lamps="camera") their states come from it."""
    phase = _phase(rng, n_frames)
    if lamp_rng is not None:  # the layout draws above stay; the phase is redrawn from the lamp generator
        phase = _camera_phase(lamp_rng, n_frames, cfg.frame_interval_s, state_shares(cfg), cfg.phase_s)
    lights = _ego_heads(rng, cfg, z_int, phase)
    for _ in range(int(rng.integers(cfg.extra_lights[0], cfg.extra_lights[1] + 1))):
        lights.append(_extra_light(rng, cfg, z_int, n_frames, lamp_rng))
    for spec in lights:
        if rng.random() < cfg.occlusion_p:
            a, b = sorted(rng.uniform(0, 1, 2))
            spec.occluder = (0.0, a, 1.0, max(b, a + 0.3)) if rng.random() < 0.5 else (a * 0.6, 0.0,
                                                                                      a * 0.6 + 0.4, 1.0)
    if rng.random() < cfg.reflection_p and lights:
        src = lights[0]
        z = src.z * rng.uniform(0.55, 0.8)
        lights.append(replace(src, x=-src.x * rng.uniform(0.8, 1.2) - 3.0, y=src.y * 0.8, z=z,
                              scale=src.scale * 0.7, relevant=False, reflected=True, occluder=None))
    for i, spec in enumerate(lights):
        spec.track = i + 1
    return lights


def _sample_buildings(rng: np.random.Generator, dusk: bool) -> list[dict[str, Any]]:
    """Sample blocks of buildings along both sides of the street, each with a grid of (possibly lit) windows."""
    buildings = []
    for side in (-1, 1):
        z = float(rng.uniform(-5, 5))
        while z < 160:
            length = float(rng.uniform(10, 30))
            height = float(rng.uniform(8, 24))
            x = side * float(rng.uniform(9, 13))
            color = tuple(float(c) for c in rng.uniform(250, 1400, 3))
            windows = [(fy, z + 1 + wz, bool(rng.random() < (0.45 if dusk else 0.05)))
                       for fy in np.arange(3.0, height - 1.5, 3.0) for wz in np.arange(0, length - 2.5, 2.5)]
            buildings.append({"x": x, "z0": z, "z1": z + length, "height": height, "color": color,
                              "windows": windows})
            z += length + float(rng.uniform(0, 6))
    return buildings


def _sample_distractors(rng: np.random.Generator, cfg: SynthConfig) -> list[dict[str, Any]]:
    """Sample cars with tail lights and signs on poles: bright things that are not traffic lights."""
    distractors = []
    for _ in range(int(rng.integers(cfg.distractors[0], cfg.distractors[1] + 1))):
        if rng.random() < 0.5:
            distractors.append({"kind": "car", "x": float(rng.choice([0.0, -3.5, 3.5])), "z": float(rng.uniform(8, 50)),
                                "rel_speed": float(rng.uniform(0, 0.8)), "braking": bool(rng.random() < 0.5),
                                "color": tuple(float(c) for c in rng.uniform(150, 1500, 3))})
        else:
            distractors.append({"kind": "sign", "x": float(rng.choice([-1, 1]) * rng.uniform(4.5, 8)),
                                "z": float(rng.uniform(10, 70)), "rel_speed": 1.0,
                                "shape": str(rng.choice(["disc", "square"])),
                                "color": (float(rng.uniform(200, 3000)), 600.0, float(rng.uniform(600, 4000)))})
    return distractors


def _camera_look(rng: np.random.Generator, scene: dict[str, Any], n_frames: int) -> dict[str, Any]:
    """Draw the camera of a sequence and each light's look for lamps="camera" (sets ``LightSpec.look``).

    Returns the sequence's camera: ``exposure`` (x0.5-x2, log-uniform), ``wb`` (BGR gains 0.85-1.15),
    ``t_exp`` (exposure time in s, for motion blur) and ``sun`` (veiling glare of a sun-washed day sequence,
    0 if none). Each light gets ``sun`` (phantom light in its lenses), ``backlit`` (brightness of the sky just
    behind it, 0 if none), ``level`` (lamp brightness) and ``pulse`` ((n_frames, 4) factor per frame and lamp,
    0.1-0.4 on the ~3 % of lamp-frames an LED's PWM pulse is missed, else 1). Every value is drawn on every
    path, so the draw order does not depend on the scene.
    """
    day = not scene["dusk"]
    exposure = _log_uniform(rng, 0.5, 2.0)
    wb = tuple(float(v) for v in rng.uniform(0.85, 1.15, 3))
    t_day, t_dusk = float(rng.uniform(0.002, 0.01)), float(rng.uniform(0.015, 0.04))
    sun_p, sun_amount = float(rng.random()), float(rng.uniform(0.5, 1.0))
    sun_seq = sun_amount if day and sun_p < 0.2 else 0.0
    for spec in scene["lights"]:
        sun_p, sun_amount = float(rng.random()), float(rng.uniform(0.6, 1.0))
        back_p, back_amount = float(rng.random()), float(rng.uniform(0.6, 1.2))
        sun = sun_amount * sun_seq if sun_p < 0.8 else 0.0
        backlit = back_amount if day and back_p < 0.12 else 0.0
        level = float(rng.uniform(0.75, 1.3))
        dim = rng.uniform(0.1, 0.4, (n_frames, 4)).astype(np.float32)
        pulse = np.where(rng.random((n_frames, 4)) < 0.03, dim, np.float32(1.0))
        spec.look = {"sun": sun, "backlit": backlit, "level": level, "pulse": pulse}
    return {"exposure": exposure, "wb": wb, "t_exp": t_day if day else t_dusk, "sun": sun_seq}


def _sample_scene(rng: np.random.Generator, cfg: SynthConfig, n_frames: int,
                  lamp_rng: np.random.Generator | None = None) -> dict[str, Any]:
    """Sample a sequence's scene from ``rng``; lamps="camera" adds ``camera`` and draws from ``lamp_rng``.

    ``lamp_rng`` defaults to a child spawned from ``rng``'s seed sequence (which draws nothing from ``rng``).
    """
    if cfg.lamps == "camera" and lamp_rng is None:
        lamp_rng = rng.spawn(1)[0]
    if cfg.lamps != "camera":
        lamp_rng = None
    dusk = bool(rng.random() < cfg.dusk_fraction)
    gain = float(rng.uniform(0.12, 0.3)) if dusk else float(rng.uniform(0.7, 1.3))
    z_int = float(rng.uniform(30, 60))
    buildings = _sample_buildings(rng, dusk)
    distractors = _sample_distractors(rng, cfg)
    scene = {
        "dusk": dusk, "gain": gain, "z_int": z_int,
        "sky": ((5200, 3800, 2600), (3600, 3400, 3000)) if not dusk else ((6000, 2500, 1800), (3000, 2600, 4200)),
        "road": tuple(float(c) for c in rng.uniform(400, 800, 3)),
        "lane_lines": [-1.75, 1.75, -5.25] + ([5.25] if rng.random() < 0.5 else []),
        "buildings": buildings, "distractors": distractors,
        "window_light": 1.0 if dusk else 0.3,
        "texture": (0.7 + 0.6 * rng.random((16, 32))).astype(np.float32),
        "lights": _sample_lights(rng, cfg, z_int, n_frames, lamp_rng),
        "speed": float(rng.uniform(*cfg.speed_mps)),
        "seen_states": cfg.state_label == "seen",
    }
    if lamp_rng is not None:
        scene["camera"] = _camera_look(lamp_rng, scene, n_frames)
        if cfg.truck_p > 0:  # its own stream: nothing else a seed draws changes
            scene["truck"] = _sample_truck(rng.spawn(1)[0], cfg, n_frames)
    if cfg.max_light_overlap < 1.0:  # after every draw: the lights kept are exactly as they are without it
        scene["lights"] = _kept_apart(scene["lights"], cfg.max_light_overlap,
                                      np.arange(n_frames) * cfg.frame_interval_s * scene["speed"])
    return scene


def _kept_apart(lights: list[LightSpec], max_overlap: float, z_ego: np.ndarray) -> list[LightSpec]:
    """Return the lights in order, less each whose box shares over ``max_overlap`` of either box with a kept one.

    Boxes are compared in every frame (ego travelled ``z_ego``) in which both lights are in front of the camera.
    """
    kept: list[tuple[LightSpec, np.ndarray]] = []
    for spec in lights:
        z = spec.z - z_ego
        boxes = np.array([spec.box(d) if d >= 3.0 else (np.nan,) * 4 for d in z])  # x, y, w, h per frame
        if all(_max_share(boxes, other) <= max_overlap for _, other in kept):
            kept.append((spec, boxes))
    return [spec for spec, _ in kept]


def _max_share(a: np.ndarray, b: np.ndarray) -> float:
    """Largest share of the smaller box covered by the other over the frames (NaN rows: not in view, ignored)."""
    iw = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    ih = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    share = np.clip(iw, 0, None) * np.clip(ih, 0, None) / np.minimum(a[:, 2] * a[:, 3], b[:, 2] * b[:, 3])
    share = share[np.isfinite(share)]
    return float(share.max()) if len(share) else 0.0


#: A truck's rear (m): width, height; and its lateral offset in the next lane.
TRUCK_W, TRUCK_H, LANE_W = 2.5, 3.8, 3.5


def _sample_truck(rng: np.random.Generator, cfg: SynthConfig, n_frames: int) -> dict[str, Any] | None:
    """Draw a truck 8-14 m ahead that merges from the next lane into the ego lane, stays 0.5-2 s, and leaves.

    Returns None (no truck this drive) with probability ``1 - truck_p``. Lateral position over time:
    :func:`truck_x`.
    """
    here, z, side = float(rng.random()), float(rng.uniform(8.0, 14.0)), float(rng.choice([-1.0, 1.0]))
    move, stay = float(rng.uniform(1.0, 2.0)), float(rng.uniform(0.5, 2.0))
    length = n_frames * cfg.frame_interval_s
    t0 = float(rng.uniform(0.0, max(0.0, length - 2 * move - stay)))
    if here >= cfg.truck_p:
        return None
    return {"z": z, "side": side, "t0": t0, "move": move, "stay": stay, "color": (700.0, 720.0, 760.0),
            "frame_interval_s": cfg.frame_interval_s}


def truck_x(truck: dict[str, Any], t: float) -> float:
    """Lateral position (m) of the truck's centre at drive time ``t``: next lane -> ego lane -> next lane."""
    off = truck["side"] * LANE_W
    t0, move, stay = truck["t0"], truck["move"], truck["stay"]
    if t <= t0 or t >= t0 + 2 * move + stay:
        return off
    if t < t0 + move:
        return off * (1.0 - (t - t0) / move)
    if t <= t0 + move + stay:
        return 0.0
    return off * (t - t0 - move - stay) / move
