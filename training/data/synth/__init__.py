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

Modules, in the order the data flows:

- :mod:`.model`: :class:`SynthConfig`, :data:`PRESETS` and the ground truth (:class:`SynthDataset`).
- :mod:`.camera`: DTLD left-camera intrinsics and the projection.
- :mod:`.scene`: scene sampling (lights, buildings, distractors) from the sequence's RNG.
- :mod:`.render`: drawing a scene at one ego position in linear radiance.
- :mod:`.sensor`: GRBG Bayer sampling, noise and 12-bit companding.
- :mod:`.labels`: v2.0 JSON and v1.0 YAML label writers.
- :mod:`.generate`: sequences and whole datasets (DTLD tree, or converted to YOLO).
- :mod:`.bag`: a sequence as a rosbag2 (mcap).

Import the public names from this package (``from training.data.synth import make_synthetic_dtld``).
"""

from training.data.synth.bag import write_drive_bag
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
    "render_frame", "v1_class_id", "write_drive_bag", "write_labels",
]
