"""The experiment's plots: held-out mAP against FLOPs, and the training curves of every run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kd_traffic_light.core.atomic_io import atomic_path


def _pyplot():  # noqa: ANN202
    """matplotlib.pyplot on the Agg backend (no display, no font downloads)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_map_vs_flops(groups: list[dict[str, Any]], path: Path, metric: str = "map50_95") -> Path:
    """Scatter of held-out ``metric`` (percent) against GFLOPs with error bars over repeats; PNG at ``path``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    markers = {"teacher": "s", "student": "o"}
    for g in groups:
        x, y, e = g.get("gflops_mean"), g.get(f"{metric}_mean"), g.get(f"{metric}_std") or 0.0
        if x is None or y is None:
            continue
        label = g["label"] if g["role"] == "teacher" else (
            f"{g['label']} {g['method']}" + (f" <- {g['teacher']}" if g["teacher"] not in ("-", None) else ""))
        ax.errorbar([x], [100 * y], yerr=[100 * e], fmt=markers.get(g["role"], "o"), capsize=3,
                    label=("teacher " if g["role"] == "teacher" else "") + label)
        if g["role"] == "teacher":  # students share their FLOPs: the legend names them
            ax.annotate(label, (x, 100 * y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("GFLOPs (log scale)")
    ax.set_ylabel(f"{metric.replace('map', 'mAP').replace('_', '-').replace('50-95', '50-95')} (%)")
    ax.set_title("Held-out accuracy against compute")
    ax.grid(True, which="both", alpha=0.3)
    if groups:
        ax.legend(fontsize=6, loc="lower right")
    return _save_figure(plt, fig, path)


def _save_figure(plt, fig, path: Path) -> Path:
    """Write ``fig`` to ``path`` as PNG atomically and close it."""
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return path


def plot_curves(curves: dict[str, list[dict[str, float]]], path: Path) -> Path:
    """Plot validation mAP50-95 and total training loss per epoch of every run (ultralytics results.csv rows)."""
    plt = _pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
    for name, rows in curves.items():
        if not rows:
            continue
        ep = [r.get("epoch", i + 1) for i, r in enumerate(rows)]
        a1.plot(ep, [100 * r.get("metrics/mAP50-95(B)", float("nan")) for r in rows], marker=".", label=name)
        loss = [sum(v for k, v in r.items() if k.startswith("train/") and k.endswith("loss")) for r in rows]
        a2.plot(ep, loss, marker=".", label=name)
    a1.set(xlabel="epoch", ylabel="val mAP50-95 (%)", title="Validation mAP50-95")
    a2.set(xlabel="epoch", ylabel="sum of train losses", title="Training loss (KD terms included)")
    for a in (a1, a2):
        a.grid(True, alpha=0.3)
    a1.legend(fontsize=6)
    return _save_figure(plt, fig, path)
