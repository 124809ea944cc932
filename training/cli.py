"""Command-line interface of the training submodule: one subcommand per stage (``python -m training --help``).

Each stage module exposes ``add_parser(subparsers)``, which registers its subcommand and sets ``func`` (the
parsed namespace -> an exit code), and keeps torch / ultralytics imports inside ``func`` so ``--help`` stays fast.
Errors end in one ``error: ...`` line on stderr: exit 2 for a usage error, 1 for a failure; any other exception
is a bug and keeps its traceback.

Which exception maps to which status: docs/training.md, "Errors and exit status".
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
    "training.state_classifier.cli",
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
