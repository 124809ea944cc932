"""What a conversion reports: per-split counts, the counted warnings, ``summary.json`` and the log lines.

Usage: :func:`new_stats` per split, filled while labels are written; :func:`build_summary` returns the
``summary.json`` document (the first 500 warnings listed, all counted); :func:`log_result` logs the totals and
one example per warning kind. What is counted: docs/training.md, "Data conversion details".
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from kd_traffic_light.core.classes import SCHEMES
from training.data.dtld.labels import Warn
from training.data.dtld.options import ConvertOptions

LOGGER = logging.getLogger("training.data.dtld")  # the package, not this module: log lines name the converter
SUMMARY_FILE = "summary.json"
MAX_LISTED_WARNINGS = 500


def new_stats() -> dict[str, Any]:
    """Return the empty counters of one split."""
    return {"images": 0, "boxes": Counter(), "attributes": defaultdict(Counter), "clipped": 0,
            "dropped_empty": 0, "dropped_unknown_relevance": 0, "dropped_unknown_state": 0, "filtered": 0,
            "images_failed": 0}


def build_summary(stats: dict[str, dict[str, Any]], warns: list[Warn], opts: ConvertOptions) -> dict[str, Any]:
    """Return the ``summary.json`` document of a run."""
    splits = {}
    for split, s in stats.items():
        splits[split] = {
            "images": s["images"], "images_failed": s["images_failed"],
            "boxes": {name: s["boxes"][name] for name in SCHEMES[opts.classes]},
            "attributes": {k: dict(sorted(v.items())) for k, v in sorted(s["attributes"].items())},
            "clipped": s["clipped"], "dropped_empty": s["dropped_empty"],
            "dropped_unknown_relevance": s["dropped_unknown_relevance"], "filtered": s["filtered"],
        }
        if opts.classes != "relevance":
            splits[split]["dropped_unknown_state"] = s["dropped_unknown_state"]
    counts = Counter(w.kind for w in warns)
    return {
        "classes": list(SCHEMES[opts.classes]),
        "filters": {"include": opts.include, "exclude": opts.exclude},
        "image_format": opts.image_format, "resize_width": opts.resize_width,
        "val_images_requested": opts.val_images, "seed": opts.seed,
        "splits": splits,
        "missing_files": counts.get("missing_image", 0),
        "warning_counts": dict(sorted(counts.items())),
        "warnings": [w.as_dict() for w in warns[:MAX_LISTED_WARNINGS]],
        "warnings_listed": min(len(warns), MAX_LISTED_WARNINGS),
    }


def log_result(out: Path, run: Counter, stats: dict[str, dict[str, Any]], warns: list[Warn]) -> None:
    """Log the image counts, then one line per warning kind with its count and an example."""
    LOGGER.info("convert-dtld: %d images written, %d skipped (already done), %d failed, %d warnings -> %s",
                run["written"], run["skipped"], sum(s["images_failed"] for s in stats.values()),
                len(warns), out)
    for kind, count in sorted(Counter(w.kind for w in warns).items()):
        example = next(w for w in warns if w.kind == kind)
        LOGGER.warning("%d x %s, e.g. %s %s: %s", count, kind, example.file, example.field, example.message)
