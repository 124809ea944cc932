"""The printed report of a run: absolute values as a table, the JSON's path, then the figures against their goals."""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.node_bench.figures import GOALS


def print_summary(res: dict, summary: dict, path: Path) -> None:
    """Print the figures of a run as a table, the JSON's path, then the ratios against their goals."""
    c = summary["context"]
    print(f"\nimgsz {res['imgsz']}, {len(res['reps'])} reps, capacity {res['capacity_hz']:.1f} Hz, "
          f"low {c['low_sent_hz_median']:.1f} Hz, high {c['high_sent_hz_median']:.1f} Hz sent; "
          f"load avg {os.getloadavg()[0]:.2f}")
    rows = [
        ("student core predict (median)", f"{c['student_predict_ms_median']:.1f} ms"),
        ("teacher core predict (median)", f"{c['teacher_predict_ms_median']:.1f} ms"),
        ("serial end-to-end latency (median / p99)",
         f"{c['serial_latency_ms_median']:.1f} / {c['serial_latency_ms_p99']:.1f} ms ({c['serial_lost']} lost)"),
        ("relay (transport floor) latency (median / p99)",
         f"{c['relay_latency_ms_median']:.1f} / {c['relay_latency_ms_p99']:.1f} ms ({c['relay_lost']} lost)"),
        ("student fps at high rate / ideal 1/P", f"{c['student_fps_high_median']:.2f} / {c['ideal_student_fps']:.2f}"),
        ("teacher fps at high rate", f"{c['teacher_fps_high_median']:.2f}"),
        ("latency at low rate (median / p99)", f"{c['low_latency_ms_median']:.1f} / {c['low_latency_ms_p99']:.1f} ms"),
        ("latency at high rate (median / p99)",
         f"{c['high_latency_ms_median']:.1f} / {c['high_latency_ms_p99']:.1f} ms"),
        ("low-rate frames answered", f"{c['low_answered_fraction']:.1%}"),
        ("core teacher/student predict time", f"{c['core_teacher_over_student_predict']:.2f}"),
        ("FLOPs teacher/student", f"{c['flops_ratio_teacher_over_student']:.2f}"),
    ]
    for kind, st in summary["node-start"].items():
        rows.append((f"node-start {kind}: first detection / RSS (median)",
                     f"{st['first_detection_s_median']:.2f} s / {st['rss_mb_median']:.0f} MiB "
                     f"({st['answered']}/{len(st['runs'])} starts answered)"))
    rows.append(("node RSS after the run (student / teacher / relay)",
                 " / ".join(f"{c['node_rss_mb'][k]:.0f}" for k in ("student", "teacher", "relay")) + " MiB"))
    size = summary["runtime-size"]
    if size["runtime_venv_mb"]:
        rows.append(("runtime-size: .venv-runtime / full venv",
                     f"{size['runtime_venv_mb']:.0f} / {size['full_venv_mb']:.0f} MiB "
                     f"({size['runtime_venv_mb'] / size['full_venv_mb']:.3f})"))
    width = max(len(a) for a, _ in rows)
    for a, b in rows:
        print(f"  {a:<{width}}  {b}")
    print(f"JSON: {path}")
    for name, value in summary["figures"].items():  # ratios last
        print(f"{name}: {value:.3f} (goal {GOALS[name]})")
