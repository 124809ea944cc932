"""The whole experiment: data, every run of the grid (resumed or skipped), held-out evaluation, tables, plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kd_traffic_light.core.atomic_io import atomic_write_json
from training.experiment.data import prepare_data
from training.experiment.evaluation import evaluate_run
from training.experiment.grid import plan_runs
from training.experiment.plots import plot_curves, plot_map_vs_flops
from training.experiment.runs import csv_rows, train_run
from training.experiment.tables import aggregate, to_markdown, write_tables


def _selected_runs(exp: dict[str, Any], only: set[str] | None) -> list[dict[str, Any]]:
    """Return the grid's runs, restricted to ``only`` and the teacher runs they need when given."""
    runs = plan_runs(exp)
    if only is not None:
        need = set(only) | {r["teacher_run"] for r in runs if r["name"] in only and r.get("teacher_run")}
        runs = [r for r in runs if r["name"] in need]
    return runs


def _train_all(runs: list[dict[str, Any]], out: Path, data_yaml: Path, device: str | None,
               workers: int | None) -> list[dict[str, Any]]:
    """Train (or skip, or resume) every run in order; return their results records."""
    from tqdm import tqdm

    records = []
    bar = tqdm(runs, desc="experiment runs", unit="run")
    for run in bar:
        bar.set_postfix_str(run["name"])
        skipped = (out / "runs" / run["name"] / "results.json").is_file()
        print(f"\n=== run {run['name']} ({'skipped: results exist' if skipped else 'training'}) ===", flush=True)
        records.append(train_run(run, out, data_yaml, device, workers))
    return records


def eval_imgsz(exp: dict[str, Any]) -> int:
    """Image size of the held-out evaluation: the ``evaluate`` section's, else training's, else 640."""
    return int(exp["evaluate"]["imgsz"] or exp["train"].get("imgsz") or 640)


def evaluation_row(exp: dict[str, Any], rec: dict[str, Any], out: Path, data_yaml: Path) -> dict[str, Any]:
    """Held-out row of one trained run (cached next to it): its metrics plus what names its table group."""
    row = {**evaluate_run(rec, out, data_yaml, exp["evaluate"], eval_imgsz(exp)), **{k: rec.get(k) for k in (
        "name", "role", "label", "teacher", "method", "seed", "train_s", "epochs")}}
    row["model_name"] = Path(str(rec["model"])).stem
    return row


def _evaluate_all(exp: dict[str, Any], records: list[dict[str, Any]], out: Path,
                  data_yaml: Path) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, float]]]]:
    """Held-out row of every trained model (cached) and its training curve (results.csv rows)."""
    from tqdm import tqdm

    rows, curves = [], {}
    for rec in tqdm(records, desc="held-out evaluation", unit="model"):
        rows.append(evaluation_row(exp, rec, out, data_yaml))
        curves[rec["name"]] = csv_rows(out / "runs" / rec["name"] / "results.csv")
    return rows, curves


def run_experiment(exp: dict[str, Any], out: str | Path, device: str | None = None, workers: int | None = None,
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
    device = device if device is not None else exp.get("device")
    workers = workers if workers is not None else exp.get("workers")
    atomic_write_json(out / "experiment.json", {k: v for k, v in exp.items()})
    data_yaml = prepare_data(exp, out, workers or 1)
    runs = _selected_runs(exp, only)
    if launcher == "ray":
        from training.experiment.ray_launcher import train_all_ray

        records = train_all_ray(exp, runs, out, data_yaml, device, workers, address=address, retries=retries)
    else:
        records = _train_all(runs, out, data_yaml, device, workers)
    rows, curves = _evaluate_all(exp, records, out, data_yaml)
    groups = aggregate(rows)
    md, js = write_tables(groups, out, rows, title=f"Experiment {Path(exp.get('source', 'experiment')).stem}")
    atomic_write_json(out / "runs.json", rows)
    plot = plot_map_vs_flops(groups, out / "map_vs_flops.png")
    curve_png = plot_curves(curves, out / "curves.png")
    print(to_markdown(groups), flush=True)
    return {"data_yaml": str(data_yaml), "runs": rows, "groups": groups,
            "files": {"results_md": str(md), "results_json": str(js), "plot": str(plot), "curves": str(curve_png)}}
