"""Crops of single signal heads per state, and a labelled PNG grid of them (docs/images/lamp_states.png).

Each crop is one relevant head placed in a freshly sampled scene (day or dusk, its buildings and sky), forced
to a state and a look (sun-washed, back-lit, an LED pulse frame, a pictogram), rendered through the usual
camera and sensor model, decoded as DTLD frames are, cut out with a margin and scaled down 2048 -> 512 as
the converter does. ``python -m training data synth-crops --out PATH`` writes the grid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data.synth.camera import CX, CY, FX
from training.data.synth.model import SynthConfig
from training.data.synth.render import render_frame
from training.data.synth.scene import _sample_scene

#: States shown, one grid row each.
CROP_STATES = ("red", "yellow", "red_yellow", "green", "off")
#: Frame size a crop's scene is rendered at: the head is placed inside it, so the rest is not drawn.
_FRAME = (640, 512)
_DOWNSCALE = 4  # 2048 -> 512, the usual training resolution


@dataclass(frozen=True)
class CropLook:
    """One crop's conditions: height in px after the 2048 -> 512 downscale, day/dusk and the camera effects.

    ``sun``, ``backlit`` and ``pulse`` apply to lamps="camera" only (0 = off; ``pulse`` is the lit lamps'
    brightness factor of a missed LED pulse). ``neutral`` fixes exposure and white balance at 1.
    """

    height: float = 30.0
    dusk: bool = False
    sun: float = 0.0
    backlit: float = 0.0
    pulse: float = 1.0
    pictogram: str = "circle"
    neutral: bool = False

    def caption(self, lamps: str) -> tuple[str, str]:
        """Two short caption lines under a grid cell: size and time of day, then pictogram and effects."""
        words = [self.pictogram.replace("arrow_", "")] if self.pictogram != "circle" else []
        if lamps == "camera":
            words += ["sun"] * bool(self.sun) + ["back-lit"] * bool(self.backlit) + ["pulse"] * (self.pulse < 1)
        return f"{self.height:.0f}px {'dusk' if self.dusk else 'day'}", " ".join(words)


#: Conditions of a grid row, cycled for more columns (sizes 10-60 px tall after the downscale).
GRID_LOOKS = (
    CropLook(40.0), CropLook(24.0, dusk=True), CropLook(30.0, sun=0.9), CropLook(36.0, backlit=1.0),
    CropLook(12.0), CropLook(16.0, dusk=True), CropLook(44.0, pictogram="arrow_left"), CropLook(60.0),
    CropLook(28.0, pulse=0.25), CropLook(50.0, dusk=True, pictogram="arrow_straight"),
    CropLook(40.0, pictogram="tram"),
)


def render_light(state: str, look: CropLook = CropLook(), lamps: str = "camera", seed: int = 0
                 ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Render one vertical three-lamp head showing ``state`` in a sampled scene.

    Args:
        state: red, yellow, red_yellow, green or off.
        look: size and conditions.
        lamps: ``camera`` or ``flat`` (:attr:`SynthConfig.lamps`).
        seed: scene seed.

    Returns:
        (8-bit BGR decode of the rendered frame at full resolution (``_FRAME``), the head's box x, y, w, h).
    """
    from training.data.dtld.images import decode_bayer

    aspects = 3
    short = look.height * _DOWNSCALE / (aspects * 0.3 + 0.1) * 0.32  # short side at 2048 for that height
    cfg = SynthConfig(size_px=(short, short), tiny_fraction=0.0, ego_heads=(1, 1), extra_lights=(0, 0),
                      dusk_fraction=1.0 if look.dusk else 0.0, occlusion_p=0.0, reflection_p=0.0,
                      distractors=(0, 0), lamps=lamps)
    rng = np.random.default_rng([seed, 31])
    scene = _sample_scene(rng, cfg, 1, np.random.default_rng([seed, 31, 7]))
    spec = scene["lights"][0]
    spec.states, spec.pictogram, spec.aspects, spec.orientation = [state], look.pictogram, aspects, "vertical"
    # place the head's bottom at (u, v) = (320, 420) of the small frame, at its sampled distance
    spec.x = (_FRAME[0] / 2 - CX) * spec.z / FX
    spec.y = 1.3 + (CY - 0.82 * _FRAME[1]) * spec.z / FX
    if lamps == "camera":
        spec.look.update(sun=look.sun, backlit=look.backlit, pulse=np.full((1, 4), look.pulse, np.float32))
        scene["camera"]["sun"] = look.sun
        if look.neutral:
            scene["camera"].update(exposure=1.0, wb=(1.0, 1.0, 1.0))
            spec.look["level"] = 1.0
    raw, drawn = render_frame(scene, 0.0, 0, rng, *_FRAME)
    box = next(b for s, b, _ in drawn if s is spec)
    return decode_bayer(raw), box


def crop_light(bgr: np.ndarray, box: tuple[int, int, int, int], downscale: int = _DOWNSCALE) -> np.ndarray:
    """Cut a light's box with a margin out of a decoded frame and scale it down (INTER_AREA, as the converter)."""
    import cv2

    x, y, w, h = box
    mx, my = int(0.8 * w) + 4, int(0.25 * h) + 4
    x0, y0 = max(x - mx, 0), max(y - my, 0)
    x1, y1 = min(x + w + mx, bgr.shape[1]), min(y + h + my, bgr.shape[0])
    crop = bgr[y0:y1, x0:x1]
    size = (max(1, round(crop.shape[1] / downscale)), max(1, round(crop.shape[0] / downscale)))
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA)


def crop_grid(out: str | os.PathLike, lamps: str = "camera", per_state: int = 10, seed: int = 0,
              cell: tuple[int, int] = (68, 112)) -> Path:
    """Write a PNG grid of light crops, one labelled row per state of :data:`CROP_STATES`.

    Column ``j`` uses ``GRID_LOOKS[j % len(GRID_LOOKS)]`` and scene seed ``seed * 1000 + j``, so each column
    shows the same scene and conditions in every row. Crops are shown at the 512-wide training resolution,
    enlarged with nearest-neighbour to the cell height (``cell`` = (width, height) of the image part).

    Returns:
        The path written.
    """
    import cv2

    if per_state < 1:
        raise ValueError(f"per_state={per_state}: expected >= 1")
    label_w, cap_h, head_h = 90, 24, 18
    cw, ch = cell
    grid = np.full((head_h + len(CROP_STATES) * (ch + cap_h + 4), label_w + per_state * (cw + 4), 3), 255,
                   np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(grid, f"lamps={lamps}", (4, 13), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for row, state in enumerate(CROP_STATES):
        top = head_h + row * (ch + cap_h + 4)
        cv2.putText(grid, state, (4, top + ch // 2), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for j in range(per_state):
            look = GRID_LOOKS[j % len(GRID_LOOKS)]
            bgr, box = render_light(state, look, lamps, seed * 1000 + j)
            crop = crop_light(bgr, box)
            s = min(ch / crop.shape[0], cw / crop.shape[1])
            crop = cv2.resize(crop, (max(1, int(crop.shape[1] * s)), max(1, int(crop.shape[0] * s))),
                              interpolation=cv2.INTER_NEAREST)
            left = label_w + j * (cw + 4) + (cw - crop.shape[1]) // 2
            grid[top + (ch - crop.shape[0]) // 2:][:crop.shape[0], left:left + crop.shape[1]] = crop
            for k, line in enumerate(look.caption(lamps)):
                cv2.putText(grid, line, (label_w + j * (cw + 4), top + ch + 10 + 10 * k), font, 0.3, (60, 60, 60),
                            1, cv2.LINE_AA)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), grid, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise RuntimeError(f"{out}: PNG encoding failed")
    return out
