"""The experiment YAML, read once into a frozen ``Experiment``: strict keys, defaults, every method's recipe checked.

``load_experiment(path)`` is the loader; every problem is a ``training.errors.UsageError`` naming the file, the
key and what was expected. The keys and their defaults: ``TOP_KEYS``, ``DATA_KEYS``, ``EVAL_KEYS``,
``RESOURCE_KEYS`` below; the format: docs/training.md ("Experiments").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from kd_traffic_light.core.classes import SCHEMES
from training.errors import UsageError
from training.strict import FrozenMap, freeze, mapping, read_config, thaw, unknown_keys

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
    # synth and dtld: the class scheme (kd_traffic_light/core/classes.py) the labels are converted to
    "val_images": 0, "resize_width": None, "classes": "relevance",
    # dtld: DTLD tree and label files (relative to root) converted to YOLO under <out>/data
    "root": None, "train_labels": [], "test_labels": [], "val_labels": [],
    # yolo: an existing data.yaml
    "yaml": None,
}
# --launcher ray: every run is one Ray task holding this many CPUs and GPUs (all its GPUs on one node; they
# become its --device)
RESOURCE_KEYS = {"cpus": 1, "gpus": 0}
EVAL_KEYS = {"split": "test", "imgsz": None, "batch": 16, "latency_reps": 20, "device": "cpu"}


@dataclass(frozen=True)
class DataSpec:
    """The ``data`` section (see ``DATA_KEYS``): synthetic scenes, a DTLD tree or an existing data.yaml."""

    source: str
    sequences: int
    frames: int
    seed: int
    preset: str
    size_px: tuple[float, ...] | None
    tiny_fraction: float | None
    scene: Mapping[str, Any]
    val_images: int
    resize_width: int | None
    classes: str
    root: str | None
    train_labels: tuple[str, ...]
    test_labels: tuple[str, ...]
    val_labels: tuple[str, ...]
    yaml: str | None

    def to_dict(self) -> dict[str, Any]:
        """Return the plain form, keys in ``DATA_KEYS`` order (``experiment.json``, ``data/done.json``)."""
        return {f.name: thaw(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class EvalSpec:
    """The ``evaluate`` section (see ``EVAL_KEYS``): the held-out evaluation of every model."""

    split: str
    imgsz: int | None
    batch: int
    latency_reps: int
    device: Any

    def to_dict(self) -> dict[str, Any]:
        """Return the plain form, keys in ``EVAL_KEYS`` order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Resources:
    """The ``resources`` section: what each run asks of a Ray cluster (``--launcher ray``)."""

    cpus: float
    gpus: int

    def to_dict(self) -> dict[str, Any]:
        """Return the plain form."""
        return {"cpus": self.cpus, "gpus": self.gpus}


@dataclass(frozen=True)
class Experiment:
    """A resolved experiment (the YAML's sections, defaults filled in; mappings read-only).

    ``methods`` maps each label to the raw merged config of its runs (the experiment's ``train`` and ``augment``,
    the method's ``distill``), ``kd`` tells which methods distil, ``teacher_config`` is the teachers' raw config,
    ``source`` the file it was read from.
    """

    out: str
    data: DataSpec
    train: Mapping[str, Any]
    augment: Mapping[str, Any]
    teacher_train: Mapping[str, Any]
    teachers: Mapping[str, str]
    students: Mapping[str, str]
    methods: Mapping[str, Mapping[str, Any]]
    seeds: tuple[int, ...]
    teacher_seeds: tuple[int, ...]
    evaluate: EvalSpec
    device: Any
    workers: int | None
    resources: Resources
    kd: Mapping[str, bool]
    teacher_config: Mapping[str, Any]
    source: str

    def eval_imgsz(self) -> int:
        """Image size of the held-out evaluation: the ``evaluate`` section's, else training's, else 640."""
        return int(self.evaluate.imgsz or self.train.get("imgsz") or 640)

    def with_data_root(self, root: str) -> Experiment:
        """Return a copy with ``data.root`` replaced (the ``--data-root`` flag)."""
        return replace(self, data=replace(self.data, root=root))

    def to_dict(self) -> dict[str, Any]:
        """Return the plain form written to ``experiment.json`` (top keys in ``TOP_KEYS`` order, then kd, ...)."""
        return {f.name: getattr(self, f.name).to_dict() if hasattr(getattr(self, f.name), "to_dict")
                else thaw(getattr(self, f.name)) for f in fields(self)}


def _method_config(value: Any, where: str, base: Path) -> dict[str, Any]:
    """Raw config mapping of a method: {} for null, the YAML file's content for a path, else the mapping."""
    if value is None:
        return {}
    if isinstance(value, str):
        path = Path(value)
        if not path.is_file() and not path.is_absolute() and (base / path).is_file():
            path = base / path
        return mapping(read_config(path, f"{where}: config file not found: {value}"), where)
    return thaw(mapping(value, where))


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


def synth_config(data: DataSpec, source: str = "") -> Any:
    """Return the ``SynthConfig`` of a ``data`` section (preset with the size / tiny-fraction / scene overrides)."""
    from training.data.synth import PRESETS

    where = f"{source}: data" if source else "data"
    if data.preset not in PRESETS:
        raise UsageError(f"{where}.preset: expected one of {', '.join(PRESETS)}, got {data.preset!r}")
    cfg = PRESETS[data.preset]
    if data.size_px:
        cfg = replace(cfg, size_px=tuple(float(v) for v in data.size_px))
    if data.tiny_fraction is not None:
        cfg = replace(cfg, tiny_fraction=float(data.tiny_fraction))
    scene = mapping(data.scene, f"{where}.scene", "a mapping of SynthConfig fields")
    names = [f.name for f in fields(cfg)]
    unknown_keys(scene, names, f"{where}.scene")
    for key, value in scene.items():
        try:
            cfg = replace(cfg, **{key: _scene_value(thaw(value), getattr(cfg, key), f"{where}.scene.{key}")})
        except ValueError as exc:  # SynthConfig's own check of the value (e.g. lamps)
            if isinstance(exc, UsageError):
                raise
            raise UsageError(f"{where}.scene.{key}: {exc}") from None
    return cfg


def _scene_value(value: Any, default: Any, where: str) -> Any:
    """Check one ``data.scene`` override against the preset's value and convert it to that value's type."""
    from training.distill.config import check_type

    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or len(value) != len(default):
            raise UsageError(f"{where}: expected [min, max], got {value!r}")
        for d, v in zip(default, value):
            check_type(v, d, where)
        return tuple(type(d)(v) for d, v in zip(default, value))
    check_type(value, default, where)
    return type(default)(value)



def _resolve_data(raw: Any, source: str) -> DataSpec:
    """Resolve the ``data`` section: strict keys, defaults, what each source requires."""
    given = mapping(raw, f"{source}: data")
    unknown_keys(given, DATA_KEYS, f"{source}: data")
    data = DataSpec(**freeze({**DATA_KEYS, **given}))
    if data.source == "synth":
        synth_config(data, source)
    if data.source not in {"synth", "dtld", "yolo"}:
        raise UsageError(f"{source}: data.source: expected synth, dtld or yolo, got {data.source!r}")
    if data.classes not in SCHEMES:
        raise UsageError(f"{source}: data.classes: expected one of {', '.join(SCHEMES)}, got {data.classes!r}")
    if data.source == "yolo" and not data.yaml:
        raise UsageError(f"{source}: data.yaml: required when data.source is yolo")
    if data.source == "dtld" and not (data.root and data.train_labels):
        raise UsageError(f"{source}: data.root and data.train_labels: required when data.source is dtld")
    return data


def _resolve_evaluate(raw: Any, source: str) -> EvalSpec:
    """Resolve the ``evaluate`` section: strict keys and defaults."""
    given = mapping(raw, f"{source}: evaluate")
    unknown_keys(given, EVAL_KEYS, f"{source}: evaluate")
    return EvalSpec(**{**EVAL_KEYS, **given})


def _seeds(value: Any, key: str, source: str) -> tuple[int, ...]:
    """Return a seed list (a non-empty list of integers) as a tuple."""
    if not isinstance(value, list) or not value or not all(isinstance(s, int) for s in value):
        raise UsageError(f"{source}: {key}: expected a non-empty list of integers, got {value!r}")
    return tuple(value)


def _resolve_resources(raw: Any, source: str) -> Resources:
    """Resolve the ``resources`` section: ``cpus`` a number > 0, ``gpus`` a whole number >= 0."""
    given = mapping(raw, f"{source}: resources")
    unknown_keys(given, RESOURCE_KEYS, f"{source}: resources")
    res = {**RESOURCE_KEYS, **given}
    cpus, gpus = res["cpus"], res["gpus"]
    if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or cpus <= 0:
        raise UsageError(f"{source}: resources.cpus: expected a number > 0, got {cpus!r}")
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
        raise UsageError(f"{source}: resources.gpus: expected a whole number >= 0, got {gpus!r}")
    return Resources(cpus=cpus, gpus=gpus)


def _resolve_models(raw: Any, key: str, source: str, base: Path) -> dict[str, str]:
    """``teachers`` / ``students``: label -> model yaml (teachers: or a trained ``.pt`` that exists)."""
    models = mapping(raw, f"{source}: {key}")
    if key == "teachers":
        return {label: _teacher_model(m, f"{source}: teachers.{label}", base) for label, m in models.items()}
    return models


def _resolve_methods(methods: dict[str, Any], train: dict[str, Any], augment: dict[str, Any], source: str,
                     base: Path) -> tuple[dict[str, Any], dict[str, bool]]:
    """Each method's merged config (the experiment's train and augment, the method's distill terms) and KD flag."""
    from training.distill.config import resolve_config

    merged, kd = {}, {}
    for name, value in methods.items():
        where = f"{source}: methods.{name}"
        cfg = _method_config(value, where, base)
        resolve_config(cfg, where)  # strict: raises naming the key and the method's file
        # identical recipe: the experiment owns train and augment; a method contributes its distill terms (and,
        # for kd-gain's spread study, the seed of its initial weights; for rare classes, its sampling) only
        own = {k: cfg[k] for k in ("init", "sampling") if cfg.get(k)}
        cfg = {"train": dict(train), "augment": dict(augment), "distill": cfg.get("distill") or {}, **own}
        merged[name], kd[name] = cfg, resolve_config(cfg, where).distills
    return merged, kd


def resolve_experiment(raw: Any, source: str = "<experiment>") -> Experiment:
    """Validate an experiment mapping (parsed YAML; strict keys) and fill the defaults.

    Method configs are read and validated with ``training.distill.config.resolve_config`` after the shared
    ``train`` section has been laid over them, so every run's ultralytics keys are checked before any training.

    Raises:
        UsageError: Unknown key, wrong type, a missing file or an empty grid, naming ``source`` and the field.
    """
    from training.distill.config import resolve_config

    raw = mapping(raw, source)
    unknown_keys(raw, TOP_KEYS, source)
    top = {**TOP_KEYS, **raw}
    data = _resolve_data(top["data"], source)
    evaluate = _resolve_evaluate(top["evaluate"], source)
    train, teacher_train, augment = (thaw(mapping(top[k], f"{source}: {k}"))
                                     for k in ("train", "teacher_train", "augment"))
    base = Path(source).parent if source != "<experiment>" else Path(".")
    teachers = _resolve_models(top["teachers"], "teachers", source, base)
    students = _resolve_models(top["students"], "students", source, base)
    methods = thaw(mapping(top["methods"], f"{source}: methods"))
    seeds, teacher_seeds = _seeds(top["seeds"], "seeds", source), _seeds(top["teacher_seeds"], "teacher_seeds", source)
    if not students and not teachers:
        raise UsageError(f"{source}: students/teachers: the grid is empty")
    resources = _resolve_resources(top["resources"], source)
    merged, kd = _resolve_methods(methods, train, augment, source, base)
    if any(kd.values()) and not teachers:
        raise UsageError(f"{source}: teachers: distillation methods need at least one teacher")
    teacher_cfg = {"train": {**train, **teacher_train}, "augment": dict(augment)}
    resolve_config(teacher_cfg, f"{source}: teacher_train")
    return Experiment(
        out=top["out"], data=data, train=freeze(train), augment=freeze(augment), teacher_train=freeze(teacher_train),
        teachers=FrozenMap(teachers), students=FrozenMap(students), methods=freeze(merged), seeds=seeds,
        teacher_seeds=teacher_seeds, evaluate=evaluate, device=top["device"], workers=top["workers"],
        resources=resources, kd=FrozenMap(kd), teacher_config=freeze(teacher_cfg), source=source)


def load_experiment(path: str | Path) -> Experiment:
    """Read and resolve an experiment YAML file (see ``resolve_experiment``)."""
    raw = read_config(path, f"--config: experiment file not found: {path}")
    return resolve_experiment(raw, str(path))
