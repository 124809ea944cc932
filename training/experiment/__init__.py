r"""``python -m training experiment``: the source study's grid (teachers x students x methods x seeds), resumable.

One strict YAML file (``config.load_experiment`` -> a frozen ``Experiment``) says which data, recipe, models,
methods and seeds; ``grid.plan_runs`` lists the runs, each trained in its own process by the local or the Ray
launcher, then evaluated once on the held-out split; tables and plots go to ``--out``. The grid, the resume rules,
the outputs and the package's modules: docs/training.md ("Experiments").

Example::

    python -m training experiment --config training/configs/dtld_source_study.yaml --device 0
"""

from training.experiment.cli import add_parser, main
from training.experiment.config import (
    DATA_KEYS,
    EVAL_KEYS,
    TOP_KEYS,
    DataSpec,
    EvalSpec,
    Experiment,
    Resources,
    load_experiment,
    resolve_experiment,
    synth_config,
)
from training.experiment.data import convert_data, generate_synth, prepare_data
from training.experiment.driver import run_experiment
from training.experiment.evaluation import eval_cache, evaluate_run, evaluation_row, weights_path
from training.experiment.grid import Run, plan_runs
from training.experiment.local_launcher import train_all_local
from training.experiment.plots import plot_curves, plot_map_vs_flops
from training.experiment.runs import (
    _finished,
    csv_rows,
    run_fingerprint,
    teacher_weights,
    train_command,
    train_run,
)
from training.experiment.tables import (
    COST_METRICS,
    STUDY_METRICS,
    TABLE_COLUMNS,
    aggregate,
    group_key,
    spread,
    to_markdown,
    write_tables,
)

__all__ = [
    "COST_METRICS", "DATA_KEYS", "EVAL_KEYS", "STUDY_METRICS", "TABLE_COLUMNS", "TOP_KEYS", "DataSpec", "EvalSpec",
    "Experiment", "Resources", "Run", "_finished", "add_parser", "aggregate", "convert_data", "csv_rows",
    "eval_cache", "evaluate_run", "evaluation_row", "generate_synth", "group_key", "load_experiment", "main",
    "plan_runs", "plot_curves", "plot_map_vs_flops", "prepare_data", "resolve_experiment", "run_experiment",
    "run_fingerprint", "spread", "synth_config", "teacher_weights", "to_markdown", "train_all_local",
    "train_command", "train_run", "weights_path", "write_tables",
]
