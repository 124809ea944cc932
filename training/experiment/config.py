"""The experiment YAML: strict keys, defaults, and the validated recipe of every method and teacher."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from kd_traffic_light.core.atomic_io import read_yaml
from training.errors import UsageError

TOP_KEYS = {
    "out": "runs/experiment",  # output directory (the --out flag wins)
    "data": None,  # see DATA_KEYS
    "train": {},  # ultralytics overrides shared by every run (the identical recipe)
    "augment": {},  # blur_p / clahe_p shared by every run
    "teacher_train": {},  # extra overrides for teacher runs only (e.g. more epochs)
    "teachers": {},  # label -> model yaml (yolov5l.yaml) or a trained .pt (used as is)
    "students": {},  # label -> model yaml
    "methods": {"baseline": None},  # label -> null (no KD) | config path | inline config mapping
    "seeds": [0],  # repeats of every student run
    "teacher_seeds": [0],  # repeats of every teacher run; distillation uses the first
    "evaluate": {},  # see EVAL_KEYS
    "device": None,  # cpu | 0 | 0,1 (the --device flag wins)
    "workers": None,  # dataloader workers (the --workers flag wins)
    "resources": {},  # see RESOURCE_KEYS: what each run asks of a Ray cluster (--launcher ray only)
}
DATA_KEYS = {
    "source": "synth",  # synth | dtld | yolo
    # synth: synthetic DTLD-format scenes converted to YOLO (training.data.synth.make_synthetic_yolo)
    "sequences": 8, "frames": 5, "seed": 0, "preset": "demo", "size_px": None, "tiny_fraction": None,
    "scene": {},  # further SynthConfig fields, e.g. {test_fraction: 0.5, distractors: [4, 10]}
    # synth and dtld
    "val_images": 0, "resize_width": None,
    # dtld: DTLD tree and label files (relative to root) converted to YOLO under <out>/data
    "root": None, "train_labels": [], "test_labels": [], "val_labels": [],
    # yolo: an existing data.yaml
    "yaml": None,
}
# --launcher ray: every run is one Ray task holding this many CPUs and GPUs (all its GPUs on one node; they
# become its --device)
RESOURCE_KEYS = {"cpus": 1, "gpus": 0}
EVAL_KEYS = {"split": "test", "imgsz": None, "batch": 16, "latency_reps": 20, "device": "cpu"}


def _unknown(given: dict, allowed: Any, where: str) -> None:
    """Raise ValueError naming the first key of ``given`` not in ``allowed``."""
    for key in given:
        if key not in allowed:
            raise ValueError(f"{where}: unknown key '{key}' (allowed: {', '.join(sorted(allowed))})")


def _mapping(value: Any, where: str) -> dict:
    """Return ``value`` (None -> {}) when it is a mapping, else raise naming ``where``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping, got {value!r}")
    return value


def _method_config(value: Any, where: str, base: Path) -> dict[str, Any]:
    """Raw config mapping of a method: {} for null, the YAML file's content for a path, else the mapping."""
    if value is None:
        return {}
    if isinstance(value, str):
        path = Path(value)
        if not path.is_file() and not path.is_absolute() and (base / path).is_file():
            path = base / path
        if not path.is_file():
            raise FileNotFoundError(f"{where}: config file not found: {value}")
        return read_yaml(path) or {}
    return copy.deepcopy(_mapping(value, where))


def _teacher_model(value: Any, where: str, base: Path) -> Any:
    """Return a teacher entry: a model yaml as given, or a trained ``.pt`` that exists (cwd, then next to the file)."""
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where}: expected a model yaml or a trained .pt path, got {value!r}")
    if not value.endswith(".pt"):
        return value
    path = Path(value)
    if not path.is_file() and not path.is_absolute() and (base / path).is_file():
        return str(base / path)
    if not path.is_file():
        raise UsageError(f"{where}: teacher checkpoint not found: {value}")
    return value


def synth_config(data: dict[str, Any]) -> Any:
    """Return the ``SynthConfig`` of a ``data`` section (preset with the size / tiny-fraction overrides)."""
    import dataclasses
    from dataclasses import replace

    from training.data.synth import PRESETS

    cfg = PRESETS[data["preset"]]
    if data["size_px"]:
        cfg = replace(cfg, size_px=tuple(float(v) for v in data["size_px"]))
    if data["tiny_fraction"] is not None:
        cfg = replace(cfg, tiny_fraction=float(data["tiny_fraction"]))
    scene = data.get("scene") or {}
    if not isinstance(scene, dict):
        raise ValueError(f"data.scene: expected a mapping of SynthConfig fields, got {scene!r}")
    fields = {f.name for f in dataclasses.fields(cfg)}
    for key, value in scene.items():
        if key not in fields:
            raise ValueError(f"data.scene: unknown key '{key}' (allowed: {', '.join(sorted(fields))})")
        cfg = replace(cfg, **{key: _scene_value(value, getattr(cfg, key), key)})
    return cfg


def _scene_value(value: Any, default: Any, key: str) -> Any:
    """Check one ``data.scene`` override against the preset's value and convert it to that value's type."""
    from training.distill.config import check_type

    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or len(value) != len(default):
            raise ValueError(f"data.scene.{key}: expected [min, max], got {value!r}")
        for d, v in zip(default, value):
            check_type(v, d, f"data.scene.{key}")
        return tuple(type(d)(v) for d, v in zip(default, value))
    check_type(value, default, f"data.scene.{key}")
    return type(default)(value)


def _resolve_data(exp: dict[str, Any], source: str) -> None:
    """Validate the ``data`` section in place (strict keys, defaults, what each source requires)."""
    data = _mapping(exp["data"], f"{source}: data")
    _unknown(data, DATA_KEYS, f"{source}: data")
    exp["data"] = {**DATA_KEYS, **data}
    if exp["data"]["source"] == "synth":
        try:
            synth_config(exp["data"])
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{source}: {exc}") from None
    if exp["data"]["source"] not in {"synth", "dtld", "yolo"}:
        raise ValueError(f"{source}: data.source: expected synth, dtld or yolo, got {exp['data']['source']!r}")
    if exp["data"]["source"] == "yolo" and not exp["data"]["yaml"]:
        raise ValueError(f"{source}: data.yaml: required when data.source is yolo")
    if exp["data"]["source"] == "dtld" and not (exp["data"]["root"] and exp["data"]["train_labels"]):
        raise ValueError(f"{source}: data.root and data.train_labels: required when data.source is dtld")


def _resolve_sections(exp: dict[str, Any], source: str) -> None:
    """Validate ``evaluate``, the mapping sections and the seed lists in place; refuse an empty grid."""
    ev = _mapping(exp["evaluate"], f"{source}: evaluate")
    _unknown(ev, EVAL_KEYS, f"{source}: evaluate")
    exp["evaluate"] = {**EVAL_KEYS, **ev}
    for key in ("train", "teacher_train", "augment"):
        exp[key] = _mapping(exp[key], f"{source}: {key}")
    for key in ("teachers", "students", "methods"):
        exp[key] = _mapping(exp[key], f"{source}: {key}")
    for key in ("seeds", "teacher_seeds"):
        seeds = exp[key]
        if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
            raise ValueError(f"{source}: {key}: expected a non-empty list of integers, got {seeds!r}")
    if not exp["students"] and not exp["teachers"]:
        raise ValueError(f"{source}: students/teachers: the grid is empty")


def _resolve_resources(exp: dict[str, Any], source: str) -> None:
    """Validate ``resources`` in place: ``cpus`` a number > 0, ``gpus`` a whole number >= 0."""
    res = _mapping(exp["resources"], f"{source}: resources")
    try:
        _unknown(res, RESOURCE_KEYS, f"{source}: resources")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    exp["resources"] = {**RESOURCE_KEYS, **res}
    cpus, gpus = exp["resources"]["cpus"], exp["resources"]["gpus"]
    if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or cpus <= 0:
        raise UsageError(f"{source}: resources.cpus: expected a number > 0, got {cpus!r}")
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
        raise UsageError(f"{source}: resources.gpus: expected a whole number >= 0, got {gpus!r}")


def _resolve_methods(exp: dict[str, Any], source: str, base: Path) -> tuple[dict[str, Any], dict[str, bool]]:
    """Each method's merged config (the experiment's train and augment, the method's distill terms) and KD flag."""
    from training.distill.config import resolve_config

    methods, kd = {}, {}
    for name, value in exp["methods"].items():
        where = f"{source}: methods.{name}"
        cfg = _method_config(value, where, base)
        cfg = _mapping(cfg, where)
        resolve_config(cfg, where)  # strict: raises naming the key and the method's file
        # identical recipe: the experiment owns train and augment; a method contributes its distill terms only
        cfg = {"train": dict(exp["train"]), "augment": dict(exp["augment"]), "distill": cfg.get("distill") or {}}
        resolved = resolve_config(cfg, where)
        methods[name], kd[name] = cfg, bool(resolved["distill"]["terms"])
    return methods, kd


def resolve_experiment(raw: Any, source: str = "<experiment>") -> dict[str, Any]:
    """Validate an experiment mapping (strict keys) and fill the defaults.

    Method configs are read and validated with ``training.distill.config.resolve_config`` after the shared
    ``train`` section has been laid over them, so every run's ultralytics keys are checked before any training.

    Args:
        raw: Parsed YAML.
        source: File name used in error messages.

    Returns:
        The resolved experiment; ``methods`` maps each label to the raw merged config of its runs and
        ``kd`` tells which methods distil.

    Raises:
        ValueError: Unknown key, wrong type or an empty grid, with the file and the field named.
    """
    from training.distill.config import resolve_config

    raw = _mapping(raw, source)
    _unknown(raw, TOP_KEYS, source)
    exp = {**copy.deepcopy(TOP_KEYS), **copy.deepcopy(raw)}
    _resolve_data(exp, source)
    _resolve_sections(exp, source)
    _resolve_resources(exp, source)
    base = Path(source).parent if source != "<experiment>" else Path(".")
    for label, model in list(exp["teachers"].items()):
        exp["teachers"][label] = _teacher_model(model, f"{source}: teachers.{label}", base)
    methods, kd = _resolve_methods(exp, source, base)
    if any(kd.values()) and not exp["teachers"]:
        raise ValueError(f"{source}: teachers: distillation methods need at least one teacher")
    teacher_cfg = {"train": {**exp["train"], **exp["teacher_train"]}, "augment": dict(exp["augment"])}
    resolve_config(teacher_cfg, f"{source}: teacher_train")
    exp.update(methods=methods, kd=kd, teacher_config=teacher_cfg, source=source)
    return exp


def load_experiment(path: str | Path) -> dict[str, Any]:
    """Read and resolve an experiment YAML file (see ``resolve_experiment``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--config: experiment file not found: {path}")
    return resolve_experiment(read_yaml(path), str(path))
