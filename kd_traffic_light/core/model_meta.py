"""The metadata ultralytics writes into an export: class names, input size, stride, layout flags.

Where it lives: ONNX ``metadata_props`` (read through the runtime's session, given as a string mapping),
OpenVINO ``metadata.yaml`` next to the ``.xml``, TensorRT ``.engine`` files behind a 4-byte little-endian
length and that many bytes of JSON. Values are Python literals in strings (``"{0: 'relevant'}"``), parsed
with :func:`ast.literal_eval`, never evaluated.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ExportMetadata:
    """What the pipeline needs from an export's metadata.

    Attributes:
        names: Class index -> name (empty when the export carries none).
        imgsz: Export input ``(h, w)``, or ``None`` when unknown.
        stride: Largest model stride (32 for YOLOv5u/v8).
        end2end: Output is ``(N, 6)`` boxes after NMS (``nms=True`` export or a one-to-one head).
        dynamic: Exported with dynamic input shapes.
        half: Exported in FP16.
        raw: Every entry as parsed, for provenance.
    """

    names: dict[int, str] = field(default_factory=dict)
    imgsz: tuple[int, int] | None = None
    stride: int = 32
    end2end: bool = False
    dynamic: bool = False
    half: bool = False
    raw: dict[str, Any] = field(default_factory=dict)


def _literal(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def parse_metadata(entries: Mapping[str, Any]) -> ExportMetadata:
    """Build :class:`ExportMetadata` from raw entries (strings or already-parsed values)."""
    raw = {str(k): _literal(v) for k, v in entries.items()}
    names = raw.get("names") or {}
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    names = {int(k): str(v) for k, v in names.items()} if isinstance(names, dict) else {}
    imgsz = raw.get("imgsz")
    if isinstance(imgsz, int):
        imgsz = (imgsz, imgsz)
    imgsz = (int(imgsz[0]), int(imgsz[1])) if isinstance(imgsz, (list, tuple)) and len(imgsz) == 2 else None
    args = raw.get("args") if isinstance(raw.get("args"), dict) else {}
    return ExportMetadata(
        names=names,
        imgsz=imgsz,
        stride=int(raw.get("stride", 32) or 32),
        end2end=bool(raw.get("end2end", False) or args.get("nms", False)),
        dynamic=bool(args.get("dynamic", False)),
        half=bool(args.get("half", False)),
        raw=raw,
    )


def read_sidecar(model_dir: Path) -> ExportMetadata:
    """Read ``metadata.yaml`` of a directory export (OpenVINO); empty metadata when there is none."""
    sidecar = Path(model_dir) / "metadata.yaml"
    if not sidecar.is_file():
        return ExportMetadata()
    import yaml

    data = yaml.safe_load(sidecar.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{sidecar}: expected a mapping of metadata entries, got {type(data).__name__}")
    return parse_metadata(data)


def read_engine_header(path: Path) -> tuple[int, ExportMetadata]:
    """Offset of the serialized engine in a ``.engine`` file and the metadata in front of it (if any)."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(4), byteorder="little")
        size = f.seek(0, 2)
        if 0 < n <= size - 4:
            f.seek(4)
            try:
                return 4 + n, parse_metadata(json.loads(f.read(n)))
            except (ValueError, UnicodeDecodeError):  # engine bytes, not JSON: no header
                pass
    return 0, ExportMetadata()
