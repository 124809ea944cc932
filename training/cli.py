"""Command-line interface of the training submodule: one subcommand per stage.

Each stage module exposes ``add_parser(subparsers)`` that registers its subcommand and sets
``func`` (a callable taking the parsed namespace and returning an exit code). Stage modules keep
heavy imports (torch, ultralytics) inside ``func`` so ``--help`` stays fast.

Errors and exit status (one ``error: <file or flag>: <field>: <what was expected, what was given>`` line on
stderr, never a traceback):

- 2, usage: the command line or a config file is wrong. ``training.errors.UsageError`` and any other
  ``ValueError`` (bad keys, types, values, malformed YAML), argparse's own errors (unknown flag, a value of the
  wrong type), and ``FileNotFoundError``: a path the user named that does not exist.
- 1, failure: the request is well-formed but cannot be carried out. ``training.errors.RunError`` (images missing
  behind a data.yaml, a .pt that is not a model or not a training checkpoint, a run that failed) and any other
  ``OSError`` (a directory that cannot be created or written, a full disk).

Anything else is a bug and keeps its traceback. Errors that ultralytics or torch raise for known user inputs are
caught where they arise (the stage's input checks) and re-raised as one of the two, naming the file.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from training.errors import RunError, UsageError

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
    except (UsageError, RunError) as exc:
        return _report(str(exc), exc.exit_code)
    except (ValueError, FileNotFoundError) as exc:
        return _report(_os_message(exc) if isinstance(exc, OSError) else str(exc), UsageError.exit_code)
    except OSError as exc:
        return _report(_os_message(exc), RunError.exit_code)


def _os_message(exc: OSError) -> str:
    """``<file>: <reason>`` for an OSError that names its file (``[Errno 20] ...`` otherwise)."""
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def _report(message: str, code: int) -> int:
    """Print ``error: <message>`` as one line on stderr; return ``code``."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    print(f"error: {line}", file=sys.stderr)
    return code
