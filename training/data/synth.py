"""Synthetic street scenes written in the real DTLD on-disk format.

Each sequence is one approach to an intersection seen by a pinhole camera with the DTLD left-camera
intrinsics: textured sky, buildings (with windows) and road, ego-lane signal heads (``relevant``) and
lights that do not govern the ego lane (other lanes' arrows, pedestrian and tram lights, side streets
seen edge-on, heads seen from the back: ``not_relevant``), reflections in shop windows, occluders,
truncation at the border, tiny distant lights, and distractors (tail lights, signs, lit windows), by day
or at dusk. The scene is rendered in linear 16-bit radiance, blurred by the optics, sampled on a GRBG
Bayer mosaic with shot and read noise, and companded to 12-bit codes with the inverse of the DTLD
kneepoint curve, so the official 8-bit decode (floor(demosaic / 16)) is dark with bright lamps, like DTLD.

Written tree (``root`` = DTLD base dir)::

    <City>/<City><n>/<YYYY-MM-DD_hh-mm-ss>/DE_BBBR667_<date>_<time>-<us>_k0.tiff
    DTLD_Labels_v2.0/v2.0/DTLD_all.json, DTLD_train.json, DTLD_test.json, <City>.json
    DTLD_labels_v1.0/DTLD_all.yml, DTLD_train.yml, DTLD_test.yml   (optional; reflected lights omitted)

Everything is a pure function of the seed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from training.data.dtld import IMAGE_HEIGHT, IMAGE_WIDTH, atomic_write_bytes, clip_box

CITIES = ("Berlin", "Bochum", "Bremen", "Dortmund", "Duesseldorf", "Essen", "Frankfurt", "Fulda",
          "Hannover", "Kassel", "Koeln")
VEHICLE = "DE_BBBR667"
V1_PREFIX = "/scratch/fs2/DTLD_final"
# DTLD left camera (calibration/intrinsic_left.yml, projection_left.yml of the official parser).
FX, CX, CY = 2290.51, 1066.94, 477.152
K_LEFT = (FX, 0.0, CX, 0.0, FX, CY, 0.0, 0.0, 1.0)
D_LEFT = (-0.036004, 0.0, 0.0, 0.0, 0.0)
R_LEFT = (0.999999, -0.001186, 0.000677, 0.001181, 0.999972, 0.007356, -0.000686, -0.007355, 0.999973)
P_LEFT = (2269.699585, 0.0, 1051.294655, 0.0, 0.0, 2269.699585, 458.462746, 0.0, 0.0, 0.0, 1.0, 0.0)
CAM_HEIGHT = 1.3  # m above the road
HOUSING_W = 0.32  # m, width of a signal head
ASPECT_NAMES = {1: "one_aspect", 2: "two_aspects", 3: "three_aspects", 4: "four_aspects"}
# lamp colours in linear BGR (relative)
LAMP_BGR = {"red": (0.02, 0.07, 1.0), "yellow": (0.02, 0.45, 1.0), "green": (0.6, 1.0, 0.12),
            "white": (1.0, 1.0, 0.95)}
STATE_LAMPS = {"red": {"red"}, "yellow": {"yellow"}, "red_yellow": {"red", "yellow"}, "green": {"green"},
               "off": set(), "unknown": set()}
V1_DIGITS = {
    "direction": {"front": "1", "back": "2", "left": "3", "right": "4"},
    "state": {"off": "0", "red": "1", "yellow": "2", "red_yellow": "3", "green": "4", "unknown": "0"},
    "pictogram": {"circle": "0", "arrow_straight": "1", "arrow_left": "2", "arrow_straight_left": "3",
                  "arrow_right": "4", "pedestrian": "8", "bicycle": "9", "tram": "0", "unknown": "0",
                  "pedestrian_bicycle": "8"},
}


# ------------------------------------------------------------------------------------------ configuration
@dataclass(frozen=True)
class SynthConfig:
    """Scene parameters. Sizes are the short side of a light's box in pixels at 2048x1024.

    Attributes:
        size_px: (min, max) short side at the first frame of a sequence (log-uniform); the default keeps
            lights >= 14 px after down-scaling 2048 -> 512 (>= 7 px at 256).
        tiny_fraction: fraction of lights drawn from ``tiny_px`` instead (tiny distant lights).
        tiny_px: (min, max) short side of tiny lights.
        extra_lights: (min, max) number of not-relevant lights per scene besides the ego heads.
        ego_heads: (min, max) number of relevant heads (pole, mast arm, far-side repeater).
        dusk_fraction: probability that a sequence is at dusk.
        occlusion_p: probability that a light gets an occluder in front of it.
        reflection_p: probability per sequence of a reflected light in a shop window.
        distractors: (min, max) number of tail-light cars and signs per scene.
        test_fraction: fraction of sequences in DTLD_test (the rest in DTLD_train).
        frame_interval_s: time between consecutive frames.
        speed_mps: (min, max) ego speed.
        write_v1: also write the v1.0 YAML label files.
    """

    size_px: tuple[float, float] = (56.0, 128.0)
    tiny_fraction: float = 0.1
    tiny_px: tuple[float, float] = (4.0, 12.0)
    extra_lights: tuple[int, int] = (1, 4)
    ego_heads: tuple[int, int] = (1, 3)
    dusk_fraction: float = 0.3
    occlusion_p: float = 0.15
    reflection_p: float = 0.3
    distractors: tuple[int, int] = (2, 6)
    test_fraction: float = 0.25
    frame_interval_s: float = 0.1
    speed_mps: tuple[float, float] = (4.0, 12.0)
    write_v1: bool = True


#: Named presets: ``demo`` (big lights, CPU training works), ``hard`` (DTLD-like sizes, many tiny lights).
PRESETS = {
    "demo": SynthConfig(),
    "hard": SynthConfig(size_px=(8.0, 48.0), tiny_fraction=0.35, tiny_px=(3.0, 8.0), extra_lights=(2, 6),
                        occlusion_p=0.25, distractors=(4, 10)),
}


# ------------------------------------------------------------------------------------------ data model
@dataclass
class SynthLight:
    """Ground truth of one light in one frame.

    ``x, y, w, h`` is the label box as written (may extend outside the image); ``box`` the clipped
    (x1, y1, x2, y2) or None; ``cls`` 0 relevant / 1 not_relevant; ``in_v1`` False for lights the v1.0
    labels do not contain (reflections, new in v2.0).
    """

    x: int
    y: int
    w: int
    h: int
    cls: int
    box: tuple[int, int, int, int] | None
    attributes: dict[str, str]
    unique_id: int
    track_id: str
    in_v1: bool = True


@dataclass
class SynthFrame:
    """Ground truth of one frame: key ``City/Route/Sequence/file``, split, time stamp, lights."""

    key: str
    split: str
    time_stamp: float
    lights: list[SynthLight]
    dusk: bool
    velocity: float
    yaw_rate: float
    longitude: float
    latitude: float


@dataclass
class SynthDataset:
    """What :func:`make_synthetic_dtld` wrote: root, label files and the ground truth."""

    root: Path
    v2: dict[str, Path]
    v1: dict[str, Path]
    frames: list[SynthFrame]

    def ground_truth(self, split: str | None = None, v1: bool = False
                     ) -> dict[str, list[tuple[int, tuple[int, int, int, int]]]]:
        """Return ``{key: sorted [(cls, clipped box)]}`` for a split (None = all), as a converter must give."""
        out = {}
        for f in self.frames:
            if split is not None and f.split != split:
                continue
            out[f.key] = sorted((li.cls, li.box) for li in f.lights
                                if li.box is not None and (li.in_v1 or not v1))
        return out

    def sequences(self) -> list[str]:
        """Sequence folders ``City/Route/Sequence`` in generation order."""
        return list(dict.fromkeys(f.key.rsplit("/", 1)[0] for f in self.frames))


# ------------------------------------------------------------------------------------------ tone curve
def compand(linear: np.ndarray) -> np.ndarray:
    """Map linear 16-bit values to 12-bit DTLD codes (inverse of the kneepoint decompanding LUT)."""
    v = np.clip(np.asarray(linear, dtype=np.float32), 0, 65535)
    c = np.where(v < 1024, v, np.where(v < 4096, 1024 + (v - 1024) / 2,
                                       np.where(v < 32768, 2560 + (v - 4096) / 32, 3456 + (v - 32768) / 64)))
    return np.clip(np.rint(c), 0, 3967).astype(np.uint16)


def decompand(codes: np.ndarray) -> np.ndarray:
    """Decompand 12-bit codes to 16-bit linear as the DTLD C++ LUT (kneepoints 1023/2559/3455/3967)."""
    c = np.asarray(codes, dtype=np.int64)
    v = np.where(c <= 1023, c, np.where(c <= 2559, 1024 + 2 * (c - 1024),
                                        np.where(c <= 3455, 4096 + 32 * (c - 2560), 32768 + 64 * (c - 3456))))
    return np.clip(v, 0, 65535).astype(np.uint16)


def mosaic_grbg(bgr: np.ndarray) -> np.ndarray:
    """Sample a (H, W, 3) BGR image on the DTLD GRBG Bayer pattern (G R / B G at the top-left)."""
    h, w = bgr.shape[:2]
    out = np.empty((h, w), dtype=bgr.dtype)
    out[0::2, 0::2] = bgr[0::2, 0::2, 1]
    out[0::2, 1::2] = bgr[0::2, 1::2, 2]
    out[1::2, 0::2] = bgr[1::2, 0::2, 0]
    out[1::2, 1::2] = bgr[1::2, 1::2, 1]
    return out


def encode_raw(radiance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Linear BGR radiance (16-bit units) -> noisy GRBG mosaic -> 12-bit companded uint16 codes."""
    raw = mosaic_grbg(radiance).astype(np.float32)
    noise = rng.standard_normal(raw.shape, dtype=np.float32)
    raw += noise * np.sqrt(np.maximum(raw, 0) * 0.6 + 16.0)
    return compand(raw)


# ------------------------------------------------------------------------------------------ geometry
def project(x: float, y: float, z: float) -> tuple[float, float]:
    """Camera projection of a world point (x right, y up from the road, z forward) to pixels."""
    return CX + FX * x / z, CY - FX * (y - CAM_HEIGHT) / z


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


# ------------------------------------------------------------------------------------------ rendering
class _Canvas:
    """Linear-radiance BGR float32 canvas with a few primitives."""

    def __init__(self, width: int, height: int):
        self.img = np.zeros((height, width, 3), np.float32)
        self.w, self.h = width, height

    def rect(self, x0: float, y0: float, x1: float, y1: float, bgr: Any) -> None:
        import cv2

        cv2.rectangle(self.img, (int(round(x0)), int(round(y0))), (int(round(x1)) - 1, int(round(y1)) - 1),
                      tuple(float(c) for c in bgr), -1)

    def poly(self, pts: np.ndarray, bgr: Any) -> None:
        import cv2

        cv2.fillPoly(self.img, [np.round(pts).astype(np.int32)], tuple(float(c) for c in bgr))

    def disc(self, cx: float, cy: float, r: float, bgr: Any) -> None:
        import cv2

        cv2.circle(self.img, (int(round(cx)), int(round(cy))), max(1, int(round(r))),
                   tuple(float(c) for c in bgr), -1)


def _background(cv: _Canvas, scene: dict[str, Any], z_ego: float, rng: np.random.Generator) -> None:
    """Sky, buildings with windows, road with lane markings; world-consistent as the ego moves."""
    import cv2

    gain = scene["gain"]
    horizon = int(CY)
    sky_top, sky_bottom = np.array(scene["sky"][0]), np.array(scene["sky"][1])
    t = np.linspace(0, 1, horizon + 1, dtype=np.float32)[:, None]
    cv.img[: horizon + 1] = ((1 - t) * sky_top + t * sky_bottom)[:, None, :] * gain
    cv.img[horizon:] = np.array(scene["road"], np.float32) * gain
    # lane markings (dashed), ego lane is [-1.75, 1.75]
    for lx in scene["lane_lines"]:
        for k in range(0, 40):
            za = 6.0 + k * 6.0 - (z_ego % 6.0)
            zb = za + 3.0
            if za <= 2.0:
                continue
            pts = np.array([project(lx - 0.07, 0, za), project(lx + 0.07, 0, za),
                            project(lx + 0.07, 0, zb), project(lx - 0.07, 0, zb)])
            cv.poly(pts, np.array((900, 900, 900), np.float32) * gain)
    for b in scene["buildings"]:
        za, zb = b["z0"] - z_ego, b["z1"] - z_ego
        if zb <= 1.0:
            continue
        za = max(za, 1.0)
        x = b["x"]
        pts = np.array([project(x, 0, za), project(x, b["height"], za), project(x, b["height"], zb),
                        project(x, 0, zb)])
        cv.poly(pts, np.array(b["color"], np.float32) * gain)
        for (wy, wz, lit) in b["windows"]:
            z0, z1 = wz - z_ego, wz - z_ego + 1.2
            if z0 <= 1.0 or z0 < za or z1 > zb:
                continue
            pts = np.array([project(x, wy, z0), project(x, wy + 1.4, z0), project(x, wy + 1.4, z1),
                            project(x, wy, z1)])
            col = np.array((900, 3500, 9000), np.float32) * scene["window_light"] if lit else \
                np.array(b["color"], np.float32) * 0.5 * gain
            cv.poly(pts, col)
    tex = cv2.resize(scene["texture"], (cv.w, cv.h), interpolation=cv2.INTER_LINEAR)
    cv.img *= tex[:, :, None]
    fine = cv2.resize(rng.random((cv.h // 4, cv.w // 4), dtype=np.float32), (cv.w, cv.h),
                      interpolation=cv2.INTER_NEAREST)
    cv.img *= (0.85 + 0.3 * fine)[:, :, None]


def _draw_light(cv: _Canvas, spec: LightSpec, box: tuple[float, float, float, float], state: str,
                gain: float) -> None:
    x, y, w, h = box
    housing = np.array((160, 170, 170), np.float32) * max(gain, 0.4)
    if not spec.reflected:  # pole down to the road
        _, v_road = project(spec.x, 0.0, spec.z_now)
        pole = max(1.0, w * 0.18)
        cv.rect(x + w / 2 - pole / 2, y + h, x + w / 2 + pole / 2, max(y + h, v_road), housing * 1.5)
    cv.rect(x, y, x + w, y + h, housing)
    if spec.direction in ("back", "left", "right"):
        cv.rect(x + w * 0.15, y + h * 0.05, x + w * 0.85, y + h * 0.95, housing * 1.8)  # back plate / side
        return
    n = spec.aspects
    colors = _lamp_colors(spec)
    lit_set = STATE_LAMPS[state]
    horizontal = spec.orientation == "horizontal"
    cell = (w if horizontal else h) / n
    r = 0.36 * min(cell, h if horizontal else w)
    brightness = 0.6 if spec.reflected else 1.0
    for i, colour in enumerate(colors):
        cx, cy = (x + (i + 0.5) * cell, y + h / 2) if horizontal else (x + w / 2, y + (i + 0.5) * cell)
        base = np.array(LAMP_BGR[colour], np.float32)
        lit = colour in lit_set or (colour == "white" and state not in ("off", "unknown"))
        if not lit:
            cv.disc(cx, cy, r, base * 260 * max(gain, 0.5))
            continue
        val = base * 30000 * brightness
        if spec.pictogram in ("arrow_left", "arrow_right", "arrow_straight", "pedestrian", "tram", "bicycle"):
            cv.disc(cx, cy, r, base * 300)
            _pictogram(cv, spec.pictogram, cx, cy, r, val)
        else:
            cv.disc(cx, cy, r, val)
            cv.disc(cx, cy, r * 0.55, np.minimum(val * 1.45, 65000))


def _lamp_colors(spec: LightSpec) -> list[str]:
    if spec.pictogram == "tram":
        return ["white"] * spec.aspects
    if spec.pictogram == "pedestrian":
        return ["red", "green"][: spec.aspects] if spec.aspects <= 2 else ["red", "yellow", "green"]
    return {1: ["yellow"], 2: ["red", "green"], 3: ["red", "yellow", "green"],
            4: ["red", "yellow", "green", "green"]}[spec.aspects]


def _pictogram(cv: _Canvas, kind: str, cx: float, cy: float, r: float, val: np.ndarray) -> None:
    if kind == "tram":
        cv.rect(cx - r * 0.9, cy - r * 0.2, cx + r * 0.9, cy + r * 0.2, val)
    elif kind in ("pedestrian", "bicycle"):
        cv.disc(cx, cy - r * 0.55, r * 0.22, val)
        cv.rect(cx - r * 0.2, cy - r * 0.3, cx + r * 0.2, cy + r * 0.7, val)
    else:
        s = {"arrow_left": (-1, 0), "arrow_right": (1, 0), "arrow_straight": (0, -1)}[kind]
        tip = np.array((cx + s[0] * r * 0.8, cy + s[1] * r * 0.8))
        back = np.array((cx - s[0] * r * 0.8, cy - s[1] * r * 0.8))
        perp = np.array((-s[1], s[0])) * r * 0.5
        mid = (tip + back) / 2
        cv.poly(np.array([tip, mid + perp, mid - perp]), val)
        cv.poly(np.array([mid + perp * 0.35, back + perp * 0.35, back - perp * 0.35, mid - perp * 0.35]), val)


def _draw_distractors(cv: _Canvas, scene: dict[str, Any], z_ego: float) -> None:
    gain = scene["gain"]
    for d in scene["distractors"]:
        z = d["z"] - z_ego * d["rel_speed"]
        if z < 4.0:
            continue
        if d["kind"] == "car":
            x0, y0 = project(d["x"] - 0.9, 1.4, z)
            x1, y1 = project(d["x"] + 0.9, 0.2, z)
            cv.rect(x0, y0, x1, y1, np.array(d["color"], np.float32) * gain)
            r = max(1.0, FX * 0.09 / z)
            lamp = np.array(LAMP_BGR["red"], np.float32) * (30000 if d["braking"] else 9000)
            for side in (-0.7, 0.7):
                u, v = project(d["x"] + side, 0.95, z)
                cv.disc(u, v, r, lamp)
        else:  # sign on a pole
            u, v = project(d["x"], 2.4, z)
            _, v0 = project(d["x"], 0, z)
            pole = FX * 0.06 / z
            cv.rect(u - pole / 2, v, u + pole / 2, v0, np.array((300, 300, 300), np.float32) * gain)
            r = FX * 0.35 / z
            col = np.array(d["color"], np.float32) * gain
            if d["shape"] == "disc":
                cv.disc(u, v, r, col)
                cv.disc(u, v, r * 0.7, np.array((2500, 2500, 2500), np.float32) * gain)
            else:
                cv.rect(u - r, v - r, u + r, v + r, col)


def render_frame(scene: dict[str, Any], z_ego: float, frame: int, rng: np.random.Generator,
                 width: int = IMAGE_WIDTH, height: int = IMAGE_HEIGHT
                 ) -> tuple[np.ndarray, list[tuple[LightSpec, tuple[int, int, int, int], str]]]:
    """Render one frame; returns (raw 12-bit GRBG uint16 image, [(light, integer label box, state)])."""
    import cv2

    cv = _Canvas(width, height)
    _background(cv, scene, z_ego, rng)
    _draw_distractors(cv, scene, z_ego)
    drawn = []
    for spec in sorted(scene["lights"], key=lambda s: -(s.z - z_ego)):  # far to near
        z = spec.z - z_ego
        if z < 3.0:
            continue
        bx, by, bw, bh = spec.box(z)
        box = (int(round(bx)), int(round(by)), max(1, int(round(bw))), max(1, int(round(bh))))
        state = spec.states[frame]
        spec.z_now = z
        _draw_light(cv, spec, box, state, scene["gain"])
        if spec.occluder is not None:
            f0x, f0y, f1x, f1y = spec.occluder
            cv.rect(box[0] + f0x * box[2], box[1] + f0y * box[3], box[0] + f1x * box[2], box[1] + f1y * box[3],
                    np.array((220, 330, 260), np.float32) * scene["gain"])
        if clip_box(*box, width, height) is not None:
            drawn.append((spec, box, state))
    glow = cv2.GaussianBlur(np.maximum(cv.img - 20000, 0), (0, 0), 3.0)
    cv.img += 0.35 * glow
    cv.img = cv2.GaussianBlur(cv.img, (0, 0), 0.7)
    return encode_raw(cv.img, rng), drawn


# ------------------------------------------------------------------------------------------ scene sampling
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


def _sample_lights(rng: np.random.Generator, cfg: SynthConfig, z_int: float, n_frames: int) -> list[LightSpec]:
    phase = _phase(rng, n_frames)
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
    kinds = ["other_lane", "pedestrian", "tram", "side", "back"]
    for _ in range(int(rng.integers(cfg.extra_lights[0], cfg.extra_lights[1] + 1))):
        kind = str(rng.choice(kinds))
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
        lights.append(LightSpec(float(x), float(y), z, _scale_for(rng, cfg, z), orient, aspects, direction,
                                False, pict, states, None))
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


def _sample_scene(rng: np.random.Generator, cfg: SynthConfig, n_frames: int) -> dict[str, Any]:
    dusk = bool(rng.random() < cfg.dusk_fraction)
    gain = float(rng.uniform(0.12, 0.3)) if dusk else float(rng.uniform(0.7, 1.3))
    z_int = float(rng.uniform(30, 60))
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


# ------------------------------------------------------------------------------------------ labels
def _attributes(spec: LightSpec, state: str, box: tuple[int, int, int, int], width: int, height: int
                ) -> dict[str, str]:
    truncated = box[0] < 0 or box[1] < 0 or box[0] + box[2] > width or box[1] + box[3] > height
    return {
        "direction": spec.direction,
        "relevance": "relevant" if spec.relevant else "not_relevant",
        "occlusion": "occluded" if spec.occluder is not None or truncated else "not_occluded",
        "orientation": spec.orientation,
        "aspects": ASPECT_NAMES[spec.aspects],
        "state": state,
        "pictogram": spec.pictogram,
        "reflection": "reflected" if spec.reflected else "not_reflected",
    }


def v1_class_id(attrs: dict[str, str]) -> int:
    """Encode v2 attributes as a v1.0 6-digit class id (relevance digit 1/0, tram in the type digit)."""
    tram = attrs["pictogram"] == "tram"
    orient = {"horizontal": "6" if tram else "1", "vertical": "7" if tram else "2"}[attrs["orientation"]]
    aspects = str({"one_aspect": 1, "two_aspects": 2, "three_aspects": 3, "four_aspects": 4}.get(attrs["aspects"], 3))
    return int(V1_DIGITS["direction"][attrs["direction"]] + ("1" if attrs["relevance"] == "relevant" else "0")
               + orient + aspects + V1_DIGITS["state"][attrs["state"]] + V1_DIGITS["pictogram"][attrs["pictogram"]])


def _v1_item(frame: SynthFrame) -> str:
    """One v1.0 YAML list item in the exact line layout the official C++/MATLAB readers expect."""
    objs = [li for li in frame.lights if li.in_v1]
    lines = ["- objects: []" if not objs else "- objects:"]
    for li in objs:
        lines.append(f"  - {{x: {li.x}, y: {li.y}, width: {li.w}, height: {li.h}, "
                     f"class_id: {v1_class_id(li.attributes)}, unique_id: {li.unique_id}, track_id: {li.track_id}}}")
    path = f"{V1_PREFIX}/{frame.key}"
    lines += [f"  path: {path}", f"  disp_path: {path.replace('_k0.tiff', '_nativeV2.tiff')}",
              f"  time_stamp: {frame.time_stamp:.6f}", f"  velocity: {frame.velocity:.4f}",
              f"  yaw_rate: {frame.yaw_rate:.5f}", f"  longitude: {frame.longitude:.6f}",
              f"  latitude: {frame.latitude:.6f}"]
    return "\n".join(lines) + "\n"


def _v2_entry(frame: SynthFrame) -> dict[str, Any]:
    return {
        "image_path": f"./{frame.key}",
        "disparity_image_path": f"./{frame.key.replace('_k0.tiff', '_nativeV2.tiff')}",
        "time_stamp": frame.time_stamp, "velocity": frame.velocity, "yaw_rate": frame.yaw_rate,
        "longitude": frame.longitude, "latitude": frame.latitude,
        "labels": [{"x": li.x, "y": li.y, "w": li.w, "h": li.h, "unique_id": li.unique_id,
                    "track_id": li.track_id, "attributes": li.attributes} for li in frame.lights],
    }


# ------------------------------------------------------------------------------------------ public API
def _sequence_meta(rng: np.random.Generator, index: int) -> tuple[str, str, dt.datetime]:
    city = CITIES[index % len(CITIES)]
    route = f"{city}{1 + (index // len(CITIES)) % 5}"
    start = dt.datetime(2015, 4, 17, 8, 0, 0, tzinfo=dt.UTC) + dt.timedelta(
        days=int(rng.integers(0, 30)), seconds=int(rng.integers(0, 10 * 3600)))
    return city, route, start


def generate_sequence(root: Path, index: int, n_frames: int, seed: int, cfg: SynthConfig, split: str,
                      uid_start: int, width: int = IMAGE_WIDTH, height: int = IMAGE_HEIGHT) -> list[SynthFrame]:
    """Render and write one drive sequence (``n_frames`` consecutive frames); returns its ground truth."""
    import cv2

    rng = np.random.default_rng([seed, index])
    city, route, start = _sequence_meta(rng, index)
    scene = _sample_scene(rng, cfg, n_frames)
    seq_dir = f"{city}/{route}/{start:%Y-%m-%d_%H-%M-%S}"
    lon, lat = 6.5 + rng.uniform(0, 7), 48.0 + rng.uniform(0, 5)
    frames, uid = [], uid_start
    t0 = start + dt.timedelta(seconds=float(rng.uniform(2, 8)))
    for f in range(n_frames):
        t = t0 + dt.timedelta(microseconds=int(round(f * cfg.frame_interval_s * 1e6)))
        name = f"{VEHICLE}_{t:%Y-%m-%d_%H-%M-%S}-{t.microsecond:06d}_k0.tiff"
        key = f"{seq_dir}/{name}"
        z_ego = f * cfg.frame_interval_s * scene["speed"]
        raw, drawn = render_frame(scene, z_ego, f, rng, width, height)
        ok, buf = cv2.imencode(".tiff", raw, [cv2.IMWRITE_TIFF_COMPRESSION, 1])
        if not ok:
            raise RuntimeError(f"{key}: TIFF encoding failed")
        atomic_write_bytes(root / key, buf.tobytes())
        lights = []
        for spec, box, state in drawn:
            attrs = _attributes(spec, state, box, width, height)
            lights.append(SynthLight(*box, cls=0 if spec.relevant else 1, box=clip_box(*box, width, height),
                                     attributes=attrs, unique_id=uid, track_id=f"TrafficLight_{spec.track}",
                                     in_v1=not spec.reflected))
            uid += 1
        frames.append(SynthFrame(key, split, round(t.timestamp(), 6), lights, scene["dusk"],
                                 round(scene["speed"], 4), 0.0, round(lon, 6),
                                 round(lat + z_ego * 9e-6, 6)))
    return frames


def _write_labels(root: Path, frames: list[SynthFrame], write_v1: bool) -> tuple[dict[str, Path], dict[str, Path]]:
    v2dir, v1dir = root / "DTLD_Labels_v2.0" / "v2.0", root / "DTLD_labels_v1.0"
    groups = {"all": frames, "train": [f for f in frames if f.split == "train"],
              "test": [f for f in frames if f.split == "test"]}
    v2, v1 = {}, {}
    for name, group in groups.items():
        v2[name] = v2dir / f"DTLD_{name}.json"
        atomic_write_bytes(v2[name], (json.dumps({"images": [_v2_entry(f) for f in group]}, indent=1) + "\n").encode())
        if write_v1:
            v1[name] = v1dir / f"DTLD_{name}.yml"
            atomic_write_bytes(v1[name], "".join(_v1_item(f) for f in group).encode())
    for city in sorted({f.key.split("/")[0] for f in frames}):
        group = [f for f in frames if f.key.split("/")[0] == city]
        atomic_write_bytes(v2dir / f"{city}.json",
                           (json.dumps({"images": [_v2_entry(f) for f in group]}, indent=1) + "\n").encode())
    return v2, v1


def make_synthetic_dtld(root: str | os.PathLike, n_sequences: int = 4, frames_per_sequence: int = 3,
                        seed: int = 0, config: SynthConfig | str = "demo", workers: int = 1,
                        progress: bool = False) -> SynthDataset:
    """Write a synthetic DTLD tree under ``root`` and return its ground truth.

    Args:
        root: output DTLD base directory.
        n_sequences: number of drive sequences (each its own City/Route/Sequence folder).
        frames_per_sequence: consecutive frames per sequence.
        seed: everything is a pure function of it.
        config: a :class:`SynthConfig` or a preset name (``demo``, ``hard``).
        workers: processes rendering sequences in parallel.
        progress: show a tqdm bar.

    Returns:
        The :class:`SynthDataset` (root, v2/v1 label files, per-frame ground truth).
    """
    from tqdm import tqdm

    cfg = PRESETS[config] if isinstance(config, str) else config
    if n_sequences < 1 or frames_per_sequence < 1:
        raise ValueError(f"n_sequences={n_sequences}, frames_per_sequence={frames_per_sequence}: expected >= 1")
    root = Path(root)
    rng = np.random.default_rng([seed, 10**6])
    n_test = int(round(cfg.test_fraction * n_sequences)) if n_sequences > 1 else 0
    test_idx = set(rng.choice(n_sequences, size=n_test, replace=False).tolist()) if n_test else set()
    jobs = [(root, i, frames_per_sequence, seed, cfg, "test" if i in test_idx else "train",
             1 + i * 10_000) for i in range(n_sequences)]
    bar = tqdm(total=n_sequences, desc="synth", unit="seq", disable=not progress)
    results = []
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            for res in pool.imap(_sequence_job, jobs):
                results.append(res)
                bar.update()
    else:
        for job in jobs:
            results.append(_sequence_job(job))
            bar.update()
    bar.close()
    frames = [f for seq in results for f in seq]
    v2, v1 = _write_labels(root, frames, cfg.write_v1)
    atomic_write_bytes(root / "synth_ground_truth.json", (json.dumps(
        {"seed": seed, "config": asdict(cfg), "frames": [asdict(f) for f in frames]}, indent=1) + "\n").encode())
    return SynthDataset(root, v2, v1, frames)


def _sequence_job(job: tuple) -> list[SynthFrame]:
    return generate_sequence(*job)


def make_synthetic_yolo(workdir: str | os.PathLike, n_sequences: int = 4, frames_per_sequence: int = 3,
                        seed: int = 0, config: SynthConfig | str = "demo", val_images: int = 0,
                        resize_width: int | None = None, workers: int = 1,
                        ) -> tuple[SynthDataset, Path]:
    """Synthetic DTLD tree in ``workdir/dtld`` converted to YOLO in ``workdir/yolo``, in one call.

    Train = DTLD_train.json (minus ``val_images`` drawn by sequence), test = DTLD_test.json.

    Returns:
        (the :class:`SynthDataset`, path of ``data.yaml``).
    """
    from training.data.dtld import ConvertOptions, convert_dtld

    workdir = Path(workdir)
    ds = make_synthetic_dtld(workdir / "dtld", n_sequences, frames_per_sequence, seed, config, workers)
    opts = ConvertOptions(train=[ds.v2["train"]], test=[ds.v2["test"]] if any(
        f.split == "test" for f in ds.frames) else [], val_images=val_images, seed=seed,
        resize_width=resize_width)
    convert_dtld(ds.root, workdir / "yolo", opts, workers=workers, progress=False)
    return ds, workdir / "yolo" / "data.yaml"


# ------------------------------------------------------------------------------------------ rosbag
def write_drive_bag(dataset: SynthDataset, sequence: str, bag: str | os.PathLike,
                    image_topic: str = "/camera/image_raw", info_topic: str = "/camera/camera_info",
                    frame_id: str = "camera_left", resize_width: int | None = None) -> int:
    """Write one drive sequence as a rosbag2 (mcap) with sensor_msgs/Image (bgr8) and CameraInfo.

    The image is the official 8-bit decode of the TIFF (optionally resized, intrinsics scaled alike);
    stamps are the frames' DTLD time stamps, also used as the bag receive times.

    Args:
        dataset: from :func:`make_synthetic_dtld`.
        sequence: ``City/Route/Sequence`` (see :meth:`SynthDataset.sequences`).
        bag: output bag directory (must not exist).
        image_topic: Image topic.
        info_topic: CameraInfo topic.
        frame_id: header frame id of both.
        resize_width: optional output width (aspect kept).

    Returns:
        Number of frames written.
    """
    import cv2
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    from training.data.dtld import read_dtld_image

    frames = [f for f in dataset.frames if f.key.rsplit("/", 1)[0] == sequence]
    if not frames:
        raise ValueError(f"sequence {sequence!r} not in dataset; have {dataset.sequences()}")
    ts = get_typestore(Stores.ROS2_HUMBLE)
    Image, Info = ts.types["sensor_msgs/msg/Image"], ts.types["sensor_msgs/msg/CameraInfo"]
    Header, Time = ts.types["std_msgs/msg/Header"], ts.types["builtin_interfaces/msg/Time"]
    Roi = ts.types["sensor_msgs/msg/RegionOfInterest"]
    with Writer(Path(bag), version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP) as writer:
        c_img = writer.add_connection(image_topic, Image.__msgtype__, typestore=ts)
        c_info = writer.add_connection(info_topic, Info.__msgtype__, typestore=ts)
        for frame in frames:
            bgr = read_dtld_image(dataset.root / frame.key)
            s = 1.0
            if resize_width:
                s = resize_width / bgr.shape[1]
                bgr = cv2.resize(bgr, (resize_width, round(bgr.shape[0] * s)), interpolation=cv2.INTER_AREA)
            ns = int(round(frame.time_stamp * 1e6)) * 1000
            header = Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id=frame_id)
            h, w = bgr.shape[:2]
            img = Image(header=header, height=h, width=w, encoding="bgr8", is_bigendian=0, step=w * 3,
                        data=np.ascontiguousarray(bgr).reshape(-1))
            k = np.array(K_LEFT, np.float64) * np.array([s, 1, s, 1, s, s, 1, 1, 1]) if s != 1.0 else np.array(K_LEFT)
            p = np.array(P_LEFT, np.float64)
            p[[0, 2, 5, 6]] *= s
            info = Info(header=header, height=h, width=w, distortion_model="plumb_bob",
                        d=np.array(D_LEFT, np.float64), k=k, r=np.array(R_LEFT, np.float64), p=p,
                        binning_x=0, binning_y=0,
                        roi=Roi(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            writer.write(c_img, ns, ts.serialize_cdr(img, Image.__msgtype__))
            writer.write(c_info, ns, ts.serialize_cdr(info, Info.__msgtype__))
    return len(frames)


def _scene_summary(ds: SynthDataset) -> dict[str, Any]:
    widths = [min(li.box[2] - li.box[0], li.box[3] - li.box[1]) for f in ds.frames for li in f.lights if li.box]
    return {"frames": len(ds.frames), "sequences": len(ds.sequences()),
            "lights": len(widths), "relevant": sum(li.cls == 0 for f in ds.frames for li in f.lights),
            "short_side_px_median": float(np.median(widths)) if widths else None}
