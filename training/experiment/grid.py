"""The experiment's grid: every run (teachers, baselines, distillations, seeds) with a unique name."""

from __future__ import annotations

from pathlib import Path
from typing import Any


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
