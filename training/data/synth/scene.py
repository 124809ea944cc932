"""Scene sampling: the physical lights of a sequence, buildings, distractors, daylight; pure functions of an RNG.

Every draw from the generator happens in a fixed order, so a scene is a pure function of the seed. Keep
that order when editing: moving one draw changes every image and label generated after it.
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


def _extra_light(rng: np.random.Generator, cfg: SynthConfig, z_int: float, n_frames: int) -> LightSpec:
    """Sample one light that does not govern the ego lane (other lane, pedestrian, tram, side street, back)."""
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
    return LightSpec(float(x), float(y), z, _scale_for(rng, cfg, z), orient, aspects, direction,
                     False, pict, states, None)


def _sample_lights(rng: np.random.Generator, cfg: SynthConfig, z_int: float, n_frames: int) -> list[LightSpec]:
    phase = _phase(rng, n_frames)
    lights = _ego_heads(rng, cfg, z_int, phase)
    for _ in range(int(rng.integers(cfg.extra_lights[0], cfg.extra_lights[1] + 1))):
        lights.append(_extra_light(rng, cfg, z_int, n_frames))
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


def _sample_scene(rng: np.random.Generator, cfg: SynthConfig, n_frames: int) -> dict[str, Any]:
    dusk = bool(rng.random() < cfg.dusk_fraction)
    gain = float(rng.uniform(0.12, 0.3)) if dusk else float(rng.uniform(0.7, 1.3))
    z_int = float(rng.uniform(30, 60))
    buildings = _sample_buildings(rng, dusk)
    distractors = _sample_distractors(rng, cfg)
    return {
        "dusk": dusk, "gain": gain, "z_int": z_int,
        "sky": ((5200, 3800, 2600), (3600, 3400, 3000)) if not dusk else ((6000, 2500, 1800), (3000, 2600, 4200)),
        "road": tuple(float(c) for c in rng.uniform(400, 800, 3)),
        "lane_lines": [-1.75, 1.75, -5.25] + ([5.25] if rng.random() < 0.5 else []),
        "buildings": buildings, "distractors": distractors,
        "window_light": 1.0 if dusk else 0.3,
        "texture": (0.7 + 0.6 * rng.random((16, 32))).astype(np.float32),
        "lights": _sample_lights(rng, cfg, z_int, n_frames),
        "speed": float(rng.uniform(*cfg.speed_mps)),
    }
