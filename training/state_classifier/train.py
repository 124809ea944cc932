"""Train the state classifier on the crops of a ``relevance_state`` dataset, evaluate it, export it to ONNX.

Rare states (yellow, red_yellow, off: a few percent of DTLD's lights) are weighted in the cross-entropy by
``balance``: ``none`` (1), ``sqrt`` (``sqrt(n_max / n_state)``) or ``inverse`` (``n_max / n_state``). Each batch
is augmented with an exposure gain per crop (a camera's varying exposure) and a horizontal flip (a light's state
does not depend on its side). The epoch kept is the one with the best balanced accuracy (mean recall over the
states the val split has), so a rare state counts as much as green; of equal ones the latest (a val split has few
lights of the rare states, so its balanced accuracy moves in steps and plateaus early, while later epochs at a
lower learning rate still improve the frequent states).

What ``out`` receives: ``state_classifier.pt`` (the kept weights and settings), ``state_classifier.onnx`` (what
the node's ``state_model`` loads, crop geometry in its metadata), ``metrics.json`` (counts, per-epoch val
figures, val and test figures of the kept epoch, the ONNX parity) and ``confusion.png`` (test split, else val).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kd_traffic_light.core.atomic_io import atomic_path, atomic_write_json
from kd_traffic_light.core.classes import STATES
from kd_traffic_light.core.state_classifier import CROP_HW, CROP_MARGIN, META_KEYS, UPRIGHT_KEY, to_input
from training.errors import UsageError
from training.state_classifier.data import Crops, dataset_info, load_crops

BALANCES = ("none", "sqrt", "inverse")


@dataclass(frozen=True)
class Settings:
    """How the classifier is trained (``python -m training state-classifier --help`` names each flag)."""

    epochs: int = 30
    batch: int = 128
    lr: float = 3e-3
    seed: int = 0
    balance: str = "sqrt"
    jitter: int = 4
    jitter_frac: float = 0.15
    crop_hw: tuple[int, int] = CROP_HW
    margin: float = CROP_MARGIN
    upright: bool = False
    width: int = 16

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1, "batch": self.batch >= 1, "lr": self.lr > 0, "jitter": self.jitter >= 0,
            "jitter_frac": 0 <= self.jitter_frac < 0.5, "margin": 0 <= self.margin <= 1, "width": self.width >= 1,
            "balance": self.balance in BALANCES,
            "crop_hw": len(self.crop_hw) == 2 and all(v >= 4 and v % 4 == 0 for v in self.crop_hw),
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise UsageError(f"state classifier settings {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}: "
                             f"expected epochs, batch >= 1, lr > 0, jitter >= 0, jitter_frac in [0, 0.5), margin in "
                             f"[0, 1], width >= 1, balance one of {BALANCES}, crop_hw two multiples of 4 >= 4")


def class_weights(states: np.ndarray, balance: str) -> np.ndarray:
    """Loss weight of each state from its train count (module docstring); 0 for a state without crops."""
    counts = np.bincount(states, minlength=len(STATES)).astype(np.float64)
    seen = counts > 0
    weights = np.zeros(len(STATES))
    if balance == "none":
        weights[seen] = 1.0
    else:
        ratio = counts.max() / counts[seen]
        weights[seen] = np.sqrt(ratio) if balance == "sqrt" else ratio
    return weights


def figures(pred: np.ndarray, true: np.ndarray) -> dict[str, Any]:
    """Accuracy, balanced accuracy, per-state support / recall / precision and the confusion counts."""
    n = len(STATES)
    counts = np.zeros((n, n), np.int64)
    np.add.at(counts, (true, pred), 1)
    per_state = {}
    for s, state in enumerate(STATES):
        support, predicted = int(counts[s].sum()), int(counts[:, s].sum())
        per_state[state] = {"support": support, "correct": int(counts[s, s]),
                            "recall": counts[s, s] / support if support else None,
                            "precision": counts[s, s] / predicted if predicted else None}
    recalls = [v["recall"] for v in per_state.values() if v["recall"] is not None]
    return {"crops": int(len(true)), "accuracy": float(np.trace(counts) / max(1, len(true))),
            "balanced_accuracy": float(np.mean(recalls)) if recalls else None, "per_state": per_state,
            "red_to_green": int(counts[STATES.index("red"), STATES.index("green")]),
            "red_yellow_to_green": int(counts[STATES.index("red_yellow"), STATES.index("green")]),
            "confusion": counts.tolist()}


def predict(model: Any, crops: Crops, batch: int = 512) -> np.ndarray:
    """Predicted state index of every crop."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(crops), batch):
            out.append(model(torch.from_numpy(to_input(crops.images[i:i + batch]))).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def export_onnx(model: Any, settings: Settings, path: Path) -> Path:
    """Export ``model`` with a dynamic batch and :data:`META_KEYS` in its metadata (written atomically)."""
    import onnx
    import torch

    model.eval()
    dummy = torch.zeros(1, 3, *settings.crop_hw)
    with atomic_path(path) as tmp:
        torch.onnx.export(model, dummy, str(tmp), opset_version=17, input_names=["crops"], output_names=["logits"],
                          dynamic_axes={"crops": {0: "n"}, "logits": {0: "n"}}, dynamo=False)
        proto = onnx.load(str(tmp))
        for key, value in zip((*META_KEYS, UPRIGHT_KEY), (json.dumps(list(STATES)), json.dumps(list(settings.crop_hw)),
                                                          repr(float(settings.margin)), str(int(settings.upright))),
                              strict=True):
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(tmp))
    return path


def onnx_parity(model: Any, onnx_path: Path, crops: Crops, limit: int = 256) -> dict[str, float]:
    """Largest |logit difference| and argmax agreement of the ONNX file, as the node loads it, against ``model``."""
    import torch

    from kd_traffic_light.core.state_classifier import StateClassifier

    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(to_input(crops.images[:limit]))).numpy()
    got = StateClassifier(onnx_path).logits(crops.images[:limit])
    return {"crops": int(len(ref)), "max_abs_logit_diff": float(np.abs(got - ref).max()),
            "argmax_agreement": float((got.argmax(1) == ref.argmax(1)).mean())}


def _augment(x: Any, gen: Any) -> Any:
    """Exposure gain per crop in [0.6, 1.4] and a horizontal flip of half the crops."""
    import torch

    gain = 0.6 + 0.8 * torch.rand(len(x), 1, 1, 1, generator=gen)
    x = (x * gain).clamp_(0.0, 1.0)
    flip = torch.rand(len(x), generator=gen) < 0.5
    x[flip] = x[flip].flip(-1)
    return x


def train_state_classifier(data_yaml: str | Path, out: str | Path, settings: Settings | None = None,
                           progress: bool = True) -> dict[str, Any]:
    """Train, keep the best val epoch, evaluate on val and test, export; return (and write) the metrics.

    Raises:
        UsageError: ``data_yaml`` is not a ``relevance_state`` dataset (naming the file and field).
        RunError: a split, image or label file is missing or unreadable (naming it).
    """
    import torch
    from torch import nn
    from tqdm import tqdm

    from training.state_classifier.model import StateNet

    settings = settings or Settings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info = dataset_info(data_yaml)
    cut = {"hw": settings.crop_hw, "margin": settings.margin, "upright": settings.upright}
    train = load_crops(info, "train", jitter=settings.jitter, jitter_frac=settings.jitter_frac, seed=settings.seed,
                       **cut)
    val = load_crops(info, "val", **cut)
    test = load_crops(info, "test", **cut) if info.get("test") else None

    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    model = StateNet(len(STATES), settings.crop_hw, settings.width)
    weights = class_weights(train.states, settings.balance)
    loss_fn = nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32))
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=1e-4)
    steps = settings.epochs * -(-len(train) // settings.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.lr, total_steps=steps)
    x_all = torch.from_numpy(to_input(train.images))
    y_all = torch.from_numpy(train.states)

    history, best, best_state = [], -1.0, None
    bar = tqdm(range(settings.epochs), desc="state classifier", unit="epoch", disable=not progress)
    for epoch in bar:
        model.train()
        order = torch.randperm(len(train), generator=gen)
        total = 0.0
        for i in range(0, len(order), settings.batch):
            idx = order[i:i + settings.batch]
            loss = loss_fn(model(_augment(x_all[idx].clone(), gen)), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        score = figures(predict(model, val), val.states)["balanced_accuracy"] or 0.0
        history.append({"epoch": epoch + 1, "loss": total / len(train), "val_balanced_accuracy": score})
        bar.set_postfix(loss=f"{total / len(train):.3f}", val_bal_acc=f"{score:.3f}")
        if score >= best:
            best, best_state = score, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)

    torch.save({"state_dict": model.state_dict(), "settings": asdict(settings), "states": list(STATES)},
               out / "state_classifier.pt")
    onnx_path = export_onnx(model, settings, out / "state_classifier.onnx")
    metrics = {
        "data": str(Path(data_yaml)), "settings": asdict(settings),
        "train_crops": int(len(train)), "train_lights_per_state": dict(zip(
            STATES, (np.bincount(train.states, minlength=len(STATES)) // max(1, settings.jitter)).tolist(),
            strict=True)),
        "class_weights": dict(zip(STATES, weights.round(4).tolist(), strict=True)),
        "history": history,
        "best_epoch": len(history) - int(np.argmax([h["val_balanced_accuracy"] for h in history][::-1])),
        "val": figures(predict(model, val), val.states),
        "test": figures(predict(model, test), test.states) if test is not None else None,
        "onnx": str(onnx_path), "onnx_parity": onnx_parity(model, onnx_path, val),
    }
    atomic_write_json(out / "metrics.json", metrics)
    plot_crop_confusion(metrics["test"] or metrics["val"], out / "confusion.png",
                        f"State classifier on labelled crops ({'test' if test is not None else 'val'} split)")
    return metrics


def plot_crop_confusion(result: dict[str, Any], path: Path, title: str) -> Path:
    """Draw the crop confusion as :func:`training.state_metrics.plot_confusion` does (no background, no missed)."""
    from training.state_metrics import plot_confusion

    n = len(STATES)
    counts = np.zeros((n + 1, n + 1), np.int64)
    counts[:n, :n] = result["confusion"]
    return plot_confusion({"conf": None, "state_accuracy": result["accuracy"], "matched": result["crops"],
                           "confusion": {"counts": counts.tolist()}}, path, title)
