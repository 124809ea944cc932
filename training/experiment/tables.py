"""The experiment's tables: per-run rows grouped over seeds (mean and sample spread), in the study's columns."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from kd_traffic_light.core.atomic_io import atomic_write_json, atomic_write_text
from kd_traffic_light.core.classes import STATES

STUDY_METRICS = ("map50", "map50_95", "relevant_map50", "relevant_map50_95", "not_relevant_map50",
                 "not_relevant_map50_95")
COST_METRICS = ("gflops", "head_gflops", "params_m", "head_params_m", "fp16_mb", "cpu_latency_ms", "train_s")
#: Light-state metrics of relevance_state models (training/state_metrics.py): fractions, then the two counts of
#: the confusions that kill.
STATE_RATES = ("state_accuracy", *(f"{s}_recall" for s in STATES))
STATE_COUNTS = ("state_matched", "red_to_green", "red_yellow_to_green")


def group_key(row: dict[str, Any]) -> tuple:
    """Rows that differ only by seed share this key."""
    return (row.get("role", ""), str(row.get("label", "")), str(row.get("teacher") or "-"), row.get("method", ""))


def spread(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (0.0 for one value; None, None for none)."""
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group per-run rows over seeds: ``<metric>_mean``, ``<metric>_std`` and ``<metric>_values`` per group.

    Args:
        rows: One dict per run with ``role``, ``label``, ``teacher``, ``method``, ``seed``, ``epochs`` and
            the metrics of ``STUDY_METRICS`` / ``COST_METRICS`` (fractions; missing metrics are skipped).

    Returns:
        One dict per group, in first-seen order, with ``n`` and ``seeds``.
    """
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(group_key(row), []).append(row)
    out = []
    for (role, label, teacher, method), members in groups.items():
        g: dict[str, Any] = {"role": role, "label": label, "teacher": teacher, "method": method,
                             "model": members[0].get("model_name") or label, "n": len(members),
                             "seeds": [m.get("seed") for m in members], "epochs": members[0].get("epochs", "-")}
        for key in STUDY_METRICS + COST_METRICS + STATE_RATES + STATE_COUNTS:
            values = [m.get(key) for m in members]
            g[f"{key}_mean"], g[f"{key}_std"] = spread(values)
            g[f"{key}_values"] = values
        out.append(g)
    return out


TABLE_COLUMNS = (
    ("model", "model"), ("teacher", "teacher"), ("method", "method"), ("gflops", "FLOPs (G)"),
    ("head_gflops", "head FLOPs (G)"), ("params_m", "params (M)"), ("head_params_m", "head params (M)"),
    ("map50", "mAP50"), ("map50_95", "mAP50-95"), ("relevant_map50", "relevant mAP50"),
    ("relevant_map50_95", "relevant mAP50-95"), ("not_relevant_map50", "not relevant mAP50"),
    ("not_relevant_map50_95", "not relevant mAP50-95"), ("epochs", "epochs"), ("n", "repeats"),
    ("fp16_mb", "FP16 size (MB)"), ("cpu_latency_ms", "CPU latency (ms)"), ("train_s", "train (s)"),
)


def _cell(group: dict[str, Any], key: str) -> str:
    """One Markdown cell: mAP in percent as ``mean ± std`` (std only with repeats), costs with 2 decimals."""
    if f"{key}_mean" not in group:
        value = group.get(key)
        return "-" if value in (None, "") else str(value)
    mean, std = group[f"{key}_mean"], group[f"{key}_std"]
    if mean is None:
        return "-"
    percent = key in STUDY_METRICS or key in STATE_RATES
    scale = 100.0 if percent else 1.0
    digits = 1 if percent or key == "train_s" else 3 if key.startswith("head_") else 2
    if key in STATE_COUNTS:  # counts: whole numbers for one run, the mean over repeats to one decimal
        digits = 0 if float(mean).is_integer() else 1
    text = f"{scale * mean:.{digits}f}"
    if group.get("n", 1) > 1 and std is not None and percent:
        text += f" ± {scale * std:.{digits}f}"
    return text


def to_markdown(groups: list[dict[str, Any]]) -> str:
    """Markdown table with the source study's columns; mAP in percent, ``mean ± std`` over repeats."""
    lines = ["| " + " | ".join(h for _, h in TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    lines += ["| " + " | ".join(_cell(g, k) for k, _ in TABLE_COLUMNS) + " |" for g in groups]
    return "\n".join(lines) + "\n"


STATE_COLUMNS = (("model", "model"), ("teacher", "teacher"), ("method", "method"),
                 ("state_matched", "matched lights"), ("state_accuracy", "state accuracy"),
                 *((f"{s}_recall", f"{s} recall") for s in STATES),
                 ("red_to_green", "red->green"), ("red_yellow_to_green", "red_yellow->green"), ("n", "repeats"))


def state_markdown(groups: list[dict[str, Any]]) -> str:
    """Return the light-state table of the groups that have state metrics ("" when none has)."""
    groups = [g for g in groups if g.get("state_matched_mean") is not None]
    if not groups:
        return ""
    lines = ["| " + " | ".join(h for _, h in STATE_COLUMNS) + " |", "|" + "---|" * len(STATE_COLUMNS)]
    lines += ["| " + " | ".join(_cell(g, k) for k, _ in STATE_COLUMNS) + " |" for g in groups]
    return "\n".join(lines) + "\n"


def write_tables(groups: list[dict[str, Any]], out: Path, rows: list[dict[str, Any]] | None = None,
                 title: str = "Results") -> tuple[Path, Path]:
    """Write ``results.md`` and ``results.json`` (groups, and the per-run rows when given) atomically."""
    md = (f"# {title}\n\nmAP in percent on the held-out split, mean ± sample std over repeats (seeds).\n\n"
          + to_markdown(groups))
    state = state_markdown(groups)
    if state:
        md += ("\n## Light state\n\nOn the held-out split at the nodes' conf 0.25 after class-agnostic NMS, "
               "relevance merged (training/state_metrics.py): the lights matched, state accuracy on them and "
               "recall per state in percent, and the matched lights read red -> green and red_yellow -> green "
               "(counts; each run's confusion matrix is `runs/<run>/confusion_state.png`).\n\n" + state)
    atomic_write_text(out / "results.md", md)
    atomic_write_json(out / "results.json", {"groups": groups, "runs": rows or []})
    return out / "results.md", out / "results.json"
