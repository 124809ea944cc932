"""Held-out evaluation of each run, computed once and cached next to the run, and its row in the tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kd_traffic_light.core.atomic_io import atomic_write_json, read_json
from training.experiment.config import EvalSpec, Experiment


def weights_path(record: dict[str, Any], out: Path) -> Path:
    """Absolute path of a run's weights (records store them relative to the experiment directory)."""
    p = Path(record["weights"])
    return p if p.is_absolute() else out / p


def eval_cache(out: Path, name: str, split: str, imgsz: int) -> Path:
    """Where the evaluation of run ``name`` on ``split`` at ``imgsz`` is cached."""
    return out / "runs" / name / f"eval_{split}_{imgsz}.json"


def evaluate_run(record: dict[str, Any], out: Path, data_yaml: Path, ev: EvalSpec, imgsz: int) -> dict[str, Any]:
    """Held-out metrics of one run, computed once (cached in ``eval_<split>_<imgsz>.json`` next to the run)."""
    cache = eval_cache(out, record["name"], ev.split, imgsz)
    row = read_json(cache) if cache.is_file() else None
    if row is None:
        from training.evaluate import evaluate_model

        row = evaluate_model(weights_path(record, out), data_yaml, split=ev.split, imgsz=imgsz,
                             device=str(ev.device), batch=ev.batch, latency_reps=ev.latency_reps,
                             project=out / "val")
        atomic_write_json(cache, row)
    plot = cache.parent / "confusion_state.png"
    if row.get("state") and not plot.is_file():  # a relevance_state model: its confusion matrix beside it
        from training.state_metrics import plot_confusion

        plot_confusion(row["state"], plot, title=f"{record['name']}: light state")
    return row


def evaluation_row(exp: Experiment, rec: dict[str, Any], out: Path, data_yaml: Path) -> dict[str, Any]:
    """Held-out row of one trained run (cached next to it): its metrics plus what names its table group."""
    row = {**evaluate_run(rec, out, data_yaml, exp.evaluate, exp.eval_imgsz()), **{k: rec.get(k) for k in (
        "name", "role", "label", "teacher", "method", "seed", "train_s", "epochs")}}
    row["model_name"] = Path(str(rec["model"])).stem
    return row
