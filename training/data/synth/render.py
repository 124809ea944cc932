"""Rendering: a scene at one ego position drawn in linear 16-bit radiance, blurred by the optics, then sensed."""

from __future__ import annotations

from typing import Any

import numpy as np

from training.data.dtld.images import IMAGE_HEIGHT, IMAGE_WIDTH
from training.data.dtld.yolo import clip_box
from training.data.synth.camera import CX, CY, FX, project
from training.data.synth.scene import TRUCK_H, TRUCK_W, LightSpec, truck_x
from training.data.synth.sensor import encode_raw

# lamp colours in linear BGR (relative)
LAMP_BGR = {"red": (0.02, 0.07, 1.0), "yellow": (0.02, 0.45, 1.0), "green": (0.6, 1.0, 0.12),
            "white": (1.0, 1.0, 0.95)}
STATE_LAMPS = {"red": {"red"}, "yellow": {"yellow"}, "red_yellow": {"red", "yellow"}, "green": {"green"},
               "off": set(), "unknown": set()}
_ARROWS = ("arrow_left", "arrow_right", "arrow_straight", "pedestrian", "tram", "tram_go", "bicycle")

# lamps="camera": what the sensor records of a lamp (linear BGR). The lens shows CAM_RING (dominant channel 1)
# x RING_LEVEL, chosen so that the official 8-bit decode (companding, floor /16) of the rim shows red at
# hue ~5 deg, amber ~35 deg, green ~140 deg; its centre CAM_CORE x 65535 clips the dominant channel and nearly
# clips the others (an over-exposed, slightly tinted white core); CAM_RING x HALO_LEVEL spreads around it
# (halo, amber a little greener: its dimmer light decodes redder); CAM_UNLIT x UNLIT_LEVEL is the dark tinted
# lens of an unlit lamp.
CAM_RING = {"red": (0.015, 0.035, 1.0), "yellow": (0.012, 0.17, 1.0), "green": (0.16, 1.0, 0.04),
            "white": (0.9, 1.0, 0.95)}
CAM_HALO = {"red": (0.015, 0.035, 1.0), "yellow": (0.012, 0.5, 1.0), "green": (0.25, 1.0, 0.04),
            "white": (0.9, 1.0, 0.95)}
CAM_CORE = {"red": (0.6, 0.7, 1.6), "yellow": (0.45, 0.9, 1.6), "green": (0.85, 1.6, 0.7),
            "white": (1.5, 1.6, 1.5)}
CAM_UNLIT = {"red": (0.3, 0.32, 1.0), "yellow": (0.25, 0.6, 1.0), "green": (0.75, 1.0, 0.4),
             "white": (0.9, 1.0, 0.95)}
RING_LEVEL, HALO_LEVEL, UNLIT_LEVEL = 16000.0, 5000.0, 750.0


class _Canvas:
    """Linear-radiance BGR float32 canvas with a few primitives."""

    def __init__(self, width: int, height: int, channels: int = 3):
        self.img = np.zeros((height, width, channels), np.float32) if channels > 1 else \
            np.zeros((height, width), np.float32)
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


def _lane_markings(cv: _Canvas, scene: dict[str, Any], z_ego: float) -> None:
    """Draw dashed lane lines (the ego lane is [-1.75, 1.75]) moving towards the camera as the ego drives."""
    gain = scene["gain"]
    for lx in scene["lane_lines"]:
        for k in range(0, 40):
            za = 6.0 + k * 6.0 - (z_ego % 6.0)
            zb = za + 3.0
            if za <= 2.0:
                continue
            pts = np.array([project(lx - 0.07, 0, za), project(lx + 0.07, 0, za),
                            project(lx + 0.07, 0, zb), project(lx - 0.07, 0, zb)])
            cv.poly(pts, np.array((900, 900, 900), np.float32) * gain)


def _buildings(cv: _Canvas, scene: dict[str, Any], z_ego: float) -> None:
    """Draw the building facades along the street with their windows (lit ones glow at dusk)."""
    gain = scene["gain"]
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


def _background(cv: _Canvas, scene: dict[str, Any], z_ego: float, rng: np.random.Generator) -> None:
    """Sky, buildings with windows, road with lane markings; world-consistent as the ego moves."""
    import cv2

    gain = scene["gain"]
    horizon = int(CY)
    sky_top, sky_bottom = np.array(scene["sky"][0]), np.array(scene["sky"][1])
    t = np.linspace(0, 1, horizon + 1, dtype=np.float32)[:, None]
    cv.img[: horizon + 1] = ((1 - t) * sky_top + t * sky_bottom)[:, None, :] * gain
    cv.img[horizon:] = np.array(scene["road"], np.float32) * gain
    _lane_markings(cv, scene, z_ego)
    _buildings(cv, scene, z_ego)
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
    _draw_lamps(cv, spec, box, state, gain)


def _draw_lamps(cv: _Canvas, spec: LightSpec, box: tuple[float, float, float, float], state: str,
                gain: float) -> None:
    """Draw the lamps of a head seen from the front: dark discs, lit ones bright (with any pictogram)."""
    colors = _lamp_colors(spec)
    lit_set = STATE_LAMPS[state]
    centres, r = _lamp_geometry(spec, box)
    brightness = 0.6 if spec.reflected else 1.0
    for colour, (cx, cy) in zip(colors, centres, strict=True):
        base = np.array(LAMP_BGR[colour], np.float32)
        lit = colour in lit_set or (colour == "white" and state not in ("off", "unknown"))
        if not lit:
            cv.disc(cx, cy, r, base * 260 * max(gain, 0.5))
            continue
        val = base * 30000 * brightness
        if spec.pictogram in _ARROWS:
            cv.disc(cx, cy, r, base * 300)
            _pictogram(cv, spec.pictogram, cx, cy, r, val)
        else:
            cv.disc(cx, cy, r, val)
            cv.disc(cx, cy, r * 0.55, np.minimum(val * 1.45, 65000))


def _lamp_geometry(spec: LightSpec, box: tuple[float, float, float, float]
                   ) -> tuple[list[tuple[float, float]], float]:
    """Centres of a head's lamps (first lamp top or left) and their radius, in pixels."""
    x, y, w, h = box
    horizontal = spec.orientation == "horizontal"
    cell = (w if horizontal else h) / spec.aspects
    centres = [(x + (i + 0.5) * cell, y + h / 2) if horizontal else (x + w / 2, y + (i + 0.5) * cell)
               for i in range(spec.aspects)]
    return centres, 0.36 * min(cell, h if horizontal else w)


def _lit_lamps(spec: LightSpec, state: str) -> list[tuple[str, bool]]:
    """(colour, lit) of each lamp of a head seen from the front with lamps="camera" (a tram lights one bar)."""
    lit_set = STATE_LAMPS[state]
    out = []
    for i, colour in enumerate(_lamp_colors(spec)):
        lit = colour in lit_set or (colour == "white" and state not in ("off", "unknown"))
        out.append((colour, lit and (colour != "white" or i == 0)))
    return out


def seen_state(spec: LightSpec, box: tuple[int, int, int, int], state: str, width: int, height: int) -> str:
    """Return the state a camera frame shows of a head (lamps="camera"), as an annotator labels that image.

    ``unknown`` when the centre of a lit lamp is hidden (by the head's occluder or outside the frame): the state
    cannot be told from the image. Else ``state``. A lamp caught by an LED pulse is drawn at 10-40 % of its level,
    which still reads lit on an over-exposed core, so it keeps its state.
    """
    if spec.direction != "front" or state in ("off", "unknown"):
        return state
    centres, _ = _lamp_geometry(spec, box)
    occ = spec.occluder
    for (cx, cy), (_, lit) in zip(centres, _lit_lamps(spec, state), strict=True):
        fx, fy = (cx - box[0]) / box[2], (cy - box[1]) / box[3]
        hidden = not (0 <= cx < width and 0 <= cy < height) or (
            occ is not None and occ[0] <= fx <= occ[2] and occ[1] <= fy <= occ[3])
        if lit and hidden:
            return "unknown"
    return state


def _lamp_colors(spec: LightSpec) -> list[str]:
    if spec.pictogram == "tram":
        return ["white"] * spec.aspects
    if spec.pictogram == "pedestrian":
        return ["red", "green"][: spec.aspects] if spec.aspects <= 2 else ["red", "yellow", "green"]
    return {1: ["yellow"], 2: ["red", "green"], 3: ["red", "yellow", "green"],
            4: ["red", "yellow", "green", "green"]}[spec.aspects]


def _pictogram(cv: _Canvas, kind: str, cx: float, cy: float, r: float, val: np.ndarray) -> None:
    if kind == "tram":  # a horizontal white bar: a tram signal's stop
        cv.rect(cx - r * 0.9, cy - r * 0.2, cx + r * 0.9, cy + r * 0.2, val)
    elif kind == "tram_go":  # a vertical white bar: go (lamps="camera" only)
        cv.rect(cx - r * 0.2, cy - r * 0.9, cx + r * 0.2, cy + r * 0.9, val)
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


def _add_patch(cv: _Canvas, x0: int, y0: int, patch: np.ndarray) -> None:
    """Add a (h, w, 3) patch to the canvas with its top-left corner at (x0, y0), clipped to the canvas."""
    h, w = patch.shape[:2]
    X0, Y0, X1, Y1 = max(x0, 0), max(y0, 0), min(x0 + w, cv.w), min(y0 + h, cv.h)
    if X0 < X1 and Y0 < Y1:
        cv.img[Y0:Y1, X0:X1] += patch[Y0 - y0:Y1 - y0, X0 - x0:X1 - x0]


def _lit_shape(cv: _Canvas, cx: float, cy: float, r: float, pictogram: str, colour: str, level: float) -> None:
    """Add a lit lamp (a disc, or a pictogram's shape) as a camera records it: white core, coloured rim, halo."""
    import cv2

    pad = int(np.ceil(1.8 * r)) + 3
    x0, y0 = int(np.floor(cx)) - pad, int(np.floor(cy)) - pad
    if x0 >= cv.w or y0 >= cv.h or x0 + 2 * pad + 2 <= 0 or y0 + 2 * pad + 2 <= 0:
        return  # the whole patch is off the frame (a near light above the top): _add_patch would add nothing
    mask = _Canvas(2 * pad + 2, 2 * pad + 2, channels=1)
    one = np.ones(1, np.float32)
    if pictogram in _ARROWS:
        _pictogram(mask, pictogram, cx - x0, cy - y0, r, one)
        inner = 0.12 * r  # thin strokes: a tighter core
    else:
        mask.disc(cx - x0, cy - y0, r, one)
        inner = 0.22 * r
    m = mask.img
    rim = cv2.GaussianBlur(m, (0, 0), max(0.4, 0.08 * r))
    core = np.clip((cv2.GaussianBlur(m, (0, 0), max(0.5, inner)) - 0.75) / 0.2, 0.0, 1.0)
    halo = cv2.GaussianBlur(m, (0, 0), max(1.0, 0.5 * r))
    patch = (core[..., None] * (np.array(CAM_CORE[colour], np.float32) * 65535.0)
             + rim[..., None] * (np.array(CAM_RING[colour], np.float32) * RING_LEVEL)
             + halo[..., None] * (np.array(CAM_HALO[colour], np.float32) * HALO_LEVEL))
    _add_patch(cv, x0, y0, patch * np.float32(level))


def _sky_behind(cv: _Canvas, box: tuple[float, float, float, float], sky: Any, strength: float) -> None:
    """Add bright sky (the sun's surroundings) around a head's box: the head is seen against the light."""
    x, y, w, h = box
    sx, sy = max(0.8 * w, 0.4 * h, 2.0), max(0.6 * h, 2.0)
    x0, y0 = int(np.floor(x + w / 2 - 2.5 * sx)), int(np.floor(y + h / 2 - 2.5 * sy))
    gx = np.arange(int(5 * sx) + 2, dtype=np.float32) + x0 - (x + w / 2)
    gy = np.arange(int(5 * sy) + 2, dtype=np.float32) + y0 - (y + h / 2)
    weight = np.exp(-0.5 * (gy[:, None] / sy) ** 2) * np.exp(-0.5 * (gx[None, :] / sx) ** 2)
    colour = np.array(sky, np.float32) / max(sky) * 20000.0 * strength
    _add_patch(cv, x0, y0, weight[..., None] * colour)


def _draw_light_camera(cv: _Canvas, spec: LightSpec, box: tuple[int, int, int, int], state: str, frame: int,
                       scene: dict[str, Any]) -> None:
    """Draw a head for lamps="camera": back-lit silhouette or sun-washed face, lenses, lit lamps, pictograms."""
    x, y, w, h = box
    gain, look = scene["gain"], spec.look
    amb = max(gain, 0.35)
    dark = 0.25 if look["backlit"] else 1.0  # a face against bright sky is exposed dark
    if look["backlit"] and not spec.reflected:
        _sky_behind(cv, box, scene["sky"][1], look["backlit"])
    housing = np.array((160, 170, 170), np.float32) * max(gain, 0.4) * dark
    if not spec.reflected:
        _, v_road = project(spec.x, 0.0, spec.z_now)
        pole = max(1.0, w * 0.18)
        cv.rect(x + w / 2 - pole / 2, y + h, x + w / 2 + pole / 2, max(y + h, v_road), housing * 1.5)
    cv.rect(x, y, x + w, y + h, housing)
    sun = look["sun"]
    if sun:  # sunlight on the housing's face
        cv.rect(x, y, x + w, y + h, housing + np.float32(2500.0 * sun))
    if spec.direction in ("back", "left", "right"):
        cv.rect(x + w * 0.15, y + h * 0.05, x + w * 0.85, y + h * 0.95, housing * 1.8)
        return
    centres, r = _lamp_geometry(spec, box)
    level = look["level"] * (0.6 if spec.reflected else 1.0) * (1.5 if scene["dusk"] else 1.0)
    grey = np.ones(3, np.float32)
    for i, (colour, lit) in enumerate(_lit_lamps(spec, state)):
        cx, cy = centres[i]
        tint = np.array(CAM_UNLIT[colour], np.float32)
        # dark tinted lens; sun in it (phantom light) makes it greyish bright
        cv.disc(cx, cy, r, tint * UNLIT_LEVEL * amb * dark + (0.3 * tint + 0.7 * grey) * np.float32(7000.0 * sun))
        if r >= 2.5:  # faint specular highlight of the lens
            cv.disc(cx - 0.35 * r, cy - 0.4 * r, 0.18 * r, grey * np.float32(2200.0 * amb * dark))
        pictogram = spec.pictogram
        if colour == "white":  # a tram signal shows one white bar: horizontal = stop (red), vertical = go (green)
            pictogram = "tram_go" if state == "green" else "tram"
        if lit:
            _lit_shape(cv, cx, cy, r, pictogram, colour, level * float(look["pulse"][frame, i]))


def _motion_blur(cv: _Canvas, box: tuple[int, int, int, int], z: float, travel: float) -> None:
    """Smear a light's surroundings along its image motion while the ego moves ``travel`` m during exposure."""
    import cv2

    x, y, w, h = box
    u, v = x + w / 2, y + h / 2
    du, dv = (u - CX) * travel / z, (v - CY) * travel / z  # d(u, v) = (u - cx, v - cy) * dz / z
    length = float(np.hypot(du, dv))
    if length < 0.5:
        return
    k = 2 * int(np.ceil(length / 2)) + 1
    kernel = np.zeros((k, k), np.float32)
    c = k // 2
    ex, ey = du / 2, dv / 2
    cv2.line(kernel, (int(round(c - ex)), int(round(c - ey))), (int(round(c + ex)), int(round(c + ey))), 1.0, 1)
    kernel /= kernel.sum()
    pad = int(0.8 * max(w, h)) + k
    X0, Y0 = max(x - pad, 0), max(y - pad, 0)
    X1, Y1 = min(x + w + pad, cv.w), min(y + h + pad, cv.h)
    if X1 - X0 > k and Y1 - Y0 > k:
        cv.img[Y0:Y1, X0:X1] = cv2.filter2D(cv.img[Y0:Y1, X0:X1], -1, kernel, borderType=cv2.BORDER_REPLICATE)


def _camera_finish(cv: _Canvas, cam: dict[str, Any]) -> None:
    """Exposure and white balance, veiling glare of a sun-washed sequence, bloom (near and wide), optics."""
    import cv2

    cv.img *= np.array(cam["wb"], np.float32) * np.float32(cam["exposure"])
    if cam["sun"]:
        cv.img += np.float32(1200.0 * cam["sun"])
    hot = np.maximum(cv.img - 20000, 0)
    glow = cv2.GaussianBlur(hot, (0, 0), 3.0)
    wide = cv2.resize(hot, (cv.w // 4, cv.h // 4), interpolation=cv2.INTER_AREA)
    wide = cv2.resize(cv2.GaussianBlur(wide, (0, 0), 3.0), (cv.w, cv.h), interpolation=cv2.INTER_LINEAR)
    cv.img += 0.35 * glow + 0.2 * wide
    cv.img = cv2.GaussianBlur(cv.img, (0, 0), 0.7)


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


def _draw_truck(cv: _Canvas, scene: dict[str, Any], z_ego: float, frame: int,
                drawn: list[tuple[LightSpec, tuple[int, int, int, int], str]]
                ) -> list[tuple[LightSpec, tuple[int, int, int, int], str]]:
    """Draw the truck ahead over everything behind it; return the drawn lights it leaves at least half visible."""
    truck = scene["truck"]
    t = frame * truck["frame_interval_s"]
    x, z = truck_x(truck, t), truck["z"]
    u0, v0 = project(x - TRUCK_W / 2, TRUCK_H, z)
    u1, v1 = project(x + TRUCK_W / 2, 0.0, z)
    cv.rect(u0, v0, u1, v1, np.array(truck["color"], np.float32) * scene["gain"])
    cv.rect(u0, v0 + 0.85 * (v1 - v0), u1, v1, np.array((250.0, 250.0, 260.0), np.float32) * scene["gain"])
    kept = []
    for spec, (bx, by, bw, bh), state in drawn:
        ix = max(0.0, min(bx + bw, u1) - max(bx, u0))
        iy = max(0.0, min(by + bh, v1) - max(by, v0))
        if ix * iy < 0.5 * bw * bh:  # a light more than half hidden is not labelled (no camera reads it)
            kept.append((spec, (bx, by, bw, bh), state))
    return kept


def render_frame(scene: dict[str, Any], z_ego: float, frame: int, rng: np.random.Generator,
                 width: int = IMAGE_WIDTH, height: int = IMAGE_HEIGHT
                 ) -> tuple[np.ndarray, list[tuple[LightSpec, tuple[int, int, int, int], str]]]:
    """Render one frame; returns (raw 12-bit GRBG uint16 image, [(light, integer label box, state)])."""
    import cv2

    cam = scene.get("camera")  # lamps="camera" only
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
        if cam is None:
            _draw_light(cv, spec, box, state, scene["gain"])
        else:
            _draw_light_camera(cv, spec, box, state, frame, scene)
        if spec.occluder is not None:
            f0x, f0y, f1x, f1y = spec.occluder
            cv.rect(box[0] + f0x * box[2], box[1] + f0y * box[3], box[0] + f1x * box[2], box[1] + f1y * box[3],
                    np.array((220, 330, 260), np.float32) * scene["gain"])
        if cam is not None:
            _motion_blur(cv, box, z, scene["speed"] * cam["t_exp"])
        if clip_box(*box, width, height) is not None:
            if scene.get("seen_states"):
                state = seen_state(spec, box, state, width, height)
            drawn.append((spec, box, state))
    if scene.get("truck"):
        drawn = _draw_truck(cv, scene, z_ego, frame, drawn)
    if cam is not None:
        _camera_finish(cv, cam)
        return encode_raw(cv.img, rng), drawn
    glow = cv2.GaussianBlur(np.maximum(cv.img - 20000, 0), (0, 0), 3.0)
    cv.img += 0.35 * glow
    cv.img = cv2.GaussianBlur(cv.img, (0, 0), 0.7)
    return encode_raw(cv.img, rng), drawn
