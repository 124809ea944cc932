"""``python -m training export``: a trained student to ONNX / OpenVINO (/ TensorRT) for the detector node.

Uses ultralytics' exporter, which already embeds names, imgsz, stride and task (ONNX ``metadata_props``,
OpenVINO ``metadata.yaml``, TensorRT JSON header). This stage adds one more metadata key, ``kd_source``
(a JSON string: source run, weights file and its SHA-256, training args and the run's provenance file when
one exists), injected through the exporter's ``on_export_start`` callback so every format carries it. Each
export is then loaded with ``ultralytics.YOLO(path, task="detect")`` (what ``kd_traffic_light.core``
does) and run on a blank frame; a manifest ``<weights stem>_exports.json`` lists the results.

Example:
    python -m training export --weights runs/distill/n_from_l/weights/best.pt --formats onnx openvino \
        --imgsz 640
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from kd_traffic_light.core.atomic_io import atomic_write_json, read_json, read_yaml

LOG = logging.getLogger(__name__)

FORMATS = ("onnx", "openvino", "engine")
"""Export formats this stage offers (``engine`` = TensorRT, CUDA only); ``tensorrt`` is an alias."""

PROVENANCE_NAMES = ("provenance.json", "provenance.yaml", "provenance.yml")
"""File names of a run's provenance file, looked up in the run directory (the parent of ``weights/``)."""

METADATA_KEY = "kd_source"


def run_dir(weights: str | Path) -> Path:
    """Return the run directory of ``weights`` (``<run>/weights/best.pt`` -> ``<run>``)."""
    parent = Path(weights).resolve().parent
    return parent.parent if parent.name == "weights" else parent


def read_provenance(weights: str | Path) -> dict[str, Any]:
    """Read the run's provenance file next to ``weights`` (see ``PROVENANCE_NAMES``); ``{}`` when absent.

    Raises:
        ValueError: The file exists but does not hold a mapping (message names the file).
    """
    for name in PROVENANCE_NAMES:
        path = run_dir(weights) / name
        if not path.is_file():
            continue
        data = read_json(path) if path.suffix == ".json" else read_yaml(path)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
        return data
    return {}


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def source_metadata(weights: str | Path, train_args: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the ``kd_source`` record: run name, weights name and hash, training args, provenance."""
    args = train_args or {}
    keep = ("model", "data", "epochs", "imgsz", "batch", "optimizer", "lr0", "lrf", "seed", "distill_model")
    return {
        "run": run_dir(weights).name,
        "weights": Path(weights).name,
        "weights_sha256": sha256(weights),
        "train_args": {k: str(args[k]) if isinstance(args[k], Path) else args[k] for k in keep if k in args},
        "provenance": read_provenance(weights),
    }


def normalise_formats(formats: list[str], cuda: bool) -> list[str]:
    """Validate requested formats (``tensorrt`` -> ``engine``); TensorRT only with CUDA.

    Raises:
        ValueError: An unknown format, or ``engine`` without a CUDA device.
    """
    out = []
    for fmt in formats:
        fmt = "engine" if fmt.lower() in {"tensorrt", "trt"} else fmt.lower()
        if fmt not in FORMATS:
            raise ValueError(f"--formats: unknown format {fmt!r}; expected some of {', '.join(FORMATS)}")
        if fmt == "engine" and not cuda:
            raise ValueError("--formats engine: TensorRT export needs a CUDA device and none is available")
        if fmt not in out:
            out.append(fmt)
    return out


def verify_export(path: str | Path, names: dict[int, str], imgsz: int, device: str = "cpu") -> dict[str, Any]:
    """Load an export as the detector node does and predict on a blank frame.

    Returns:
        ``{"loaded": True, "names_match": bool, "kd_source": bool, "detections": int}``.

    Raises:
        RuntimeError: The export loads with other class names than the source model.
    """
    import numpy as np
    from ultralytics import YOLO
    from ultralytics.nn.backends.base import BaseBackend

    model = YOLO(str(path), task="detect")
    result = model.predict(np.zeros((imgsz, imgsz, 3), np.uint8), imgsz=imgsz, device=device, verbose=False)[0]
    loaded = {int(k): str(v) for k, v in result.names.items()}
    if loaded != {int(k): str(v) for k, v in names.items()}:
        raise RuntimeError(f"{path}: class names {loaded} differ from the source model's {names}")
    meta = BaseBackend.read_metadata(path)
    return {"loaded": True, "names_match": True, "kd_source": METADATA_KEY in meta, "detections": len(result.boxes)}


def export_model(
    weights: str | Path,
    formats: list[str] | tuple[str, ...] = ("onnx", "openvino"),
    imgsz: int = 640,
    half: bool = False,
    device: str = "cpu",
    verify: bool = True,
) -> dict[str, Any]:
    """Export ``weights`` to each format, embed ``kd_source`` metadata, verify, and write a manifest.

    Args:
        weights: Trained ``.pt`` checkpoint (e.g. ``<run>/weights/best.pt``).
        formats: Subset of ``FORMATS`` (``engine`` only where CUDA is available).
        imgsz: Square export input size in pixels.
        half: FP16 export (``quantize=fp16``: FP16 ONNX weights, OpenVINO FP16, TensorRT FP16).
        device: Export device (``cpu``, ``0``, ...).
        verify: Load each export with ``ultralytics.YOLO`` and predict on a blank frame.

    Returns:
        The manifest: ``{"weights", "imgsz", "half", "kd_source", "exports": {fmt: {"path", ...verify}}}``.

    Raises:
        FileNotFoundError: ``weights`` does not exist.
        ValueError: Unsupported format or TensorRT without CUDA.
    """
    import torch
    from ultralytics import YOLO

    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"--weights: {weights} does not exist")
    fmts = normalise_formats(list(formats), cuda=torch.cuda.is_available())
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    model = YOLO(str(weights), task="detect")
    source = source_metadata(weights, (model.ckpt or {}).get("train_args"))
    record = json.dumps(source, sort_keys=True, default=str)

    def add_source(exporter: Any) -> None:
        exporter.metadata[METADATA_KEY] = record

    model.add_callback("on_export_start", add_source)
    exports: dict[str, Any] = {}
    for fmt in fmts:
        LOG.info("exporting %s to %s at imgsz %d (half=%s)", weights, fmt, imgsz, half)
        precision = {"quantize": "fp16"} if half else {}  # 8.4.190 maps the deprecated `half` onto quantize
        path = model.export(format=fmt, imgsz=imgsz, device=device, verbose=False, **precision)
        entry: dict[str, Any] = {"path": Path(path).name}
        if verify:
            entry.update(verify_export(path, model.names, imgsz, device))
            LOG.info("verified %s: loads and predicts on a blank frame", path)
        exports[fmt] = entry
    manifest = {"weights": weights.name, "imgsz": imgsz, "half": half, "kd_source": source, "exports": exports}
    atomic_write_json(weights.parent / f"{weights.stem}_exports.json", manifest)
    return manifest


def main(args: argparse.Namespace) -> int:
    """Entry point of ``python -m training export``."""
    from training.distill.cli import read_checkpoint
    from training.errors import UsageError

    if args.imgsz < 32:
        raise UsageError(f"--imgsz: expected an int >= 32 (square input size in pixels), got {args.imgsz}")
    read_checkpoint(str(args.weights), "--weights")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    manifest = export_model(
        args.weights, formats=args.formats, imgsz=args.imgsz, half=args.half, device=args.device,
        verify=not args.no_verify,
    )
    for fmt, entry in manifest["exports"].items():
        print(f"{fmt}: {Path(args.weights).parent / entry['path']}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export", help="export a trained model to ONNX/OpenVINO/TensorRT for the detector node",
        description="Export a .pt checkpoint with ultralytics, embed source-run metadata, verify each export.",
    )
    p.add_argument("--weights", required=True, type=Path, help="trained checkpoint, e.g. <run>/weights/best.pt")
    p.add_argument("--formats", nargs="+", default=["onnx", "openvino"],
                   help="formats: onnx, openvino, engine (TensorRT, CUDA only); default: onnx openvino")
    p.add_argument("--imgsz", type=int, default=640, help="square export input size in pixels (default 640)")
    p.add_argument("--half", action="store_true", help="FP16 export where the format supports it")
    p.add_argument("--device", default="cpu", help="export device: cpu or a CUDA index such as 0 (default cpu)")
    p.add_argument("--no-verify", action="store_true", help="skip loading each export and predicting once")
    p.set_defaults(func=main)
    return p
