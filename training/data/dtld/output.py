"""The converted dataset's folder: atomic artefact writes, the options fingerprint that makes a rerun resume, data.yaml.

Usage: :func:`prepare_output` checks (or records) the fingerprint in ``out/.dtld_convert.json`` and removes the
temporaries of a killed run; every artefact is then written by :func:`write_artefact`. A re-run with the same
options skips what is complete and ends byte-identical (docs/training.md, "Data conversion details").
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kd_traffic_light.core.atomic_io import TMP_MARK, atomic_write_bytes
from kd_traffic_light.core.classes import SCHEMES
from training.data.dtld.options import ConvertOptions

STATE_FILE = ".dtld_convert.json"


# Every artefact goes through ``atomic_write_bytes`` (kd_traffic_light.core.atomic_io: temporary sibling
# ``<name><TMP_MARK><pid>``, fsync, os.replace), looked up in this module at call time so that the
# fault-injection tests can hook it.
def write_artefact(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, unless the file already holds exactly ``data``."""
    if path.is_file() and path.read_bytes() == data:
        return
    atomic_write_bytes(path, data)


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def fingerprint(opts: ConvertOptions) -> dict[str, Any]:
    """Return what makes two runs' outputs the same: the label files' hashes and every output option."""
    def files(seq: Sequence[str | os.PathLike]) -> list[dict[str, str]]:
        return [{"name": Path(p).name, "sha256": _sha256(Path(p))} for p in seq]

    return {
        "label_files": {"train": files(opts.train), "val": files(opts.val), "test": files(opts.test)},
        "val_images": opts.val_images, "seed": opts.seed, "image_format": opts.image_format,
        "jpeg_quality": opts.jpeg_quality if opts.image_format == "jpg" else None,
        "resize_width": opts.resize_width, "include": opts.include, "exclude": opts.exclude,
        "class_names": list(SCHEMES[opts.classes]), "format_version": 1,
    }


def prepare_output(out: Path, expected: dict[str, Any]) -> None:
    """Check/record the options fingerprint and remove temporaries left by a killed run."""
    out.mkdir(parents=True, exist_ok=True)
    state = out / STATE_FILE
    text = json.dumps(expected, indent=2, sort_keys=True) + "\n"
    if state.is_file():
        old = json.loads(state.read_text(encoding="utf-8"))
        diff = sorted(k for k in set(old) | set(expected) if old.get(k) != expected.get(k))
        if diff:
            raise ValueError(f"{out}: existing dataset was converted with different {diff} "
                             f"(see {STATE_FILE}); use a new output directory")
    elif any(TMP_MARK not in p.name for p in out.iterdir()):  # a temporary: killed while writing the state
        raise ValueError(f"{out}: directory is not empty and has no {STATE_FILE}; use a new output directory")
    write_artefact(state, text.encode())
    for tmp in out.rglob(f"*{TMP_MARK}*"):
        if tmp.is_file():
            tmp.unlink()


def remove_empty_output(out: Path) -> None:
    """Remove the state file and the empty folders of a run that converted nothing (folders of others stay)."""
    (out / STATE_FILE).unlink(missing_ok=True)
    for d in sorted((p for p in out.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    if not any(out.iterdir()):
        out.rmdir()


def write_data_yaml(out: Path, counts: dict[str, int], opts: ConvertOptions) -> None:
    """Write ``out/data.yaml``: the split folders (val falls back to test, then train), the filters, the classes.

    The classes are ``opts.classes``' scheme (kd_traffic_light/core/classes.py).
    """
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
    names = SCHEMES[opts.classes]
    lines += [f"nc: {len(names)}", "names:"] + [f"  {i}: {n}" for i, n in enumerate(names)] + [""]
    write_artefact(out / "data.yaml", "\n".join(lines).encode())
