"""The node figures computed from a run's measurements (docs/benchmarks.md, "Node figures").

Per repetition (:func:`repetition_ratios`) and over the whole run (:func:`summarize`): medians over repetitions of
the per-repetition ratios, node-bounded from latencies pooled over repetitions, node-start and runtime-size.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import numpy as np

GOALS = {"node-overhead": "<= 1.10 (against the relay floor; 1.0 is the limit)", "node-overhead-e2e": "report",
         "node-throughput": ">= 0.90", "node-bounded": "<= 1.5",
         "student-vs-teacher": "report (FLOPs ratio is the ceiling)"}


def pct(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile of ``values`` (nan when empty)."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


def med(values: Sequence[float]) -> float:
    """Return the median of ``values`` (nan when empty)."""
    return float(statistics.median(values)) if len(values) else float("nan")


def repetition_ratios(r: dict) -> None:
    """Add one repetition's ratios (``ratio_*``) to its measurements ``r``; P is that repetition's median."""
    p = med(r["core_s"])
    r["ratio_overhead"] = (med(r["serial_s"]) - med(r["relay_s"])) / p
    r["ratio_overhead_e2e"] = med(r["serial_s"]) / p
    r["ratio_throughput"] = r["high"]["fps"] * p
    r["ratio_student_teacher"] = (r["high"]["fps"] / r["teacher"]["fps"]
                                  if r["teacher"]["fps"] > 0 else float("nan"))
    r["ratio_bounded_rep"] = pct(r["high"]["latencies"], 99) / pct(r["low"]["latencies"], 99)


def summarize(res: dict) -> dict:
    """Return the figures, their goals, the absolute values (``context``), node-start and runtime-size."""
    reps = res["reps"]
    pool = {k: [x for r in reps for x in r[k]] for k in ("serial_s", "relay_s", "core_s", "core_teacher_s")}
    for k in ("low", "high", "teacher"):
        pool[k] = [x for r in reps for x in r[k]["latencies"]]
    fl = res["gflops"]
    return {
        "figures": {
            "node-overhead": med([r["ratio_overhead"] for r in reps]),
            "node-overhead-e2e": med([r["ratio_overhead_e2e"] for r in reps]),
            "node-throughput": med([r["ratio_throughput"] for r in reps]),
            "node-bounded": pct(pool["high"], 99) / pct(pool["low"], 99),
            "student-vs-teacher": med([r["ratio_student_teacher"] for r in reps]),
        },
        "goals": GOALS,
        "context": {
            "student_predict_ms_median": med(pool["core_s"]) * 1000,
            "teacher_predict_ms_median": med(pool["core_teacher_s"]) * 1000,
            "serial_latency_ms_median": med(pool["serial_s"]) * 1000,
            "serial_latency_ms_p99": pct(pool["serial_s"], 99) * 1000,
            "serial_lost": sum(r["serial_lost"] for r in reps),
            "relay_latency_ms_median": med(pool["relay_s"]) * 1000,
            "relay_latency_ms_p99": pct(pool["relay_s"], 99) * 1000,
            "relay_lost": sum(r["relay_lost"] for r in reps),
            "student_fps_high_median": med([r["high"]["fps"] for r in reps]),
            "teacher_fps_high_median": med([r["teacher"]["fps"] for r in reps]),
            "ideal_student_fps": 1000 / (med(pool["core_s"]) * 1000),
            "low_latency_ms_median": med(pool["low"]) * 1000,
            "low_latency_ms_p99": pct(pool["low"], 99) * 1000,
            "high_latency_ms_median": med(pool["high"]) * 1000,
            "high_latency_ms_p99": pct(pool["high"], 99) * 1000,
            "teacher_latency_ms_p99": pct(pool["teacher"], 99) * 1000,
            "low_answered_fraction": sum(r["low"]["answered"] for r in reps) / max(1, sum(r["low"]["sent"]
                                                                                          for r in reps)),
            "high_sent_hz_median": med([r["high"]["sent_hz"] for r in reps]),
            "low_sent_hz_median": med([r["low"]["sent_hz"] for r in reps]),
            "bounded_per_rep_median": med([r["ratio_bounded_rep"] for r in reps]),
            "core_teacher_over_student_predict": med(pool["core_teacher_s"]) / med(pool["core_s"]),
            "flops_ratio_teacher_over_student": fl["teacher"] / fl["student"] if fl["student"] else float("nan"),
            "node_rss_mb": res["node_rss_mb"],
        },
        "node-start": {kind: {"first_detection_s_median": med([x["first_detection_s"] for x in runs
                                                                if x["first_detection_s"] is not None]),
                              "rss_mb_median": med([x["rss_mb"] for x in runs if x["rss_mb"] == x["rss_mb"]]),
                              "answered": sum(x["first_detection_s"] is not None for x in runs), "runs": runs}
                       for kind, runs in res["node_start"].items()},
        "runtime-size": res["runtime_size"],
    }
