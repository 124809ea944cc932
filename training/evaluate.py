r"""``python -m training evaluate``: accuracy and cost of trained models, as the source study tabulates them.

Per model: mAP50 and mAP50-95 (all classes, relevant, not_relevant) on a split, GFLOPs, parameters, FP16 size and
CPU latency, written to ``<out>/evaluation.json`` and ``<out>/evaluation.md``::

    python -m training evaluate --weights runs/teacher_l/weights/best.pt runs/n_from_l/weights/best.pt \
        --data datasets/dtld/data.yaml --split test --imgsz 640 --device cpu --out reports/eval

A ``relevance_state`` model (kd_traffic_light/core/classes.py) also gets light-state metrics from the same validation
pass (training/state_metrics.py): state accuracy, critical confusions, per-state precision / recall / AP50 in the
row and the table, everything under ``row["state"]``, and ``<out>/confusion_<model>.png``.

How each column is measured: docs/training.md, "Evaluation".
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kd_traffic_light.core.atomic_io import atomic_write_json, atomic_write_text
from kd_traffic_light.core.classes import STATES, scheme_of
from training.export import read_provenance, run_dir
from training.state_metrics import DEFAULT_CONF, flat_row, plot_confusion, state_metrics

LOG = logging.getLogger(__name__)

CLASSES = ("relevant", "not_relevant")

COLUMNS = (
    ("model", "model"),
    ("teacher", "teacher"),
    ("gflops", "FLOPs (G)"),
    ("head_gflops", "head FLOPs (G)"),
    ("map50", "mAP50"),
    ("map50_95", "mAP50-95"),
    ("relevant_map50", "relevant mAP50"),
    ("relevant_map50_95", "relevant mAP50-95"),
    ("not_relevant_map50", "not relevant mAP50"),
    ("not_relevant_map50_95", "not relevant mAP50-95"),
    ("epochs", "epochs"),
    ("params_m", "params (M)"),
    ("head_params_m", "head params (M)"),
    ("fp16_mb", "FP16 size (MB)"),
    ("cpu_latency_ms", "CPU latency (ms)"),
)
"""(row key, Markdown header); mAP columns are printed in percent like the study."""

STATE_COLUMNS = (
    ("state_accuracy", "state acc."),
    ("state_matched", "matched"),
    ("red_to_green", "red->green"),
    ("red_yellow_to_green", "red_yellow->green"),
    *((f"{s}_{m}", f"{s} {h}") for s in STATES for m, h in (("recall", "R"), ("precision", "P"))),
)
"""Columns added to the table when some row has state metrics (a ``relevance_state`` model); percent but counts."""


def per_class_map(metrics: Any, names: dict[int, str]) -> dict[str, float | None]:
    """Per-class mAP50 / mAP50-95 keyed ``<class>_map50`` and ``<class>_map50_95`` (``None``: no labels)."""
    box = metrics.box
    index = [int(i) for i in box.ap_class_index]
    out: dict[str, float | None] = {}
    for cid, name in names.items():
        key = str(name).replace(" ", "_")
        hit = index.index(int(cid)) if int(cid) in index else None
        out[f"{key}_map50"] = None if hit is None else float(box.ap50[hit])
        out[f"{key}_map50_95"] = None if hit is None else float(box.ap[hit])
    return out


def model_cost(model: Any, imgsz: int) -> dict[str, float]:
    """GFLOPs at ``imgsz``, parameters in millions, FP16 size in MiB; head GFLOPs and parameters too.

    The head figures are the integrated-KD paper's Table 1 columns (coupled vs decoupled head).
    """
    import copy

    import torch
    from ultralytics.utils.torch_utils import get_flops

    buf = io.BytesIO()
    torch.save(copy.deepcopy(model).half().state_dict(), buf)
    from training.distill.heads import head_cost

    return {
        "gflops": float(get_flops(model, imgsz)),
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "fp16_mb": buf.getbuffer().nbytes / 2**20,
        **head_cost(model.model[-1], imgsz),
    }


def median_ms(fn: Callable[[], Any], reps: int, warmup: int = 3) -> float:
    """Median wall time in ms of ``reps`` calls of ``fn`` after ``warmup`` untimed ones."""
    times = []
    for k in range(warmup + reps):
        t0 = time.perf_counter()
        fn()
        if k >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def cpu_latency_ms(model: Any, imgsz: int, reps: int = 20, warmup: int = 3) -> float:
    """Median CPU forward latency in ms of a fused copy of ``model`` at batch 1 (``reps`` timed runs)."""
    import copy

    import torch

    net = copy.deepcopy(model).float().cpu().eval()
    net = net.fuse(verbose=False) if hasattr(net, "fuse") else net
    x = torch.zeros(1, 3, imgsz, imgsz)
    with torch.inference_mode():
        return median_ms(lambda: net(x), reps, warmup)


def run_info(weights: str | Path, train_args: dict[str, Any], yaml_file: str = "") -> dict[str, Any]:
    """Model label, teacher and epochs of a run (provenance file, else checkpoint training args, else ``-``)."""
    prov = read_provenance(weights)
    arch = Path(str(yaml_file or train_args.get("model") or weights)).stem
    run = run_dir(weights).name
    teacher = prov.get("teacher_name") or prov.get("teacher") or train_args.get("distill_model") or "-"
    if isinstance(teacher, dict):
        teacher = teacher.get("name") or teacher.get("path") or teacher.get("weights") or "-"
    if teacher != "-" and Path(str(teacher)).suffix in {".pt", ".onnx"}:
        tp = Path(str(teacher))
        teacher = run_dir(tp).name if tp.stem in {"best", "last"} else tp.stem
    epochs = prov.get("epochs", (prov.get("train_args") or {}).get("epochs", train_args.get("epochs", "-")))
    return {"model": arch if run in {arch, "weights"} else f"{arch} ({run})", "teacher": str(teacher),
            "epochs": epochs, "run": run, "provenance": bool(prov)}


def collect_images(images: list[dict[str, Any]]) -> Callable[[Any], None]:
    """Return an ``on_val_start`` callback that appends each validated image's predictions and labels to ``images``.

    It wraps the validator's ``update_metrics`` (this validator only), so the one validation pass that computes
    mAP also yields ``{"pred_boxes", "pred_scores", "pred_cls", "gt_boxes", "gt_cls"}`` per image (xyxy in the
    letterboxed input frame, as ultralytics matches them; predictions at the validator's ``conf``) for
    :func:`training.state_metrics.state_metrics`.
    """

    def on_val_start(validator: Any) -> None:
        update = validator.update_metrics

        def update_metrics(preds: list[dict[str, Any]], batch: dict[str, Any]) -> None:
            images.extend(batch_images(preds, batch))  # before update: it may edit preds in place
            update(preds, batch)

        validator.update_metrics = update_metrics

    return on_val_start


def batch_images(preds: list[dict[str, Any]], batch: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-image numpy predictions and labels of one validation batch (ultralytics' post-NMS ``preds``)."""
    import numpy as np

    height, width = batch["img"].shape[2:]
    scale = np.array([width, height, width, height], dtype=np.float64)
    batch_idx = batch["batch_idx"].detach().cpu().numpy().reshape(-1)
    cls = batch["cls"].detach().cpu().numpy().reshape(-1)
    xywh = batch["bboxes"].detach().cpu().numpy().reshape(-1, 4).astype(np.float64) * scale
    xyxy = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
    out = []
    for si, pred in enumerate(preds):
        mine = batch_idx == si
        out.append({"pred_boxes": pred["bboxes"].detach().cpu().numpy().astype(np.float64).reshape(-1, 4),
                    "pred_scores": pred["conf"].detach().cpu().numpy().astype(np.float64).reshape(-1),
                    "pred_cls": pred["cls"].detach().cpu().numpy().astype(np.int64).reshape(-1),
                    "gt_boxes": xyxy[mine], "gt_cls": cls[mine].astype(np.int64)})
    return out


def evaluate_model(
    weights: str | Path,
    data: str | Path,
    split: str = "test",
    imgsz: int = 640,
    device: str = "cpu",
    batch: int = 16,
    latency_reps: int = 20,
    project: str | Path | None = None,
    state_conf: float = DEFAULT_CONF,
) -> dict[str, Any]:
    """Evaluate one checkpoint; returns a flat row (fractions in [0, 1], ``None`` for a class without labels).

    A ``relevance_state`` model's row also has :func:`training.state_metrics.flat_row`'s keys and the whole
    :func:`training.state_metrics.state_metrics` result under ``"state"``, from the same validation pass.

    Args:
        weights: ``.pt`` checkpoint.
        data: YOLO data.yaml with the split to evaluate.
        split: Dataset split (``val`` or ``test``).
        imgsz: Evaluation size in pixels (also the FLOPs and latency size).
        device: Validation device; latency is always measured on the CPU.
        batch: Validation batch size.
        latency_reps: Timed CPU repetitions (0 skips the latency measurement).
        project: Directory for ultralytics' validation output (default: a temp dir under the cwd's runs).
        state_conf: Confidence threshold of the state metrics (``relevance_state`` models only; the nodes' 0.25).

    Raises:
        FileNotFoundError: ``weights`` or ``data`` does not exist.
        ValueError: ``state_conf`` is not in [0, 1].
    """
    from ultralytics import YOLO

    for flag, path in (("--weights", weights), ("--data", data)):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{flag}: {path} does not exist")
    if isinstance(state_conf, bool) or not isinstance(state_conf, (int, float)) or not 0.0 <= state_conf <= 1.0:
        raise ValueError(f"state_conf: expected a number in [0, 1], got {state_conf!r}")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    yolo = YOLO(str(weights), task="detect")
    train_args = (yolo.ckpt or {}).get("train_args") or {}
    info = run_info(weights, train_args, getattr(yolo.model, "yaml", {}).get("yaml_file", ""))
    images: list[dict[str, Any]] | None = [] if scheme_of(yolo.names) == "relevance_state" else None
    if images is not None:
        yolo.add_callback("on_val_start", collect_images(images))
    LOG.info("validating %s on %s split %s at %d", weights, data, split, imgsz)
    # absolute: ultralytics 8.4 nests a relative project under runs/<task>/
    metrics = yolo.val(
        data=str(data), split=split, imgsz=imgsz, batch=batch, device=device, plots=False, verbose=False,
        workers=0, project=str(Path(project).resolve()) if project else None, name=info["run"], exist_ok=True,
    )
    row = {**info, "weights": str(weights), "split": split, "imgsz": imgsz,
           "map50": float(metrics.box.map50), "map50_95": float(metrics.box.map)}
    row.update(per_class_map(metrics, yolo.names))
    if images is not None:
        state = state_metrics(images, yolo.names, conf=state_conf)
        row.update(flat_row(state))
        row["state"] = state
    row.update(model_cost(yolo.model, imgsz))
    row["cpu_latency_ms"] = cpu_latency_ms(yolo.model, imgsz, latency_reps) if latency_reps > 0 else None
    return row


def _percent(key: str) -> bool:
    """Whether a row key holds a fraction printed in percent (mAP, state accuracy, precision, recall, AP)."""
    return "map" in key or key == "state_accuracy" or key.endswith(("_recall", "_precision", "_ap50"))


def _cell(key: str, value: Any) -> str:
    """Format one Markdown cell (mAP and the state fractions in percent, 1 decimal; ``-`` for missing)."""
    if value is None or value == "":
        return "-"
    if _percent(key):
        return f"{100 * float(value):.1f}"
    if isinstance(value, float):
        return f"{value:.3f}" if key.startswith("head_") else f"{value:.2f}"
    return str(value)


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """Markdown table of evaluation rows with the source study's columns (then params, size, latency).

    When some row has state metrics (a ``relevance_state`` model), :data:`STATE_COLUMNS` follow.
    """
    columns = COLUMNS + (STATE_COLUMNS if any("state_accuracy" in r for r in rows) else ())
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(k, r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def confusion_plot_names(rows: list[dict[str, Any]]) -> dict[int, str]:
    """``{row index: file name}`` of the confusion plot of each row with state metrics: ``confusion_<model>.png``.

    The model label is reduced to letters, digits, ``.``, ``_`` and ``-``; a repeated name gets ``_2``, ``_3`` ...
    """
    names: dict[int, str] = {}
    for i, row in enumerate(rows):
        if not isinstance(row.get("state"), dict):
            continue
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(row.get("model") or "model")).strip("._") or "model"
        name, k = f"confusion_{stem}.png", 2
        while name in names.values():
            name, k = f"confusion_{stem}_{k}.png", k + 1
        names[i] = name
    return names


def write_report(rows: list[dict[str, Any]], out: str | Path) -> tuple[Path, Path]:
    """Write ``evaluation.json`` and ``evaluation.md`` into ``out`` atomically; returns both paths.

    A row with state metrics also gets its confusion plot, ``<out>/confusion_<model>.png``, named in its JSON row
    as ``confusion_plot`` (relative to ``out``).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = (out / "evaluation.json", out / "evaluation.md")
    plots = confusion_plot_names(rows)
    for i, name in plots.items():
        plot_confusion(rows[i]["state"], out / name, title=f"{rows[i].get('model', '')}: light-state confusion")
    atomic_write_json(paths[0], [{**r, "confusion_plot": plots[i]} if i in plots else r for i, r in enumerate(rows)])
    atomic_write_text(paths[1], to_markdown(rows))
    return paths


def evaluate_models(weights: list[str | Path], data: str | Path, out: str | Path, **kwargs: Any) -> list[dict]:
    """Evaluate each checkpoint (tqdm progress) and write the JSON and Markdown reports into ``out``."""
    from tqdm import tqdm

    rows = [evaluate_model(w, data, project=Path(out) / "val", **kwargs) for w in tqdm(weights, desc="evaluate")]
    json_path, md_path = write_report(rows, out)
    LOG.info("wrote %s and %s", json_path, md_path)
    return rows


def main(args: argparse.Namespace) -> int:
    """Entry point of ``python -m training evaluate``."""
    from training.distill.cli import check_data, check_writable_dir, read_checkpoint
    from training.errors import UsageError

    for flag, value, low in (("--imgsz", args.imgsz, 32), ("--batch", args.batch, 1),
                             ("--latency-reps", args.latency_reps, 0)):
        if value < low:
            raise UsageError(f"{flag}: expected an int >= {low}, got {value}")
    if not 0.0 <= args.state_conf <= 1.0:
        raise UsageError(f"--state-conf: expected a number in [0, 1], got {args.state_conf}")
    check_data(str(args.data))
    for w in args.weights:
        read_checkpoint(str(w), "--weights")
    check_writable_dir(Path(args.out), "--out")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    rows = evaluate_models(
        args.weights, args.data, args.out, split=args.split, imgsz=args.imgsz, device=args.device,
        batch=args.batch, latency_reps=args.latency_reps, state_conf=args.state_conf,
    )
    print(to_markdown(rows), end="")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``evaluate`` subcommand."""
    p = subparsers.add_parser(
        "evaluate", help="per-class mAP, FLOPs, parameters, FP16 size and CPU latency of trained models",
        description="Validate checkpoints on a split and write evaluation.json and evaluation.md.",
    )
    p.add_argument("--weights", nargs="+", required=True, type=Path, help="one or more .pt checkpoints")
    p.add_argument("--data", required=True, type=Path, help="YOLO data.yaml holding the split")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="split (default test)")
    p.add_argument("--imgsz", type=int, default=640, help="evaluation, FLOPs and latency size (default 640)")
    p.add_argument("--device", default="cpu", help="validation device: cpu or a CUDA index (default cpu)")
    p.add_argument("--batch", type=int, default=16, help="validation batch size (default 16)")
    p.add_argument("--latency-reps", type=int, default=20,
                   help="timed CPU repetitions at batch 1 for the median latency; 0 skips (default 20)")
    p.add_argument("--state-conf", type=float, default=DEFAULT_CONF,
                   help="score threshold of the light-state metrics of relevance_state models (default 0.25, "
                        "the nodes' default)")
    p.add_argument("--out", required=True, type=Path, help="output directory for evaluation.json/.md")
    p.set_defaults(func=main)
    return p
