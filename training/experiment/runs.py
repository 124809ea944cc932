"""Training one run of the grid in its own process: command line, fingerprint, finished / resumable checks."""

from __future__ import annotations

import csv
import json
import logging
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from kd_traffic_light.core.atomic_io import atomic_write_json, atomic_write_yaml, read_json, read_yaml
from training import checkpoints
from training.errors import RunError
from training.experiment.grid import Run
from training.strict import freeze

LOG = logging.getLogger(__name__)


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


def _finished(run_path: Path, epochs: int | None = None) -> bool:
    """Tell whether the training run finished: its completion marker is there and matches its best.pt.

    A run that finished before completion markers existed (stripped last.pt, a student-only best.pt and
    ``epochs`` rows in results.csv) gets its marker now instead of being trained again.
    """
    if checkpoints.adopt_finished(run_path, epochs) is not None:
        LOG.info("run %s: finished before completion markers existed; marker written", run_path.name)
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


def teacher_weights(run: Run, exp_out: Path) -> Path:
    """Return the teacher checkpoint of a KD run: a ``.pt`` teacher as given, else its teacher run's best.pt."""
    model = run.teacher_model
    if model is not None and str(model).endswith(".pt"):
        return Path(model).resolve()
    return exp_out / "runs" / str(run.teacher_run) / "weights" / "best.pt"


def train_command(run: Run, exp_out: Path, data_yaml: Path, config_file: Path,
                  device: str | None, workers: int | None) -> list[str]:
    """Build the ``python -m training train|distill`` command line of one run (new or resumed)."""
    run_path = exp_out / "runs" / run.name
    last = run_path / "weights" / "last.pt"
    cmd = [sys.executable, "-m", "training"]
    if last.is_file():
        cmd += ["distill" if run.kd else "train", "--resume", str(last)]
    elif run.kd:
        cmd += ["distill", "--teacher", str(teacher_weights(run, exp_out)), "--student", str(run.model)]
    else:
        cmd += ["train", "--model", str(run.model)]
    if not last.is_file():
        cmd += ["--data", str(data_yaml), "--config", str(config_file), "--project", str(exp_out / "runs"),
                "--name", run.name, "--seed", str(run.seed)]
    if device is not None:
        cmd += ["--device", str(device)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    return cmd


def _without_defaults(config: Any) -> Any:
    """Return the run config without the ``train`` keys that equal ultralytics' defaults.

    Writing a default out (``nbs: 64``) defines the same run as leaving it unset, so it must not make a finished
    run look stale.
    """
    if not isinstance(config, dict) or not isinstance(config.get("train"), dict):
        return config
    from ultralytics.cfg import DEFAULT_CFG_DICT

    train = {k: v for k, v in config["train"].items() if k not in DEFAULT_CFG_DICT or DEFAULT_CFG_DICT[k] != v}
    return {**config, "train": train}


def run_fingerprint(run: Run, data_yaml: Path) -> str:
    """Hash of what defines a run (config, model, teacher run, seed, data.yaml path), to refuse stale results."""
    import hashlib

    key = {"config": run.plain_config(), "model": run.model, "teacher_run": run.teacher_run, "seed": run.seed,
           "role": run.role}
    key["data"] = Path(data_yaml).name if Path(data_yaml).parent.name == "yolo" else str(data_yaml)
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def same_run(done: dict[str, Any], run: Run, out: Path, data_yaml: Path) -> bool:
    """Whether a finished run's record ``done`` is the run ``run`` defines.

    Its fingerprint matches, or its recorded config differs from ``run``'s only by ``train`` keys written out at
    ultralytics' defaults (the same model, teacher, seed and data otherwise).
    """
    fingerprint = run_fingerprint(run, data_yaml)
    if done.get("fingerprint") in (None, fingerprint):
        return True
    recorded = out / str(done.get("config_file") or "")
    if not done.get("config_file") or not recorded.is_file():
        return False
    old = read_yaml(recorded)
    return (run_fingerprint(replace(run, config=freeze(old)), data_yaml) == done["fingerprint"]
            and _without_defaults(old) == _without_defaults(run.plain_config()))


def _die_with_parent() -> None:
    """In the training child, before exec: on Linux, get SIGTERM when the launching process dies.

    Without it a launcher killed for memory (a Ray worker, say) leaves its training process running, and the
    retry would resume the same run beside it. Elsewhere a no-op.
    """
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _train_process(run: Run, out: Path, data_yaml: Path, config_file: Path, device: str | None,
                   workers: int | None, epochs: int | None = None) -> None:
    """Train (or resume) the run in its own process unless it finished; raise RunError when that fails."""
    run_path = out / "runs" / run.name
    if _finished(run_path, epochs):
        return
    if run_path.exists() and not _resumable(run_path):
        shutil.rmtree(run_path)  # started but nothing to resume from: start anew in the same place
    for cache in run_path.glob("eval_*.json"):
        cache.unlink()  # the model is about to change: its held-out evaluation is stale
    if run.kd and not teacher_weights(run, out).is_file():
        raise RunError(f"run {run.name}: teacher checkpoint not found: {teacher_weights(run, out)}")
    cmd = train_command(run, out, data_yaml, config_file, device, workers)
    LOG.info("run %s: %s", run.name, " ".join(cmd))
    proc = subprocess.run(cmd, check=False, preexec_fn=_die_with_parent)
    ok, why = checkpoints.is_complete(run_path)
    if proc.returncode != 0 or not ok:
        raise RunError(f"run {run.name} failed (exit {proc.returncode}{'' if ok else '; ' + why}): "
                       f"{' '.join(cmd)}")


def _epochs(run: Run) -> int:
    """Epochs the run's resolved config trains for."""
    from training.distill.config import resolve_config

    return int(resolve_config(run.config).train["epochs"])


def train_run(run: Run, out: Path, data_yaml: Path, device: str | None = None,
              workers: int | None = None) -> dict[str, Any]:
    """Train one run unless its ``results.json`` exists; return the results record.

    A teacher given as a ``.pt`` file is not trained: its record points at that file.

    Raises:
        RunError: The training process failed or left no verified checkpoint (its command is in the message).
    """
    run_path = out / "runs" / run.name
    results = run_path / "results.json"
    pt_teacher = run.role == "teacher" and str(run.model).endswith(".pt")
    done = read_json(results) if results.is_file() else None
    fingerprint = run_fingerprint(run, data_yaml)
    epochs = None if pt_teacher else _epochs(run)
    if done is not None:
        if not same_run(done, run, out, data_yaml):
            raise ValueError(f"{results}: fingerprint: this run was trained with another config, "
                             "model, teacher or data; use another --out or delete the run directory")
        if pt_teacher or _finished(run_path, epochs):
            return done
        LOG.warning("run %s: results.json without a verified checkpoint; training it again", run.name)
        results.unlink()
    record = run.record()
    record["fingerprint"] = fingerprint
    if pt_teacher:
        record.update(weights=str(Path(run.model).resolve()), train_s=0.0, epochs="-")
        atomic_write_json(results, record)
        return record
    config_file = out / "configs" / f"{run.name}.yaml"
    atomic_write_yaml(config_file, run.plain_config())
    t0 = time.perf_counter()
    _train_process(run, out, data_yaml, config_file, device, workers, epochs)
    rows = csv_rows(run_path / "results.csv")
    record.update(weights=str((run_path / "weights" / "best.pt").relative_to(out)), epochs=len(rows) or epochs,
                  train_s=round(time.perf_counter() - t0, 1), config_file=str(config_file.relative_to(out)))
    atomic_write_json(results, record)
    return record
