"""Command-line interface of the training submodule: one subcommand per stage.

Each stage module exposes ``add_parser(subparsers)`` that registers its subcommand and sets
``func`` (a callable taking the parsed namespace and returning an exit code). Stage modules keep
heavy imports (torch, ultralytics) inside ``func`` so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Module paths that provide ``add_parser(subparsers)``; order is the order shown in --help.
STAGES = (
    "training.data.cli",
    "training.distill.cli",
    "training.evaluate",
    "training.export",
    "training.experiment",
)


def get_args_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with one subcommand per available stage."""
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="kd_traffic_light offline training: DTLD data, teacher training, distillation, "
        "evaluation and export.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>")
    for name in STAGES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a stage not built yet must not break the others
            if exc.name != name:
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen stage; returns the process exit code."""
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    args = get_args_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
