"""Light-state metrics of ``relevance_state`` models, from per-image predictions and labels.

A ``relevance_state`` class (kd_traffic_light/core/classes.py) is ``<relevance>_<state>``; here relevance is merged
and only the state counts. Per image, the predictions scoring at least ``conf`` (the nodes' default threshold,
0.25), after class-agnostic NMS at the nodes' IoU 0.45, are matched to the labelled lights class-agnostically:
highest score first, each prediction takes the unclaimed label it overlaps most, if that IoU is at least 0.5; each
label is taken once. On those matches:

* the confusion matrix over states: rows the true state plus ``background`` (a prediction that matched no label:
  a false detection or a duplicate of an already matched light), columns the predicted state plus ``missed`` (a
  label no prediction matched);
* per state, precision and recall at ``conf`` (a light found with the wrong state is a false positive of the
  predicted state and a miss of the true one), AP50 and AP50-95 over all predictions given (ultralytics'
  ``ap_per_class`` on state-relabelled classes);
* state accuracy: of the matched lights, the fraction whose predicted state is the true one;
* the critical confusions among matched lights: red -> green, red_yellow -> green and yellow -> green.

A value that the data leave undefined is ``None`` (never 0 or NaN): recall, AP and accuracy of a state without
labels, precision of a state without predictions. Pure numpy on arrays; only ``ap_per_class`` comes from
ultralytics, :func:`plot_confusion` from matplotlib.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from kd_traffic_light.core.atomic_io import atomic_path
from kd_traffic_light.core.classes import STATES, split_label
from kd_traffic_light.core.postprocess import nms

#: The nodes' default confidence threshold (kd_traffic_light/core/config.py).
DEFAULT_CONF = 0.25
#: The nodes' default NMS IoU (class-agnostic), applied to the predictions above ``conf`` before matching.
NODE_NMS_IOU = 0.45
#: IoU a prediction needs with a label to be matched to it.
MATCH_IOU = 0.5
#: IoU thresholds of AP50-95 (ultralytics' ``iouv``).
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
#: Extra confusion-matrix column (labels no prediction matched) and row (predictions that matched no label).
MISSED, BACKGROUND = "missed", "background"
#: Critical confusions, ``key: (true state, predicted state)``, counted among matched lights.
CRITICAL: dict[str, tuple[str, str]] = {
    "red_to_green": ("red", "green"),
    "red_yellow_to_green": ("red_yellow", "green"),
    "yellow_to_green": ("yellow", "green"),
}
#: The confusions that tell a vehicle to go at a light that says stop: outlined in the plot.
FATAL = ("red_to_green", "red_yellow_to_green")
#: Keys of one image's dict in :func:`state_metrics`.
IMAGE_KEYS = ("pred_boxes", "pred_scores", "pred_cls", "gt_boxes", "gt_cls")


def state_table(names: Mapping[int, str] | Sequence[str]) -> np.ndarray:
    """Class id -> index into :data:`STATES` of every class in ``names`` (``{id: name}`` or names in id order).

    Raises:
        ValueError: a class name carries no state (not a ``relevance_state`` name).
    """
    items = dict(names) if isinstance(names, Mapping) else dict(enumerate(names))
    if not items:
        raise ValueError("names: expected the model's class names, got none")
    table = np.full(max(int(k) for k in items) + 1, -1, dtype=np.int64)
    for cid, name in items.items():
        state = split_label(str(name))[1]
        if state is None:
            raise ValueError(f"names: class {cid} {name!r} carries no state; expected '<relevance>_<state>' names "
                             f"(the relevance_state scheme, states {list(STATES)})")
        table[int(cid)] = STATES.index(state)
    return table


def _class_ids(values: Any, what: str, table: np.ndarray) -> np.ndarray:
    """``values`` as int class ids that ``table`` knows; ValueError naming ``what`` otherwise."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1) if np.size(values) else np.zeros(0)
    ids = arr.astype(np.int64)
    if not np.array_equal(ids, arr):
        raise ValueError(f"{what}: expected integer class ids, got {arr[ids != arr][:3].tolist()}")
    bad = (ids < 0) | (ids >= len(table))
    bad[~bad] = table[ids[~bad]] < 0
    if bad.any():
        raise ValueError(f"{what}: class ids {sorted(set(ids[bad].tolist()))[:5]} are not in names "
                         f"(known ids: {np.flatnonzero(table >= 0).tolist()})")
    return ids


def state_of(class_ids: Any, names: Mapping[int, str] | Sequence[str]) -> np.ndarray:
    """Index into :data:`STATES` of each class id (``split_label`` of its name); raises ValueError on an unknown id."""
    table = state_table(names)
    return table[_class_ids(class_ids, "class_ids", table)]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every pair of xyxy boxes, shape ``(len(a), len(b))`` (ultralytics' ``box_iou``, on numpy arrays)."""
    import torch
    from ultralytics.utils.metrics import box_iou as ultralytics_box_iou

    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    return ultralytics_box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()


def agnostic_nms(pred_boxes: np.ndarray, pred_scores: np.ndarray, iou: float) -> np.ndarray:
    """Return the indices of the predictions that class-agnostic NMS keeps: the nodes' own NMS (core/postprocess)."""
    boxes = np.asarray(pred_boxes, np.float64).reshape(-1, 4)
    return np.sort(nms(boxes, np.asarray(pred_scores, np.float64).reshape(-1), iou))


def published(pred_boxes: np.ndarray, pred_scores: np.ndarray, conf: float = DEFAULT_CONF,
              nms_iou: float | None = NODE_NMS_IOU) -> np.ndarray:
    """Return the indices of the predictions a node publishes: score >= ``conf``, then agnostic NMS at ``nms_iou``."""
    keep = np.flatnonzero(np.asarray(pred_scores) >= conf)
    if nms_iou is not None:
        keep = keep[agnostic_nms(np.asarray(pred_boxes)[keep], np.asarray(pred_scores)[keep], nms_iou)]
    return keep


def match_lights(pred_boxes: np.ndarray, pred_scores: np.ndarray, gt_boxes: np.ndarray,
                 iou: float = MATCH_IOU) -> np.ndarray:
    """Greedy class-agnostic matching of one image: the label index of each prediction, -1 for none.

    Highest score first (ties in input order), each prediction takes the unclaimed label it overlaps most if that
    IoU is at least ``iou``; each label is taken once.
    """
    scores = np.asarray(pred_scores, np.float64).reshape(-1)
    match = np.full(len(scores), -1, dtype=np.int64)
    if not len(scores) or not len(gt_boxes):
        return match
    overlap = box_iou(gt_boxes, pred_boxes)  # labels x predictions
    free = np.ones(len(overlap), dtype=bool)
    for j in np.argsort(-scores, kind="stable"):
        cand = np.where(free, overlap[:, j], -1.0)
        k = int(cand.argmax())
        if cand[k] >= iou:
            match[j], free[k] = k, False
    return match


def tp_matrix(pred_boxes: np.ndarray, pred_scores: np.ndarray, pred_labels: np.ndarray, gt_boxes: np.ndarray,
              gt_labels: np.ndarray, thresholds: np.ndarray = IOU_THRESHOLDS) -> np.ndarray:
    """True-positive matrix ``(predictions, thresholds)`` of one image, label-aware: ultralytics' validator's own.

    ``BaseValidator.match_predictions`` (it reads only ``iouv`` of its validator) on the predictions in descending
    score order, as the validator gives them; the rows come back in the input order.
    """
    import torch
    from ultralytics.engine.validator import BaseValidator

    scores = np.asarray(pred_scores, np.float64).reshape(-1)
    thresholds = np.asarray(thresholds, np.float64)
    if not len(scores) or not len(gt_labels):
        return np.zeros((len(scores), len(thresholds)), dtype=bool)
    order = np.argsort(-scores, kind="stable")
    labels = torch.as_tensor(np.asarray(pred_labels).reshape(-1)[order])
    iou = torch.from_numpy(box_iou(gt_boxes, np.asarray(pred_boxes, np.float64).reshape(-1, 4)[order]))
    correct = BaseValidator.match_predictions(SimpleNamespace(iouv=torch.from_numpy(thresholds)), labels,
                                              torch.as_tensor(np.asarray(gt_labels).reshape(-1)), iou).numpy()
    out = np.empty_like(correct)
    out[order] = correct
    return out


def _image_arrays(i: int, image: Any, table: np.ndarray) -> dict[str, np.ndarray]:
    """Return the checked arrays of ``images[i]``: boxes ``(n, 4)``, scores ``(n,)``, states of both sides."""
    if not isinstance(image, Mapping):
        raise ValueError(f"images[{i}]: expected a dict with keys {list(IMAGE_KEYS)}, got {type(image).__name__}")
    missing = [k for k in IMAGE_KEYS if k not in image]
    if missing:
        raise ValueError(f"images[{i}]: missing keys {missing}; expected {list(IMAGE_KEYS)}")
    out: dict[str, np.ndarray] = {}
    for side in ("pred", "gt"):
        boxes = np.asarray(image[f"{side}_boxes"], np.float64)
        boxes = boxes.reshape(0, 4) if boxes.size == 0 else boxes
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"images[{i}]['{side}_boxes']: expected shape (n, 4) xyxy, got {boxes.shape}")
        cls = _class_ids(image[f"{side}_cls"], f"images[{i}]['{side}_cls']", table)
        if len(cls) != len(boxes):
            raise ValueError(f"images[{i}]['{side}_cls']: expected {len(boxes)} class ids (one per box), "
                             f"got {len(cls)}")
        out[f"{side}_boxes"], out[f"{side}_state"] = boxes, table[cls]
    scores = np.asarray(image["pred_scores"], np.float64).reshape(-1)
    if len(scores) != len(out["pred_boxes"]):
        raise ValueError(f"images[{i}]['pred_scores']: expected {len(out['pred_boxes'])} scores (one per box), "
                         f"got {len(scores)}")
    out["pred_scores"] = scores
    return out


def _ratio(num: int, den: int) -> float | None:
    return float(num) / den if den else None


def state_metrics(images: Sequence[Mapping[str, Any]], names: Mapping[int, str] | Sequence[str],
                  conf: float = DEFAULT_CONF, nms_iou: float | None = NODE_NMS_IOU) -> dict[str, Any]:
    """State metrics of per-image predictions against labels (module docstring); a JSON-able dict.

    Args:
        images: One dict per image: ``pred_boxes`` ``(n, 4)`` xyxy, ``pred_scores`` ``(n,)``, ``pred_cls``
            ``(n,)`` class ids, ``gt_boxes`` ``(m, 4)`` xyxy in the same frame, ``gt_cls`` ``(m,)`` class ids.
            Predictions below ``conf`` count only towards AP.
        names: The model's class names (``{id: name}`` or a sequence), each ``<relevance>_<state>``.
        conf: Confidence threshold in [0, 1] of the matching, precision, recall, accuracy and confusion matrix.
        nms_iou: Class-agnostic NMS of the predictions above ``conf`` at this IoU before matching, as the nodes
            publish them (ultralytics' validator keeps a box once per class it clears; None: no extra NMS).

    Returns:
        ``{"conf", "iou", "images", "states", "state_accuracy", "matched", "per_state": {state: {"support",
        "predicted", "correct", "precision", "recall", "ap50", "ap50_95"}}, "critical": {key: count},
        "confusion": {"rows", "columns", "counts"}}``.

    Raises:
        ValueError: ``images``, ``names`` or ``conf`` is not as described (the message names which).
    """
    if isinstance(images, (Mapping, str, bytes)) or not isinstance(images, Sequence):
        raise ValueError(f"images: expected a list of per-image dicts, got {type(images).__name__}")
    if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not 0.0 <= float(conf) <= 1.0:
        raise ValueError(f"conf: expected a number in [0, 1], got {conf!r}")
    conf = float(conf)
    table = state_table(names)
    n = len(STATES)
    counts = np.zeros((n + 1, n + 1), dtype=np.int64)  # rows: true state + background; cols: predicted + missed
    tp, scores, pred_states, gt_states = [], [], [], []
    for i, image in enumerate(images):
        im = _image_arrays(i, image, table)
        tp.append(tp_matrix(im["pred_boxes"], im["pred_scores"], im["pred_state"], im["gt_boxes"], im["gt_state"]))
        scores.append(im["pred_scores"])
        pred_states.append(im["pred_state"])
        gt_states.append(im["gt_state"])
        keep = published(im["pred_boxes"], im["pred_scores"], conf, nms_iou)
        match = match_lights(im["pred_boxes"][keep], im["pred_scores"][keep], im["gt_boxes"])
        kept_states = im["pred_state"][keep]
        hit = match >= 0
        np.add.at(counts, (im["gt_state"][match[hit]], kept_states[hit]), 1)
        np.add.at(counts, (n, kept_states[~hit]), 1)
        missed = np.ones(len(im["gt_state"]), dtype=bool)
        missed[match[hit]] = False
        np.add.at(counts, (im["gt_state"][missed], n), 1)

    ap = _state_ap(tp, scores, pred_states, gt_states)
    matched = int(counts[:n, :n].sum())
    per_state = {}
    for s, state in enumerate(STATES):
        support, predicted, correct = int(counts[s].sum()), int(counts[:, s].sum()), int(counts[s, s])
        per_state[state] = {
            "support": support, "predicted": predicted, "correct": correct,
            "precision": _ratio(correct, predicted), "recall": _ratio(correct, support),
            "ap50": ap[s][0] if s in ap else None, "ap50_95": ap[s][1] if s in ap else None,
        }
    return {
        "conf": conf, "iou": MATCH_IOU, "images": len(images), "states": list(STATES),
        "state_accuracy": _ratio(int(np.trace(counts[:n, :n])), matched), "matched": matched,
        "per_state": per_state,
        "critical": {key: int(counts[STATES.index(t), STATES.index(p)]) for key, (t, p) in CRITICAL.items()},
        "confusion": {"rows": [*STATES, BACKGROUND], "columns": [*STATES, MISSED], "counts": counts.tolist()},
    }


def _state_ap(tp: list[np.ndarray], scores: list[np.ndarray], pred_states: list[np.ndarray],
              gt_states: list[np.ndarray]) -> dict[int, tuple[float, float]]:
    """``{state index: (AP50, AP50-95)}`` of the states with labels (ultralytics' ``ap_per_class``)."""
    target = np.concatenate(gt_states) if gt_states else np.zeros(0, np.int64)
    if not len(target):
        return {}
    from ultralytics.utils.metrics import ap_per_class

    ap, classes = ap_per_class(np.concatenate(tp, 0), np.concatenate(scores), np.concatenate(pred_states),
                               target)[5:7]
    return {int(c): (float(ap[i, 0]), float(ap[i].mean())) for i, c in enumerate(classes)}


def flat_row(result: Mapping[str, Any]) -> dict[str, Any]:
    """Return the evaluation-row keys of a :func:`state_metrics` result.

    ``state_accuracy``, ``state_matched``, ``red_to_green``, ``red_yellow_to_green`` and ``<state>_recall``,
    ``<state>_precision``, ``<state>_ap50`` for every state.
    """
    row: dict[str, Any] = {"state_accuracy": result["state_accuracy"], "state_matched": result["matched"]}
    row.update({key: result["critical"][key] for key in FATAL})
    for state in STATES:
        row.update({f"{state}_{m}": result["per_state"][state][m] for m in ("recall", "precision", "ap50")})
    return row


def _confusion_counts(result: Any) -> np.ndarray:
    """Return the confusion counts of a :func:`state_metrics` result; ValueError when it is not one."""
    try:
        counts = np.asarray(result["confusion"]["counts"], dtype=np.int64)
    except (TypeError, KeyError, ValueError):
        counts = None
    if counts is None or counts.shape != (len(STATES) + 1, len(STATES) + 1):
        raise ValueError("result: expected the dict returned by state_metrics() (with confusion counts of shape "
                         f"{(len(STATES) + 1, len(STATES) + 1)})")
    return counts


def plot_confusion(result: Mapping[str, Any], path: str | Path, title: str | None = None) -> Path:
    """Write the state confusion matrix of ``result`` as a PNG at ``path`` (atomically); return the path.

    Rows normalised (colour: fraction of the row, text: count), the red -> green and red_yellow -> green cells
    outlined, with a caption saying why. ``title`` leads the heading; the threshold and accuracy follow it.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"path: expected a .png file, got {path}")
    counts = _confusion_counts(result)
    rows, cols = [*STATES, BACKGROUND], [*STATES, MISSED]
    totals = counts.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(totals > 0, counts / np.maximum(totals, 1), np.nan)
    frac[-1, -1] = np.nan  # background x missed: no such pair

    fig = Figure(figsize=(7.5, 6.8), dpi=110)
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(frac), cmap=colormaps["Blues"].with_extremes(bad="#eeeeee"), vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the row")
    for i in range(len(rows)):
        for j in range(len(cols)):
            if i == len(rows) - 1 and j == len(cols) - 1:
                continue
            dark = not np.isnan(frac[i, j]) and frac[i, j] > 0.55
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=9,
                    color="white" if dark else "black")
    ax.set_xticks(range(len(cols)), cols, rotation=35, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("predicted state")
    ax.set_ylabel("true state")
    ax.axhline(len(STATES) - 0.5, color="grey", lw=1)
    ax.axvline(len(STATES) - 0.5, color="grey", lw=1)
    strong = "#e6007e"
    parts = []
    for key in FATAL:
        true, pred = CRITICAL[key]
        i, j = STATES.index(true), STATES.index(pred)
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor=strong, lw=3.5, zorder=3))
        parts.append(f"{true} -> {pred}: {counts[i, j]}")
    acc = result.get("state_accuracy")
    conf = result.get("conf")
    ax.set_title((title or "Light-state confusion")
                 + (f" (score >= {conf:g}, IoU >= {result.get('iou', MATCH_IOU):g})" if conf is not None else "")
                 + (f"\nstate accuracy {100 * acc:.1f}% of {result.get('matched')} matched lights"
                    if acc is not None else "\nno matched lights"), fontsize=10)
    fig.text(0.5, 0.012, "Outlined: " + ", ".join(parts) + ". These are the errors that kill: a light that says "
             "stop read as go.", ha="center", va="bottom", fontsize=8.5, color=strong, wrap=True)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
