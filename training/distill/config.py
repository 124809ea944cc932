"""Strict training / distillation config (YAML): sections ``train``, ``augment``, ``distill`` -> ``DistillConfig``.

``train`` holds ultralytics training arguments (checked against its own key classes and ranges, plus those it
leaves to the trainer: ``check_train_value``), ``augment`` blur_p / clahe_p, ``distill.terms`` the KD terms of
``training.distill.terms``. ``load_config`` / ``resolve_config`` read it once into a frozen ``DistillConfig``;
every problem is a ``training.errors.UsageError`` naming the file and the field. Checkpoints and provenance keep
the plain form (``DistillConfig.to_dict``). Usage and the term reference: docs/training.md.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.distill.terms import TERMS, TermSettings
from training.errors import UsageError
from training.strict import FrozenMap, freeze, mapping, read_config, thaw, unknown_keys

# Recipe of the source study: 30 epochs, lr 0.01 -> 0.001, explicit SGD (optimizer=auto ignores lr0), 640 px.
RECIPE: dict[str, Any] = {"epochs": 30, "lr0": 0.01, "lrf": 0.1, "optimizer": "SGD", "imgsz": 640}

# Every term (defaults, choices, loss column, compute function, docs row) is declared once in the registry.
TERM_DEFAULTS: dict[str, dict[str, Any]] = {name: dict(spec.defaults) for name, spec in TERMS.items()}
TERM_COLUMNS: dict[str, str | None] = {name: spec.column for name, spec in TERMS.items()}

AUGMENT_DEFAULTS: dict[str, float] = {"blur_p": 0.0, "clahe_p": 0.0}
SECTIONS = ("train", "augment", "distill", "init", "sampling")
# ``init.seed``: the student's initial weights drawn from this seed instead of the run's --seed, which then decides
# only the data order and augmentation (kd-gain's spread study separates the two; unset: ultralytics' behaviour).
INIT_DEFAULTS: dict[str, Any] = {"seed": 0}
# Repeat-factor sampling of the train images for rare classes (training/data/sampling.py): an image whose rarest
# class is in a fraction f < repeat_thr of the train images is seen about sqrt(repeat_thr / f) times an epoch
# (0: every image once, ultralytics' behaviour).
SAMPLING_DEFAULTS: dict[str, Any] = {"repeat_thr": 0.0}


def check_type(value: Any, default: Any, where: str) -> None:
    """Raise UsageError when ``value`` does not have the type of ``default`` (ints are accepted for floats)."""
    if where.endswith(".anchors"):  # a name or per-level pixel lists; checked in resolve_term
        return
    ok = isinstance(value, type(default)) or (isinstance(default, float) and isinstance(value, int))
    if isinstance(value, bool) and not isinstance(default, bool):  # True is an int to Python, not to a config
        ok = False
    if not ok:
        raise UsageError(f"{where}: expected {type(default).__name__}, got {value!r}")


def resolve_term(name: str, given: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    """Fill a term's defaults (from the registry) and validate its keys, types and choices."""
    if name not in TERMS:
        raise UsageError(f"{where}: unknown distillation term '{name}' (allowed: {', '.join(TERMS)})")
    spec = TERMS[name]
    defaults = spec.all_defaults()
    given = thaw(mapping(given, where, "a mapping of term settings"))
    unknown_keys(given, defaults, where)
    out = copy.deepcopy(defaults)
    for k, v in given.items():
        check_type(v, defaults[k], f"{where}.{k}")
        out[k] = v
    for key, allowed in spec.all_choices().items():
        if key in out and out[key] not in allowed:
            raise UsageError(f"{where}.{key}: expected one of {', '.join(allowed)}, got {out[key]!r}")
    for key in ("weight", "final", "warmup_epochs"):
        if out[key] < 0:
            raise UsageError(f"{where}.{key}: expected a value >= 0, got {out[key]}")
    if name == "fgfi":
        a = out["anchors"]
        if isinstance(a, str) and a not in {"yolov5", "kmeans"}:
            raise UsageError(f"{where}.anchors: expected yolov5, kmeans or per-level [[w, h], ...], got {a!r}")
        if not isinstance(a, str) and not (
            isinstance(a, list) and all(isinstance(lv, list) and all(len(p) == 2 for p in lv) for lv in a)
        ):
            raise UsageError(f"{where}.anchors: expected per-level lists of [w, h] pixel pairs, got {a!r}")
    if name == "response" and not 0 <= out["lam"] <= 1:
        raise UsageError(f"{where}.lam: expected a value in [0, 1], got {out['lam']}")
    if name == "lad" and not (out["weight"] <= 1 and out["final"] <= 1):
        raise UsageError(f"{where}: weight and final are the teacher's share of the assignment: expected [0, 1]")
    return out


def freeze_terms(terms: dict[str, dict[str, Any]], where: str = "distill.terms") -> tuple[TermSettings, ...]:
    """Resolve every term once into immutable settings, in registry order."""
    unknown = set(terms) - set(TERMS)
    if unknown:
        raise UsageError(f"unknown distillation terms {sorted(unknown)}; expected some of {tuple(TERMS)}")
    return tuple(TermSettings.from_dict(n, resolve_term(n, terms[n], f"{where}.{n}")) for n in TERMS if n in terms)


# Keys the commands set themselves (flags), never a config's.
TRAIN_RESERVED = frozenset({"distill_model", "resume", "model", "data"})
# Keys the command line decides for every run; a config's value would be silently overridden, so it is refused.
TRAIN_FLAG_KEYS = {"project": "--project", "name": "--name", "exist_ok": "the run directory is always <project>/<name>"}
# Ranges ultralytics does not check itself (``check_cfg`` only bounds CFG_INT_MIN and the fraction keys); each of
# these otherwise fails deep in the trainer or, worse, is accepted (``batch: -5`` ran with an automatic batch).
TRAIN_INT_MIN = {"workers": 0, "close_mosaic": 0, "save_period": -1, "line_width": 1, "opset": 1}
TRAIN_FLOAT_MIN = {"warmup_epochs": 0.0, "box": 0.0, "cls": 0.0, "dfl": 0.0, "time": 0.0, "workspace": 0.0}
IMGSZ_MIN = 32  # one stride of the coarsest YOLO level; ultralytics silently raises anything smaller to it


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


OPTIMIZERS = ("SGD", "Adam", "Adamax", "AdamW", "NAdam", "RAdam", "RMSprop", "MuSGD", "auto")


def _expect(ok: Callable[[Any], bool], expected: str) -> Callable[[Any], str | None]:
    """Return a check that answers ``expected`` for a value ``ok`` refuses (None for one it takes)."""
    return lambda value: None if ok(value) else expected


def _ok_batch(v: Any) -> bool:
    return (_is_int(v) and (v >= 1 or v == -1)) or (isinstance(v, float) and 0.0 < v < 1.0)


def _ok_device(v: Any) -> bool:
    return (v is None or _is_int(v) or isinstance(v, str)
            or (isinstance(v, list) and bool(v) and all(_is_int(i) and i >= 0 for i in v)))


# Keys whose check ``check_cfg`` leaves open; each check returns what is expected for a bad value, else None.
TRAIN_KEY_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "batch": _expect(_ok_batch, "an int >= 1, -1 (AutoBatch) or a fraction of GPU memory in (0, 1)"),
    "imgsz": _expect(lambda v: _is_int(v) and v >= IMGSZ_MIN,
                     f"an int >= {IMGSZ_MIN} (square training size in pixels)"),
    "device": _expect(_ok_device, "'cpu', a CUDA index such as 0, or indices such as '0,1'"),
    "optimizer": _expect(lambda v: v in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
}


def _class_check(key: str) -> Callable[[Any], str | None] | None:
    """Return the check of ``key``'s ultralytics key class (int, float, fraction, bool, str), or None."""
    from ultralytics.cfg import (
        CFG_BOOL_KEYS,
        CFG_FLOAT_KEYS,
        CFG_FRACTION_KEYS,
        CFG_INT_KEYS,
        CFG_INT_MIN,
        CFG_STR_KEYS,
    )

    if key in CFG_INT_KEYS:
        low = CFG_INT_MIN.get(key, TRAIN_INT_MIN.get(key))
        return _expect(lambda v: _is_int(v) and (low is None or v >= low),
                       "an int" + (f" >= {low}" if low is not None else ""))
    if key in CFG_FLOAT_KEYS:
        low = TRAIN_FLOAT_MIN.get(key)
        return _expect(lambda v: _is_number(v) and (low is None or v >= low),
                       "a number" + (f" >= {low:g}" if low is not None else ""))
    if key in CFG_FRACTION_KEYS and key != "fraction":  # fraction also takes counts and split lists: check_cfg
        return _expect(lambda v: _is_number(v) and 0.0 <= v <= 1.0, "a number in [0, 1]")
    if key in CFG_BOOL_KEYS:
        return _expect(lambda v: isinstance(v, bool), "true or false")
    if key in CFG_STR_KEYS:
        return _expect(lambda v: isinstance(v, str), "a string")
    return None


def check_train_value(key: str, value: Any, where: str) -> None:
    """Check one ultralytics training argument's type and range; raise UsageError naming ``where``.

    The key classes are ultralytics' own (``ultralytics.cfg``: CFG_INT_KEYS with CFG_INT_MIN, CFG_FLOAT_KEYS,
    CFG_FRACTION_KEYS, CFG_BOOL_KEYS, CFG_STR_KEYS); what ``check_cfg`` leaves open is closed here
    (``TRAIN_KEY_CHECKS``): a bool is not a number, ``batch`` is an int >= 1, -1 (AutoBatch) or a fraction of GPU
    memory in (0, 1), ``imgsz`` a square size in pixels, ``optimizer`` one the trainer builds. Anything else goes
    through ``check_cfg`` itself, its error reworded to name ``where``.

    Args:
        key (str): Ultralytics argument name, e.g. ``epochs``.
        value: The given value.
        where (str): What to name in the message: ``<file>: train.<key>`` or a flag such as ``--batch``.
    """
    check = TRAIN_KEY_CHECKS.get(key) or _class_check(key)
    if check is None:
        from ultralytics.cfg import check_cfg

        try:
            check_cfg({key: value}, hard=True)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{where}: {exc}") from None
        return
    expected = check(value)
    if expected is not None:
        raise UsageError(f"{where}: expected {expected}, got {value!r}")


def check_train(train: Any, where: str) -> dict[str, Any]:
    """Validate a config's ``train`` section (keys, types, ranges); return it as a dict."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    if not isinstance(train, Mapping):
        raise UsageError(f"{where}: expected a mapping of ultralytics training arguments, got {train!r}")
    for key, flag in TRAIN_FLAG_KEYS.items():
        if key in train:
            raise UsageError(f"{where}.{key}: set by the command ({flag}), not by a config; remove it")
    unknown_keys(train, [k for k in DEFAULT_CFG_DICT if k not in TRAIN_RESERVED], where)
    for k, v in train.items():
        check_train_value(k, v, f"{where}.{k}")
    return thaw(train)


def _section(raw: Mapping[str, Any], name: str, source: str) -> dict[str, Any]:
    """Return the mapping under ``name`` ({} when absent or empty); anything else is a UsageError."""
    return mapping(raw.get(name), f"{source}: {name}")


@dataclass(frozen=True)
class Augment:
    """Probabilities of the extra train-time augmentations (``training.data.augment``)."""

    blur_p: float = 0.0
    clahe_p: float = 0.0


@dataclass(frozen=True)
class DistillConfig:
    """A resolved config: ultralytics overrides (``train``, read-only), augmentation and the enabled KD terms.

    Attributes:
        train: ``RECIPE`` overlaid with the file's ``train`` section; ultralytics checks its own keys.
        augment: blur / CLAHE probabilities.
        terms: Enabled KD terms in the file's order (none: plain training).
        init_seed: Seed of the student's initial weights (None: the run's ``--seed``, as ultralytics does).
        repeat_thr: Repeat-factor sampling threshold of the train images (0: off; ``SAMPLING_DEFAULTS``).
    """

    train: Mapping[str, Any]
    augment: Augment = Augment()
    terms: Mapping[str, TermSettings] = FrozenMap()
    init_seed: int | None = None
    repeat_thr: float = 0.0

    @property
    def distills(self) -> bool:
        """Whether the config enables any KD term."""
        return bool(self.terms)

    def overrides(self) -> dict[str, Any]:
        """Return the ``train`` section as a plain dict (what ultralytics is given)."""
        return thaw(self.train)

    def to_dict(self) -> dict[str, Any]:
        """Return the plain resolved form (checkpoints' ``run_config``, provenance.json, YAML)."""
        out = {"train": thaw(self.train), "augment": {"blur_p": self.augment.blur_p, "clahe_p": self.augment.clahe_p},
               "distill": {"terms": {n: t.as_dict() for n, t in self.terms.items()}}}
        if self.init_seed is not None:  # absent when unset: configs written before it existed read the same
            out["init"] = {"seed": self.init_seed}
        if self.repeat_thr:  # likewise absent when off
            out["sampling"] = {"repeat_thr": self.repeat_thr}
        return out

    @classmethod
    def from_dict(cls, resolved: Mapping[str, Any]) -> DistillConfig:
        """Rebuild a config from its plain resolved form (``to_dict``; a checkpoint's ``run_config``) as it is."""
        aug = resolved.get("augment") or {}
        terms = (resolved.get("distill") or {}).get("terms") or {}
        return cls(train=freeze(resolved.get("train") or {}),
                   augment=Augment(**{k: aug.get(k, v) for k, v in AUGMENT_DEFAULTS.items()}),
                   terms=FrozenMap((n, TermSettings.from_dict(n, t)) for n, t in terms.items()),
                   init_seed=(resolved.get("init") or {}).get("seed"),
                   repeat_thr=float((resolved.get("sampling") or {}).get("repeat_thr", 0.0)))


def resolve_config(raw: Mapping[str, Any] | None, source: str = "<config>") -> DistillConfig:
    """Validate a raw config mapping (parsed YAML) and fill every default; errors name ``source`` and the field.

    ``train`` of the result holds the recipe defaults overlaid with the mapping's values.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise UsageError(f"{source}: expected a mapping with sections {', '.join(SECTIONS)}, "
                         f"got {type(raw).__name__} {raw!r:.60}")
    raw = thaw(raw)  # a frozen config (a planned run's) is checked as its YAML was: lists, not tuples
    unknown_keys(raw, SECTIONS, source)
    train = check_train(_section(raw, "train", source), f"{source}: train")
    augment = _section(raw, "augment", source)
    unknown_keys(augment, AUGMENT_DEFAULTS, f"{source}: augment")
    for k, v in augment.items():
        check_type(v, AUGMENT_DEFAULTS[k], f"{source}: augment.{k}")
        if not 0 <= v <= 1:
            raise UsageError(f"{source}: augment.{k}: expected a probability in [0, 1], got {v}")
    distill = _section(raw, "distill", source)
    unknown_keys(distill, ("terms",), f"{source}: distill")
    terms_raw = _section(distill, "terms", f"{source}: distill")
    unknown_keys(terms_raw, TERM_DEFAULTS, f"{source}: distill.terms")
    terms = {n: resolve_term(n, terms_raw[n], f"{source}: distill.terms.{n}") for n in terms_raw}
    init = _section(raw, "init", source)
    unknown_keys(init, INIT_DEFAULTS, f"{source}: init")
    if "seed" in init and (isinstance(init["seed"], bool) or not isinstance(init["seed"], int) or init["seed"] < 0):
        raise UsageError(f"{source}: init.seed: expected an int >= 0, got {init['seed']!r}")
    sampling = _section(raw, "sampling", source)
    unknown_keys(sampling, SAMPLING_DEFAULTS, f"{source}: sampling")
    thr = sampling.get("repeat_thr", 0.0)
    check_type(thr, 0.0, f"{source}: sampling.repeat_thr")
    if not 0 <= thr < 1:
        raise UsageError(f"{source}: sampling.repeat_thr: expected a fraction of images in [0, 1), got {thr}")
    return DistillConfig(train=freeze({**RECIPE, **train}), augment=Augment(**augment),
                         terms=FrozenMap((n, TermSettings.from_dict(n, t)) for n, t in terms.items()),
                         init_seed=init.get("seed"), repeat_thr=float(thr))


def load_config(path: str | Path) -> DistillConfig:
    """Read and resolve a strict YAML config file (see ``resolve_config``).

    Raises:
        UsageError: No such file (also a FileNotFoundError), malformed YAML (file, line and column), or a bad
            key, type or value (file and field).
    """
    return resolve_config(read_config(path, f"{path}: file not found"), str(path))
