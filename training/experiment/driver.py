"""The whole experiment: data, every run of the grid (resumed or skipped), held-out evaluation, tables, plots.

``run_experiment(exp, out)`` picks the launcher (``local_launcher`` or ``ray_launcher``, same signature);
neither launcher imports this module. See docs/training.md ("Experiments").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kd_traffic_light.core.atomic_io import atomic_write_json
from training.errors import UsageError
from training.experiment.config import Experiment
from training.experiment.data import prepare_data
from training.experiment.evaluation import evaluation_row
from training.experiment.grid import Run, plan_runs
from training.experiment.plots import plot_curves, plot_map_vs_flops
from training.experiment.runs import csv_rows
from training.experiment.tables import aggregate, to_markdown, write_tables


def _selected_runs(exp: Experiment, only: set[str] | None) -> list[Run]:
    """Return the grid's runs, restricted to ``only`` and the teacher runs they need when given."""
    runs = plan_runs(exp)
    if only is not None:
        need = set(only) | {r.teacher_run for r in runs if r.name in only and r.teacher_run}
        runs = [r for r in runs if r.name in need]
    return runs


def launcher_for(name: str) -> Callable[..., list[dict[str, Any]]]:
    """Return the ``train_all`` function of launcher ``name`` (``local`` or ``ray``; Ray imported only for it)."""
    if name == "local":
        from training.experiment.local_launcher import train_all_local

        return train_all_local
    if name == "ray":
        from training.experiment.ray_launcher import train_all_ray

        return train_all_ray
    raise UsageError(f"--launcher {name}: expected local or ray")


def _evaluate_all(exp: Experiment, records: list[dict[str, Any]], out: Path,
                  data_yaml: Path) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, float]]]]:
    """Held-out row of every trained model (cached) and its training curve (results.csv rows)."""
    from tqdm import tqdm

    rows, curves = [], {}
    for rec in tqdm(records, desc="held-out evaluation", unit="model"):
        rows.append(evaluation_row(exp, rec, out, data_yaml))
        curves[rec["name"]] = csv_rows(out / "runs" / rec["name"] / "results.csv")
    return rows, curves


def run_experiment(exp: Experiment, out: str | Path, device: str | None = None, workers: int | None = None,
                   only: set[str] | None = None, launcher: str = "local", address: str | None = None,
                   retries: int = 1) -> dict[str, Any]:
    """Run (or resume) the whole grid, evaluate every model once, write tables and plots.

    Args:
        exp: From ``load_experiment`` / ``resolve_experiment``.
        out: Experiment directory.
        device: Training device (None: the config's ``device``, else ultralytics' choice).
        workers: Dataloader workers (None: the config's ``workers``).
        only: Restrict to these run names (teachers they need are added).
        launcher: ``local`` (one run after the other in this process) or ``ray`` (every run a Ray task, see
            ``training.experiment.ray_launcher``); both write the same files, and either resumes the other's.
        address: Ray cluster to join (``auto``, ``HOST:PORT``); None starts a local Ray. ``ray`` only.
        retries: Attempts after the first of a failed run. ``ray`` only.

    Returns:
        ``{"data_yaml", "runs": [per-run rows], "groups": [aggregated rows], "files": {...}}``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = device if device is not None else exp.device
    workers = workers if workers is not None else exp.workers
    atomic_write_json(out / "experiment.json", exp.to_dict())
    data_yaml = prepare_data(exp, out, workers or 1)
    runs = _selected_runs(exp, only)
    records = launcher_for(launcher)(exp, runs, out, data_yaml, device, workers, address=address, retries=retries)
    rows, curves = _evaluate_all(exp, records, out, data_yaml)
    groups = aggregate(rows)
    md, js = write_tables(groups, out, rows, title=f"Experiment {Path(exp.source or 'experiment').stem}")
    atomic_write_json(out / "runs.json", rows)
    plot = plot_map_vs_flops(groups, out / "map_vs_flops.png")
    curve_png = plot_curves(curves, out / "curves.png")
    print(to_markdown(groups), flush=True)
    return {"data_yaml": str(data_yaml), "runs": rows, "groups": groups,
            "files": {"results_md": str(md), "results_json": str(js), "plot": str(plot), "curves": str(curve_png)}}
