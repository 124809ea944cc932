"""The experiment's data: synthetic DTLD-format scenes or a DTLD tree converted to YOLO once, or a data.yaml."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from kd_traffic_light.core.atomic_io import atomic_write_json, read_json
from training.errors import UsageError
from training.experiment.config import Experiment, synth_config
from training.strict import ConfigNotFound

LOG = logging.getLogger(__name__)


def generate_synth(exp: Experiment, out: Path, workers: int = 1) -> Path:
    """Write the synthetic DTLD tree of a ``synth`` experiment into ``out/data/dtld`` once; return its root."""
    from training.data.synth import make_synthetic_dtld

    d, root = exp.data, out / "data" / "dtld"
    if (out / "data" / "dtld_done.json").is_file():
        LOG.info("data: synthetic DTLD tree %s exists; skipped", root)
        return root
    shutil.rmtree(root, ignore_errors=True)
    ds = make_synthetic_dtld(root, d.sequences, d.frames, d.seed, synth_config(d), workers, progress=True)
    atomic_write_json(out / "data" / "dtld_done.json", {
        "frames": len(ds.frames), "sequences": len(ds.sequences()),
        "has_test": any(f.split == "test" for f in ds.frames)})
    return root


def _dtld_sources(exp: Experiment, out: Path, workers: int) -> tuple[Path, list[Path], list[Path], list[Path]]:
    """Return the DTLD root and train / val / test label files of the experiment (generating synthetic data once)."""
    d = exp.data
    if d.source == "synth":
        root = generate_synth(exp, out, workers)
        labels = root / "DTLD_Labels_v2.0" / "v2.0"
        done = out / "data" / "dtld_done.json"
        has_test = ((read_json(done) if done.is_file() else None) or {}).get("has_test", True)
        return root, [labels / "DTLD_train.json"], [], [labels / "DTLD_test.json"] if has_test else []
    root = Path(str(d.root))
    if not root.is_dir():
        raise ConfigNotFound(f"{exp.source}: data.root: DTLD directory not found: {root}")
    train, val, test = ([root / p for p in labels] for labels in (d.train_labels, d.val_labels, d.test_labels))
    return root, train, val, test


def convert_data(exp: Experiment, out: Path, workers: int = 1, classes: str | None = None) -> Path:
    """Convert the experiment's DTLD tree (synthetic or real) to YOLO under ``out/data/yolo`` once.

    ``classes`` other than the experiment's own (the demo's state classifier learns from ``relevance_state``
    labels of the two-class detectors' frames) writes ``out/data/yolo_<classes>`` with the same split.
    """
    from training.data.dtld import ConvertOptions, convert_dtld

    d = exp.data
    own = classes in (None, d.classes)
    sub = "yolo" if own else f"yolo_{classes}"
    data_yaml = out / "data" / sub / "data.yaml"
    done_file = out / "data" / ("done.json" if own else f"done_{classes}.json")
    if data_yaml.is_file() and done_file.is_file():
        _check_same_data(exp, done_file)
        LOG.info("data: %s exists; skipped", data_yaml)
        return data_yaml
    root, train, val, test = _dtld_sources(exp, out, workers)
    opts = ConvertOptions(train=train, val=val, test=test, val_images=d.val_images, seed=d.seed,
                          resize_width=d.resize_width, classes=classes or d.classes)
    convert_dtld(root, out / "data" / sub, opts, workers=workers, progress=True)  # resumes a partial output
    atomic_write_json(done_file, {"data_yaml": str(data_yaml.relative_to(out)), "data": d.to_dict()})
    return data_yaml


def data_diff(exp: Experiment, done_file: Path) -> tuple[list[str], dict[str, Any]]:
    """Keys of the ``data`` section that differ from the one ``done_file`` recorded, and that record.

    A key the record lacks (written before the key existed) had its default.
    """
    from training.experiment.config import DATA_KEYS

    old = json.loads(json.dumps({**DATA_KEYS, **((read_json(done_file) or {}).get("data") or {})}))
    new = json.loads(json.dumps(exp.data.to_dict()))
    return sorted(k for k in new if old.get(k) != new[k]), old


def _check_same_data(exp: Experiment, done_file: Path) -> None:
    """Refuse to reuse data made from another ``data`` section (a key the old record lacks had its default)."""
    diff, old = data_diff(exp, done_file)
    new = exp.data.to_dict()
    if diff:
        raise UsageError(f"{exp.source}: data.{diff[0]}: {new[diff[0]]!r}, but {done_file} was made with "
                         f"{old.get(diff[0])!r} ({', '.join(diff)} differ); use a new 'out' or delete "
                         f"{done_file.parent}")


def prepare_data(exp: Experiment, out: Path, workers: int = 1) -> Path:
    """Return the data.yaml of the experiment, generating / converting it under ``out/data`` once."""
    d = exp.data
    if d.source == "yolo":
        path = Path(str(d.yaml))
        if not path.is_file():
            raise ConfigNotFound(f"{exp.source}: data.yaml: not found: {path}")
        return path
    return convert_data(exp, out, workers)
