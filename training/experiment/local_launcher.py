"""``--launcher local`` (the default): every run of the grid in order, in this process, one after the other.

Same signature and outputs as ``training.experiment.ray_launcher.train_all_ray``; each run trains in its own
``python -m training train|distill`` process (``runs.train_run``). See docs/training.md ("Experiments").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.experiment.config import Experiment
from training.experiment.grid import Run
from training.experiment.runs import train_run


def train_all_local(exp: Experiment, runs: list[Run], out: Path, data_yaml: Path, device: str | None,
                    workers: int | None, address: str | None = None, retries: int = 1) -> list[dict[str, Any]]:
    """Train (or skip, or resume) every run in order; return their results records.

    ``address`` and ``retries`` belong to the Ray launcher and are ignored here (the CLI refuses them).
    """
    from tqdm import tqdm

    del exp, address, retries
    records = []
    bar = tqdm(runs, desc="experiment runs", unit="run")
    for run in bar:
        bar.set_postfix_str(run.name)
        skipped = (out / "runs" / run.name / "results.json").is_file()
        print(f"\n=== run {run.name} ({'skipped: results exist' if skipped else 'training'}) ===", flush=True)
        records.append(train_run(run, out, data_yaml, device, workers))
    return records
