"""Checkpoint and run-completion checks shared by the trainer and by ``experiment``.

A run is finished only when ``weights/COMPLETE.json`` says so: written last, atomically, after ``best.pt`` was
checked to load and to hold the student alone; it records that file's size, SHA-256 and parameter count, and a
reader trusts the run only while they match (``verify_run``). Checkpoints are written through a temporary sibling
and ``os.replace`` (``atomic_strip``, ``commit_saved``), so ``last.pt`` / ``best.pt`` is always a complete file.
Torch is imported only where checkpoints are loaded. See docs/training.md.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import os
from pathlib import Path
from typing import Any

from kd_traffic_light.core.atomic_io import TMP_MARK, atomic_path, atomic_write_json, read_json
from training.errors import RunError

MARKER = "COMPLETE.json"
MARKER_FORMAT = 1


class CheckpointError(RunError):
    """A checkpoint or completion marker that is missing, unreadable, torn or of the wrong kind."""


def marker_path(run_dir: str | os.PathLike[str]) -> Path:
    """Where the completion marker of the run in ``run_dir`` lives."""
    return Path(run_dir) / "weights" / MARKER


def file_digest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Size and SHA-256 of a file."""
    with open(path, "rb") as fh:
        return {"size": os.path.getsize(path), "sha256": hashlib.file_digest(fh, "sha256").hexdigest()}


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load an ultralytics checkpoint on the CPU; a truncated or foreign file raises ``CheckpointError``."""
    import torch
    from ultralytics.utils.patches import torch_load

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch_load(path, map_location=torch.device("cpu"))
    except Exception as exc:  # torn zip, pickle garbage, missing class: all mean "not a usable checkpoint"
        raise CheckpointError(f"{path}: not a readable checkpoint (torn or truncated?): "
                              f"{type(exc).__name__}: {exc}") from None
    if not isinstance(ckpt, dict) or not isinstance(_model(ckpt), torch.nn.Module):
        raise CheckpointError(f"{path}: not an ultralytics checkpoint (no model in it)")
    return ckpt


def _model(ckpt: dict[str, Any]) -> Any:
    """Return the checkpoint's model: the EMA while training, ``model`` once stripped (never truth-tested)."""
    return ckpt["ema"] if ckpt.get("ema") is not None else ckpt.get("model")


def resume_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return what a ``last.pt`` can resume: ``{"epoch", "epochs", "stripped"}`` (``CheckpointError`` if unreadable).

    ``stripped`` is true for a checkpoint that ultralytics' final step already reduced to the weights
    (epoch -1, no optimizer): its training loop has finished.
    """
    ckpt = load(path)
    epoch = ckpt.get("epoch", -1)
    epochs = (ckpt.get("train_args") or {}).get("epochs")
    return {"epoch": -1 if epoch is None else int(epoch), "epochs": epochs, "stripped": is_stripped(ckpt)}


def is_stripped(ckpt: dict[str, Any]) -> bool:
    """Whether a loaded checkpoint is a final one (epoch -1 or no optimizer state): nothing left to resume."""
    epoch = ckpt.get("epoch", -1)
    return epoch is None or epoch < 0 or ckpt.get("optimizer") is None


def loop_finished(path: str | os.PathLike[str], epochs: int | None = None) -> bool:
    """Whether the checkpoint ``last.pt`` comes from a training loop that has run its last epoch."""
    state = resume_state(path)
    total = epochs if epochs is not None else state["epochs"]
    return state["stripped"] or (total is not None and state["epoch"] + 1 >= int(total))


def check_final(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check that ``path`` is a finished model file: loads, student only (no teacher, adapters), no optimizer.

    Returns:
        ``{"params": <parameter count>, "model": <class name>}``.

    Raises:
        CheckpointError: Naming the file and what is wrong with it.
    """
    from ultralytics.nn.distill_model import DistillationModel

    ckpt = load(path)
    model = _model(ckpt)
    if isinstance(model, DistillationModel) or hasattr(model, "teacher_model"):
        raise CheckpointError(f"{path}: holds the whole distillation model, not the student alone")
    if ckpt.get("optimizer") is not None:
        raise CheckpointError(f"{path}: still holds optimizer state (not the final, stripped checkpoint)")
    return {"params": int(sum(p.numel() for p in model.parameters())), "model": type(model).__name__}


def atomic_strip(src: str | os.PathLike[str], dst: str | os.PathLike[str] | None = None,
                 updates: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ultralytics' ``strip_optimizer`` (EMA weights, student only, FP16, no optimizer) written atomically.

    The stripped checkpoint goes to a temporary sibling of ``dst`` (default: ``src`` itself), is checked with
    ``check_final`` and only then replaces ``dst``; on any failure ``dst`` is left as it was.

    Returns:
        The stripped checkpoint dictionary.

    Raises:
        CheckpointError: ``src`` is unreadable or the result is not a student-only model.
    """
    from ultralytics.utils.torch_utils import strip_optimizer

    src = Path(src)
    dst = Path(dst) if dst is not None else src
    with atomic_path(dst) as tmp:
        ckpt = strip_optimizer(src, s=str(tmp), updates=updates)
        if not ckpt or not tmp.is_file():  # strip_optimizer only warns on a file it cannot read
            load(src)  # raises naming what is wrong with it
            raise CheckpointError(f"{src}: could not be stripped to {dst}")
        check_final(tmp)
    return ckpt


def commit(tmp: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Move a fully written temporary file onto ``path`` atomically (fsync, ``os.replace``, directory fsync)."""
    with atomic_path(path) as staged:
        os.replace(tmp, staged)


def commit_saved(tmp_best: Path, tmp_last: Path, best: Path, last: Path, student_only_from_last: bool) -> None:
    """Commit the temporary checkpoints of one save: best.pt first (so a last.pt always has its best.pt), then last.pt.

    With ``student_only_from_last`` (distillation) best.pt is the checked student-only strip of the new last.pt;
    otherwise the saved best.pt as is. Both temporaries are gone afterwards, whatever happened.
    """
    try:
        if tmp_best.is_file():
            if student_only_from_last:
                atomic_strip(tmp_last, best)
            else:
                commit(tmp_best, best)
        if tmp_last.is_file():
            commit(tmp_last, last)
    finally:
        tmp_best.unlink(missing_ok=True)
        tmp_last.unlink(missing_ok=True)


def finalize_best(best: Path, last: Path, warn: Any = None) -> None:
    """Run the final strip of best.pt (its train results from last.pt), atomic and checked.

    A best.pt that does not load (torn by an older writer) is replaced by the final weights of last.pt;
    ``warn`` (a callable taking a message) says so.
    """
    ckpt = load(last) if last.exists() else {}
    try:
        load(best)
    except CheckpointError as exc:
        if not ckpt:
            raise
        if warn is not None:
            warn(f"{exc}; the final weights (last.pt) stand in for it")
        atomic_strip(last, best)
        return
    atomic_strip(best, updates={"train_results": ckpt.get("train_results")})


def strip_last(last: Path) -> None:
    """Run the final strip of last.pt, atomic; call it after the marker, since a full last.pt is still resumable."""
    if last.exists() and not resume_state(last)["stripped"]:
        atomic_strip(last)


def _row_epoch(line: str) -> float:
    """Epoch number of a results.csv row (inf for a row that does not start with one, so it is dropped)."""
    try:
        return float(line.split(",", 1)[0])
    except ValueError:
        return float("inf")


def results_kept_before(csv_path: Path, epoch: int) -> str:
    """Return the header and complete rows of ``results.csv`` for epochs before ``epoch`` (1-based), as text.

    Rows a killed attempt left for ``epoch`` or later, and a torn last line, are dropped: the next row is then
    appended to what is returned.
    """
    if not csv_path.is_file():
        return ""
    lines = csv_path.read_text(encoding="utf-8").splitlines(keepends=True)
    if not (lines and lines[0].endswith("\n")):
        return ""
    return lines[0] + "".join(r for r in lines[1:] if r.endswith("\n") and _row_epoch(r) < epoch)


def remove_stale_temporaries(directory: str | os.PathLike[str]) -> None:
    """Delete temporary siblings (``<name>.tmp-<pid>``) that a killed writer left in ``directory``."""
    directory = Path(directory)
    if directory.is_dir():
        for p in directory.glob(f"*{TMP_MARK}*"):
            p.unlink(missing_ok=True)


def results_rows(run_dir: str | os.PathLike[str]) -> int:
    """Count the epoch rows in the run's ultralytics ``results.csv`` (0 when missing)."""
    path = Path(run_dir) / "results.csv"
    if not path.is_file():
        return 0
    with open(path, newline="", encoding="utf-8") as fh:
        return sum(1 for _ in csv.DictReader(fh))


def remove_marker(run_dir: str | os.PathLike[str]) -> None:
    """Withdraw the completion marker (a run that trains again is not complete)."""
    marker_path(run_dir).unlink(missing_ok=True)


def write_marker(run_dir: str | os.PathLike[str], *, kind: str, epochs: int | None,
                 epochs_done: int | None = None) -> Path:
    """Check ``weights/best.pt`` (``check_final``) and then write the completion marker atomically.

    Call it as the very last write of a run: from then on readers take the run as finished.

    Returns:
        The marker's path.
    """
    run_dir = Path(run_dir)
    best = run_dir / "weights" / "best.pt"
    info = check_final(best)
    marker = {
        "format": MARKER_FORMAT,
        "complete": True,
        "kind": kind,
        "epochs": epochs,
        "epochs_done": results_rows(run_dir) if epochs_done is None else epochs_done,
        "best": {"file": best.name, **file_digest(best), **info},
        "written": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    path = marker_path(run_dir)
    atomic_write_json(path, marker)
    return path


def adopt_finished(run_dir: str | os.PathLike[str], epochs: int | None) -> Path | None:
    """Write the marker of a run that finished before markers existed; return it, or None when it did not finish.

    Such a run has a ``last.pt`` that ultralytics' final step stripped (it did so only after the last epoch
    and the final validation), a ``best.pt`` that ``check_final`` accepts (loads, student only, no optimizer)
    and, when ``epochs`` is given, that many rows in ``results.csv``. Anything less is not adopted: the
    caller resumes or trains it again.
    """
    run_dir = Path(run_dir)
    last, best = run_dir / "weights" / "last.pt", run_dir / "weights" / "best.pt"
    if marker_path(run_dir).is_file() or not (last.is_file() and best.is_file()):
        return None
    try:
        if not resume_state(last)["stripped"]:
            return None
        check_final(best)
    except CheckpointError:
        return None
    if epochs is not None and results_rows(run_dir) < int(epochs):
        return None
    return write_marker(run_dir, kind="adopted", epochs=epochs)


def verify_run(run_dir: str | os.PathLike[str], load_weights: bool = False) -> dict[str, Any]:
    """Return the marker of a finished run after checking it against ``best.pt``.

    Args:
        run_dir: The run directory (``<project>/<name>``).
        load_weights: Also load ``best.pt`` and check it is student-only with the recorded parameter count
            (the size and SHA-256 check alone already ties it to the file the trainer checked).

    Raises:
        CheckpointError: No marker, a marker that is not complete JSON of this format, or a ``best.pt`` that
            is missing or differs from the one the marker vouches for.
    """
    run_dir = Path(run_dir)
    path = marker_path(run_dir)
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: not finished ({path.name} missing)")
    try:
        marker = read_json(path)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    if not isinstance(marker, dict) or marker.get("format") != MARKER_FORMAT or marker.get("complete") is not True:
        raise CheckpointError(f"{path}: not a completion marker of format {MARKER_FORMAT}")
    best_info = marker.get("best") or {}
    best = run_dir / "weights" / str(best_info.get("file", "best.pt"))
    if not best.is_file():
        raise CheckpointError(f"{best}: missing, though {path.name} says the run finished")
    digest = file_digest(best)
    if digest["size"] != best_info.get("size") or digest["sha256"] != best_info.get("sha256"):
        raise CheckpointError(f"{best}: differs from the file {path.name} vouches for (size/SHA-256)")
    if load_weights:
        info = check_final(best)
        if info["params"] != best_info.get("params"):
            raise CheckpointError(f"{best}: {info['params']} parameters, {path.name} says {best_info.get('params')}")
    return marker


def is_complete(run_dir: str | os.PathLike[str], load_weights: bool = False) -> tuple[bool, str]:
    """Return ``(True, "")`` for a verified finished run, else ``(False, <why not>)``."""
    try:
        verify_run(run_dir, load_weights)
    except CheckpointError as exc:
        return False, str(exc)
    return True, ""
