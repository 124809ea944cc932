r"""Signal revision: raw detector vs revised signal on camera-rate synthetic drives, and the tracker's cost.

Renders drives at 15 Hz with lamps as a camera sees them (the demo's scenes, signal phases shortened so a few
seconds show changes; LED pulse frames caught dark; in half the drives a truck ahead hides the lights a while),
runs a trained model that reads the light's state (a ``relevance_state`` model, or a two-class one with
``--state-model``, the crop classifier) on every frame with the nodes' core, and scores, against the true state of the
governing signal, the raw signal (the frame's relevant detections voted, no tracks) and the revised one
(tracks, state filter, vote: kd_traffic_light/core/signal.py): accuracy, spurious changes per minute, delay
per target state, red->green and red_yellow->green frames. Then times one frame of the tracking pipeline at
20 lights. Writes the JSON and the timeline plot (``<out>`` with ``.png``). Definitions and goals:
docs/tracking.md, "Measuring the revision".

    python benchmarks/signal_revision.py --model runs/demo/experiment/runs/n_from_s_ours_seed0/weights/best.onnx \
        --state-model runs/demo/state_classifier/state_classifier.onnx
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
from _setup import REPO
from tqdm import tqdm

from kd_traffic_light.core.atomic_io import atomic_write_json, read_json
from kd_traffic_light.core.classes import split_label
from kd_traffic_light.core.config import DetectorConfig, TrackingConfig
from kd_traffic_light.core.detector import TrafficLightDetector
from kd_traffic_light.core.signal import SignalRevision, frame_signal
from kd_traffic_light.core.types import Detection
from kd_traffic_light.tools.signal_eval import drive_metrics, plot_timelines, pool
from training.data.synth import SynthDataset

DEMO_CONFIG = REPO / "training" / "configs" / "demo_cpu.yaml"
#: Settings scored besides the node's defaults: green ridden over undetected frames (docs/tracking.md, rule 4).
VARIANTS = {"green_hold_s": 0.2}
#: The constructed detectors (probability a light is missed, probability it is read as another state, per frame).
CONSTRUCTED = ((0.1, 0.05), (0.25, 0.1))
GOALS = {"spurious_ratio_max": 0.1, "red_to_green": 0, "red_yellow_to_green": 0, "stop_delay_frames_max": 2}


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="signal_revision", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", nargs="+", required=True,
                   help="trained relevance_state models (.onnx, OpenVINO dir or .pt), each run on the same drives")
    p.add_argument("--state-model", default="",
                   help="crop classifier (.onnx) read on every box of two-class models (the node's state_model)")
    p.add_argument("--imgsz", type=int, default=160, help="inference size (the demo's)")
    p.add_argument("--drives", type=int, default=12, help="synthetic drives")
    p.add_argument("--seconds", type=float, default=6.0, help="length of each drive")
    p.add_argument("--hz", type=float, default=15.0, help="camera rate")
    p.add_argument("--phase-s", type=float, nargs=2, default=(2.0, 5.0), help="seconds of red and green (min max)")
    p.add_argument("--speed", type=float, nargs=2, default=(1.0, 2.5),
                   help="ego speed, m/s (min max): a drive creeping up to its light, so lights sized for a single "
                        "frame do not grow past what a camera sees")
    p.add_argument("--truck-p", type=float, default=0.5,
                   help="probability per drive of a truck ahead that merges into the ego lane and hides the lights")
    p.add_argument("--seed", type=int, default=11,
                   help="scene seed (the demo trains on seed 0; the filter was developed on seed 7's drives)")
    p.add_argument("--resize-width", type=int, default=512, help="frame width the model sees (the demo's)")
    p.add_argument("--workers", type=int, default=2, help="processes rendering drives")
    p.add_argument("--out", default="runs/bench/signal_revision.json", help="JSON result file")
    p.add_argument("--work", default="runs/bench/signal_revision",
                   help="folder keeping the rendered drives and each model's detections (reused when the drive "
                        "settings and the model file are the same; delete it to start over)")
    return p


def render_drives(args: argparse.Namespace, root: Path):
    """Write the drives (synthetic DTLD tree) and return their ground truth."""
    from training.data.synth import make_synthetic_dtld
    from training.experiment.config import load_experiment, synth_config

    cfg = replace(synth_config(load_experiment(DEMO_CONFIG).data), frame_interval_s=1.0 / args.hz,
                  phase_s=tuple(args.phase_s), speed_mps=tuple(args.speed), truck_p=args.truck_p, test_fraction=0.0,
                  write_v1=False)
    frames = max(2, round(args.seconds * args.hz))
    return make_synthetic_dtld(root, args.drives, frames, args.seed, cfg, args.workers, progress=True)


def detector_settings(config: DetectorConfig) -> dict:
    """Return the detector's settings that change what it publishes (all but the files and the thread count)."""
    from dataclasses import asdict

    return {k: v for k, v in asdict(config).items() if k not in ("model", "state_model", "threads")}


def detect_drives(args: argparse.Namespace, ds, model: str, cache: Path, **detector: Any) -> dict[str, list[dict]]:
    """Run ``model`` on every frame once; ``{drive: [{"t", "truth", "dets": [[x1, y1, x2, y2, score, cls, label]]}]}``.

    Kept in ``cache`` (keyed by the model files' size and time and the detector's settings), so the filter can be
    re-scored without inference.
    """
    import hashlib

    from training.data.dtld import read_dtld_image

    config = DetectorConfig(model=model, imgsz=args.imgsz, threads=1, state_model=args.state_model, **detector)
    st = Path(model).stat()
    reader = Path(args.state_model).stat() if args.state_model else None
    settings = hashlib.sha1(json.dumps(detector_settings(config), sort_keys=True).encode()).hexdigest()[:8]
    key = cache / (f"dets_{Path(model).name}_{st.st_size}_{int(st.st_mtime)}"
                   + (f"_state_{reader.st_size}_{int(reader.st_mtime)}" if reader else "") + f"_{settings}.json")
    if key.is_file():
        return read_json(key)
    det = TrafficLightDetector(config)
    if not any(split_label(n)[1] for n in det.names.values()):
        raise SystemExit(f"signal_revision: {model} predicts {sorted(det.names.values())}, not a light's "
                         "state: pass a model trained with classes: relevance_state, or --state-model")
    out = {}
    for seq in tqdm(ds.sequences(), desc=f"detect ({Path(model).name})", unit="drive"):
        frames = sorted((f for f in ds.frames if f.key.rsplit("/", 1)[0] == seq), key=lambda f: f.time_stamp)
        rows = []
        for f in frames:
            bgr = read_dtld_image(ds.root / f.key)
            s = args.resize_width / bgr.shape[1]
            bgr = cv2.resize(bgr, (args.resize_width, round(bgr.shape[0] * s)), interpolation=cv2.INTER_AREA)
            rows.append({"t": f.time_stamp, "truth": f.signal_state(),
                         "dets": [[*d.xyxy, d.score, d.class_id, d.label] for d in det.predict(bgr)]})
        out[seq] = rows
    atomic_write_json(key, out)
    return out


def constructed_detections(ds, miss: float, misread: float, seed: int = 0) -> dict[str, list[dict]]:
    """Return the detections of a detector constructed from the ground truth: every light with a state, exact boxes.

    Each light is missed with probability ``miss`` and read as another state (uniformly) with ``misread``,
    independently per frame (seeded); relevance is always right. It separates what the revision does from
    what a trained model fails to read.
    """
    import numpy as np

    from kd_traffic_light.core.classes import STATES, class_id

    rng = np.random.default_rng(seed)
    out = {}
    for seq in ds.sequences():
        frames = sorted((f for f in ds.frames if f.key.rsplit("/", 1)[0] == seq), key=lambda f: f.time_stamp)
        rows = []
        for f in frames:
            dets = []
            for li in f.lights:
                state, rel = li.attributes["state"], li.attributes["relevance"]
                if li.box is None or state not in STATES or li.attributes["reflection"] == "reflected":
                    continue
                u = rng.random()
                if u < miss:
                    continue
                if u < miss + misread:
                    state = str(rng.choice([s for s in STATES if s != state]))
                cid = class_id("relevance_state", rel, state)
                dets.append([*map(float, li.box), 0.8, cid, f"{rel}_{state}"])
            rows.append({"t": f.time_stamp, "truth": f.signal_state(), "dets": dets})
        out[seq] = rows
    return out


def score_drives(detected: dict[str, list[dict]], cfg: TrackingConfig) -> list[dict]:
    """Per drive the stamps, the truth and the raw and revised signals (the revision run with ``cfg``)."""
    drives = []
    for seq, rows in detected.items():
        rev = SignalRevision(cfg)
        d = {"name": seq, "times": [], "truth": [], "raw": [], "revised": []}
        for row in rows:
            dets = [Detection(*r) for r in row["dets"]]
            _, revised = rev.update(dets, row["t"])
            d["times"].append(row["t"])
            d["truth"].append(row["truth"])
            d["raw"].append(frame_signal(dets).state)
            d["revised"].append(revised.state)
        drives.append(d)
    return drives


def tracker_cost_us(lights: int = 20, frames: int = 600, hz: float = 15.0) -> dict:
    """Median and p95 microseconds of one SignalRevision.update with ``lights`` moving lights (constructed)."""
    rev = SignalRevision(TrackingConfig())
    states = ["relevant_red", "relevant_green", "not_relevant_green", "not_relevant_red"]
    times = []
    for i in range(frames):
        dets = []
        for k in range(lights):
            cx, cy, h = 40 + 45 * (k % 10) + 3 * i % 7, 40 + 80 * (k // 10) + i % 3, 12.0 + k % 5
            dets.append(Detection(cx - h / 5, cy - h / 2, cx + h / 5, cy + h / 2, 0.8, 0, states[k % 4]))
        t0 = time.perf_counter()
        rev.update(dets, i / hz)
        times.append((time.perf_counter() - t0) * 1e6)
    times = times[20:]  # warm-up
    return {"lights": lights, "frames": len(times), "median_us": round(statistics.median(times), 1),
            "p95_us": round(sorted(times)[int(0.95 * len(times))], 1)}


def model_figures(drives: list[dict]) -> dict:
    """Pooled raw and revised metrics of one model's drives, with the figures the goals read."""
    raw = pool([drive_metrics(d["times"], d["truth"], d["raw"]) for d in drives])
    per_drive = [drive_metrics(d["times"], d["truth"], d["revised"]) for d in drives]
    revised = pool(per_drive)
    delays = [x for m in per_drive for x in m["delays"] if x["frames"] is not None]
    stop = [revised["delays"][s]["max_frames"] for s in ("red", "yellow", "red_yellow")
            if s in revised["delays"] and revised["delays"][s]["max_frames"] is not None]
    return {"raw": raw, "revised": revised,
            "spurious_ratio": (revised["spurious_per_minute"] / raw["spurious_per_minute"]
                               if raw["spurious_per_minute"] else None),
            "stop_delay_frames_max": max(stop) if stop else None,
            "green_delay_frames_max": (revised["delays"].get("green") or {}).get("max_frames"),
            "stop_delay_frames_median": statistics.median(
                [x["frames"] for x in delays if x["to"] in ("red", "yellow", "red_yellow")] or [None]),
            "green_delay_frames_median": statistics.median([x["frames"] for x in delays if x["to"] == "green"]
                                                           or [None])}


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    missing = [m for m in [*args.model, *([args.state_model] if args.state_model else [])] if not Path(m).exists()]
    if missing:
        print(f"signal_revision: model {missing[0]} does not exist (run `make demo` or pass --model)",
              file=sys.stderr)
        return 2
    t0 = time.time()
    settings = {k: getattr(args, k) for k in ("drives", "seconds", "hz", "phase_s", "speed", "truck_p", "seed",
                                              "resize_width")}
    from training.experiment.config import load_experiment

    settings["scene"] = load_experiment(DEMO_CONFIG).data.to_dict()["scene"]  # the demo's: a change there re-renders
    work = Path(args.work)
    if (work / "settings.json").is_file() and read_json(work / "settings.json") != json.loads(json.dumps(settings)):
        shutil.rmtree(work)  # other drives: nothing kept applies
    work.mkdir(parents=True, exist_ok=True)
    ds = None if (work / "dtld_done").is_file() else render_drives(args, work / "dtld")
    if ds is not None:
        (work / "dtld_done").touch()
        atomic_write_json(work / "settings.json", settings)
    else:
        ds = SynthDataset.load(work / "dtld")
    cfg = TrackingConfig()
    out = Path(args.out)
    detected = {}
    for model in args.model:
        name = Path(model).parent.parent.name if Path(model).parent.name == "weights" else Path(model).stem
        info = {"model": Path(model).name, **({"state_model": Path(args.state_model).name} if args.state_model else {})}
        detected[name] = (info, detect_drives(args, ds, model, work))
        if args.state_model:  # the node's rule for heads the frame cuts, off: what it costs and what it saves
            detected[f"{name}, state_edge_px 0"] = ({**info, "detector": {"state_edge_px": 0.0}},
                                                    detect_drives(args, ds, model, work, state_edge_px=0.0))
    for miss, misread in CONSTRUCTED:
        detected[f"constructed (miss {miss:.0%}, misread {misread:.0%})"] = (
            {"model": "ground truth with noise", "miss": miss, "misread": misread},
            constructed_detections(ds, miss, misread, args.seed))
    models, panels = {}, []
    for name, (info, dets) in detected.items():
        drives = score_drives(dets, cfg)
        models[name] = {**info, "tracking": "node defaults", **model_figures(drives)}
        if "detector" in info:  # a detector variant: scored with the node's tracking defaults only
            continue
        panels += [{**d, "name": f"{name}: {d['name']}"} for d in drives[:2]]
        for key, value in VARIANTS.items():
            models[f"{name}, {key} {value}"] = {**info, "tracking": {key: value},
                                                **model_figures(score_drives(dets, replace(cfg, **{key: value})))}
    png = plot_timelines(panels, out.with_suffix(".png"), max_drives=len(panels))
    result = {
        "models": models, "imgsz": args.imgsz, **settings, "phase_s": list(args.phase_s), "speed": list(args.speed),
        "detector": detector_settings(DetectorConfig(model="-", imgsz=args.imgsz)),
        "tracking": vars(cfg), "tracker_cost": tracker_cost_us(), "goals": GOALS, "timeline_png": png.name,
        "host": {"machine": platform.machine(), "python": platform.python_version()},
        "wall_s": round(time.time() - t0, 1),
    }
    atomic_write_json(out, result)
    for name, m in models.items():
        raw, rev = m["raw"], m["revised"]
        print(f"signal_revision: {name}: spurious changes/min raw {raw['spurious_per_minute']:.2f} -> revised "
              f"{rev['spurious_per_minute']:.2f} (ratio {m['spurious_ratio']}); accuracy {raw['accuracy']:.3f} -> "
              f"{rev['accuracy']:.3f}; red->green {raw['red_to_green']} -> {rev['red_to_green']}")
    print(f"signal_revision: tracker {result['tracker_cost']['median_us']} us/frame at 20 lights; {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
