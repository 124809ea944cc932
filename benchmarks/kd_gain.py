r"""kd-gain and kd-gap: our distillation against ultralytics' native mode and the plain baseline, paired seeds.

Every arm trains with the identical recipe over the same seeds through ``training.experiment``; candidates are
chosen on the val split only and the figures are held-out mAP50-95 points: kd-gain (ours - baseline, with its
95 % paired t interval) and kd-gap. Writes ``runs/bench/kd_gain.json``.

    python benchmarks/kd_gain.py                       # quick CPU profile (its time: docs/training.md)
    python benchmarks/kd_gain.py --profile full --dtld-root datasets/DTLD --device 0

Protocol, profiles, goals and the JSON's fields: docs/benchmarks.md, "kd-gain and kd-gap".
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _setup import REPO

QUICK_CONFIG = REPO / "training" / "configs" / "kd_gain_quick.yaml"

if TYPE_CHECKING:
    from training.experiment import Experiment


def get_args_parser() -> argparse.ArgumentParser:
    """Build the flags: which profile, where the data is, where to write."""
    p = argparse.ArgumentParser(prog="kd_gain", description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=("quick", "full"), default="quick", help="quick (CPU) or full (GPU)")
    p.add_argument("--quick", action="store_true", help="same as --profile quick (for benchmarks/run_all.py)")
    p.add_argument("--config", default=None, help="experiment file of the quick profile (default: kd_gain_quick.yaml)")
    p.add_argument("--dtld-root", default=None, help="DTLD base directory (full profile)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds of every student run (>= 3 for the goal)")
    p.add_argument("--device", default=None, help="training device (default: cpu for quick, 0 for full)")
    p.add_argument("--workers", type=int, default=None, help="dataloader workers")
    p.add_argument("--exp-dir", default=None, help="experiment directory (default: the config's out)")
    p.add_argument("--also", nargs="+", default=[], metavar="ARM",
                   help="arms to train on every seed of both scene sets besides the chosen ones (reported under "
                   "their own names; nothing is chosen among them)")
    p.add_argument("--finalists", type=int, default=1,
                   help="candidates of each family (ours_*, native_*) that the first seed's val score sends on to "
                   "every seed; the final choice is the best val mean over every seed (1: choose on the first seed)")
    p.add_argument("--launcher", choices=("ray", "local"), default="ray",
                   help="ray (default): independent runs in parallel, one per core (each run trains on one torch "
                   "thread, so two runs on 2 cores take about the time of one); local: one run after the other")
    p.add_argument("--second-data-seed", type=int, default=2,
                   help="data seed of the second scene set, on which the chosen arms are repeated and nothing is "
                   "chosen (the tuning set's is the config's data.seed)")
    p.add_argument("--no-spread", dest="spread", action="store_false",
                   help="skip the spread study (baseline with the initialisation and the data order varied apart)")
    p.add_argument("--reference-student", nargs="+", default=[], metavar="YAML",
                   help="model yamls whose cost (FLOPs, parameters, their head's) is recorded beside the arms' for "
                   "the paper's Table 1 (the integrated profile records the decoupled yolov5n.yaml)")
    p.add_argument("--out", default="runs/bench/kd_gain.json", help="JSON result file")
    return p


def profile_experiment(args: argparse.Namespace) -> dict[str, Any]:
    """Return the raw experiment mapping of the chosen profile (see the module docstring)."""
    from kd_traffic_light.core.atomic_io import read_yaml

    if args.profile == "quick":
        raw = read_yaml(args.config or QUICK_CONFIG)
        if args.seeds:
            raw["seeds"] = args.seeds
        if args.device:
            raw["device"] = args.device
        return raw
    if not args.dtld_root:
        raise SystemExit("kd_gain: --dtld-root is required with --profile full")
    study = read_yaml(REPO / "training" / "configs" / "dtld_source_study.yaml")
    quick = read_yaml(QUICK_CONFIG)
    device = args.device or "0"
    return {
        "out": "runs/bench/kd_gain_full",
        "data": {**study["data"], "root": args.dtld_root},
        "train": study["train"], "augment": study["augment"],
        "teachers": {"l": "yolov5l.yaml"}, "students": {"n": "yolov5n.yaml"},
        "methods": quick["methods"], "seeds": args.seeds or [0, 1, 2], "teacher_seeds": [0], "device": device,
        "workers": args.workers, "evaluate": {**study["evaluate"], "device": device},
    }


def machine() -> dict[str, Any]:
    """Describe the machine the comparison ran on (a seed reproduces a run on one machine only)."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def per_seed(rows: list[dict[str, Any]], method: str, key: str = "map50_95") -> dict[str, float]:
    """``{seed: points}`` of one method's student runs."""
    return {str(r["seed"]): 100.0 * r[key] for r in rows
            if r.get("role") == "student" and r.get("method") == method and r.get(key) is not None}


def _ranked(val: dict[str, dict[str, float]], prefix: str) -> list[str]:
    """Arms of a family (name prefix) by mean val value, best first; ties keep the declared order."""
    family = [m for m in val if m.startswith(prefix) and val[m]]
    return sorted(family, key=lambda m: -statistics.fmean(val[m].values()))


def choose(val: dict[str, dict[str, float]], prefix: str) -> str:
    """Return the arm of a family (name prefix) with the best mean val value; ties go to the first declared."""
    ranked = _ranked(val, prefix)
    if not ranked:
        raise ValueError(f"kd_gain: no '{prefix}*' arm in the experiment's methods")
    return ranked[0]


def choose_families(val: dict[str, dict[str, float]]) -> dict[str, str | None]:
    """``{"ours": arm, "native": arm or None}``: each family's best arm on val; no ``native_*`` arm gives None."""
    return {fam: choose(val, fam) if fam == "ours" or _ranked(val, fam) else None for fam in ("ours", "native")}


def finalists(val: dict[str, dict[str, float]], k: int) -> list[str]:
    """Return the best ``k`` arms of each family (``ours``, ``native``) by mean val value (ties: declared order)."""
    return [m for prefix in ("ours", "native") for m in _ranked(val, prefix)[:k]]


def figures(test: dict[str, dict[str, float]], val: dict[str, dict[str, float]], teacher: float,
            chosen: dict[str, str] | None = None) -> dict[str, Any]:
    """kd-gain and kd-gap from per-seed held-out points, arms chosen on val.

    Args:
        test: ``{arm: {seed: points}}`` on the held-out split (``baseline`` among the arms).
        val: The same on the val split (the screening seed's values decide, see ``main``).
        teacher: The teacher's held-out points.
        chosen: ``{"ours": arm, "native": arm}`` chosen at screening; default: the best mean val of each family.

    Returns:
        The JSON body: ``map50_95`` in the documented form, the paired intervals, kd-gap and the goals.
    """
    from training.stats import paired_interval

    if "baseline" not in test:
        raise ValueError("kd_gain: the experiment has no 'baseline' method")
    chosen = chosen or choose_families(val)
    ours_arm, native_arm = chosen["ours"], chosen.get("native")
    base = test["baseline"]
    d_ours = paired_interval(test[ours_arm], base)
    d_native = paired_interval(test[native_arm], base) if native_arm else None
    mean = {arm: statistics.fmean(v.values()) for arm, v in test.items() if v}
    gap_den = teacher - mean["baseline"]
    kd_gap = d_ours["mean"] / gap_den if gap_den > 0 and d_ours["mean"] is not None else None
    if d_native is None:  # an arm set without native_* (the integrated method): nothing to compare with
        vs_native = None
    else:
        dn = d_native["mean"] or 0.0
        vs_native = d_ours["mean"] is not None and (d_ours["mean"] >= 2 * dn if dn > 0 else d_ours["mean"] > 0)
    return {
        "map50_95": {"teacher": teacher, "baseline": base, "ours": test[ours_arm],
                     "native": test[native_arm] if native_arm else None},
        "chosen": {"ours": ours_arm, "native": native_arm},
        "arms": test, "val_map50_95": val, "mean_map50_95": mean,
        "D_ours": d_ours, "D_native": d_native,
        "D_arms": {arm: paired_interval(v, base) for arm, v in test.items() if arm != "baseline"},
        "kd_gap": kd_gap, "teacher_minus_baseline": gap_den,
        "goals": {
            "D_ours_ci_excludes_zero": bool(d_ours["excludes_zero"] and d_ours["mean"] > 0 and len(base) >= 3),
            "D_ours_vs_native": None if vs_native is None else bool(vs_native),
            "kd_gap_ge_0.4": kd_gap is not None and kd_gap >= 0.4,
        },
    }


def print_report(fig: dict[str, Any]) -> None:
    """Per-seed table, the intervals, kd-gain and kd-gap (last lines: the figures)."""
    from training.stats import format_interval as _interval

    arms = fig["arms"]
    seeds = sorted({s for v in arms.values() for s in v}, key=int)
    print(f"\n{'arm':<24}" + "".join(f"{'seed ' + s:>10}" for s in seeds)
          + f"{'mean':>9}{'val ' + seeds[0]:>10}{'val mean':>10}")
    for arm, vals in arms.items():
        tag = {fig["chosen"]["ours"]: " (ours)", fig["chosen"]["native"]: " (native)"}.get(arm, "")
        val = fig["val_map50_95"].get(arm) or {}
        first = f"{val[seeds[0]]:10.2f}" if seeds[0] in val else f"{'-':>10}"
        vmean = f"{statistics.fmean(val.values()):10.2f}" if len(val) > 1 else f"{'-':>10}"
        print(f"{arm + tag:<24}" + "".join(f"{vals.get(s, float('nan')):10.2f}" for s in seeds)
              + f"{fig['mean_map50_95'][arm]:9.2f}" + first + vmean)
    print(f"{'teacher':<24}{fig['map50_95']['teacher']:10.2f}")
    for arm, d in fig["D_arms"].items():
        print(f"  {arm} - baseline: {_interval(d)} pts")
    gap = "n/a (teacher not above baseline)" if fig["kd_gap"] is None else f"{fig['kd_gap']:.2f}"
    g = fig["goals"]
    native = ("no native arm" if fig["D_native"] is None else
              f"D_native ({fig['chosen']['native']}) {_interval(fig['D_native'])} pts")
    print(f"kd-gain: D_ours ({fig['chosen']['ours']}) {_interval(fig['D_ours'])} pts, {native}; goals: CI "
          f"excludes 0 {g['D_ours_ci_excludes_zero']}, D_ours >= 2 x D_native {g['D_ours_vs_native']}")
    print(f"kd-gap: {gap} (teacher - baseline {fig['teacher_minus_baseline']:.2f} pts; goal >= 0.4: "
          f"{g['kd_gap_ge_0.4']})")


def _val_points(exp: Experiment, exp_dir: Path, result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Return ``{method: {seed: val points}}`` of every student run in ``result`` (each evaluated once, cached)."""
    from dataclasses import replace

    from kd_traffic_light.core.atomic_io import read_json
    from training.experiment import evaluate_run

    imgsz = exp.eval_imgsz()
    ev = replace(exp.evaluate, split="val", latency_reps=0)
    records = [read_json(exp_dir / "runs" / r["name"] / "results.json") for r in result["runs"]
               if r["role"] == "student" and not r["method"].startswith("spread_")]  # weights: relative to exp_dir
    rows = [{**evaluate_run(rec, exp_dir, Path(result["data_yaml"]), ev, imgsz), "seed": rec["seed"],
             "role": rec["role"], "method": rec["method"]} for rec in records]
    return {m: v for m in exp.methods if (v := per_seed(rows, m))}


def screening_plan(exp: Experiment) -> tuple[set[str], dict[str, set[str]]]:
    """Return the runs of the screening stage and, per method, the runs it adds once chosen.

    Screening trains the baseline on every seed and each ``ours_*`` / ``native_*`` candidate on the first seed
    only (val split); the candidate of each family with the best val score then trains on the other seeds.
    """
    from training.experiment import plan_runs

    runs = plan_runs(exp)
    first = exp.seeds[0]
    screen = {r.name for r in runs if r.role == "teacher"
              or (r.role == "student" and (r.method == "baseline" or r.seed == first))}
    rest: dict[str, set[str]] = {}
    for r in runs:
        if r.role == "student" and r.name not in screen:
            rest.setdefault(r.method, set()).add(r.name)
    return screen, rest


SPREAD_INIT = 100  #: init seeds of the spread study: 100 (held while the order varies), 101, 102


def spread_methods(k: int = 3) -> dict[str, dict[str, Any]]:
    """Return the spread study's baseline arms: ``spread_init<I>`` trains the baseline with initial weights from seed I.

    ``spread_init100`` on order seeds ``0..k-1`` varies the data order alone; ``spread_init100..10k-1`` on order
    seed 0 vary the initialisation alone (``init.seed``, ``training.distill.config``).
    """
    return {f"spread_init{SPREAD_INIT + i}": {"init": {"seed": SPREAD_INIT + i}} for i in range(k)}


def spread_runs(exp: Experiment, k: int = 3) -> set[str]:
    """Names of the spread study's runs (see ``spread_methods``) in ``exp``'s grid."""
    from training.experiment import plan_runs

    orders = {exp.seeds[i] for i in range(min(k, len(exp.seeds)))}
    first = exp.seeds[0]
    return {r.name for r in plan_runs(exp) if r.method.startswith("spread_init")
            and ((r.method == f"spread_init{SPREAD_INIT}" and r.seed in orders) or r.seed == first)}


def spread_figures(test: dict[str, dict[str, float]], d_ours: dict[str, Any]) -> dict[str, Any]:
    """Return the baseline's standard deviation (held-out points) with only the order, only the init, or both varied."""
    fixed_init = test.get(f"spread_init{SPREAD_INIT}", {})
    first = min(fixed_init, key=int) if fixed_init else "0"
    fixed_order = {m: v[first] for m, v in test.items() if m.startswith("spread_init") and first in v}

    def sd(values: list[float]) -> float | None:
        return statistics.stdev(values) if len(values) > 1 else None

    return {"baseline_sd": {"order_only": sd(list(fixed_init.values())), "init_only": sd(list(fixed_order.values())),
                            "both": sd(list(test["baseline"].values()))},
            "order_only": fixed_init, "init_only": fixed_order, "paired_sd_ours": d_ours.get("sd")}


def second_experiment(raw: dict[str, Any], exp_dir: Path, data_seed: int, chosen: dict[str, str],
                      also: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """Return the second scene set: the same experiment with another data seed, the chosen arms and ``also``."""
    import copy

    raw2 = copy.deepcopy(raw)
    raw2["data"] = {**raw2["data"], "seed": data_seed}
    arms = ("baseline", chosen["ours"], chosen.get("native"), *also)
    raw2["methods"] = {m: raw["methods"][m] for m in dict.fromkeys(arms) if m}
    raw2["out"] = str(exp_dir.parent / f"{exp_dir.name}_second")
    return raw2


#: The integrated-KD paper's Table 1 columns of a model (training/evaluate.py ``model_cost``).
COST_KEYS = ("gflops", "head_gflops", "params_m", "head_params_m")


def arm_costs(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """``{arm: cost}`` from the first evaluated run of each method, and the teacher's (``COST_KEYS``)."""
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        key = "teacher" if r.get("role") == "teacher" else r.get("method")
        if key and key not in out and all(r.get(k) is not None for k in COST_KEYS):
            out[key] = {k: float(r[k]) for k in COST_KEYS}
    return out


def reference_costs(yamls: list[str], data_yaml: Path, imgsz: int) -> dict[str, dict[str, float]]:
    """``{yaml stem: cost}`` of untrained models built from ``yamls`` with the data's classes (``COST_KEYS``)."""
    if not yamls:
        return {}
    from ultralytics.nn.tasks import DetectionModel

    import training.distill.heads  # noqa: F401  (registers the coupled head for its yamls)
    from kd_traffic_light.core.atomic_io import read_yaml
    from training.evaluate import model_cost

    nc = len(read_yaml(data_yaml)["names"])
    out = {}
    for y in yamls:
        cost = model_cost(DetectionModel(y, nc=nc, verbose=False), imgsz)
        out[Path(y).stem] = {k: float(cost[k]) for k in COST_KEYS}
    return out


#: The light states whose recall a relevance_state run reports (training/state_metrics.py).
STATE_KEYS = ("red", "yellow", "red_yellow", "green", "off")


def _state_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean over ``runs`` of state accuracy and recall per state (percent), and their summed red->green counts."""

    def mean(key: str) -> float | None:
        vals = [r[key] for r in runs if r.get(key) is not None]
        return round(100.0 * statistics.fmean(vals), 2) if vals else None

    return {"seeds": len(runs), "state_accuracy": mean("state_accuracy"),
            "recall": {s: mean(f"{s}_recall") for s in STATE_KEYS},
            "red_to_green": sum(int(r.get("red_to_green") or 0) for r in runs),
            "red_yellow_to_green": sum(int(r.get("red_yellow_to_green") or 0) for r in runs)}


def state_figures(rows: list[dict[str, Any]], methods: list[str]) -> dict[str, Any] | None:
    """Per arm and for the teacher, :func:`_state_summary` of its runs; None when no run carries state metrics.

    None for a ``relevance`` model. The rare states (yellow, red_yellow, off) are reported apart from the mAP the
    arms are chosen on, as the protocol asks.
    """
    rows = [r for r in rows if r.get("state_accuracy") is not None]
    groups = {m: [r for r in rows if r.get("method") == m] for m in methods}
    groups["teacher"] = [r for r in rows if r.get("role") == "teacher"]
    return {name: _state_summary(runs) for name, runs in groups.items() if runs} or None


def run_set(exp: Experiment, exp_dir: Path, args: argparse.Namespace, only: set[str]) -> dict[str, Any]:
    """Train (or find) the runs ``only`` of one scene set; return run_experiment's result."""
    from training.experiment import run_experiment

    return run_experiment(exp, exp_dir, workers=args.workers, only=only, launcher=args.launcher)


def tuning_set(exp: Experiment, exp_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Screen the candidates on val, train the finalists on every seed, choose; return the tuning set's JSON body."""
    screen, rest = screening_plan(exp)
    spread = spread_runs(exp) if args.spread else set()
    screen = {n for n in screen if "_spread_init" not in n} | spread  # the spread study needs no choice: fills cores
    print(f"kd_gain: [1/3] tuning scenes (data seed {exp.data.seed}): screening {len(screen)} runs (baseline on "
          f"every seed, candidates on seed {exp.seeds[0]}" + (f", {len(spread)} spread-study runs)" if spread else ")"),
          flush=True)
    screen_val = _val_points(exp, exp_dir, run_set(exp, exp_dir, args, screen))
    first = str(exp.seeds[0])  # stage 1: every candidate compared on the screening seed
    screen_val = {m: {first: v[first]} for m, v in screen_val.items() if first in v}
    final = finalists(screen_val, args.finalists)
    print(f"kd_gain: [2/3] finalists on val (seed {first}): {', '.join(final)}; training them on every seed",
          flush=True)
    result = run_set(exp, exp_dir, args, screen | {n for m in set(final) | set(args.also) for n in rest.get(m, ())})
    val = _val_points(exp, exp_dir, result)
    picked = choose_families({m: val[m] for m in final if m in val})
    print(f"kd_gain: chosen on the val mean over every seed: ours = {picked['ours']}, native = "
          f"{picked['native'] or 'none (no native_* arm)'}", flush=True)
    test = {m: v for m in exp.methods if (v := per_seed(result["runs"], m))}
    teachers = [100.0 * r["map50_95"] for r in result["runs"] if r["role"] == "teacher"]
    fig = figures({m: v for m, v in test.items() if not m.startswith("spread_")}, val, statistics.fmean(teachers),
                  picked)
    out = {"data_seed": exp.data.seed, "experiment_dir": str(exp_dir), "finalists": final, **fig,
           "train_seconds": {r["name"]: r.get("train_s") for r in result["runs"]},
           "cost": {**arm_costs(result["runs"]),
                    **reference_costs(args.reference_student, Path(result["data_yaml"]), exp.eval_imgsz())}}
    if (state := state_figures(result["runs"], list(exp.methods))) is not None:
        out["state"] = state
    if args.spread:
        out["spread"] = spread_figures(test, fig["D_ours"])
    return out


def second_set(raw: dict[str, Any], exp_dir: Path, args: argparse.Namespace, chosen: dict[str, str],
               source: str) -> dict[str, Any]:
    """Train the baseline and the chosen arms on the second scene set; return its JSON body (nothing chosen)."""
    from kd_traffic_light.core.atomic_io import atomic_write_yaml
    from training.experiment import plan_runs, resolve_experiment

    raw2 = second_experiment(raw, exp_dir, args.second_data_seed, chosen, args.also)
    exp2_dir = Path(raw2["out"])
    exp2_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_yaml(exp2_dir / "kd_gain_experiment.yaml", raw2)
    exp2 = resolve_experiment(raw2, f"{source} (second scene set)")
    print(f"kd_gain: [3/3] second scene set (data seed {args.second_data_seed}, nothing chosen on it): "
          f"{', '.join(exp2.methods)} on seeds {', '.join(map(str, exp2.seeds))}", flush=True)
    result = run_set(exp2, exp2_dir, args, {r.name for r in plan_runs(exp2)})
    test = {m: v for m in exp2.methods if (v := per_seed(result["runs"], m))}
    teacher = statistics.fmean(100.0 * r["map50_95"] for r in result["runs"] if r["role"] == "teacher")
    out = {"data_seed": args.second_data_seed, "experiment_dir": str(exp2_dir), **figures(test, {}, teacher, chosen),
           "train_seconds": {r["name"]: r.get("train_s") for r in result["runs"]}}
    if (state := state_figures(result["runs"], list(exp2.methods))) is not None:
        out["state"] = state
    return out


def main(argv: list[str] | None = None) -> int:
    """Screen the candidates on val, run the chosen arms on every seed, repeat them on the second scene set."""
    args = get_args_parser().parse_args(argv)
    if args.finalists < 1:
        raise SystemExit(f"kd_gain: --finalists: expected an int >= 1, got {args.finalists}")
    if args.quick:
        args.profile = "quick"
    from kd_traffic_light.core.atomic_io import atomic_write_json, atomic_write_yaml
    from training.experiment import resolve_experiment

    raw = profile_experiment(args)
    if args.spread:
        raw["methods"] = {**raw["methods"], **spread_methods()}
    exp_dir = Path(args.exp_dir or raw.get("out") or f"runs/bench/kd_gain_{args.profile}")
    exp_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_yaml(exp_dir / "kd_gain_experiment.yaml", raw)
    source = str(args.config or QUICK_CONFIG) if args.profile == "quick" else "kd_gain:full"
    exp = resolve_experiment(raw, source)
    if len(exp.seeds) < 5:
        print(f"kd_gain: {len(exp.seeds)} seeds: the interval goal needs at least 5", flush=True)
    unknown = set(args.also) - set(exp.methods)
    if unknown:
        raise SystemExit(f"kd_gain: --also: unknown arms {sorted(unknown)} (methods: {', '.join(exp.methods)})")
    if args.second_data_seed == exp.data.seed:
        raise SystemExit(f"kd_gain: --second-data-seed: expected a data seed other than the tuning set's "
                         f"({exp.data.seed}), got {args.second_data_seed}")
    t0 = time.perf_counter()
    out = {"benchmark": "kd-gain", "profile": args.profile, "split": exp.evaluate.split, "seeds": list(exp.seeds),
           "launcher": args.launcher, "machine": machine(), **tuning_set(exp, exp_dir, args)}
    if exp.data.source == "synth":
        # the tuning set's figures are kept before the second set trains (an hour on 2 cores): nothing lost if it
        # is stopped; "second_set": "pending" says they are not the benchmark's result yet
        atomic_write_json(Path(args.out), {**out, "second_set": "pending",
                                           "seconds": round(time.perf_counter() - t0, 1)})
        out["second_set"] = second_set(raw, exp_dir, args, out["chosen"], source)
        out["goals_both_sets"] = {k: None if v is None else bool(v and out["second_set"]["goals"][k])
                                  for k, v in out["goals"].items()}
    else:  # the real DTLD is one scene set: no second one to draw (docs/benchmarks.md)
        print(f"kd_gain: data source '{exp.data.source}' has one scene set: no second set, no goal called met",
              flush=True)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write_json(Path(args.out), out)
    print("\ntuning scenes (arms chosen here):")
    print_report(out)
    if isinstance(out.get("second_set"), dict):
        print(f"\nsecond scene set (data seed {args.second_data_seed}; nothing chosen on it):")
        print_report(out["second_set"])
    if "spread" in out:
        sd = {k: "n/a" if v is None else f"{v:.2f}" for k, v in out["spread"]["baseline_sd"].items()}
        print(f"spread (baseline, tuning scenes): sd with only the data order varied {sd['order_only']}, only the "
              f"initialisation {sd['init_only']}, both (the seeds) {sd['both']} pts; evaluation noise: kd_noise.py")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
