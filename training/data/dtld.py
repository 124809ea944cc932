"""DriveU Traffic Light Dataset (DTLD) -> YOLO conversion.

Reads the released label files (v2.0 JSON, v1.0 YAML), decodes the 12-bit GRBG Bayer TIFFs exactly as
the official Python parser does (``cv2.COLOR_BAYER_GB2BGR`` bilinear demosaic, right shift by 4 =
floor(x / 16), cast to uint8, BGR) and writes a YOLO dataset::

    out/images/<split>/<City>/<Route>/<Sequence>/<stem>.png
    out/labels/<split>/<City>/<Route>/<Sequence>/<stem>.txt     "cls cx cy w h", 0 relevant 1 not_relevant
    out/data.yaml   out/summary.json   out/.dtld_convert.json (options fingerprint, for resuming)

Every output file is written atomically; a re-run skips images already written and produces
byte-identical output; a killed run restarted ends with the same dataset as an uninterrupted one.
Nothing to convert is an error (``RunError``, exit 1), not an empty dataset: see :func:`convert_dtld`.
The format facts this relies on (layout, label fields, attribute values, Bayer decode): docs/dtld_format.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kd_traffic_light.core.atomic_io import TMP_MARK, atomic_write_bytes
from training.errors import RunError, UsageError

LOGGER = logging.getLogger(__name__)

IMAGE_WIDTH = 2048
IMAGE_HEIGHT = 1024
CLASS_NAMES = ("relevant", "not_relevant")
SPLITS = ("train", "val", "test")
STATE_FILE = ".dtld_convert.json"
SUMMARY_FILE = "summary.json"
MAX_LISTED_WARNINGS = 500

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


# ----------------------------------------------------------------------------------------------- decoding
def decode_bayer(raw: np.ndarray) -> np.ndarray:
    """Decode a raw DTLD frame exactly as the official Python parser does.

    Args:
        raw: uint16 array (H, W), 12-bit GRBG Bayer codes, LSB aligned.

    Returns:
        uint8 BGR image (H, W, 3) = uint8(floor(demosaic_GB2BGR(raw) / 16)) (wraps above 4095 like the
        official ``astype(np.uint8)``).
    """
    import cv2

    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise ValueError(f"expected a 2-D uint16 Bayer image, got {raw.dtype} shape {raw.shape}")
    bgr16 = cv2.cvtColor(raw, cv2.COLOR_BAYER_GB2BGR)
    return np.right_shift(bgr16, 4).astype(np.uint8)


def read_dtld_image(path: str | os.PathLike, size: tuple[int, int] = (IMAGE_WIDTH, IMAGE_HEIGHT)) -> np.ndarray:
    """Read a ``_k0.tiff`` and return its official 8-bit BGR decode.

    Args:
        path: TIFF file.
        size: expected (width, height) of the raw frame.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: unreadable/truncated TIFF, wrong dtype or wrong size (message names the file).
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image file not found")
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ValueError(f"{path}: unreadable or truncated TIFF (OpenCV could not decode it)")
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise ValueError(f"{path}: expected 1-channel uint16 Bayer TIFF, got {raw.dtype} shape {raw.shape}")
    if (raw.shape[1], raw.shape[0]) != tuple(size):
        raise ValueError(
            f"{path}: image size {raw.shape[1]}x{raw.shape[0]}, expected {size[0]}x{size[1]}"
        )
    return decode_bayer(raw)


# ----------------------------------------------------------------------------------------------- labels
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
        lights = []
        for j, obj in enumerate(objects):
            ow = f"{where}.objects[{j}]"
            if not isinstance(obj, dict):
                warns.append(Warn("malformed_entry", src, ow, "expected a mapping; light skipped"))
                continue
            bad = [k for k in ("x", "y", "width", "height") if not _is_int(obj.get(k))]
            if bad:
                warns.append(Warn("malformed_entry", src, f"{ow}.{bad[0]}",
                                  f"expected an integer, got {obj.get(bad[0])!r}; light skipped"))
                continue
            attrs = v1_attributes(obj.get("class_id"), src, ow, warns)
            if attrs is None:
                continue
            tid = obj.get("track_id")
            lights.append(DtldLight(obj["x"], obj["y"], obj["width"], obj["height"], obj.get("unique_id"),
                                    None if tid is None else str(tid), attrs))
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


# ----------------------------------------------------------------------------------------------- boxes
def light_class(light: DtldLight) -> int | None:
    """Return 0 for ``relevant``, 1 for ``not_relevant``, None when relevance is unknown."""
    rel = light.attributes.get("relevance")
    return {"relevant": 0, "not_relevant": 1}.get(rel) if isinstance(rel, str) else None


def clip_box(x: int, y: int, w: int, h: int, width: int = IMAGE_WIDTH,
             height: int = IMAGE_HEIGHT) -> tuple[int, int, int, int] | None:
    """Clip the box ``[x, x+w] x [y, y+h]`` to the image; return (x1, y1, x2, y2) or None when empty."""
    x1, y1 = max(0, x), max(0, y)
    x2, y2 = min(width, x + w), min(height, y + h)
    if x2 <= x1 or y2 <= y1:
        return None
    return x1, y1, x2, y2


def yolo_line(cls: int, box: tuple[int, int, int, int], width: int = IMAGE_WIDTH,
              height: int = IMAGE_HEIGHT) -> str:
    """Format one YOLO label line ``cls cx cy w h`` (normalised, 6 decimals)."""
    x1, y1, x2, y2 = box
    return (f"{cls} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
            f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}")


def parse_filters(specs: Iterable[str]) -> dict[str, list[str]]:
    """Parse ``attr=value[,value]`` strings into ``{attr: [values]}`` (validated against the vocabulary)."""
    out: dict[str, list[str]] = defaultdict(list)
    for spec in specs:
        name, sep, values = spec.partition("=")
        if not sep or name not in ATTRIBUTE_VALUES:
            raise UsageError(f"filter {spec!r}: expected attr=value with attr in {sorted(ATTRIBUTE_VALUES)}")
        for value in values.split(","):
            if value not in ATTRIBUTE_VALUES[name]:
                raise UsageError(f"filter {spec!r}: value {value!r} not in {list(ATTRIBUTE_VALUES[name])}")
            if value not in out[name]:
                out[name].append(value)
    return {k: sorted(v) for k, v in sorted(out.items())}


def keep_light(light: DtldLight, include: dict[str, list[str]], exclude: dict[str, list[str]]) -> bool:
    """Apply attribute filters: every ``include`` attr must match, no ``exclude`` attr may match."""
    attrs = light.attributes
    if any(attrs.get(k) not in vals for k, vals in include.items()):
        return False
    return not any(attrs.get(k) in vals for k, vals in exclude.items())


# ----------------------------------------------------------------------------------------------- output
# Every artefact goes through ``atomic_write_bytes`` (kd_traffic_light.core.atomic_io: temporary sibling
# ``<name><TMP_MARK><pid>``, fsync, os.replace), looked up in this module at call time so that the
# fault-injection tests can hook it.
def _write_if_changed(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    atomic_write_bytes(path, data)


@dataclass(frozen=True)
class ImageJob:
    """Work item for one image: source TIFF, destination file and encoding options."""

    src: str
    dst: str
    key: str
    ext: str
    jpeg_quality: int
    resize: tuple[int, int] | None
    size: tuple[int, int]


def convert_image(job: ImageJob) -> tuple[str, str]:
    """Decode and write one image (skipped when the destination exists); returns (status, message).

    Status is one of ``written``, ``skipped``, ``missing_image``, ``unreadable_image``, ``wrong_size``.
    """
    import cv2

    dst = Path(job.dst)
    if dst.is_file():
        return "skipped", ""
    try:
        bgr = read_dtld_image(job.src, job.size)
    except FileNotFoundError as exc:
        return "missing_image", str(exc).replace(job.src, job.key)  # no machine paths in the summary
    except ValueError as exc:
        kind = "wrong_size" if "image size" in str(exc) else "unreadable_image"
        return kind, str(exc).replace(job.src, job.key)
    if job.resize is not None:
        bgr = cv2.resize(bgr, job.resize, interpolation=cv2.INTER_AREA)
    params = [cv2.IMWRITE_JPEG_QUALITY, job.jpeg_quality] if job.ext == ".jpg" else []
    ok, buf = cv2.imencode(job.ext, bgr, params)
    if not ok:
        return "unreadable_image", f"{job.key}: encoding {job.ext} failed"
    atomic_write_bytes(dst, buf.tobytes())
    return "written", ""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def split_validation(frames: list[DtldFrame], n_images: int, seed: int) -> tuple[list[DtldFrame], list[DtldFrame]]:
    """Move whole sequences from ``frames`` (train) to a validation split until >= ``n_images`` moved.

    Returns:
        (train, val); no sequence is in both. Deterministic for a seed.
    """
    if n_images <= 0:
        return frames, []
    sequences = sorted({f.sequence for f in frames})
    random.Random(seed).shuffle(sequences)
    counts = Counter(f.sequence for f in frames)
    chosen, total = set(), 0
    for seq in sequences:
        if total >= n_images:
            break
        chosen.add(seq)
        total += counts[seq]
    return [f for f in frames if f.sequence not in chosen], [f for f in frames if f.sequence in chosen]


@dataclass
class ConvertOptions:
    """Options of one conversion (all recorded in the output fingerprint and summary)."""

    train: Sequence[str | os.PathLike] = ()
    test: Sequence[str | os.PathLike] = ()
    val: Sequence[str | os.PathLike] = ()
    val_images: int = 0
    seed: int = 0
    image_format: str = "png"
    jpeg_quality: int = 95
    resize_width: int | None = None
    include: dict[str, list[str]] = field(default_factory=dict)
    exclude: dict[str, list[str]] = field(default_factory=dict)
    size: tuple[int, int] = (IMAGE_WIDTH, IMAGE_HEIGHT)

    def validate(self) -> None:
        """Raise UsageError (a ValueError) naming the option when a value is not allowed."""
        if self.image_format not in ("png", "jpg"):
            raise UsageError(f"image_format {self.image_format!r}: expected 'png' or 'jpg'")
        if not 1 <= self.jpeg_quality <= 100:
            raise UsageError(f"jpeg_quality {self.jpeg_quality}: expected 1..100")
        if self.resize_width is not None and self.resize_width < 8:
            raise UsageError(f"resize_width {self.resize_width}: expected >= 8")
        if self.val_images < 0:
            raise UsageError(f"val_images {self.val_images}: expected >= 0")
        if not (self.train or self.test or self.val):
            raise UsageError("no label files given: pass at least one of train / val / test")

    def resize(self) -> tuple[int, int] | None:
        """Output (width, height) or None to keep the frame size."""
        if self.resize_width is None:
            return None
        w = int(self.resize_width)
        return w, max(1, round(w * self.size[1] / self.size[0]))


def _load_splits(opts: ConvertOptions, warns: list[Warn]) -> dict[str, list[DtldFrame]]:
    """Load label files per split, de-duplicate by image key (first occurrence wins), draw val."""
    splits: dict[str, list[DtldFrame]] = {}
    seen: dict[str, tuple[str, DtldFrame]] = {}
    for split, files in (("train", opts.train), ("val", opts.val), ("test", opts.test)):
        kept = []
        for file in files:
            for frame in load_labels(file, warns):
                if frame.key in seen:
                    first_split, first = seen[frame.key]
                    warns.append(Warn("duplicate_image", frame.source, f"images[{frame.index}].image_path",
                                      f"{frame.key} already listed in {first.source} (split {first_split}, "
                                      f"entry {first.index}); this entry ignored"))
                    continue
                seen[frame.key] = (split, frame)
                kept.append(frame)
        splits[split] = kept
    if opts.val_images:
        splits["train"], drawn = split_validation(splits["train"], opts.val_images, opts.seed)
        splits["val"] = splits["val"] + drawn
    return splits


def _fingerprint(opts: ConvertOptions) -> dict[str, Any]:
    def files(seq: Sequence[str | os.PathLike]) -> list[dict[str, str]]:
        return [{"name": Path(p).name, "sha256": _sha256(Path(p))} for p in seq]

    return {
        "label_files": {"train": files(opts.train), "val": files(opts.val), "test": files(opts.test)},
        "val_images": opts.val_images, "seed": opts.seed, "image_format": opts.image_format,
        "jpeg_quality": opts.jpeg_quality if opts.image_format == "jpg" else None,
        "resize_width": opts.resize_width, "include": opts.include, "exclude": opts.exclude,
        "class_names": list(CLASS_NAMES), "format_version": 1,
    }


def _prepare_output(out: Path, fingerprint: dict[str, Any]) -> None:
    """Check/record the options fingerprint and remove temporaries left by a killed run."""
    out.mkdir(parents=True, exist_ok=True)
    state = out / STATE_FILE
    text = json.dumps(fingerprint, indent=2, sort_keys=True) + "\n"
    if state.is_file():
        old = json.loads(state.read_text(encoding="utf-8"))
        diff = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
        if diff:
            raise ValueError(f"{out}: existing dataset was converted with different {diff} "
                             f"(see {STATE_FILE}); use a new output directory")
    elif any(TMP_MARK not in p.name for p in out.iterdir()):  # a temporary: killed while writing the state
        raise ValueError(f"{out}: directory is not empty and has no {STATE_FILE}; use a new output directory")
    _write_if_changed(state, text.encode())
    for tmp in out.rglob(f"*{TMP_MARK}*"):
        if tmp.is_file():
            tmp.unlink()


def _worker_init() -> None:
    """One OpenCV thread per worker process (the processes are the parallelism)."""
    import cv2

    cv2.setNumThreads(1)


def _run_jobs(jobs: list[ImageJob], workers: int, progress: bool) -> list[tuple[str, str]]:
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc="convert-dtld", unit="img", disable=not progress)
    results: list[tuple[str, str]] = []
    if workers <= 1:
        for job in jobs:
            results.append(convert_image(job))
            bar.update()
    else:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers, initializer=_worker_init) as pool:
            for res in pool.imap(convert_image, jobs, chunksize=1):
                results.append(res)
                bar.update()
    bar.close()
    return results


def _label_lines(frame: DtldFrame, opts: ConvertOptions, stats: dict[str, Any],
                 warns: list[Warn]) -> list[str]:
    width, height = opts.size
    lines = []
    for j, light in enumerate(frame.lights):
        where = f"images[{frame.index}].labels[{j}]"
        cls = light_class(light)
        if cls is None:  # already warned about (unknown_attribute) when the file was read
            stats["dropped_unknown_relevance"] += 1
            continue
        if not keep_light(light, opts.include, opts.exclude):
            stats["filtered"] += 1
            continue
        if light.w <= 0 or light.h <= 0:
            warns.append(Warn("empty_box", frame.source, f"{where}.w/h",
                              f"box x={light.x} y={light.y} w={light.w} h={light.h} has no area "
                              "(w and h must be > 0); dropped"))
            stats["dropped_empty"] += 1
            continue
        box = clip_box(light.x, light.y, light.w, light.h, width, height)
        inside = light.x >= 0 and light.y >= 0 and light.x + light.w <= width and light.y + light.h <= height
        if not inside:
            warns.append(Warn("box_outside_image", frame.source, f"{where}.x/y/w/h",
                              f"box x={light.x} y={light.y} w={light.w} h={light.h} exceeds {width}x{height}; "
                              + ("clipped" if box else "empty after clipping, dropped")))
        if box is None:
            stats["dropped_empty"] += 1
            continue
        stats["clipped"] += int(not inside)
        stats["boxes"][CLASS_NAMES[cls]] += 1
        for name, value in light.attributes.items():
            stats["attributes"][name][str(value)] += 1
        lines.append(yolo_line(cls, box, width, height))
    return lines


def _new_stats() -> dict[str, Any]:
    return {"images": 0, "boxes": Counter(), "attributes": defaultdict(Counter), "clipped": 0,
            "dropped_empty": 0, "dropped_unknown_relevance": 0, "filtered": 0, "images_failed": 0}


def _write_data_yaml(out: Path, counts: dict[str, int], opts: ConvertOptions) -> None:
    val = "val" if counts.get("val") else ("test" if counts.get("test") else "train")
    lines = [
        "# YOLO dataset converted from DTLD by `python -m training data convert-dtld`; see summary.json.",
        f"# filters: include={json.dumps(opts.include, sort_keys=True)} "
        f"exclude={json.dumps(opts.exclude, sort_keys=True)}",
        "train: images/train",
        f"val: images/{val}",
    ]
    if counts.get("test"):
        lines.append("test: images/test")
    lines += ["nc: 2", "names:", "  0: relevant", "  1: not_relevant", ""]
    _write_if_changed(out / "data.yaml", "\n".join(lines).encode())


def convert_dtld(root: str | os.PathLike, out: str | os.PathLike, opts: ConvertOptions, workers: int = 1,
                 progress: bool = True) -> dict[str, Any]:
    """Convert DTLD (``root`` = the folder holding the city folders) into a YOLO dataset at ``out``.

    Args:
        root: DTLD base directory (``data_base_dir``); image paths are re-rooted on their last 4 parts.
        out: output dataset directory (created; must be empty or a previous run with the same options).
        opts: label files per split, validation draw, image encoding and attribute filters.
        workers: processes decoding images (1 = in this process).
        progress: show a tqdm bar.

    Returns:
        The summary dict (also written to ``out/summary.json``).

    Raises:
        FileNotFoundError: a label file is missing.
        DtldFormatError: a label file is malformed.
        ValueError: bad options, or ``out`` holds a dataset made with other options.
        RunError: ``root`` is missing, or a requested split has no image: its label files list none, none
            of the listed TIFFs is under ``root`` (both found before anything is written), or none of them
            converted. ``data.yaml`` and ``summary.json`` are written only when every requested split has
            at least one image.
    """
    opts.validate()
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise RunError(f"{root}: DTLD root directory not found")
    warns: list[Warn] = []
    splits = _load_splits(opts, warns)
    requested = _requested_splits(opts)
    _check_sources(root, splits, requested, opts)
    created_state = not (out / STATE_FILE).is_file()
    _prepare_output(out, _fingerprint(opts))
    order = [(split, frame) for split in SPLITS for frame in splits.get(split, [])]
    results = _run_jobs(_image_jobs(root, out, order, opts), workers, progress)
    stats, run = _write_labels(out, order, results, opts, warns)
    empty = [split for split in requested if not stats[split]["images"]]
    if empty:
        if created_state and not any(stats[s]["images"] for s in SPLITS):
            _remove_empty_output(out)
        raise _nothing_converted(root, out, empty[0], len(splits[empty[0]]), warns)
    summary = _summary(stats, warns, opts)
    _write_data_yaml(out, {s: stats[s]["images"] for s in SPLITS}, opts)
    _write_if_changed(out / SUMMARY_FILE, (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode())
    _log_result(out, run, stats, warns)
    return summary


def _image_jobs(root: Path, out: Path, order: list[tuple[str, DtldFrame]], opts: ConvertOptions) -> list[ImageJob]:
    """Return one decode job per listed frame, in ``order``: its TIFF under ``root``, its image under ``out``."""
    ext = ".png" if opts.image_format == "png" else ".jpg"
    return [ImageJob(str(root / frame.key), str(out / "images" / split / Path(frame.key).with_suffix(ext)),
                     frame.key, ext, opts.jpeg_quality, opts.resize(), tuple(opts.size)) for split, frame in order]


def _write_labels(out: Path, order: list[tuple[str, DtldFrame]], results: list[tuple[str, str]],
                  opts: ConvertOptions, warns: list[Warn]) -> tuple[dict[str, dict[str, Any]], Counter]:
    """Write the label file of every converted image, warn about failed ones; return the stats and status counts."""
    stats = {s: _new_stats() for s in SPLITS}
    run = Counter()
    for (split, frame), (status, message) in zip(order, results):
        run[status] += 1
        if status not in ("written", "skipped"):
            warns.append(Warn(status, frame.source, f"images[{frame.index}].image_path", message))
            stats[split]["images_failed"] += 1
            continue
        lines = _label_lines(frame, opts, stats[split], warns)
        label = out / "labels" / split / Path(frame.key).with_suffix(".txt")
        _write_if_changed(label, ("\n".join(lines) + "\n" if lines else "").encode())
        stats[split]["images"] += 1
    return stats, run


def _nothing_converted(root: Path, out: Path, split: str, listed: int, warns: list[Warn]) -> RunError:
    """Return the error of a requested split none of whose ``listed`` images converted, with the failures counted."""
    failed = Counter(w.kind for w in warns if w.kind in ("missing_image", "unreadable_image", "wrong_size"))
    example = next((w for w in warns if w.kind in failed), None)
    return RunError(
        f"{root}: no image of split {split!r} converted ({listed} listed; "
        f"{', '.join(f'{n} {k}' for k, n in sorted(failed.items()))})"
        + (f", e.g. {example.file} {example.field}: {example.message}" if example else "")
        + f"; {out} has no data.yaml or {SUMMARY_FILE}")


def _log_result(out: Path, run: Counter, stats: dict[str, dict[str, Any]], warns: list[Warn]) -> None:
    """Log the image counts, then one line per warning kind with its count and an example."""
    LOGGER.info("convert-dtld: %d images written, %d skipped (already done), %d failed, %d warnings -> %s",
                run["written"], run["skipped"], sum(s["images_failed"] for s in stats.values()),
                len(warns), out)
    for kind, count in sorted(Counter(w.kind for w in warns).items()):
        example = next(w for w in warns if w.kind == kind)
        LOGGER.warning("%d x %s, e.g. %s %s: %s", count, kind, example.file, example.field, example.message)


def _requested_splits(opts: ConvertOptions) -> list[str]:
    """Return the splits the options ask for: those with label files, and val when drawn by ``val_images``."""
    given = {"train": opts.train, "val": opts.val, "test": opts.test}
    return [s for s in SPLITS if given[s] or (s == "val" and opts.val_images)]


def _check_sources(root: Path, splits: dict[str, list[DtldFrame]], requested: list[str],
                   opts: ConvertOptions) -> None:
    """Refuse, before anything is written, a requested split with no entry or none of its TIFFs under ``root``."""
    given = {"train": opts.train, "val": opts.val, "test": opts.test}
    for split in requested:
        frames = splits.get(split, [])
        files = [Path(f).name for f in given[split]]
        if not frames:
            why = (f"--val-images {opts.val_images} moved every train sequence to val"
                   if split == "train" and opts.val_images and splits.get("val") else
                   "no train image to draw from" if split == "val" and not files else
                   f"its label files {files} list no usable image entry")
            raise RunError(f"split {split!r} has no image: {why}")
        if not any((root / f.key).is_file() for f in frames):
            raise RunError(
                f"{root}: none of the {len(frames)} images of split {split!r} found: searched "
                f"{root}/<City>/<Route>/<Sequence>/<file> for the images listed in {files or ['(drawn from train)']}, "
                f"e.g. {root / frames[0].key}")


def _remove_empty_output(out: Path) -> None:
    """Remove the state file and the empty folders of a run that converted nothing (folders of others stay)."""
    (out / STATE_FILE).unlink(missing_ok=True)
    for d in sorted((p for p in out.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    if not any(out.iterdir()):
        out.rmdir()


def _summary(stats: dict[str, dict[str, Any]], warns: list[Warn], opts: ConvertOptions) -> dict[str, Any]:
    splits = {}
    for split, s in stats.items():
        splits[split] = {
            "images": s["images"], "images_failed": s["images_failed"],
            "boxes": {name: s["boxes"][name] for name in CLASS_NAMES},
            "attributes": {k: dict(sorted(v.items())) for k, v in sorted(s["attributes"].items())},
            "clipped": s["clipped"], "dropped_empty": s["dropped_empty"],
            "dropped_unknown_relevance": s["dropped_unknown_relevance"], "filtered": s["filtered"],
        }
    counts = Counter(w.kind for w in warns)
    return {
        "classes": list(CLASS_NAMES),
        "filters": {"include": opts.include, "exclude": opts.exclude},
        "image_format": opts.image_format, "resize_width": opts.resize_width,
        "val_images_requested": opts.val_images, "seed": opts.seed,
        "splits": splits,
        "missing_files": counts.get("missing_image", 0),
        "warning_counts": dict(sorted(counts.items())),
        "warnings": [w.as_dict() for w in warns[:MAX_LISTED_WARNINGS]],
        "warnings_listed": min(len(warns), MAX_LISTED_WARNINGS),
    }
