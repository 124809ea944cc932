r"""``python -m training experiment``: the source study's grid as one resumable command.

One YAML file (strict keys) says which experiment: the data (synthetic DTLD-format scenes, a DTLD tree or an
existing YOLO data.yaml), the training recipe shared by every run, the teachers, the students, the methods
(``baseline`` = no KD, or a distillation config such as ``training/configs/fgfi.yaml``, or one written
inline; only its ``distill`` section is used, since the experiment's ``train`` and ``augment`` sections are the
identical recipe of every run) and the seeds. The grid is::

    teachers x teacher_seeds                          (teacher training)
    students x seeds                                  (baseline, for each method without KD terms)
    teachers x students x KD methods x seeds          (distillation from the teacher of the first teacher seed)

Each run trains in its own process (``python -m training train|distill``) into ``<out>/runs/<run>/`` and ends
with ``results.json`` (written atomically). A run counts as finished only when the trainer's completion marker
(``weights/COMPLETE.json``, see ``training.checkpoints``) is there and matches its ``best.pt``: such a run is
skipped; a run whose ``last.pt`` is a training checkpoint (not torn, not final) but has no valid marker is
resumed, any other run starts over. A teacher given as a trained ``.pt`` is not trained: the distillation runs
use that file as is. Every model is then evaluated ONCE on the held-out split (``eval_<split>_<imgsz>.json``
next to it), and the command writes into ``<out>``:

* ``results.md`` / ``results.json``: the study's columns with mean and spread (sample std) over repeats;
* ``map_vs_flops.png``: mAP50-95 against GFLOPs, error bars over repeats;
* ``curves.png``: validation mAP50-95 and training loss per epoch of every run (from ultralytics' results.csv);
* ``runs.json``: one row per run (held-out metrics, cost, seconds spent).

Example::

    python -m training experiment --config training/configs/dtld_source_study.yaml --device 0
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import logging
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from training import checkpoints
from training.errors import RunError, UsageError

LOG = logging.getLogger(__name__)

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
EVAL_KEYS = {"split": "test", "imgsz": None, "batch": 16, "latency_reps": 20, "device": "cpu"}
STUDY_METRICS = ("map50", "map50_95", "relevant_map50", "relevant_map50_95", "not_relevant_map50",
                 "not_relevant_map50_95")
COST_METRICS = ("gflops", "head_gflops", "params_m", "head_params_m", "fp16_mb", "cpu_latency_ms", "train_s")


# ------------------------------------------------------------------------------------------ config
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
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f) or {}
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
    base = Path(source).parent if source != "<experiment>" else Path(".")
    for label, model in list(exp["teachers"].items()):
        exp["teachers"][label] = _teacher_model(model, f"{source}: teachers.{label}", base)
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
    with open(path, encoding="utf-8") as f:
        return resolve_experiment(yaml.safe_load(f), str(path))


# ------------------------------------------------------------------------------------------ grid
def plan_runs(exp: dict[str, Any]) -> list[dict[str, Any]]:
    """Every run of the grid, teachers first (distillation needs them), as dicts with a unique ``name``."""
    runs = []
    for t, model in exp["teachers"].items():
        for seed in exp["teacher_seeds"]:
            runs.append({"name": f"teacher_{t}_seed{seed}", "role": "teacher", "model": model, "label": t,
                         "teacher": None, "method": "teacher", "seed": seed, "config": exp["teacher_config"]})
    first = exp["teacher_seeds"][0]
    for s, model in exp["students"].items():
        for method, cfg in exp["methods"].items():
            pairs = [(t, tm) for t, tm in exp["teachers"].items()] if exp["kd"][method] else [(None, None)]
            for t, tmodel in pairs:
                if t is not None and Path(str(tmodel)).stem == Path(str(model)).stem:
                    continue  # a student never learns from its own architecture in the study
                for seed in exp["seeds"]:
                    stem = f"{s}_{method}" if t is None else f"{s}_from_{t}_{method}"
                    runs.append({"name": f"{stem}_seed{seed}", "role": "student", "model": model, "label": s,
                                 "teacher": t, "teacher_run": None if t is None else f"teacher_{t}_seed{first}",
                                 "teacher_model": tmodel,
                                 "method": method, "seed": seed, "config": cfg, "kd": exp["kd"][method]})
    return runs


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (tmp file + ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically."""
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def read_json(path: Path) -> Any:
    """Read a JSON file, or None when it does not exist."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def csv_rows(path: Path) -> list[dict[str, float]]:
    """Rows of an ultralytics results.csv with stripped keys and float values ([] when missing)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = []
        for row in csv.DictReader(f):
            out = {}
            for k, v in row.items():
                try:
                    out[k.strip()] = float(v)
                except (TypeError, ValueError):
                    continue
            rows.append(out)
    return rows


def synth_config(data: dict[str, Any]) -> Any:
    """Return the ``SynthConfig`` of a ``data`` section (preset with the size / tiny-fraction overrides)."""
    import dataclasses
    from dataclasses import replace

    from training.data.synth import PRESETS
    from training.distill.config import check_type

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
        default = getattr(cfg, key)
        if isinstance(default, tuple):
            if not isinstance(value, (list, tuple)) or len(value) != len(default):
                raise ValueError(f"data.scene.{key}: expected [min, max], got {value!r}")
            for d, v in zip(default, value):
                check_type(v, d, f"data.scene.{key}")
            value = tuple(type(d)(v) for d, v in zip(default, value))
        else:
            check_type(value, default, f"data.scene.{key}")
            value = type(default)(value)
        cfg = replace(cfg, **{key: value})
    return cfg


def generate_synth(exp: dict[str, Any], out: Path, workers: int = 1) -> Path:
    """Write the synthetic DTLD tree of a ``synth`` experiment into ``out/data/dtld`` once; return its root."""
    from training.data.synth import make_synthetic_dtld

    d, root = exp["data"], out / "data" / "dtld"
    if (out / "data" / "dtld_done.json").is_file():
        LOG.info("data: synthetic DTLD tree %s exists; skipped", root)
        return root
    shutil.rmtree(root, ignore_errors=True)
    ds = make_synthetic_dtld(root, d["sequences"], d["frames"], d["seed"], synth_config(d), workers, progress=True)
    write_json(out / "data" / "dtld_done.json", {"frames": len(ds.frames), "sequences": len(ds.sequences()),
                                                 "has_test": any(f.split == "test" for f in ds.frames)})
    return root


def convert_data(exp: dict[str, Any], out: Path, workers: int = 1) -> Path:
    """Convert the experiment's DTLD tree (synthetic or real) to YOLO under ``out/data/yolo`` once."""
    from training.data.dtld import ConvertOptions, convert_dtld

    d, data_yaml = exp["data"], out / "data" / "yolo" / "data.yaml"
    if data_yaml.is_file() and (out / "data" / "done.json").is_file():
        LOG.info("data: %s exists; skipped", data_yaml)
        return data_yaml
    if d["source"] == "synth":
        root = generate_synth(exp, out, workers)
        labels = root / "DTLD_Labels_v2.0" / "v2.0"
        has_test = (read_json(out / "data" / "dtld_done.json") or {}).get("has_test", True)
        train, val, test = [labels / "DTLD_train.json"], [], [labels / "DTLD_test.json"] if has_test else []
    else:
        root = Path(d["root"])
        if not root.is_dir():
            raise FileNotFoundError(f"{exp['source']}: data.root: DTLD directory not found: {root}")
        train, val, test = ([root / p for p in d[k]] for k in ("train_labels", "val_labels", "test_labels"))
    opts = ConvertOptions(train=train, val=val, test=test, val_images=d["val_images"], seed=d["seed"],
                          resize_width=d["resize_width"])
    convert_dtld(root, out / "data" / "yolo", opts, workers=workers, progress=True)  # resumes a partial output
    write_json(out / "data" / "done.json", {"data_yaml": str(data_yaml.relative_to(out)), "data": d})
    return data_yaml


def prepare_data(exp: dict[str, Any], out: Path, workers: int = 1) -> Path:
    """Return the data.yaml of the experiment, generating / converting it under ``out/data`` once."""
    d = exp["data"]
    if d["source"] == "yolo":
        path = Path(d["yaml"])
        if not path.is_file():
            raise FileNotFoundError(f"{exp['source']}: data.yaml: not found: {path}")
        return path
    return convert_data(exp, out, workers)


def _finished(run_path: Path) -> bool:
    """Tell whether the training run finished: its completion marker is there and matches its best.pt."""
    ok, why = checkpoints.is_complete(run_path)
    if not ok and run_path.exists():
        LOG.info("run %s: %s", run_path.name, why)
    return ok


def _resumable(run_path: Path) -> bool:
    """Whether the run's last.pt is a training checkpoint to resume (a torn, stripped or missing one: start over)."""
    last = run_path / "weights" / "last.pt"
    if not last.is_file():
        return False
    try:
        stripped = checkpoints.resume_state(last)["stripped"]
    except checkpoints.CheckpointError as exc:
        LOG.warning("run %s: %s; starting over", run_path.name, exc)
        return False
    if stripped:
        LOG.warning("run %s: %s is a final (stripped) checkpoint without a valid completion marker; starting over",
                    run_path.name, last)
    return not stripped


def teacher_weights(run: dict[str, Any], exp_out: Path) -> Path:
    """Return the teacher checkpoint of a KD run: a ``.pt`` teacher as given, else its teacher run's best.pt."""
    model = run.get("teacher_model")
    if model is not None and str(model).endswith(".pt"):
        return Path(model).resolve()
    return exp_out / "runs" / run["teacher_run"] / "weights" / "best.pt"


def train_command(run: dict[str, Any], exp_out: Path, data_yaml: Path, config_file: Path,
                  device: str | None, workers: int | None) -> list[str]:
    """Build the ``python -m training train|distill`` command line of one run (new or resumed)."""
    run_path = exp_out / "runs" / run["name"]
    last = run_path / "weights" / "last.pt"
    cmd = [sys.executable, "-m", "training"]
    if last.is_file():
        cmd += ["distill" if run.get("kd") else "train", "--resume", str(last)]
    elif run.get("kd"):
        cmd += ["distill", "--teacher", str(teacher_weights(run, exp_out)), "--student", str(run["model"])]
    else:
        cmd += ["train", "--model", str(run["model"])]
    if not last.is_file():
        cmd += ["--data", str(data_yaml), "--config", str(config_file), "--project", str(exp_out / "runs"),
                "--name", run["name"], "--seed", str(run["seed"])]
    if device is not None:
        cmd += ["--device", str(device)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    return cmd


def run_fingerprint(run: dict[str, Any], data_yaml: Path) -> str:
    """Hash of what defines a run (config, model, teacher run, seed, data.yaml path), to refuse stale results."""
    import hashlib

    key = {k: run.get(k) for k in ("config", "model", "teacher_run", "seed", "role")}
    key["data"] = Path(data_yaml).name if Path(data_yaml).parent.name == "yolo" else str(data_yaml)
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def train_run(run: dict[str, Any], out: Path, data_yaml: Path, device: str | None = None,
              workers: int | None = None) -> dict[str, Any]:
    """Train one run unless its ``results.json`` exists; return the results record.

    A teacher given as a ``.pt`` file is not trained: its record points at that file.

    Raises:
        RunError: The training process failed or left no verified checkpoint (its command is in the message).
    """
    run_path = out / "runs" / run["name"]
    pt_teacher = run["role"] == "teacher" and str(run["model"]).endswith(".pt")
    done = read_json(run_path / "results.json")
    fingerprint = run_fingerprint(run, data_yaml)
    if done is not None:
        if done.get("fingerprint") not in (None, fingerprint):
            raise ValueError(f"{run_path / 'results.json'}: fingerprint: this run was trained with another config, "
                             "model, teacher or data; use another --out or delete the run directory")
        if pt_teacher or _finished(run_path):
            return done
        LOG.warning("run %s: results.json without a verified checkpoint; training it again", run["name"])
        (run_path / "results.json").unlink()
    record = {k: v for k, v in run.items() if k != "config"}
    record["fingerprint"] = fingerprint
    if pt_teacher:
        record.update(weights=str(Path(run["model"]).resolve()), train_s=0.0, epochs="-")
        write_json(run_path / "results.json", record)
        return record
    from training.distill.config import resolve_config

    epochs = resolve_config(run["config"])["train"]["epochs"]
    config_file = out / "configs" / f"{run['name']}.yaml"
    write_atomic(config_file, yaml.safe_dump(run["config"], sort_keys=False))
    t0 = time.perf_counter()
    if not _finished(run_path):
        if run_path.exists() and not _resumable(run_path):
            shutil.rmtree(run_path)  # started but nothing to resume from: start anew in the same place
        for cache in run_path.glob("eval_*.json"):
            cache.unlink()  # the model is about to change: its held-out evaluation is stale
        if run.get("kd") and not teacher_weights(run, out).is_file():
            raise RunError(f"run {run['name']}: teacher checkpoint not found: {teacher_weights(run, out)}")
        cmd = train_command(run, out, data_yaml, config_file, device, workers)
        LOG.info("run %s: %s", run["name"], " ".join(cmd))
        proc = subprocess.run(cmd, check=False)
        ok, why = checkpoints.is_complete(run_path)
        if proc.returncode != 0 or not ok:
            raise RunError(f"run {run['name']} failed (exit {proc.returncode}{'' if ok else '; ' + why}): "
                           f"{' '.join(cmd)}")
    rows = csv_rows(run_path / "results.csv")
    record.update(weights=str((run_path / "weights" / "best.pt").relative_to(out)), epochs=len(rows) or epochs,
                  train_s=round(time.perf_counter() - t0, 1), config_file=str(config_file.relative_to(out)))
    write_json(run_path / "results.json", record)
    return record


def weights_path(record: dict[str, Any], out: Path) -> Path:
    """Absolute path of a run's weights (records store them relative to the experiment directory)."""
    p = Path(record["weights"])
    return p if p.is_absolute() else out / p


def eval_cache(out: Path, name: str, split: str, imgsz: int) -> Path:
    """Where the evaluation of run ``name`` on ``split`` at ``imgsz`` is cached."""
    return out / "runs" / name / f"eval_{split}_{imgsz}.json"


def evaluate_run(record: dict[str, Any], out: Path, data_yaml: Path, ev: dict[str, Any],
                 imgsz: int) -> dict[str, Any]:
    """Held-out metrics of one run, computed once (cached in ``eval_<split>_<imgsz>.json`` next to the run)."""
    cache = eval_cache(out, record["name"], ev["split"], imgsz)
    row = read_json(cache)
    if row is None:
        from training.evaluate import evaluate_model

        row = evaluate_model(weights_path(record, out), data_yaml, split=ev["split"], imgsz=imgsz,
                             device=str(ev["device"]), batch=ev["batch"], latency_reps=ev["latency_reps"],
                             project=out / "val")
        write_json(cache, row)
    return row


# ------------------------------------------------------------------------------------------ tables
def group_key(row: dict[str, Any]) -> tuple:
    """Rows that differ only by seed share this key."""
    return (row.get("role", ""), str(row.get("label", "")), str(row.get("teacher") or "-"), row.get("method", ""))


def spread(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (0.0 for one value; None, None for none)."""
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group per-run rows over seeds: ``<metric>_mean``, ``<metric>_std`` and ``<metric>_values`` per group.

    Args:
        rows: One dict per run with ``role``, ``label``, ``teacher``, ``method``, ``seed``, ``epochs`` and
            the metrics of ``STUDY_METRICS`` / ``COST_METRICS`` (fractions; missing metrics are skipped).

    Returns:
        One dict per group, in first-seen order, with ``n`` and ``seeds``.
    """
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(group_key(row), []).append(row)
    out = []
    for (role, label, teacher, method), members in groups.items():
        g: dict[str, Any] = {"role": role, "label": label, "teacher": teacher, "method": method,
                             "model": members[0].get("model_name") or label, "n": len(members),
                             "seeds": [m.get("seed") for m in members], "epochs": members[0].get("epochs", "-")}
        for key in STUDY_METRICS + COST_METRICS:
            values = [m.get(key) for m in members]
            g[f"{key}_mean"], g[f"{key}_std"] = spread(values)
            g[f"{key}_values"] = values
        out.append(g)
    return out


TABLE_COLUMNS = (
    ("model", "model"), ("teacher", "teacher"), ("method", "method"), ("gflops", "FLOPs (G)"),
    ("head_gflops", "head FLOPs (G)"), ("params_m", "params (M)"), ("head_params_m", "head params (M)"),
    ("map50", "mAP50"), ("map50_95", "mAP50-95"), ("relevant_map50", "relevant mAP50"),
    ("relevant_map50_95", "relevant mAP50-95"), ("not_relevant_map50", "not relevant mAP50"),
    ("not_relevant_map50_95", "not relevant mAP50-95"), ("epochs", "epochs"), ("n", "repeats"),
    ("fp16_mb", "FP16 size (MB)"), ("cpu_latency_ms", "CPU latency (ms)"), ("train_s", "train (s)"),
)


def _cell(group: dict[str, Any], key: str) -> str:
    """One Markdown cell: mAP in percent as ``mean ± std`` (std only with repeats), costs with 2 decimals."""
    if f"{key}_mean" not in group:
        value = group.get(key)
        return "-" if value in (None, "") else str(value)
    mean, std = group[f"{key}_mean"], group[f"{key}_std"]
    if mean is None:
        return "-"
    scale = 100.0 if key in STUDY_METRICS else 1.0
    digits = 1 if key in STUDY_METRICS or key == "train_s" else 3 if key.startswith("head_") else 2
    text = f"{scale * mean:.{digits}f}"
    if group.get("n", 1) > 1 and std is not None and key in STUDY_METRICS:
        text += f" ± {scale * std:.{digits}f}"
    return text


def to_markdown(groups: list[dict[str, Any]]) -> str:
    """Markdown table with the source study's columns; mAP in percent, ``mean ± std`` over repeats."""
    lines = ["| " + " | ".join(h for _, h in TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    lines += ["| " + " | ".join(_cell(g, k) for k, _ in TABLE_COLUMNS) + " |" for g in groups]
    return "\n".join(lines) + "\n"


def write_tables(groups: list[dict[str, Any]], out: Path, rows: list[dict[str, Any]] | None = None,
                 title: str = "Results") -> tuple[Path, Path]:
    """Write ``results.md`` and ``results.json`` (groups, and the per-run rows when given) atomically."""
    md = (f"# {title}\n\nmAP in percent on the held-out split, mean ± sample std over repeats (seeds).\n\n"
          + to_markdown(groups))
    write_atomic(out / "results.md", md)
    write_json(out / "results.json", {"groups": groups, "runs": rows or []})
    return out / "results.md", out / "results.json"


# ------------------------------------------------------------------------------------------ plots
def _pyplot():  # noqa: ANN202
    """matplotlib.pyplot on the Agg backend (no display, no font downloads)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_map_vs_flops(groups: list[dict[str, Any]], path: Path, metric: str = "map50_95") -> Path:
    """Scatter of held-out ``metric`` (percent) against GFLOPs with error bars over repeats; PNG at ``path``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    markers = {"teacher": "s", "student": "o"}
    for g in groups:
        x, y, e = g.get("gflops_mean"), g.get(f"{metric}_mean"), g.get(f"{metric}_std") or 0.0
        if x is None or y is None:
            continue
        label = g["label"] if g["role"] == "teacher" else (
            f"{g['label']} {g['method']}" + (f" <- {g['teacher']}" if g["teacher"] not in ("-", None) else ""))
        ax.errorbar([x], [100 * y], yerr=[100 * e], fmt=markers.get(g["role"], "o"), capsize=3,
                    label=("teacher " if g["role"] == "teacher" else "") + label)
        if g["role"] == "teacher":  # students share their FLOPs: the legend names them
            ax.annotate(label, (x, 100 * y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("GFLOPs (log scale)")
    ax.set_ylabel(f"{metric.replace('map', 'mAP').replace('_', '-').replace('50-95', '50-95')} (%)")
    ax.set_title("Held-out accuracy against compute")
    ax.grid(True, which="both", alpha=0.3)
    if groups:
        ax.legend(fontsize=6, loc="lower right")
    return _save_figure(plt, fig, path)


def _save_figure(plt, fig, path: Path) -> Path:
    """Write ``fig`` to ``path`` atomically (tmp file + rename) and close it."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def plot_curves(curves: dict[str, list[dict[str, float]]], path: Path) -> Path:
    """Plot validation mAP50-95 and total training loss per epoch of every run (ultralytics results.csv rows)."""
    plt = _pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
    for name, rows in curves.items():
        if not rows:
            continue
        ep = [r.get("epoch", i + 1) for i, r in enumerate(rows)]
        a1.plot(ep, [100 * r.get("metrics/mAP50-95(B)", float("nan")) for r in rows], marker=".", label=name)
        loss = [sum(v for k, v in r.items() if k.startswith("train/") and k.endswith("loss")) for r in rows]
        a2.plot(ep, loss, marker=".", label=name)
    a1.set(xlabel="epoch", ylabel="val mAP50-95 (%)", title="Validation mAP50-95")
    a2.set(xlabel="epoch", ylabel="sum of train losses", title="Training loss (KD terms included)")
    for a in (a1, a2):
        a.grid(True, alpha=0.3)
    a1.legend(fontsize=6)
    return _save_figure(plt, fig, path)


# ------------------------------------------------------------------------------------------ driver
def run_experiment(exp: dict[str, Any], out: str | Path, device: str | None = None, workers: int | None = None,
                   only: set[str] | None = None) -> dict[str, Any]:
    """Run (or resume) the whole grid, evaluate every model once, write tables and plots.

    Args:
        exp: From ``load_experiment`` / ``resolve_experiment``.
        out: Experiment directory.
        device: Training device (None: the config's ``device``, else ultralytics' choice).
        workers: Dataloader workers (None: the config's ``workers``).
        only: Restrict to these run names (teachers they need are added).

    Returns:
        ``{"data_yaml", "runs": [per-run rows], "groups": [aggregated rows], "files": {...}}``.
    """
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = device if device is not None else exp.get("device")
    workers = workers if workers is not None else exp.get("workers")
    write_json(out / "experiment.json", {k: v for k, v in exp.items()})
    data_yaml = prepare_data(exp, out, workers or 1)
    runs = plan_runs(exp)
    if only is not None:
        need = set(only) | {r["teacher_run"] for r in runs if r["name"] in only and r.get("teacher_run")}
        runs = [r for r in runs if r["name"] in need]
    records = []
    bar = tqdm(runs, desc="experiment runs", unit="run")
    for run in bar:
        bar.set_postfix_str(run["name"])
        skipped = (out / "runs" / run["name"] / "results.json").is_file()
        print(f"\n=== run {run['name']} ({'skipped: results exist' if skipped else 'training'}) ===", flush=True)
        records.append(train_run(run, out, data_yaml, device, workers))
    ev = exp["evaluate"]
    imgsz = int(ev["imgsz"] or exp["train"].get("imgsz") or 640)
    rows, curves = [], {}
    for rec in tqdm(records, desc="held-out evaluation", unit="model"):
        row = {**evaluate_run(rec, out, data_yaml, ev, imgsz), **{k: rec.get(k) for k in (
            "name", "role", "label", "teacher", "method", "seed", "train_s", "epochs")}}
        row["model_name"] = Path(str(rec["model"])).stem
        rows.append(row)
        curves[rec["name"]] = csv_rows(out / "runs" / rec["name"] / "results.csv")
    groups = aggregate(rows)
    md, js = write_tables(groups, out, rows, title=f"Experiment {Path(exp.get('source', 'experiment')).stem}")
    write_json(out / "runs.json", rows)
    plot = plot_map_vs_flops(groups, out / "map_vs_flops.png")
    curve_png = plot_curves(curves, out / "curves.png")
    print(to_markdown(groups), flush=True)
    return {"data_yaml": str(data_yaml), "runs": rows, "groups": groups,
            "files": {"results_md": str(md), "results_json": str(js), "plot": str(plot), "curves": str(curve_png)}}


def _run(args: argparse.Namespace) -> int:
    """Entry point of ``python -m training experiment``."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    exp = load_experiment(args.config)
    if args.data_root:
        exp["data"]["root"] = args.data_root
    out = Path(args.out or exp["out"])
    run_experiment(exp, out, args.device, args.workers)
    print(f"experiment written to {out}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``experiment`` subcommand."""
    p = subparsers.add_parser(
        "experiment", help="the source study's grid (teachers x students x methods x seeds), resumable",
        description="Train every run of an experiment YAML (skipping finished runs), evaluate each model once "
        "on the held-out split, and write tables (mean and spread over seeds), the mAP-vs-FLOPs plot and "
        "training curves.",
    )
    p.add_argument("--config", required=True, help="experiment YAML, e.g. training/configs/dtld_source_study.yaml")
    p.add_argument("--out", default=None, help="experiment directory (default: the config's 'out')")
    p.add_argument("--device", default=None, help="training device: cpu, 0 or 0,1 (default: config, else auto)")
    p.add_argument("--workers", type=int, default=None, help="dataloader / data preparation workers")
    p.add_argument("--data-root", default=None, help="DTLD base directory (overrides the config's data.root)")
    p.set_defaults(func=_run)
    return p
