"""DTLD label files -> typed records: v2.0 JSON and v1.0 YAML parsing, attribute vocabulary, class mapping.

Usage: ``frames = load_labels(path, warns)`` reads either version into :class:`DtldFrame` records whose lights
carry v2-style attributes (a v1.0 6-digit ``class_id`` is decoded by :func:`v1_attributes`); bad entries are
skipped with a counted :class:`Warn`, an unparsable file raises :class:`DtldFormatError`. :func:`light_class`
maps a light to its YOLO class (:data:`CLASS_NAMES`). Field meanings, values and the v1.0 digits:
docs/dtld_format.md, sections 3-5.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kd_traffic_light.core.classes import DEFAULT_SCHEME, SCHEMES, class_id

# ----------------------------------------------------------------------------------------------- vocabulary
#: v2.0 attribute vocabularies (official Python docstring + C++ header + values seen in the real data).
ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "direction": ("front", "back", "left", "right"),
    "relevance": ("relevant", "not_relevant"),
    "occlusion": ("occluded", "not_occluded"),
    "orientation": ("vertical", "horizontal"),
    "aspects": ("one_aspect", "two_aspects", "three_aspects", "four_aspects", "unknown"),
    "state": ("red", "yellow", "red_yellow", "green", "off", "unknown"),
    "pictogram": (
        "circle", "arrow_left", "arrow_right", "arrow_straight", "arrow_straight_left", "tram",
        "pedestrian", "bicycle", "pedestrian_bicycle", "unknown",
    ),
    "reflection": ("reflected", "not_reflected"),
}

# v1.0 6-digit class id, digits left to right (docs/dtld_format.md, "The 6-digit class_id").
V1_DIRECTION = {"1": "front", "2": "back", "3": "left", "4": "right"}
V1_RELEVANCE = {"0": "not_relevant", "1": "relevant", "2": "not_relevant", "3": "relevant", "4": "not_relevant"}
V1_ORIENTATION = {
    "1": "horizontal", "2": "vertical", "3": "horizontal", "4": "vertical",
    "6": "horizontal", "7": "vertical", "8": "horizontal", "9": "vertical",
}
V1_ASPECTS = {"1": "one_aspect", "2": "two_aspects", "3": "three_aspects", "4": "four_aspects"}
V1_STATE = {"0": "off", "1": "red", "2": "yellow", "3": "red_yellow", "4": "green", "5": "unknown"}
V1_PICTOGRAM = {
    "0": "circle", "1": "arrow_straight", "2": "arrow_left", "3": "arrow_straight_left",
    "4": "arrow_right", "5": "unknown", "7": "unknown", "8": "pedestrian", "9": "bicycle",
}


class DtldFormatError(ValueError):
    """A label file cannot be parsed at all (the message names the file, position and field)."""


# ----------------------------------------------------------------------------------------------- records
@dataclass
class Warn:
    """A counted warning: kind, the file and field it concerns, and a message."""

    kind: str
    file: str
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """Return a JSON-ready dict."""
        return {"kind": self.kind, "file": self.file, "field": self.field, "message": self.message}


@dataclass
class DtldLight:
    """One annotated light: pixel box (upper-left x, y, w, h), ids and v2-style attributes."""

    x: int
    y: int
    w: int
    h: int
    unique_id: int | None = None
    track_id: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class DtldFrame:
    """One image entry of a label file; ``key`` is ``City/Route/Sequence/file`` (last 4 components)."""

    key: str
    lights: list[DtldLight]
    source: str
    index: int
    time_stamp: float | None = None

    @property
    def sequence(self) -> str:
        """``City/Route/Sequence`` of the frame."""
        return self.key.rsplit("/", 1)[0]


# ----------------------------------------------------------------------------------------------- parsing
def image_key(path: str) -> str:
    """Return the last four components ``City/Route/Sequence/file`` of a v1/v2 image path.

    This is the official re-rooting (``data_base_dir`` + last 4 components) for both versions.
    """
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if len(parts) < 4:
        raise ValueError(f"image path {path!r} has fewer than 4 components City/Route/Sequence/file")
    return "/".join(parts[-4:])


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_attributes(attrs: dict[str, str], src: str, where: str, warns: list[Warn]) -> None:
    for name, allowed in ATTRIBUTE_VALUES.items():
        if name == "reflection" and name not in attrs:
            continue  # v1 has no reflection flag
        value = attrs.get(name)
        if value not in allowed:
            warns.append(Warn("unknown_attribute", src, f"{where}.attributes.{name}",
                              f"value {value!r} not in {list(allowed)}"))


def _entry_key(entry: Any, path_field: str, src: str, where: str, warns: list[Warn]) -> str | None:
    """Return the image key in an entry's ``path_field``; None, with a warning (image skipped), when unusable."""
    if not isinstance(entry, dict) or not isinstance(entry.get(path_field), str):
        warns.append(Warn("malformed_entry", src, f"{where}.{path_field}", "expected a string; image skipped"))
        return None
    try:
        return image_key(entry[path_field])
    except ValueError as exc:
        warns.append(Warn("malformed_entry", src, f"{where}.{path_field}", f"{exc}; image skipped"))
        return None


def _parse_v2_light(obj: Any, src: str, where: str, warns: list[Warn]) -> DtldLight | None:
    if not isinstance(obj, dict):
        warns.append(Warn("malformed_entry", src, where, f"expected an object, got {type(obj).__name__}"))
        return None
    for key in ("x", "y", "w", "h"):
        if not _is_int(obj.get(key)):
            warns.append(Warn("malformed_entry", src, f"{where}.{key}",
                              f"expected an integer, got {obj.get(key)!r}; light skipped"))
            return None
    attrs = obj.get("attributes")
    if not isinstance(attrs, dict):
        warns.append(Warn("malformed_entry", src, f"{where}.attributes",
                          f"expected an object, got {attrs!r}; light skipped"))
        return None
    attrs = {str(k): v for k, v in attrs.items()}
    _check_attributes(attrs, src, where, warns)
    tid = obj.get("track_id")
    return DtldLight(obj["x"], obj["y"], obj["w"], obj["h"], obj.get("unique_id"),
                     None if tid is None else str(tid), attrs)


def load_v2_json(path: str | os.PathLike, warns: list[Warn]) -> list[DtldFrame]:
    """Read a DTLD v2.0 label file (``{"images": [...]}``).

    Args:
        path: the JSON file.
        warns: receives counted warnings for bad entries (the entry or light is skipped).

    Raises:
        DtldFormatError: not valid JSON or no ``images`` list.
    """
    path = Path(path)
    src = path.name
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as exc:
        raise DtldFormatError(f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise DtldFormatError(f"{path}: not UTF-8 text: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise DtldFormatError(f"{path}: field 'images': expected a top-level object with an 'images' list")
    frames = []
    for i, entry in enumerate(doc["images"]):
        where = f"images[{i}]"
        key = _entry_key(entry, "image_path", src, where, warns)
        if key is None:
            continue
        labels = entry.get("labels", [])
        if not isinstance(labels, list):
            warns.append(Warn("malformed_entry", src, f"{where}.labels", "expected a list; image skipped"))
            continue
        lights = [_parse_v2_light(o, src, f"{where}.labels[{j}]", warns) for j, o in enumerate(labels)]
        ts = entry.get("time_stamp")
        frames.append(DtldFrame(key, [li for li in lights if li is not None], src, i,
                                float(ts) if isinstance(ts, (int, float)) else None))
    return frames


def v1_attributes(class_id: Any, src: str, where: str, warns: list[Warn]) -> dict[str, str] | None:
    """Decode a v1.0 6-digit ``class_id`` into v2-style attributes (relevance: digit 2 in {1, 3}).

    Unknown digits give an ``unknown_attribute`` warning and the value ``unknown``; a class id that is
    not 6 digits returns None (light skipped).
    """
    text = str(class_id)
    if not _is_int(class_id) or len(text) != 6:
        warns.append(Warn("malformed_entry", src, f"{where}.class_id",
                          f"expected a 6-digit integer, got {class_id!r}; light skipped"))
        return None
    tables = (("direction", V1_DIRECTION), ("relevance", V1_RELEVANCE), ("orientation", V1_ORIENTATION),
              ("aspects", V1_ASPECTS), ("state", V1_STATE), ("pictogram", V1_PICTOGRAM))
    attrs: dict[str, str] = {}
    for digit, (name, table) in zip(text, tables):
        if digit not in table:
            warns.append(Warn("unknown_attribute", src, f"{where}.class_id",
                              f"{name} digit {digit!r} of {text} not in {sorted(table)}"))
        attrs[name] = table.get(digit, "unknown")
    attrs["relevance"] = "relevant" if text[1] in "13" else "not_relevant"
    attrs["occlusion"] = "occluded" if text[1] == "4" else "not_occluded"
    if text[2] in "6789":
        attrs["pictogram"] = "tram"
    return attrs


def _parse_v1_light(obj: Any, src: str, where: str, warns: list[Warn]) -> DtldLight | None:
    if not isinstance(obj, dict):
        warns.append(Warn("malformed_entry", src, where, "expected a mapping; light skipped"))
        return None
    bad = [k for k in ("x", "y", "width", "height") if not _is_int(obj.get(k))]
    if bad:
        warns.append(Warn("malformed_entry", src, f"{where}.{bad[0]}",
                          f"expected an integer, got {obj.get(bad[0])!r}; light skipped"))
        return None
    attrs = v1_attributes(obj.get("class_id"), src, where, warns)
    if attrs is None:
        return None
    tid = obj.get("track_id")
    return DtldLight(obj["x"], obj["y"], obj["width"], obj["height"], obj.get("unique_id"),
                     None if tid is None else str(tid), attrs)


def _yaml_load(text: str) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # noqa: S506 (safe loader)


def load_v1_yaml(path: str | os.PathLike, warns: list[Warn]) -> list[DtldFrame]:
    """Read a DTLD v1.0 label file (YAML list of ``objects``/``path``/... items, absolute foreign paths).

    Raises:
        DtldFormatError: not valid YAML or not a list.
    """
    import yaml

    path = Path(path)
    src = path.name
    try:
        doc = _yaml_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        pos = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise DtldFormatError(f"{path}: malformed YAML{pos}: {getattr(exc, 'problem', exc)}") from exc
    except UnicodeDecodeError as exc:
        raise DtldFormatError(f"{path}: not UTF-8 text: {exc}") from exc
    if not isinstance(doc, list):
        raise DtldFormatError(f"{path}: expected a YAML list of images, got {type(doc).__name__}")
    frames = []
    for i, entry in enumerate(doc):
        where = f"[{i}]"
        key = _entry_key(entry, "path", src, where, warns)
        if key is None:
            continue
        objects = entry.get("objects") or []
        if not isinstance(objects, list):
            warns.append(Warn("malformed_entry", src, f"{where}.objects", "expected a list; image skipped"))
            continue
        lights = [_parse_v1_light(o, src, f"{where}.objects[{j}]", warns) for j, o in enumerate(objects)]
        lights = [li for li in lights if li is not None]
        ts = entry.get("time_stamp")
        frames.append(DtldFrame(key, lights, src, i, float(ts) if isinstance(ts, (int, float)) else None))
    return frames


def load_labels(path: str | os.PathLike, warns: list[Warn]) -> list[DtldFrame]:
    """Read a label file by extension: ``.json`` (v2.0) or ``.yml``/``.yaml`` (v1.0)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: label file not found")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return load_v2_json(path, warns)
    if suffix in (".yml", ".yaml"):
        return load_v1_yaml(path, warns)
    raise ValueError(f"{path}: unknown label file type {suffix!r}, expected .json (v2.0) or .yml (v1.0)")


# ----------------------------------------------------------------------------------------------- classes
#: YOLO class names of the default scheme, in class-id order (docs/dtld_format.md, section 5).
CLASS_NAMES = SCHEMES[DEFAULT_SCHEME]


def light_class(light: DtldLight, scheme: str = DEFAULT_SCHEME) -> int | None:
    """Return the light's class id in ``scheme`` (kd_traffic_light/core/classes.py).

    None when the scheme cannot place it: relevance unknown, or (``relevance_state``) state ``unknown`` or missing.
    """
    rel, state = light.attributes.get("relevance"), light.attributes.get("state")
    return class_id(scheme, rel if isinstance(rel, str) else None, state if isinstance(state, str) else None)

