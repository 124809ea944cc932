r"""``train`` (teacher / baseline) and ``distill`` subcommands.

Flags say where and how to run; the YAML config (training/configs/<name>.yaml) says which experiment. Everything
is checked before ultralytics creates the run directory, and a run goes to exactly ``<--project>/<--name>``::

    python -m training train --model yolov5l.yaml --data data.yaml --config training/configs/default.yaml
    python -m training distill --teacher teacher.pt --student yolov5n.yaml --data data.yaml --config fgfi.yaml
    python -m training distill --resume runs/distill/fgfi/weights/last.pt

What is checked, and where runs go: docs/training.md, "Training on the real DTLD" ("Where runs go").
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.errors import RunError, UsageError

if TYPE_CHECKING:
    from training.distill.config import DistillConfig

# Flags that override a ``train`` value of the config (same checks as the config's).
FLAG_KEYS = ("device", "workers", "epochs", "imgsz", "batch", "seed")
# What a resumed run may change (ultralytics' check_resume keeps the checkpoint's values for anything else).
RESUME_KEYS = ("device", "workers", "batch")


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    """Add the flags shared by train and distill: where and how to run."""
    p.add_argument("--data", help="YOLO data.yaml (names must match the teacher's)")
    p.add_argument("--config", help="experiment YAML (training/configs/<name>.yaml); strict keys")
    p.add_argument("--device", default=None, help="'cpu', '0' or '0,1' (several GPUs run DDP); default auto")
    p.add_argument("--workers", type=int, default=None, help="dataloader workers per process")
    p.add_argument("--project", default="runs/distill", help="directory that holds the run directories")
    p.add_argument("--name", default=None, help="run directory name (default: the config file stem); the run goes "
                   "to exactly <project>/<name>, which must not hold another run's checkpoint")
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


def _reason(exc: BaseException, path: str) -> str:
    """Return the first line of an ultralytics error without its emoji and the file name the caller gives."""
    import re

    plain = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # ultralytics colours its prefixes
    lines = [line.strip() for line in plain.splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    text = text.replace("ERROR ❌️ ", "").replace(" ❌", "").strip()
    for prefix in (f"Dataset '{path}' ", f"{path} is ", f"{path} "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text.rstrip(".")


def check_flags(args: argparse.Namespace, keys: tuple[str, ...] = FLAG_KEYS) -> dict[str, Any]:
    """Return the given override flags, each checked like the config's ``train`` value (``--batch -5`` fails)."""
    from training.distill.config import check_train_value

    over = {}
    for key in keys:
        value = getattr(args, key, None)
        if value is not None:
            check_train_value(key, value, f"--{key}")
            over[key] = value
    return over


def build_overrides(args: argparse.Namespace, config: DistillConfig) -> dict[str, Any]:
    """Ultralytics arguments: config ``train`` section, then the command-line flags, then where the run goes."""
    over = config.overrides()
    over.update(check_flags(args))
    over["project"] = str(Path(args.project).resolve())
    over["name"] = args.name or (Path(args.config).stem if args.config else "run")
    over["exist_ok"] = True  # the run directory is <project>/<name>, never <name>-2 (see prepare_run_dir)
    over["data"] = args.data
    return over


def check_data(data: str) -> None:
    """Check ``--data``: a YOLO data.yaml (mapping with train/val and names) whose image folders exist.

    Raises:
        UsageError: No such file, malformed YAML, or a missing or ill-typed key.
        RunError: The images it names are missing (ultralytics' dataset check, with the file named).
    """
    from kd_traffic_light.core.atomic_io import read_yaml

    if not Path(data).is_file():
        raise UsageError(f"--data: {data}: data.yaml not found")
    try:
        raw = read_yaml(data)
    except ValueError as exc:
        raise UsageError(f"--data: {exc}") from None
    if not isinstance(raw, dict):
        raise UsageError(f"--data: {data}: expected a mapping with train, val and names, got {raw!r:.60}")
    for key in ("train", "val"):
        if key not in raw:
            raise UsageError(f"--data: {data}: {key}: expected an image folder or list file, got nothing")
    from ultralytics.data.utils import check_det_dataset

    try:
        check_det_dataset(data, autodownload=False)
    except FileNotFoundError as exc:
        raise RunError(f"--data: {data}: {_reason(exc, data)}") from None
    except (SyntaxError, TypeError, ValueError, KeyError) as exc:
        raise UsageError(f"--data: {data}: {_reason(exc, data)}") from None


def check_model_arg(model: str, flag: str) -> None:
    """Check ``--model`` / ``--student``: a model yaml ultralytics can find, or a model checkpoint."""
    if str(model).endswith(".pt"):
        read_checkpoint(model, flag)
        return
    if not str(model).endswith((".yaml", ".yml")):
        raise UsageError(f"{flag}: {model}: expected a model .yaml (e.g. yolov5n.yaml) or a .pt checkpoint")
    from ultralytics.nn.tasks import yaml_model_load

    try:
        yaml_model_load(model)  # how the trainer finds it: a file, or a name such as yolov5n.yaml (scale n)
    except FileNotFoundError:
        raise UsageError(f"{flag}: {model}: model yaml not found (neither a file nor an ultralytics model name)") \
            from None


def read_checkpoint(path: str, flag: str, resume: bool = False) -> dict[str, Any]:
    """Load ``path`` as an ultralytics checkpoint; a file that is not one is a RunError naming the flag and file.

    Args:
        path (str): The .pt file.
        flag (str): The flag that named it (``--teacher``, ``--resume``, ...).
        resume (bool): Require a checkpoint of an unfinished run (training arguments, optimizer state, epoch).

    Returns:
        (dict): The checkpoint.
    """
    from training import checkpoints

    if not Path(path).is_file():
        raise UsageError(f"{flag}: {path}: checkpoint not found")
    if not str(path).endswith(".pt"):
        raise UsageError(f"{flag}: {path}: expected an ultralytics .pt checkpoint")
    kind = "training checkpoint" if resume else "model checkpoint"
    try:
        ckpt = checkpoints.load(path)
    except checkpoints.CheckpointError as exc:
        raise RunError(f"{flag}: {path}: not a {kind} ({str(exc).removeprefix(f'{path}: ')})") from None
    if resume:
        if not isinstance(ckpt.get("train_args"), dict) or "epoch" not in ckpt:
            raise RunError(f"{flag}: {path}: not a training checkpoint (no training arguments or epoch in it: a model "
                           "file, not a run's weights/last.pt)")
        if checkpoints.is_stripped(ckpt):
            raise RunError(f"{flag}: {path}: not a training checkpoint (its run finished or it was stripped of the "
                           "optimizer state; nothing to resume: start a new run with it as --model)")
    return ckpt


def check_writable_dir(path: Path, flag: str) -> None:
    """Raise RunError unless directory ``path`` exists or can be created and written; create nothing."""
    anc = path
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise RunError(f"{flag}: {path}: cannot create the directory: {anc} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(dir=anc, prefix=".write-test-")
    except OSError as exc:
        raise RunError(f"{flag}: {path}: cannot write the directory: {anc}: {exc.strerror}") from None
    os.close(fd)
    os.unlink(probe)


def _checkpoints(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "weights").glob("*.pt"))


def prepare_run_dir(project: str, name: str) -> Path:
    """Make ``<project>/<name>`` ready for a new run (the directory ultralytics writes with ``exist_ok``).

    A directory holding a checkpoint is refused (it is a run: resume it or choose another name); one left by a
    failed attempt (ultralytics' args.yaml, no checkpoint) is removed; anything else there is refused.
    """
    run_dir = Path(project).resolve() / name
    if run_dir.exists():
        if not run_dir.is_dir():
            raise RunError(f"--name: {run_dir}: cannot create the run directory: a file is in the way")
        ckpts = _checkpoints(run_dir)
        if ckpts:
            last = run_dir / "weights" / "last.pt"
            hint = f"continue it with --resume {last}" if last in ckpts else "evaluate or export it"
            raise UsageError(f"--name: {run_dir}: already holds a run ({ckpts[0].relative_to(run_dir)}); {hint}, "
                             "or choose another --name")
        if any(run_dir.iterdir()) and not (run_dir / "args.yaml").is_file():
            raise UsageError(f"--name: {run_dir}: exists and is not a run directory; choose another --name")
        check_writable_dir(run_dir, "--project")
        shutil.rmtree(run_dir)  # a failed attempt's leftovers: nothing to resume from, start anew in place
    check_writable_dir(run_dir, "--project")
    return run_dir


def remove_failed_run(run_dir: Path) -> None:
    """Remove the directory of an attempt that failed before its first checkpoint (nothing to resume from)."""
    if run_dir.is_dir() and not _checkpoints(run_dir):
        shutil.rmtree(run_dir, ignore_errors=True)
        print(f"note: removed {run_dir}: the failed run left no checkpoint", file=sys.stderr)


def _run(args: argparse.Namespace, model: str | None, teacher: str | None) -> int:
    """Check every input, build the trainer (new run or resume) and train."""
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    from training.distill.config import load_config, resolve_config

    run_dir = None
    if args.resume:
        over: dict[str, Any] = {"resume": args.resume, **check_flags(args, RESUME_KEYS)}
        read_checkpoint(args.resume, "--resume", resume=True)
        kd_config = None
    else:
        if not args.data:
            raise UsageError("--data: required unless --resume is given")
        config = load_config(args.config) if args.config else resolve_config({})
        if teacher is None and config.distills:
            raise UsageError(f"{args.config}: distill.terms: expected none for `train`, got "
                             f"{', '.join(config.terms)}; use `distill --teacher T.pt` for KD runs")
        if teacher is not None and not config.distills:
            raise UsageError(f"{args.config or '--config'}: distill.terms: expected at least one term to distil, "
                             "got none")
        over = build_overrides(args, config)
        check_data(args.data)
        check_model_arg(model, "--student" if teacher is not None else "--model")
        if teacher is not None:
            read_checkpoint(teacher, "--teacher")
        run_dir = prepare_run_dir(over["project"], over["name"])
        over["model"] = model
        if teacher is not None:
            over["distill_model"] = teacher
        kd_config = config
    from training.distill.trainer import DistillTrainer

    try:
        try:
            trainer = DistillTrainer(overrides=over, kd_config=kd_config)
        except ValueError as exc:  # ultralytics' select_device: the one input only the trainer can check
            if "'device=" not in str(exc):
                raise
            where = ("--device" if args.device is not None else f"{args.config}: train.device" if args.config
                     else f"{args.resume}: train_args.device")
            raise UsageError(f"{where}: expected a device this machine has: {_reason(exc, '')}") from None
        if not args.resume:
            trainer.config_file = args.config
        trainer.train()
    except BaseException as exc:
        if run_dir is not None:
            remove_failed_run(run_dir)
        import torch

        run = run_dir or args.resume
        if isinstance(exc, torch.cuda.OutOfMemoryError):
            raise RunError(f"{run}: run failed: CUDA out of memory; lower --batch (or train.batch in the config)") \
                from None
        if isinstance(exc, OSError):  # data or output the checks above could not foresee (unreadable, disk full)
            raise RunError(f"{run}: run failed: {_reason(exc, '')}") from None
        raise
    print(f"best: {trainer.best}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Teacher / baseline training."""
    if not args.resume and not args.model:
        raise UsageError("--model: required unless --resume is given")
    return _run(args, args.model, None)


def run_distill(args: argparse.Namespace) -> int:
    """Distillation of --teacher into --student."""
    if not args.resume and not (args.teacher and args.student):
        missing = "--teacher" if not args.teacher else "--student"
        raise UsageError(f"{missing}: required (with --teacher and --student) unless --resume is given")
    return _run(args, args.student, args.teacher)
