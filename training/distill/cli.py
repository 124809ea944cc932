r"""``train`` (teacher / baseline) and ``distill`` subcommands.

Flags say where and how to run; the YAML config (training/configs/<name>.yaml) says which experiment.
Examples::

    python -m training train --model yolov5l.yaml --data data.yaml --config training/configs/default.yaml
    python -m training distill --teacher runs/distill/teacher/weights/best.pt --student yolov5n.yaml \\
        --data data.yaml --config training/configs/fgfi.yaml
    python -m training distill --resume runs/distill/fgfi/weights/last.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    """Add the flags shared by train and distill: where and how to run."""
    p.add_argument("--data", help="YOLO data.yaml (names must match the teacher's)")
    p.add_argument("--config", help="experiment YAML (training/configs/<name>.yaml); strict keys")
    p.add_argument("--device", default=None, help="'cpu', '0' or '0,1' (several GPUs run DDP); default auto")
    p.add_argument("--workers", type=int, default=None, help="dataloader workers per process")
    p.add_argument("--project", default="runs/distill", help="directory that holds the run directories")
    p.add_argument("--name", default=None, help="run directory name (default: the config file stem)")
    p.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    p.add_argument("--imgsz", type=int, default=None, help="override the config's training image size")
    p.add_argument("--batch", type=int, default=None, help="override the config's batch size (total over GPUs)")
    p.add_argument("--resume", default=None, help="last.pt of an interrupted run to continue (same KD setup)")
    p.add_argument("--seed", type=int, default=None, help="random seed")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``train`` and ``distill`` subcommands."""
    t = subparsers.add_parser("train", help="train a teacher or a baseline student with the study's recipe")
    t.add_argument("--model", help="model yaml (yolov5n/s/m/l/x.yaml) or a .pt to fine-tune")
    _add_run_flags(t)
    t.set_defaults(func=run_train)
    d = subparsers.add_parser("distill", help="distil a teacher .pt into a student with the config's KD terms")
    d.add_argument("--teacher", help="teacher checkpoint (.pt) trained on the same classes")
    d.add_argument("--student", help="student model yaml (e.g. yolov5n.yaml) or .pt")
    _add_run_flags(d)
    d.set_defaults(func=run_distill)


def build_overrides(args: argparse.Namespace, config: dict[str, Any]) -> dict[str, Any]:
    """Ultralytics arguments: config ``train`` section, then the command-line flags."""
    over = dict(config["train"])
    for key in ("device", "workers", "epochs", "imgsz", "batch", "seed"):
        value = getattr(args, key)
        if value is not None:
            over[key] = value
    over["project"] = str(Path(args.project).resolve())
    over["name"] = args.name or (Path(args.config).stem if args.config else "run")
    over["data"] = args.data
    return over


def _run(args: argparse.Namespace, model: str | None, teacher: str | None) -> int:
    """Build the trainer (new run or resume) and train."""
    import os

    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    from training.distill.config import load_config, resolve_config
    from training.distill.trainer import DistillTrainer

    if args.resume:
        if not Path(args.resume).is_file():
            raise FileNotFoundError(f"--resume: checkpoint not found: {args.resume}")
        over: dict[str, Any] = {"resume": args.resume}
        for key in ("device", "workers", "batch"):
            if getattr(args, key) is not None:
                over[key] = getattr(args, key)
        trainer = DistillTrainer(overrides=over)
    else:
        if not args.data:
            raise ValueError("--data is required unless --resume is given")
        if not Path(args.data).is_file():
            raise FileNotFoundError(f"--data: data.yaml not found: {args.data}")
        config = load_config(args.config) if args.config else resolve_config({})
        if teacher is None and config["distill"]["terms"]:
            raise ValueError(f"{args.config}: distill.terms is set; use `distill --teacher T.pt` for KD runs")
        if teacher is not None and not config["distill"]["terms"]:
            raise ValueError(f"{args.config}: distill.terms is empty; nothing to distil")
        if teacher is not None and not Path(teacher).is_file():
            raise FileNotFoundError(f"--teacher: checkpoint not found: {teacher}")
        over = build_overrides(args, config)
        over["model"] = model
        if teacher is not None:
            over["distill_model"] = teacher
        trainer = DistillTrainer(overrides=over, kd_config=config)
        trainer.config_file = args.config
    trainer.train()
    print(f"best: {trainer.best}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Teacher / baseline training."""
    if not args.resume and not args.model:
        raise ValueError("--model is required unless --resume is given")
    return _run(args, args.model, None)


def run_distill(args: argparse.Namespace) -> int:
    """Distillation of --teacher into --student."""
    if not args.resume and not (args.teacher and args.student):
        raise ValueError("--teacher and --student are required unless --resume is given")
    return _run(args, args.student, args.teacher)
