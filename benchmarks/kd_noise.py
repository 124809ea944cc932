r"""What drives kd-gain's paired spread: evaluation noise beside the spread over seeds, on both scene sets.

Reads what ``kd_gain.py`` wrote (its JSON and experiment directories; nothing is trained): for every seed, the
held-out images are resampled with replacement (the same draw for ours and the baseline) and mAP50-95 recomputed
with ultralytics' ``ap_per_class`` (``training.eval_noise``). The bootstrap sd of one seed's difference is what
the finite held-out split alone contributes; the sd of the differences over seeds is what kd-gain saw. The
baseline's sd with only the data order or only the initialisation varied comes from kd_gain's spread study.

    python benchmarks/kd_noise.py --gain runs/bench/kd_gain.json --out runs/bench/kd_noise.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import _setup  # noqa: F401  (the repository on sys.path, ultralytics offline)
import numpy as np

from kd_traffic_light.core.atomic_io import atomic_write_json, read_json, read_yaml
from training.eval_noise import KEYS, image_stats, paired_bootstrap
from training.experiment import Experiment, resolve_experiment


def get_args_parser() -> argparse.ArgumentParser:
    """Build the flags: which kd-gain result, how many draws, where to write."""
    p = argparse.ArgumentParser(prog="kd_noise", description=__doc__.split("\n\n")[0])
    p.add_argument("--gain", default="runs/bench/kd_gain.json", help="kd_gain.py's JSON")
    p.add_argument("--draws", type=int, default=200, help="bootstrap draws per seed")
    p.add_argument("--out", default="runs/bench/kd_noise.json", help="JSON result file")
    return p


def cached_image_stats(weights: Path, data_yaml: Path, exp: Experiment) -> dict[str, list[np.ndarray]]:
    """Per-image matching of one run on the held-out split, computed once (cached next to the run)."""
    cache = weights.parent.parent / f"images_{exp.evaluate.split}_{exp.eval_imgsz()}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            return {k: np.split(z[k], np.cumsum(z[f"{k}_n"])[:-1]) for k in KEYS}
    stats = image_stats(weights, data_yaml, exp.evaluate.split, exp.eval_imgsz(), exp.evaluate.batch,
                        str(exp.evaluate.device))
    tmp = cache.with_name(cache.stem + ".tmp.npz")
    np.savez(tmp, **{k: np.concatenate(stats[k], 0) for k in KEYS},
             **{f"{k}_n": np.array([len(a) for a in stats[k]]) for k in KEYS})
    tmp.replace(cache)
    return stats


def scene_set_noise(exp_dir: Path, arm: str, seeds: list[str], draws: int) -> dict[str, Any]:
    """Bootstrap sd of ``arm - baseline`` for each seed of one scene set, and their root mean square."""
    exp = resolve_experiment(read_yaml(exp_dir / "kd_gain_experiment.yaml"), str(exp_dir / "kd_gain_experiment.yaml"))
    data_yaml = exp_dir / "data" / "yolo" / "data.yaml"

    def weights(method: str, seed: str) -> Path:
        pattern = f"*_{method}_seed{seed}"
        found = [p for p in (exp_dir / "runs").glob(pattern) if (p / "results.json").is_file()]
        if len(found) != 1:
            raise SystemExit(f"kd_noise: {exp_dir / 'runs'}: expected one finished run '{pattern}', got {len(found)}")
        return exp_dir / read_json(found[0] / "results.json")["weights"]

    per_seed = {}
    for i, s in enumerate(seeds, 1):
        print(f"kd_noise: {exp_dir.name}: seed {s} ({i}/{len(seeds)})", flush=True)
        per_seed[s] = paired_bootstrap(cached_image_stats(weights(arm, s), data_yaml, exp),
                                       cached_image_stats(weights("baseline", s), data_yaml, exp), draws, int(s))
    sds = [v["sd"] for v in per_seed.values()]
    return {"per_seed": per_seed, "sd": float(np.sqrt(np.mean(np.square(sds))))}


def main(argv: list[str] | None = None) -> int:
    """Bootstrap both scene sets of a kd-gain result; print the comparison last, write JSON."""
    args = get_args_parser().parse_args(argv)
    if args.draws < 2:
        raise SystemExit(f"kd_noise: --draws: expected an int >= 2, got {args.draws}")
    gain = read_json(args.gain)
    arm = gain["chosen"]["ours"]
    out: dict[str, Any] = {"benchmark": "kd-noise", "gain": str(args.gain), "arm": arm, "draws": args.draws}
    sets = [("tuning", gain)] + ([("second", gain["second_set"])] if "second_set" in gain else [])
    for name, fig in sets:
        noise = scene_set_noise(Path(fig["experiment_dir"]), arm, fig["D_ours"]["seeds"], args.draws)
        paired = fig["D_ours"]["sd"]
        out[name] = {"data_seed": fig["data_seed"], "paired_sd": paired, "eval_noise_sd": noise["sd"],
                     "eval_share_of_variance": noise["sd"] ** 2 / paired ** 2 if paired else None,
                     "per_seed": noise["per_seed"]}
    out["baseline_sd"] = (gain.get("spread") or {}).get("baseline_sd")
    atomic_write_json(Path(args.out), out)
    for name, _ in sets:
        r = out[name]
        print(f"{name} scenes: sd of ours - baseline over seeds {r['paired_sd']:.2f} pts; evaluation noise alone "
              f"{r['eval_noise_sd']:.2f} pts ({100 * r['eval_share_of_variance']:.0f} % of the variance)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
