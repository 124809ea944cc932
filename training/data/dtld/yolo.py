"""A DTLD frame's lights -> YOLO label lines: class, attribute filters, clipping to the frame.

Usage: ``label_lines(frame, opts, stats, warns)`` returns the ``cls cx cy w h`` lines of one image and counts
what it drops or clips into ``stats`` (see :func:`training.data.dtld.summary.new_stats`); :func:`parse_filters`
turns the CLI's ``--include``/``--exclude`` strings into the filters. Rules: docs/dtld_format.md, section 5.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from kd_traffic_light.core.classes import SCHEMES
from training.data.dtld.images import IMAGE_HEIGHT, IMAGE_WIDTH
from training.data.dtld.labels import ATTRIBUTE_VALUES, DtldFrame, DtldLight, Warn, light_class
from training.data.dtld.options import ConvertOptions
from training.errors import UsageError


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


def label_lines(frame: DtldFrame, opts: ConvertOptions, stats: dict[str, Any],
                warns: list[Warn]) -> list[str]:
    """Return the YOLO lines of ``frame``'s kept lights; count drops, clips, boxes and attributes in ``stats``."""
    width, height = opts.size
    names = SCHEMES[opts.classes]
    lines = []
    for j, light in enumerate(frame.lights):
        cls = light_class(light, opts.classes)
        if cls is None:  # relevance: already warned about (unknown_attribute) when the file was read
            rel = light.attributes.get("relevance")
            stats["dropped_unknown_relevance" if rel not in ("relevant", "not_relevant")
                  else "dropped_unknown_state"] += 1
            continue
        if not keep_light(light, opts.include, opts.exclude):
            stats["filtered"] += 1
            continue
        box = _frame_box(light, f"images[{frame.index}].labels[{j}]", frame.source, opts.size, stats, warns)
        if box is None:
            continue
        stats["boxes"][names[cls]] += 1
        for name, value in light.attributes.items():
            stats["attributes"][name][str(value)] += 1
        lines.append(yolo_line(cls, box, width, height))
    return lines


def _frame_box(light: DtldLight, where: str, source: str, size: tuple[int, int], stats: dict[str, Any],
               warns: list[Warn]) -> tuple[int, int, int, int] | None:
    """Return the light's box clipped to the frame, or None (counted as dropped) when it has no area."""
    width, height = size
    if light.w <= 0 or light.h <= 0:
        warns.append(Warn("empty_box", source, f"{where}.w/h",
                          f"box x={light.x} y={light.y} w={light.w} h={light.h} has no area "
                          "(w and h must be > 0); dropped"))
        stats["dropped_empty"] += 1
        return None
    box = clip_box(light.x, light.y, light.w, light.h, width, height)
    inside = light.x >= 0 and light.y >= 0 and light.x + light.w <= width and light.y + light.h <= height
    if not inside:
        warns.append(Warn("box_outside_image", source, f"{where}.x/y/w/h",
                          f"box x={light.x} y={light.y} w={light.w} h={light.h} exceeds {width}x{height}; "
                          + ("clipped" if box else "empty after clipping, dropped")))
    if box is None:
        stats["dropped_empty"] += 1
        return None
    stats["clipped"] += int(not inside)
    return box
