"""Dataset generation: sequences rendered and written as DTLD TIFFs, then the label files and ground truth."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from kd_traffic_light.core.atomic_io import atomic_write_bytes, atomic_write_text
from training.data.dtld.images import IMAGE_HEIGHT, IMAGE_WIDTH
from training.data.dtld.yolo import clip_box
from training.data.synth.labels import _attributes, write_labels
from training.data.synth.model import PRESETS, SynthConfig, SynthDataset, SynthFrame, SynthLight
from training.data.synth.render import render_frame
from training.data.synth.scene import LightSpec, _sample_scene

CITIES = ("Berlin", "Bochum", "Bremen", "Dortmund", "Duesseldorf", "Essen", "Frankfurt", "Fulda",
          "Hannover", "Kassel", "Koeln")
VEHICLE = "DE_BBBR667"


def _sequence_meta(rng: np.random.Generator, index: int) -> tuple[str, str, dt.datetime]:
    city = CITIES[index % len(CITIES)]
    route = f"{city}{1 + (index // len(CITIES)) % 5}"
    start = dt.datetime(2015, 4, 17, 8, 0, 0, tzinfo=dt.UTC) + dt.timedelta(
        days=int(rng.integers(0, 30)), seconds=int(rng.integers(0, 10 * 3600)))
    return city, route, start


def _write_tiff(path: Path, raw: np.ndarray, key: str) -> None:
    """Write the raw 12-bit mosaic as an uncompressed 16-bit TIFF, as DTLD stores it."""
    import cv2

    ok, buf = cv2.imencode(".tiff", raw, [cv2.IMWRITE_TIFF_COMPRESSION, 1])
    if not ok:
        raise RuntimeError(f"{key}: TIFF encoding failed")
    atomic_write_bytes(path, buf.tobytes())


def _frame_lights(drawn: list[tuple[LightSpec, tuple[int, int, int, int], str]], uid: int, width: int,
                  height: int, frame: int, seen: bool) -> list[SynthLight]:
    """Build the ground truth of the lights drawn in frame ``frame``; unique ids count up from ``uid``.

    ``seen``: the drawn state is what the frame shows (``state_label`` "seen"); the signal's is kept as ``phase``.
    """
    lights = []
    for spec, box, state in drawn:
        attrs = _attributes(spec, state, box, width, height)
        lights.append(SynthLight(*box, cls=0 if spec.relevant else 1, box=clip_box(*box, width, height),
                                 attributes=attrs, unique_id=uid, track_id=f"TrafficLight_{spec.track}",
                                 in_v1=not spec.reflected, phase=spec.states[frame] if seen else None))
        uid += 1
    return lights


def generate_sequence(root: Path, index: int, n_frames: int, seed: int, cfg: SynthConfig, split: str,
                      uid_start: int, width: int = IMAGE_WIDTH, height: int = IMAGE_HEIGHT) -> list[SynthFrame]:
    """Render and write one drive sequence (``n_frames`` consecutive frames); returns its ground truth."""
    rng = np.random.default_rng([seed, index])
    city, route, start = _sequence_meta(rng, index)
    lamp_rng = np.random.default_rng([seed, index, 7]) if cfg.lamps == "camera" else None  # own stream
    scene = _sample_scene(rng, cfg, n_frames, lamp_rng)
    seq_dir = f"{city}/{route}/{start:%Y-%m-%d_%H-%M-%S}"
    lon, lat = 6.5 + rng.uniform(0, 7), 48.0 + rng.uniform(0, 5)
    frames, uid = [], uid_start
    t0 = start + dt.timedelta(seconds=float(rng.uniform(2, 8)))
    for f in range(n_frames):
        t = t0 + dt.timedelta(microseconds=int(round(f * cfg.frame_interval_s * 1e6)))
        name = f"{VEHICLE}_{t:%Y-%m-%d_%H-%M-%S}-{t.microsecond:06d}_k0.tiff"
        key = f"{seq_dir}/{name}"
        z_ego = f * cfg.frame_interval_s * scene["speed"]
        raw, drawn = render_frame(scene, z_ego, f, rng, width, height)
        _write_tiff(root / key, raw, key)
        lights = _frame_lights(drawn, uid, width, height, f, scene["seen_states"])
        uid += len(lights)
        frames.append(SynthFrame(key, split, round(t.timestamp(), 6), lights, scene["dusk"],
                                 round(scene["speed"], 4), 0.0, round(lon, 6),
                                 round(lat + z_ego * 9e-6, 6)))
    return frames


def _frame_doc(frame: SynthFrame) -> dict:
    """Return a frame's ground truth as JSON, a light's ``phase`` only where set (files as before the field)."""
    doc = asdict(frame)
    for light in doc["lights"]:
        if light["phase"] is None:
            del light["phase"]
    return doc


def _sequence_job(job: tuple) -> list[SynthFrame]:
    return generate_sequence(*job)


def _run_jobs(jobs: list[tuple], workers: int, progress: bool) -> list[list[SynthFrame]]:
    """Run the sequence jobs in order (in a spawn pool of ``workers`` processes if > 1)."""
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc="synth", unit="seq", disable=not progress)
    results = []
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            for res in pool.imap(_sequence_job, jobs):
                results.append(res)
                bar.update()
    else:
        for job in jobs:
            results.append(_sequence_job(job))
            bar.update()
    bar.close()
    return results


def make_synthetic_dtld(root: str | os.PathLike, n_sequences: int = 4, frames_per_sequence: int = 3,
                        seed: int = 0, config: SynthConfig | str = "demo", workers: int = 1,
                        progress: bool = False) -> SynthDataset:
    """Write a synthetic DTLD tree under ``root`` and return its ground truth.

    Args:
        root: output DTLD base directory.
        n_sequences: number of drive sequences (each its own City/Route/Sequence folder).
        frames_per_sequence: consecutive frames per sequence.
        seed: everything is a pure function of it.
        config: a :class:`SynthConfig` or a preset name (``demo``, ``hard``).
        workers: processes rendering sequences in parallel.
        progress: show a tqdm bar.

    Returns:
        The :class:`SynthDataset` (root, v2/v1 label files, per-frame ground truth).
    """
    cfg = PRESETS[config] if isinstance(config, str) else config
    if n_sequences < 1 or frames_per_sequence < 1:
        raise ValueError(f"n_sequences={n_sequences}, frames_per_sequence={frames_per_sequence}: expected >= 1")
    root = Path(root)
    rng = np.random.default_rng([seed, 10**6])
    n_test = int(round(cfg.test_fraction * n_sequences)) if n_sequences > 1 else 0
    test_idx = set(rng.choice(n_sequences, size=n_test, replace=False).tolist()) if n_test else set()
    jobs = [(root, i, frames_per_sequence, seed, cfg, "test" if i in test_idx else "train",
             1 + i * 10_000) for i in range(n_sequences)]
    frames = [f for seq in _run_jobs(jobs, workers, progress) for f in seq]
    v2, v1 = write_labels(root, frames, cfg.write_v1)
    config_doc = asdict(cfg)
    for key, default in (("lamps", "flat"), ("phase_s", (10.0, 40.0)), ("truck_p", 0.0),
                         ("max_light_overlap", 1.0), ("state_label", "phase"), ("state_shares", "dtld")):
        if config_doc[key] == default:  # ground truth byte-identical to the files written before the field
            del config_doc[key]
    atomic_write_text(root / "synth_ground_truth.json", json.dumps(
        {"seed": seed, "config": config_doc, "frames": [_frame_doc(f) for f in frames]}, indent=1) + "\n")
    return SynthDataset(root, v2, v1, frames)


def make_synthetic_yolo(workdir: str | os.PathLike, n_sequences: int = 4, frames_per_sequence: int = 3,
                        seed: int = 0, config: SynthConfig | str = "demo", val_images: int = 0,
                        resize_width: int | None = None, workers: int = 1,
                        ) -> tuple[SynthDataset, Path]:
    """Synthetic DTLD tree in ``workdir/dtld`` converted to YOLO in ``workdir/yolo``, in one call.

    Train = DTLD_train.json (minus ``val_images`` drawn by sequence), test = DTLD_test.json.

    Returns:
        (the :class:`SynthDataset`, path of ``data.yaml``).
    """
    from training.data.dtld import ConvertOptions, convert_dtld

    workdir = Path(workdir)
    ds = make_synthetic_dtld(workdir / "dtld", n_sequences, frames_per_sequence, seed, config, workers)
    opts = ConvertOptions(train=[ds.v2["train"]], test=[ds.v2["test"]] if any(
        f.split == "test" for f in ds.frames) else [], val_images=val_images, seed=seed,
        resize_width=resize_width)
    convert_dtld(ds.root, workdir / "yolo", opts, workers=workers, progress=False)
    return ds, workdir / "yolo" / "data.yaml"
