"""The experiment's grid: every run (teachers, baselines, distillations, seeds) as a frozen ``Run``, uniquely named.

``plan_runs(exp)`` lists them, teachers first; see docs/training.md ("Experiments") for the grid's shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.experiment.config import Experiment
from training.strict import thaw


@dataclass(frozen=True)
class Run:
    """One run of the grid.

    Attributes:
        name: Unique name, also the run directory (``teacher_s_seed0``, ``n_from_s_fgfi_seed1``).
        role: ``teacher`` or ``student``.
        model: Model yaml, or a trained ``.pt`` teacher (used as is).
        label: The model's label in the experiment.
        method: ``teacher`` for teacher runs, else the method's label.
        seed: Training seed.
        config: The raw merged config (read-only) written to ``configs/<name>.yaml`` and fingerprinted.
        teacher, teacher_run, teacher_model: Teacher label, run name and model of a distillation (None otherwise).
        kd: Whether the run distils.
    """

    name: str
    role: str
    model: str
    label: str
    method: str
    seed: int
    config: Mapping[str, Any]
    teacher: str | None = None
    teacher_run: str | None = None
    teacher_model: str | None = None
    kd: bool = False

    def plain_config(self) -> dict[str, Any]:
        """Return the config as plain dicts and lists (YAML / JSON-ready)."""
        return thaw(self.config)

    def record(self) -> dict[str, Any]:
        """Return the run's ``results.json`` fields (all but the config; teachers without the distillation ones)."""
        rec = {"name": self.name, "role": self.role, "model": self.model, "label": self.label,
               "teacher": self.teacher}
        if self.role != "teacher":
            rec.update(teacher_run=self.teacher_run, teacher_model=self.teacher_model)
        rec.update(method=self.method, seed=self.seed)
        if self.role != "teacher":
            rec["kd"] = self.kd
        return rec


def plan_runs(exp: Experiment) -> list[Run]:
    """Every run of the grid, teachers first (distillation needs them), each with a unique ``name``."""
    runs = [Run(name=f"teacher_{t}_seed{seed}", role="teacher", model=model, label=t, method="teacher", seed=seed,
                config=exp.teacher_config)
            for t, model in exp.teachers.items() for seed in exp.teacher_seeds]
    first = exp.teacher_seeds[0]
    for s, model in exp.students.items():
        for method, cfg in exp.methods.items():
            pairs = list(exp.teachers.items()) if exp.kd[method] else [(None, None)]
            for t, tmodel in pairs:
                if t is not None and Path(str(tmodel)).stem == Path(str(model)).stem:
                    continue  # a student never learns from its own architecture in the study
                for seed in exp.seeds:
                    stem = f"{s}_{method}" if t is None else f"{s}_from_{t}_{method}"
                    runs.append(Run(name=f"{stem}_seed{seed}", role="student", model=model, label=s, method=method,
                                    seed=seed, config=cfg, teacher=t,
                                    teacher_run=None if t is None else f"teacher_{t}_seed{first}",
                                    teacher_model=tmodel, kd=exp.kd[method]))
    return runs
