"""Atomic file writes and checked reads: the one home for them in the project.

A reader (a resumed run, ``experiment``'s skip check, a benchmark summary) must never mistake a
half-written file for a finished one. Every write here goes to a temporary file in the same directory,
is flushed to disk, and is then renamed over the target with ``os.replace``, which is atomic on POSIX:
the target is either the old file or the complete new one. Temporary files are named
``<name><TMP_MARK><pid>`` so a tool can recognise and remove torn ones after a crash.

Torch-free and ROS-free: the vehicle runtime, the training stack and the benchmarks all use it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TMP_MARK = ".tmp-"


def tmp_path_for(path: Path, keep_suffix: bool = False) -> Path:
    """Return the temporary sibling that an atomic write of ``path`` goes through.

    ``<name><TMP_MARK><pid>``: it ends in no image or model extension, so a dataset scan or a glob for
    ``*.png`` never takes a torn temporary for a finished file. ``keep_suffix`` appends ``path``'s suffix
    again, for writers that choose the format by the extension (OpenCV's ``VideoWriter``).
    """
    return path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}{path.suffix if keep_suffix else ''}")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically.

    For writers that want a file name rather than bytes (``torch.save``, ``savefig`` with an explicit
    ``format``, ``cv2.VideoWriter`` with ``keep_suffix=True``). On an exception the temporary file is
    removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(path, keep_suffix)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically (``default=str`` for paths and the like)."""
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def atomic_write_yaml(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as YAML (keys in insertion order) to ``path`` atomically."""
    import yaml

    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text file ({exc.reason})") from None


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file; a missing or malformed file raises an error that names it.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` (with the file, line and column)
    for one that is not valid JSON, e.g. a file truncated by a crash of an older writer.
    """
    path = Path(path)
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """Read a YAML file; a missing or malformed file raises an error that names it and the position."""
    import yaml

    path = Path(path)
    try:
        return yaml.safe_load(_read_text(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValueError(f"{path}: invalid YAML{where}: {problem}") from None
