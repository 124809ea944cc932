"""Synthetic street scenes written in the real DTLD on-disk format (frames, v2.0 JSON and v1.0 YAML labels).

Each sequence is one approach to an intersection, rendered in linear radiance and encoded like the DTLD camera
(GRBG Bayer mosaic, noise, 12-bit companding), so the official decode looks like DTLD's. Everything is a pure
function of the seed. Import the public names from this package::

    from training.data.synth import make_synthetic_dtld      # or: python -m training data synth --out DIR

What a scene holds, the tree written and the modules in data-flow order: docs/training.md, "Synthetic
DTLD-format data"; the format itself: docs/dtld_format.md.
"""

from training.data.synth.bag import write_drive_bag, write_drive_truth
from training.data.synth.camera import CAM_HEIGHT, CX, CY, D_LEFT, FX, K_LEFT, P_LEFT, R_LEFT, project
from training.data.synth.generate import CITIES, VEHICLE, generate_sequence, make_synthetic_dtld, make_synthetic_yolo
from training.data.synth.labels import ASPECT_NAMES, V1_DIGITS, V1_PREFIX, v1_class_id, write_labels
from training.data.synth.model import PRESETS, SynthConfig, SynthDataset, SynthFrame, SynthLight
from training.data.synth.render import LAMP_BGR, STATE_LAMPS, render_frame
from training.data.synth.scene import HOUSING_W, LightSpec
from training.data.synth.sensor import compand, decompand, encode_raw, mosaic_grbg

__all__ = [
    "ASPECT_NAMES", "CAM_HEIGHT", "CITIES", "CX", "CY", "D_LEFT", "FX", "HOUSING_W", "K_LEFT", "LAMP_BGR",
    "PRESETS", "P_LEFT", "R_LEFT", "STATE_LAMPS", "V1_DIGITS", "V1_PREFIX", "VEHICLE", "LightSpec",
    "SynthConfig", "SynthDataset", "SynthFrame", "SynthLight", "compand", "decompand", "encode_raw",
    "generate_sequence", "make_synthetic_dtld", "make_synthetic_yolo", "mosaic_grbg", "project",
    "render_frame", "v1_class_id", "write_drive_bag", "write_drive_truth", "write_labels",
]
