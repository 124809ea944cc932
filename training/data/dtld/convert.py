"""DTLD -> YOLO conversion (``python -m training data convert-dtld``): :func:`convert_dtld` runs the steps in order.

Usage: ``convert_dtld(root, out, ConvertOptions(train=[...], test=[...]), workers=4)`` returns the summary.
The output (images, labels, ``data.yaml``, ``summary.json``, the resume fingerprint) is resumable and
byte-identical on a re-run; nothing to convert is a :class:`RunError` (exit 1), not an empty dataset.
Output layout: docs/dtld_format.md, section 5; behaviour: docs/training.md, "Data conversion details".
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from training.data.dtld.jobs import image_jobs, run_jobs
from training.data.dtld.labels import DtldFrame, Warn
from training.data.dtld.options import ConvertOptions
from training.data.dtld.output import (
    STATE_FILE,
    fingerprint,
    prepare_output,
    remove_empty_output,
    write_artefact,
    write_data_yaml,
)
from training.data.dtld.splits import SPLITS, check_sources, load_splits, requested_splits
from training.data.dtld.summary import SUMMARY_FILE, build_summary, log_result, new_stats
from training.data.dtld.yolo import label_lines
from training.errors import RunError


def convert_dtld(root: str | os.PathLike, out: str | os.PathLike, opts: ConvertOptions, workers: int = 1,
                 progress: bool = True) -> dict[str, Any]:
    """Convert DTLD (``root`` = the folder holding the city folders) into a YOLO dataset at ``out``.

    Args:
        root: DTLD base directory (``data_base_dir``); image paths are re-rooted on their last 4 parts.
        out: output dataset directory (created; must be empty or a previous run with the same options).
        opts: label files per split, validation draw, image encoding and attribute filters.
        workers: processes decoding images (1 = in this process).
        progress: show a tqdm bar.

    Returns:
        The summary dict (also written to ``out/summary.json``).

    Raises:
        FileNotFoundError: a label file is missing.
        DtldFormatError: a label file is malformed.
        ValueError: bad options, or ``out`` holds a dataset made with other options.
        RunError: ``root`` is missing, or a requested split has no image: its label files list none, none
            of the listed TIFFs is under ``root`` (both found before anything is written), or none of them
            converted. ``data.yaml`` and ``summary.json`` are written only when every requested split has
            at least one image.
    """
    opts.validate()
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise RunError(f"{root}: DTLD root directory not found")
    warns: list[Warn] = []
    splits = load_splits(opts, warns)
    requested = requested_splits(opts)
    check_sources(root, splits, requested, opts)
    created_state = not (out / STATE_FILE).is_file()
    prepare_output(out, fingerprint(opts))
    order = [(split, frame) for split in SPLITS for frame in splits.get(split, [])]
    results = run_jobs(image_jobs(root, out, order, opts), workers, progress)
    stats, run = _write_labels(out, order, results, opts, warns)
    empty = [split for split in requested if not stats[split]["images"]]
    if empty:
        if created_state and not any(stats[s]["images"] for s in SPLITS):
            remove_empty_output(out)
        raise _nothing_converted(root, out, empty[0], len(splits[empty[0]]), warns)
    summary = build_summary(stats, warns, opts)
    write_data_yaml(out, {s: stats[s]["images"] for s in SPLITS}, opts)
    write_artefact(out / SUMMARY_FILE, (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode())
    log_result(out, run, stats, warns)
    return summary


def _write_labels(out: Path, order: list[tuple[str, DtldFrame]], results: list[tuple[str, str]],
                  opts: ConvertOptions, warns: list[Warn]) -> tuple[dict[str, dict[str, Any]], Counter]:
    """Write the label file of every converted image, warn about failed ones; return the stats and status counts."""
    stats = {s: new_stats() for s in SPLITS}
    run = Counter()
    for (split, frame), (status, message) in zip(order, results):
        run[status] += 1
        if status not in ("written", "skipped"):
            warns.append(Warn(status, frame.source, f"images[{frame.index}].image_path", message))
            stats[split]["images_failed"] += 1
            continue
        lines = label_lines(frame, opts, stats[split], warns)
        label = out / "labels" / split / Path(frame.key).with_suffix(".txt")
        write_artefact(label, ("\n".join(lines) + "\n" if lines else "").encode())
        stats[split]["images"] += 1
    return stats, run


def _nothing_converted(root: Path, out: Path, split: str, listed: int, warns: list[Warn]) -> RunError:
    """Return the error of a requested split none of whose ``listed`` images converted, with the failures counted."""
    failed = Counter(w.kind for w in warns if w.kind in ("missing_image", "unreadable_image", "wrong_size"))
    example = next((w for w in warns if w.kind in failed), None)
    return RunError(
        f"{root}: no image of split {split!r} converted ({listed} listed; "
        f"{', '.join(f'{n} {k}' for k, n in sorted(failed.items()))})"
        + (f", e.g. {example.file} {example.field}: {example.message}" if example else "")
        + f"; {out} has no data.yaml or {SUMMARY_FILE}")
