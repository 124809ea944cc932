"""Small statistics for comparing runs over seeds: paired differences with a t interval.

Paired seeds pay only when a seed means the same run in every arm (same initialisation and data order): then the
per-seed difference removes the seed's luck, and its mean over seeds has a Student t interval.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping

#: Two-sided 95 % critical values of Student's t for 1..30 degrees of freedom (above 30: 1.96 + 2.4 / df).
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_critical_95(df: int) -> float:
    """Two-sided 95 % critical value of Student's t with ``df`` degrees of freedom (df >= 1)."""
    if df < 1:
        raise ValueError(f"t interval: need at least 2 paired values (df >= 1), got df={df}")
    return T975[df - 1] if df <= len(T975) else 1.96 + 2.4 / df


def paired_interval(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, object]:
    """Mean of the paired differences ``a[seed] - b[seed]`` over the seeds both have, with its 95 % t interval.

    Args:
        a: Per-seed values of one arm (e.g. ours), keyed by seed.
        b: Per-seed values of the reference arm (e.g. the baseline).

    Returns:
        ``{"seeds", "differences", "mean", "sd", "ci95": [lo, hi], "excludes_zero"}``; with fewer than two
        common seeds ``sd`` and ``ci95`` are None and ``excludes_zero`` is False.
    """
    seeds = [s for s in a if s in b and a[s] is not None and b[s] is not None]
    diffs = [float(a[s]) - float(b[s]) for s in seeds]
    if not diffs:
        return {"seeds": [], "differences": [], "mean": None, "sd": None, "ci95": None, "excludes_zero": False}
    mean = statistics.fmean(diffs)
    if len(diffs) < 2:
        return {"seeds": seeds, "differences": diffs, "mean": mean, "sd": None, "ci95": None, "excludes_zero": False}
    sd = statistics.stdev(diffs)
    half = t_critical_95(len(diffs) - 1) * sd / math.sqrt(len(diffs))
    lo, hi = mean - half, mean + half
    return {"seeds": seeds, "differences": diffs, "mean": mean, "sd": sd, "ci95": [lo, hi],
            "excludes_zero": lo > 0 or hi < 0}


def format_interval(d: Mapping[str, object]) -> str:
    """``+2.25 (95 % CI -0.90 to +5.40)`` for a ``paired_interval`` record (``n/a`` without a mean)."""
    if d.get("mean") is None:
        return "n/a"
    ci = d.get("ci95")
    return f"{d['mean']:+.2f}" + (f" (95 % CI {ci[0]:+.2f} to {ci[1]:+.2f})" if ci else "")
