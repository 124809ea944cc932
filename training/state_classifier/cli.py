"""``python -m training state-classifier``: train the light-state crop classifier and export it to ONNX."""

from __future__ import annotations

import argparse
from pathlib import Path

from kd_traffic_light.core.state_classifier import CROP_HW, CROP_MARGIN


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``state-classifier`` subcommand."""
    p = subparsers.add_parser(
        "state-classifier", help="train the light-state crop classifier (for a two-class detector) and export it",
        description="Cut the labelled lights of a relevance_state YOLO dataset into crops, train a small CNN on "
                    "their state, keep the best val epoch, evaluate on val and test, export state_classifier.onnx "
                    "for the detector node's 'state_model' parameter.",
    )
    p.add_argument("--data", required=True, type=Path, help="data.yaml of a relevance_state dataset")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--epochs", type=int, default=30, help="epochs (default 30)")
    p.add_argument("--batch", type=int, default=128, help="crops per batch (default 128)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate, one-cycle (default 3e-3)")
    p.add_argument("--seed", type=int, default=0, help="initialisation, jitter and order seed (default 0)")
    p.add_argument("--balance", choices=("none", "sqrt", "inverse"), default="sqrt",
                   help="loss weight of rare states (default sqrt: sqrt(n_max / n_state))")
    p.add_argument("--jitter", type=int, default=4, help="jittered copies of each train light (default 4)")
    p.add_argument("--crop-hw", type=int, nargs=2, default=list(CROP_HW), metavar=("H", "W"),
                   help=f"crop size, multiples of 4 (default {CROP_HW[0]} {CROP_HW[1]})")
    p.add_argument("--margin", type=float, default=CROP_MARGIN,
                   help=f"margin around each box, fraction of its size per side (default {CROP_MARGIN})")
    p.add_argument("--upright", action="store_true",
                   help="turn horizontal heads upright (red on top) before reading (default: cut as they are)")
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    """Train from the parsed flags; print where the files went and the test (else val) figures."""
    from training.state_classifier.train import Settings, train_state_classifier

    settings = Settings(epochs=args.epochs, batch=args.batch, lr=args.lr, seed=args.seed, balance=args.balance,
                        jitter=args.jitter, crop_hw=tuple(args.crop_hw), margin=args.margin,
                        upright=args.upright)
    metrics = train_state_classifier(args.data, args.out, settings)
    split = "test" if metrics["test"] else "val"
    fig = metrics[split]
    recalls = ", ".join(f"{s} {v['recall']:.3f} ({v['support']})" if v["recall"] is not None else f"{s} - (0)"
                        for s, v in fig["per_state"].items())
    print(f"state classifier: {args.out / 'state_classifier.onnx'} (best val epoch {metrics['best_epoch']})")
    print(f"{split} crops: accuracy {fig['accuracy']:.3f}, balanced {fig['balanced_accuracy']:.3f}; recall (support) "
          f"{recalls}; red->green {fig['red_to_green']}, red_yellow->green {fig['red_yellow_to_green']}")
    return 0
