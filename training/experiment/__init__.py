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

The package, one module per job: ``config`` (the strict YAML), ``data`` (synthetic / DTLD / YOLO data, once),
``grid`` (the runs), ``runs`` (training one run in its own process, resume and skip checks), ``evaluation``
(the held-out evaluation cache), ``tables`` (mean and spread over repeats), ``plots``, ``driver``
(``run_experiment``, sequential: the default launcher), ``ray_launcher`` (``--launcher ray``: every run a Ray
task, teachers before their students, retries; same per-run code and outputs) and ``cli`` (the subcommand).

Example::

    python -m training experiment --config training/configs/dtld_source_study.yaml --device 0
"""

from training.experiment.cli import add_parser, main
from training.experiment.config import (
    DATA_KEYS,
    EVAL_KEYS,
    TOP_KEYS,
    load_experiment,
    resolve_experiment,
    synth_config,
)
from training.experiment.data import convert_data, generate_synth, prepare_data
from training.experiment.driver import run_experiment
from training.experiment.evaluation import eval_cache, evaluate_run, weights_path
from training.experiment.grid import plan_runs
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
    "COST_METRICS", "DATA_KEYS", "EVAL_KEYS", "STUDY_METRICS", "TABLE_COLUMNS", "TOP_KEYS", "_finished", "add_parser",
    "aggregate", "convert_data", "csv_rows", "eval_cache", "evaluate_run", "generate_synth", "group_key",
    "load_experiment", "main", "plan_runs", "plot_curves", "plot_map_vs_flops", "prepare_data", "resolve_experiment",
    "run_experiment", "run_fingerprint", "spread", "synth_config", "teacher_weights", "to_markdown", "train_command",
    "train_run", "weights_path", "write_tables",
]
