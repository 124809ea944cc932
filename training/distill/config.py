"""Strict experiment configuration (YAML) for teacher training and distillation.

A config file has three optional sections::

    train:    ultralytics training arguments (validated against ultralytics' own keys), e.g. epochs, lr0
    augment:  blur_p, clahe_p (hooked into the train dataset through training.data.augment)
    distill:  terms: {fgfi: {...}, response: {...}, ld: {...}, bckd: {...}, native: {...}, lad: {...}}

Unknown keys anywhere are an error naming the key and the file. The resolved config (defaults filled in) is a
plain dict so it pickles into checkpoints and DDP worker state.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from training.distill.terms import TERMS, TermSettings

# Recipe of the source study: 30 epochs, lr 0.01 -> 0.001, explicit SGD (optimizer=auto ignores lr0), 640 px.
RECIPE: dict[str, Any] = {"epochs": 30, "lr0": 0.01, "lrf": 0.1, "optimizer": "SGD", "imgsz": 640}

# Every term (defaults, choices, loss column, compute function, docs row) is declared once in the registry.
TERM_DEFAULTS: dict[str, dict[str, Any]] = {name: dict(spec.defaults) for name, spec in TERMS.items()}
TERM_COLUMNS: dict[str, str | None] = {name: spec.column for name, spec in TERMS.items()}

AUGMENT_DEFAULTS: dict[str, float] = {"blur_p": 0.0, "clahe_p": 0.0}
SECTIONS = ("train", "augment", "distill")


def check_type(value: Any, default: Any, where: str) -> None:
    """Raise ValueError when ``value`` does not have the type of ``default`` (ints are accepted for floats)."""
    if where.endswith(".anchors"):  # a name or per-level pixel lists; checked in resolve_term
        return
    ok = isinstance(value, type(default)) or (isinstance(default, float) and isinstance(value, int))
    if isinstance(value, bool) and not isinstance(default, bool):  # True is an int to Python, not to a config
        ok = False
    if not ok:
        raise ValueError(f"{where}: expected {type(default).__name__}, got {value!r}")


def _unknown(keys: Any, allowed: Any, where: str) -> None:
    """Raise ValueError naming the first key of ``keys`` not in ``allowed``."""
    for k in keys:
        if k not in allowed:
            raise ValueError(f"{where}: unknown key '{k}' (allowed: {', '.join(sorted(map(str, allowed)))})")


def resolve_term(name: str, given: dict[str, Any] | None, where: str) -> dict[str, Any]:
    """Fill a term's defaults (from the registry) and validate its keys, types and choices."""
    if name not in TERMS:
        raise ValueError(f"{where}: unknown distillation term '{name}' (allowed: {', '.join(TERMS)})")
    spec = TERMS[name]
    defaults = spec.all_defaults()
    given = given or {}
    if not isinstance(given, dict):
        raise ValueError(f"{where}: expected a mapping of term settings, got {given!r}")
    _unknown(given, defaults, where)
    out = copy.deepcopy(defaults)
    for k, v in given.items():
        check_type(v, defaults[k], f"{where}.{k}")
        out[k] = v
    for key, allowed in spec.all_choices().items():
        if key in out and out[key] not in allowed:
            raise ValueError(f"{where}.{key}: expected one of {', '.join(allowed)}, got {out[key]!r}")
    for key in ("weight", "final", "warmup_epochs"):
        if out[key] < 0:
            raise ValueError(f"{where}.{key}: expected a value >= 0, got {out[key]}")
    if name == "fgfi":
        a = out["anchors"]
        if isinstance(a, str) and a not in {"yolov5", "kmeans"}:
            raise ValueError(f"{where}.anchors: expected yolov5, kmeans or per-level [[w, h], ...], got {a!r}")
        if not isinstance(a, str) and not (
            isinstance(a, list) and all(isinstance(lv, list) and all(len(p) == 2 for p in lv) for lv in a)
        ):
            raise ValueError(f"{where}.anchors: expected per-level lists of [w, h] pixel pairs, got {a!r}")
    if name == "response" and not 0 <= out["lam"] <= 1:
        raise ValueError(f"{where}.lam: expected a value in [0, 1], got {out['lam']}")
    if name == "lad" and not (out["weight"] <= 1 and out["final"] <= 1):
        raise ValueError(f"{where}: weight and final are the teacher's share of the assignment: expected [0, 1]")
    return out


def freeze_terms(terms: dict[str, dict[str, Any]], where: str = "distill.terms") -> tuple[TermSettings, ...]:
    """Resolve every term once into immutable settings, in registry order."""
    unknown = set(terms) - set(TERMS)
    if unknown:
        raise ValueError(f"unknown distillation terms {sorted(unknown)}; expected some of {tuple(TERMS)}")
    return tuple(TermSettings.from_dict(n, resolve_term(n, terms[n], f"{where}.{n}")) for n in TERMS if n in terms)


def resolve_config(raw: dict[str, Any] | None, source: str = "<config>") -> dict[str, Any]:
    """Validate a raw config mapping and fill every default.

    Args:
        raw (dict | None): Parsed YAML.
        source (str): File name used in error messages.

    Returns:
        (dict): ``{"train": {...}, "augment": {...}, "distill": {"terms": {name: settings}}}``; ``train`` holds
        the recipe defaults overlaid with the file's values.
    """
    from ultralytics.cfg import DEFAULT_CFG_DICT

    raw = raw or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: expected a mapping with sections {', '.join(SECTIONS)}")
    _unknown(raw, SECTIONS, source)
    train = raw.get("train") or {}
    _unknown(train, [k for k in DEFAULT_CFG_DICT if k not in {"distill_model", "resume", "model", "data"}],
             f"{source}: train")
    augment = raw.get("augment") or {}
    _unknown(augment, AUGMENT_DEFAULTS, f"{source}: augment")
    for k, v in augment.items():
        check_type(v, AUGMENT_DEFAULTS[k], f"{source}: augment.{k}")
        if not 0 <= v <= 1:
            raise ValueError(f"{source}: augment.{k}: expected a probability in [0, 1], got {v}")
    distill = raw.get("distill") or {}
    _unknown(distill, ("terms",), f"{source}: distill")
    terms_raw = distill.get("terms") or {}
    _unknown(terms_raw, TERM_DEFAULTS, f"{source}: distill.terms")
    terms = {n: resolve_term(n, terms_raw[n], f"{source}: distill.terms.{n}") for n in terms_raw}
    return {
        "train": {**RECIPE, **train},
        "augment": {**AUGMENT_DEFAULTS, **augment},
        "distill": {"terms": terms},
    }


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and resolve a strict YAML config file.

    Args:
        path (str | Path): YAML file.

    Returns:
        (dict): The resolved config (see ``resolve_config``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    return resolve_config(raw, str(path))
