"""``python -m training data ...``: DTLD -> YOLO conversion and the synthetic DTLD-format generator."""

from __future__ import annotations

import argparse
import json
import logging

from kd_traffic_light.core.classes import DEFAULT_SCHEME, SCHEMES
from training.errors import UsageError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``data`` with the sub-subcommands ``convert-dtld``, ``synth``, ``synth-bag`` and ``synth-crops``.

    Their entry points, :func:`run_convert`, :func:`run_synth`, :func:`run_synth_bag` and :func:`run_synth_crops`,
    take the parsed namespace and return the exit code.
    """
    data = subparsers.add_parser("data", help="DTLD -> YOLO conversion and synthetic DTLD-format data")
    sub = data.add_subparsers(dest="data_command", required=True, metavar="<data command>")
    _add_convert(sub)
    _add_synth(sub)
    _add_bag(sub)
    _add_crops(sub)


def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert-dtld", help="convert DTLD (v2.0 JSON or v1.0 YAML labels) to a YOLO dataset")
    p.add_argument("--root", required=True, help="DTLD base directory holding the City folders")
    p.add_argument("--out", required=True, help="output YOLO dataset directory (new, or a previous run to resume)")
    p.add_argument("--train", nargs="*", default=[], help="label files (.json v2.0 / .yml v1.0) for train")
    p.add_argument("--val", nargs="*", default=[], help="label files for val (besides --val-images)")
    p.add_argument("--test", nargs="*", default=[], help="label files for test")
    p.add_argument("--val-images", type=int, default=0,
                   help="draw whole train sequences into val until at least this many images (e.g. 800)")
    p.add_argument("--seed", type=int, default=0, help="seed of the validation draw")
    p.add_argument("--format", choices=("png", "jpg"), default="png", help="image format (png is lossless)")
    p.add_argument("--jpeg-quality", type=int, default=95, help="JPEG quality 1-100 with --format jpg")
    p.add_argument("--resize-width", type=int, default=None, help="resize images to this width (aspect kept)")
    p.add_argument("--include", action="append", default=[], metavar="ATTR=V[,V]",
                   help="keep only lights with this attribute value, e.g. direction=front (repeatable)")
    p.add_argument("--exclude", action="append", default=[], metavar="ATTR=V[,V]",
                   help="drop lights with this attribute value, e.g. reflection=reflected (repeatable)")
    p.add_argument("--classes", choices=tuple(SCHEMES), default=DEFAULT_SCHEME,
                   help="class scheme: relevance (the source study's 2 classes) or relevance_state (relevance x "
                        "red/yellow/red_yellow/green/off, lights of unknown state dropped); docs/dtld_format.md")
    p.add_argument("--workers", type=int, default=1, help="decoding processes")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run_convert)


def _add_synth(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="write synthetic scenes in the DTLD on-disk format")
    p.add_argument("--out", required=True, help="output DTLD base directory")
    p.add_argument("--sequences", type=int, default=8, help="number of drive sequences")
    p.add_argument("--frames", type=int, default=5, help="consecutive frames per sequence")
    p.add_argument("--seed", type=int, default=0, help="random seed (output is a pure function of it)")
    p.add_argument("--preset", choices=("demo", "hard"), default="demo",
                   help="demo: lights 56-128 px short side at 2048; hard: DTLD-like, many tiny lights")
    p.add_argument("--size-px", type=float, nargs=2, default=None, metavar=("MIN", "MAX"),
                   help="override the light short-side range in px at 2048x1024")
    p.add_argument("--tiny-fraction", type=float, default=None, help="override the fraction of tiny lights")
    p.add_argument("--dusk-fraction", type=float, default=None, help="override the fraction of dusk sequences")
    p.add_argument("--lamps", choices=("flat", "camera"), default=None,
                   help="lamp look: flat (default, the original output) or camera (white cores, halos, bloom, "
                        "exposure, sun-washed and back-lit heads; DTLD state shares); docs/training.md")
    p.add_argument("--no-v1", action="store_true", help="do not write the v1.0 YAML label files")
    p.add_argument("--workers", type=int, default=1, help="rendering processes")
    p.add_argument("--bag", default=None, help="also write the first sequence as a rosbag2 (mcap) here")
    p.add_argument("--bag-width", type=int, default=None, help="resize bag images to this width")
    p.set_defaults(func=run_synth)


def _add_bag(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth-bag", help="write a synthetic drive sequence as a rosbag2 (mcap)")
    p.add_argument("--out", required=True, help="output bag directory (must not exist)")
    p.add_argument("--frames", type=int, default=20, help="frames of the drive")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--preset", choices=("demo", "hard"), default="demo", help="scene preset")
    p.add_argument("--lamps", choices=("flat", "camera"), default=None,
                   help="lamp look: flat (default, the original output) or camera (white cores, halos, bloom, "
                        "exposure, sun-washed and back-lit heads; DTLD state shares); docs/training.md")
    p.add_argument("--dtld-dir", default=None, help="where the DTLD tree goes (default: <out>_dtld)")
    p.add_argument("--width", type=int, default=None, help="resize images to this width")
    p.add_argument("--image-topic", default="/camera/image_raw", help="sensor_msgs/Image topic")
    p.add_argument("--info-topic", default="/camera/camera_info", help="sensor_msgs/CameraInfo topic")
    p.add_argument("--frame-id", default="camera_left", help="header frame_id")
    p.set_defaults(func=run_synth_bag)


def _add_crops(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth-crops", help="write a PNG grid of synthetic light crops, one row per state")
    p.add_argument("--out", required=True, help="output PNG file")
    p.add_argument("--lamps", choices=("flat", "camera"), default="camera", help="lamp look")
    p.add_argument("--per-state", type=int, default=10, help="crops per state (columns)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.set_defaults(func=run_synth_crops)


def _check_workers(args: argparse.Namespace) -> None:
    """Refuse a ``--workers`` below 1 (a usage error, exit 2) before anything is read or written."""
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers}: expected a number of processes >= 1")


def run_convert(args: argparse.Namespace) -> int:
    """Entry point of ``data convert-dtld``: convert, print the images per split and the warnings as JSON."""
    _check_workers(args)
    from training.data.dtld import ConvertOptions, convert_dtld, parse_filters

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    opts = ConvertOptions(train=args.train, val=args.val, test=args.test, val_images=args.val_images,
                          seed=args.seed, image_format=args.format, jpeg_quality=args.jpeg_quality,
                          resize_width=args.resize_width, include=parse_filters(args.include),
                          exclude=parse_filters(args.exclude), classes=args.classes)
    summary = convert_dtld(args.root, args.out, opts, workers=args.workers, progress=not args.no_progress)
    counts = {s: v["images"] for s, v in summary["splits"].items()}
    print(json.dumps({"images": counts, "warnings": summary["warning_counts"]}))
    return 0


def _config(args: argparse.Namespace):  # noqa: ANN202
    from dataclasses import replace

    from training.data.synth import PRESETS

    cfg = PRESETS[args.preset]
    if getattr(args, "size_px", None):
        cfg = replace(cfg, size_px=tuple(args.size_px))
    if getattr(args, "tiny_fraction", None) is not None:
        cfg = replace(cfg, tiny_fraction=args.tiny_fraction)
    if getattr(args, "dusk_fraction", None) is not None:
        cfg = replace(cfg, dusk_fraction=args.dusk_fraction)
    if getattr(args, "no_v1", False):
        cfg = replace(cfg, write_v1=False)
    if getattr(args, "lamps", None):
        cfg = replace(cfg, lamps=args.lamps)
    return cfg


def run_synth(args: argparse.Namespace) -> int:
    """Entry point of ``data synth``: write the synthetic DTLD tree (with ``--bag``, its first sequence as a bag)."""
    _check_workers(args)
    from training.data.synth import make_synthetic_dtld, write_drive_bag

    ds = make_synthetic_dtld(args.out, args.sequences, args.frames, args.seed, _config(args), args.workers,
                             progress=True)
    print(f"wrote {len(ds.frames)} frames in {len(ds.sequences())} sequences to {args.out}; "
          f"labels {ds.v2['all']}")
    if args.bag:
        n = write_drive_bag(ds, ds.sequences()[0], args.bag, resize_width=args.bag_width)
        print(f"wrote {n} frames of {ds.sequences()[0]} to {args.bag}")
    return 0


def run_synth_bag(args: argparse.Namespace) -> int:
    """Entry point of ``data synth-bag``: write one synthetic drive as a rosbag2, its DTLD tree beside it."""
    from dataclasses import replace

    from training.data.synth import make_synthetic_dtld, write_drive_bag

    cfg = replace(_config(args), test_fraction=0.0)
    ds = make_synthetic_dtld(args.dtld_dir or f"{args.out.rstrip('/')}_dtld", 1, args.frames, args.seed, cfg)
    n = write_drive_bag(ds, ds.sequences()[0], args.out, args.image_topic, args.info_topic, args.frame_id,
                        args.width)
    print(f"wrote {n} frames to {args.out}")
    return 0


def run_synth_crops(args: argparse.Namespace) -> int:
    """Entry point of ``data synth-crops``: write the grid of light crops per state."""
    if args.per_state < 1:
        raise UsageError(f"--per-state {args.per_state}: expected >= 1")
    from training.data.synth.crops import crop_grid

    print(f"wrote {crop_grid(args.out, args.lamps, args.per_state, args.seed)}")
    return 0
