"""Label writers: DTLD v2.0 JSON (every attribute) and v1.0 YAML (6-digit class ids, exact line layout)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kd_traffic_light.core.atomic_io import atomic_write_text
from training.data.synth.model import SynthFrame
from training.data.synth.scene import LightSpec

V1_PREFIX = "/scratch/fs2/DTLD_final"
ASPECT_NAMES = {1: "one_aspect", 2: "two_aspects", 3: "three_aspects", 4: "four_aspects"}
V1_DIGITS = {
    "direction": {"front": "1", "back": "2", "left": "3", "right": "4"},
    "state": {"off": "0", "red": "1", "yellow": "2", "red_yellow": "3", "green": "4", "unknown": "0"},
    "pictogram": {"circle": "0", "arrow_straight": "1", "arrow_left": "2", "arrow_straight_left": "3",
                  "arrow_right": "4", "pedestrian": "8", "bicycle": "9", "tram": "0", "unknown": "0",
                  "pedestrian_bicycle": "8"},
}


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


def _write_v2(path: Path, frames: list[SynthFrame]) -> None:
    """Write a v2.0 label file (``{"images": [...]}``, indent 1, as the official files)."""
    atomic_write_text(path, json.dumps({"images": [_v2_entry(f) for f in frames]}, indent=1) + "\n")


def write_labels(root: Path, frames: list[SynthFrame], write_v1: bool) -> tuple[dict[str, Path], dict[str, Path]]:
    """Write DTLD_{all,train,test} (v2.0 JSON, and v1.0 YAML if ``write_v1``) and one v2.0 file per city.

    Returns:
        ``(v2, v1)``: label file by ``all``/``train``/``test`` (``v1`` empty without ``write_v1``).
    """
    v2dir, v1dir = root / "DTLD_Labels_v2.0" / "v2.0", root / "DTLD_labels_v1.0"
    groups = {"all": frames, "train": [f for f in frames if f.split == "train"],
              "test": [f for f in frames if f.split == "test"]}
    v2, v1 = {}, {}
    for name, group in groups.items():
        v2[name] = v2dir / f"DTLD_{name}.json"
        _write_v2(v2[name], group)
        if write_v1:
            v1[name] = v1dir / f"DTLD_{name}.yml"
            atomic_write_text(v1[name], "".join(_v1_item(f) for f in group))
    for city in sorted({f.key.split("/")[0] for f in frames}):
        _write_v2(v2dir / f"{city}.json", [f for f in frames if f.key.split("/")[0] == city])
    return v2, v1
