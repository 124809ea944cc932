"""Which DTLD frames go into which split: label files per split, duplicates, the validation draw, source checks.

Usage: ``splits = load_splits(opts, warns)`` (``{"train": [...], "val": [...], "test": [...]}``; a frame listed
twice is kept once, first occurrence wins); :func:`check_sources` refuses a requested split with no image
before anything is written. Why val is drawn by whole sequences: docs/dtld_format.md, section 6.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from training.data.dtld.labels import DtldFrame, Warn, load_labels
from training.data.dtld.options import ConvertOptions
from training.errors import RunError

SPLITS = ("train", "val", "test")


def split_validation(frames: list[DtldFrame], n_images: int, seed: int) -> tuple[list[DtldFrame], list[DtldFrame]]:
    """Move whole sequences from ``frames`` (train) to a validation split until >= ``n_images`` moved.

    Returns:
        (train, val); no sequence is in both. Deterministic for a seed.
    """
    if n_images <= 0:
        return frames, []
    sequences = sorted({f.sequence for f in frames})
    random.Random(seed).shuffle(sequences)
    counts = Counter(f.sequence for f in frames)
    chosen, total = set(), 0
    for seq in sequences:
        if total >= n_images:
            break
        chosen.add(seq)
        total += counts[seq]
    return [f for f in frames if f.sequence not in chosen], [f for f in frames if f.sequence in chosen]


def load_splits(opts: ConvertOptions, warns: list[Warn]) -> dict[str, list[DtldFrame]]:
    """Load label files per split, de-duplicate by image key (first occurrence wins), draw val."""
    splits: dict[str, list[DtldFrame]] = {}
    seen: dict[str, tuple[str, DtldFrame]] = {}
    for split, files in (("train", opts.train), ("val", opts.val), ("test", opts.test)):
        kept = []
        for file in files:
            for frame in load_labels(file, warns):
                if frame.key in seen:
                    first_split, first = seen[frame.key]
                    warns.append(Warn("duplicate_image", frame.source, f"images[{frame.index}].image_path",
                                      f"{frame.key} already listed in {first.source} (split {first_split}, "
                                      f"entry {first.index}); this entry ignored"))
                    continue
                seen[frame.key] = (split, frame)
                kept.append(frame)
        splits[split] = kept
    if opts.val_images:
        splits["train"], drawn = split_validation(splits["train"], opts.val_images, opts.seed)
        splits["val"] = splits["val"] + drawn
    return splits


def requested_splits(opts: ConvertOptions) -> list[str]:
    """Return the splits the options ask for: those with label files, and val when drawn by ``val_images``."""
    given = {"train": opts.train, "val": opts.val, "test": opts.test}
    return [s for s in SPLITS if given[s] or (s == "val" and opts.val_images)]


def check_sources(root: Path, splits: dict[str, list[DtldFrame]], requested: list[str],
                  opts: ConvertOptions) -> None:
    """Refuse, before anything is written, a requested split with no entry or none of its TIFFs under ``root``."""
    given = {"train": opts.train, "val": opts.val, "test": opts.test}
    for split in requested:
        frames = splits.get(split, [])
        files = [Path(f).name for f in given[split]]
        if not frames:
            why = (f"--val-images {opts.val_images} moved every train sequence to val"
                   if split == "train" and opts.val_images and splits.get("val") else
                   "no train image to draw from" if split == "val" and not files else
                   f"its label files {files} list no usable image entry")
            raise RunError(f"split {split!r} has no image: {why}")
        if not any((root / f.key).is_file() for f in frames):
            raise RunError(
                f"{root}: none of the {len(frames)} images of split {split!r} found: searched "
                f"{root}/<City>/<Route>/<Sequence>/<file> for the images listed in {files or ['(drawn from train)']}, "
                f"e.g. {root / frames[0].key}")
