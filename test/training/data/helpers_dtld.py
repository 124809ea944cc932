"""Helpers shared by the data tests (not a test module)."""

from __future__ import annotations

from pathlib import Path


def read_yolo(out: Path, width: int = 2048, height: int = 1024) -> dict[str, list]:
    """Map ``City/Route/Sequence/file.tiff`` -> sorted [(cls, (x1, y1, x2, y2))] from a YOLO dataset."""
    result = {}
    for label in sorted((out / "labels").rglob("*.txt")):
        rel = label.relative_to(out / "labels")
        key = "/".join(rel.parts[1:])[: -len(".txt")] + ".tiff"
        boxes = []
        for line in label.read_text().splitlines():
            c, cx, cy, w, h = line.split()
            cx, w = float(cx) * width, float(w) * width
            cy, h = float(cy) * height, float(h) * height
            boxes.append((int(c), (round(cx - w / 2), round(cy - h / 2), round(cx + w / 2), round(cy + h / 2))))
        result[key] = sorted(boxes)
    return result


def tree_bytes(root: Path) -> dict[str, bytes]:
    """All files under ``root`` by relative path (ultralytics caches excluded)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.endswith(".cache")}
