"""``python -m training experiment``: its flags and its entry point."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from training.errors import UsageError
from training.experiment.config import load_experiment
from training.experiment.driver import run_experiment


def main(args: argparse.Namespace) -> int:
    """Entry point of ``python -m training experiment``."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.launcher != "ray" and (args.address is not None or args.retries is not None):
        raise UsageError("--address and --retries: only with --launcher ray")
    exp = load_experiment(args.config)
    if args.data_root:
        exp = exp.with_data_root(args.data_root)
    out = Path(args.out or exp.out)
    retries = 1 if args.retries is None else args.retries
    run_experiment(exp, out, args.device, args.workers, launcher=args.launcher, address=args.address,
                   retries=retries)
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
    p.add_argument("--launcher", choices=("local", "ray"), default="local",
                   help="local: one run after the other (default); ray: every run a Ray task, teachers first, "
                   "independent runs in parallel (resources per run: the config's 'resources')")
    p.add_argument("--address", default=None,
                   help="--launcher ray: the cluster to join (auto, HOST:PORT; default: start a local Ray)")
    p.add_argument("--retries", type=int, default=None,
                   help="--launcher ray: attempts after the first of a failed run (default 1)")
    p.set_defaults(func=main)
    return p
