"""Render the measured-figure tables of README.md and docs/*.md from the result files in docs/results/.

Every measured figure has one owner: the JSON its benchmark wrote, kept in ``docs/results/``. A table in a
Markdown file sits between ``<!-- BEGIN rendered: NAME -->`` and ``<!-- END rendered: NAME -->`` and is
written by the function ``NAME`` of :data:`TABLES`; nobody edits it by hand.

    python benchmarks/tables.py           # rewrite every rendered table
    python benchmarks/tables.py --check   # exit 1 naming each stale table (the test suite runs this)
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"
DOCS = ("README.md", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md")))
BLOCK = re.compile(r"(<!-- BEGIN rendered: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- END rendered: (?P=name) -->)",
                   re.S)
KD_GAIN, KD_NOISE, KD_REPLICATION = "kd_gain_quick.json", "kd_noise_quick.json", "kd_gain_replication.json"
NODE = "node_latency.json"  # the full profile with the shipped Fast DDS profile
# the same figures with the relevance_state classes (10): kd-gain's state profile, the node and kd-step
KD_GAIN_STATE, NODE_STATE, KD_STEP_STATE = "kd_gain_state_quick.json", "node_latency_state.json", "kd_step_state.json"
STATE_SCHEME = "state_scheme.json"
KD_GAIN_INTEGRATED = "kd_gain_integrated_quick.json"  # coupled-head student, integrated KD, lam chosen on val
# the first invocation of that profile: lam alone at weight 1, every lam on every seed (--finalists 3)
KD_GAIN_INTEGRATED_WEIGHT1 = "kd_gain_integrated_quick_weight1.json"
KD_GAIN_YOLO26 = "kd_gain_yolo26_quick.json"  # the YOLO26 family: YOLO26n from YOLO26s, relevance_state scenes
KD_STEP_YOLO26 = "kd_step_yolo26.json"
KD_GAIN_YOLO11 = "kd_gain_yolo11_quick.json"  # the YOLO11 family: YOLO11n from YOLO11s, relevance_state scenes
SIGNAL = "signal_revision.json"
NODE_QUICK, NODE_WITHOUT_TCP = "node_latency_quick.json", "node_latency_quick_profile_without_tcp.json"


def result(name: str) -> dict[str, Any] | None:
    """Read ``docs/results/<name>`` (None when it does not exist)."""
    path = RESULTS / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def interval(d: dict[str, Any] | None) -> str:
    """``+5.57 [-1.89, +13.03]`` for a paired-interval record."""
    if not d or d.get("mean") is None:
        return "n/a"
    ci = d.get("ci95")
    return f"{d['mean']:+.2f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else " (one seed)")


def held(flag: bool | None) -> str:
    return "held" if flag else "**not held**"


def _ratio(fig: dict[str, Any]) -> str:
    native = fig["D_native"]["mean"]
    return f"{fig['D_ours']['mean'] / native:.1f}" if native and native > 0 else "n/a (native <= 0)"


def _second(fig: dict[str, Any]) -> dict[str, Any]:
    """Return a kd-gain result's second scene set; {} when there is none or it is ``"pending"`` (training)."""
    second = fig.get("second_set")
    return second if isinstance(second, dict) else {}


def kd_sets(name: str = KD_GAIN, replication: str | None = KD_REPLICATION) -> list[tuple[str, str, dict[str, Any]]]:
    """``(label, file, figures)`` of each kd-gain scene set: the benchmark's two, then the earlier replication."""
    sets = []
    gain = result(name)
    if gain is not None:
        sets.append((f"tuning scenes (data seed {gain['data_seed']}; arms chosen here)", name, gain))
        if _second(gain):
            second = {**gain["second_set"], "seeds": gain["seeds"]}
            sets.append((f"second scenes (data seed {second['data_seed']}; nothing chosen)", name, second))
    replication = result(replication) if replication else None
    if replication is not None:
        sets.append(("earlier 3-seed protocol, a reviewer's replication (other data seed)", KD_REPLICATION,
                     replication))
    return sets


# ------------------------------------------------------------------------------------------------ tables
def kd_gain_summary(sets: list[tuple[str, str, dict[str, Any]]] | None = None) -> str:
    """Render the kd-gain figures of each scene set, with which goal held where."""
    rows = []
    for label, _, fig in kd_sets() if sets is None else sets:
        g = fig["goals"]
        rows.append([label, ", ".join(str(s) for s in fig["seeds"]), interval(fig["D_ours"]),
                     held(g["D_ours_ci_excludes_zero"]), interval(fig["D_native"]), _ratio(fig),
                     held(g["D_ours_vs_native"]), f"{fig['kd_gap']:.2f}", held(g["kd_gap_ge_0.4"])])
    header = ["scene set", "student seeds", "D_ours, 95 % CI", "CI excludes 0", "D_native", "D_ours / D_native",
              ">= 2", "kd-gap", ">= 0.4"]
    return md_table(header, rows)


def kd_gain_arms(name: str = KD_GAIN, replication: str | None = KD_REPLICATION) -> str:
    """Render every arm's per-seed held-out mAP50-95 on each scene set (val means where recorded)."""
    out = []
    for label, file, fig in kd_sets(name, replication):
        seeds = [str(s) for s in fig["seeds"]]
        val = fig.get("val_map50_95", {})
        rows = []
        for arm, by_seed in fig["arms"].items():
            mark = " (chosen)" if arm in fig["chosen"].values() else ""
            mean = fig["mean_map50_95"][arm]
            v = val.get(arm)
            rows.append([f"{arm}{mark}", *[f"{by_seed[s]:.2f}" if s in by_seed else "" for s in seeds],
                         f"{mean:.2f}" if len(by_seed) == len(seeds) else "",
                         f"{statistics.fmean(v.values()):.2f}" if v else "-",
                         "" if arm == "baseline" else interval(fig["D_arms"].get(arm))])
        rows.append(["teacher", f"{fig['map50_95']['teacher']:.2f}", *[""] * (len(seeds) + 2)])
        out.append(f"{label}, `docs/results/{file}`:\n\n" + md_table(
            ["arm", *[f"seed {s}" for s in seeds], "mean", "val mean", "vs baseline, 95 % CI"], rows))
    gain = result(name)
    if gain is not None and _second(gain):
        core_s = sum(v or 0.0 for fig in (gain, gain["second_set"]) for v in fig["train_seconds"].values())
        cores = (gain.get("machine") or {}).get("cores") or 1
        out.append(f"Training time of `{name}`'s runs (both teachers included): {core_s / 60:.0f} core-minutes, "
                   f"{core_s / 60 / cores:.0f} min on its {cores} cores two runs at a time, evaluation aside; the "
                   f"invocation that wrote it took {gain['seconds'] / 60:.0f} min (runs an earlier invocation had "
                   "finished are found, not trained again).\n")
    return "\n".join(out)


def kd_gain_spread() -> str:
    """Render what drives the paired spread: seeds, evaluation noise, initialisation and data order apart."""
    gain, noise = result(KD_GAIN), result(KD_NOISE)
    if gain is None or noise is None:
        return "no result file (`benchmarks/kd_gain.py`, then `benchmarks/kd_noise.py`)\n"

    def pts(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    rows = [[f"{name} scenes: ours - baseline", pts(noise[name]["paired_sd"]), pts(noise[name]["eval_noise_sd"]),
             f"{100 * noise[name]['eval_share_of_variance']:.0f} %"] for name in ("tuning", "second") if name in noise]
    spread = gain.get("spread") or {}
    sd = spread.get("baseline_sd") or {}
    orders = ", ".join(sorted(spread.get("order_only") or {}, key=int))
    inits = ", ".join(sorted(m.removeprefix("spread_init") for m in spread.get("init_only") or {}))
    rows += [["tuning scenes: baseline, initialisation and data order both varied (the seeds)", pts(sd.get("both")),
              "", ""],
             [f"tuning scenes: baseline, data order varied alone (order seeds {orders}, one init seed)",
              pts(sd.get("order_only")), "", ""],
             [f"tuning scenes: baseline, initialisation varied alone (init seeds {inits}, one order seed)",
              pts(sd.get("init_only")), "", ""]]
    return md_table(["what varies", "sd over runs (pts)", "evaluation noise alone (pts)", "its share of the variance"],
                    rows)


def kd_terms() -> str:
    """Render the gradient each loss component sends into the student (benchmarks/kd_terms.py)."""
    fig = result("kd_terms_quick.json")
    if fig is None:
        return "No result file (`docs/results/kd_terms_quick.json`).\n"
    rows = fig["rows"]
    ref = rows["cls_loss"]["student"]
    body = [[name, f"{r['value']:.3g}", f"{r['student']:.4g}", f"{r['cls_branch']:.3g}", f"{r['box_branch']:.3g}",
             f"{r['student'] / ref:.2f}"] for name, r in rows.items()]
    lad = fig["lad"]
    note = (f"\nLAD adds no loss: positives per batch {lad['stock_pos']:.0f} -> {lad['lad_pos']:.0f}, target-score "
            f"sum {lad['stock_tss']:.2f} -> {lad['lad_tss']:.0f} ({fig['batches']} batches at {fig['imgsz']} px).\n")
    return md_table(["loss column", "value", "gradient norm, whole student", "class branch", "box branch",
                     "share of the class loss'"], body) + note


def node_figures(name: str = NODE) -> str:
    """Render the node figures of benchmarks/node_latency.py against their goals."""
    fig = result(name)
    if fig is None:
        return f"No result file (`docs/results/{name}`).\n"
    f, c, start = fig["figures"], fig["context"], fig["node-start"]
    goals = {"node-overhead": (f["node-overhead"] <= 1.10, "<= 1.10"),
             "node-throughput": (f["node-throughput"] >= 0.90, ">= 0.90"),
             "node-bounded": (f["node-bounded"] <= 1.5, "<= 1.5")}
    rows = [[k, goal, f"{f[k]:.3f}", "met" if ok else "**not met**"] for k, (ok, goal) in goals.items()]
    rows.append(["node-start, ONNX / .pt", "report",
                 f"{start['onnx']['first_detection_s_median']:.2f} s / {start['pt']['first_detection_s_median']:.2f} s",
                 ""])
    rows.append(["student-vs-teacher frames/s", "report (FLOPs ratio "
                 f"{c['flops_ratio_teacher_over_student']:.1f})", f"{f['student-vs-teacher']:.1f}", ""])
    size = fig["runtime-size"]
    rows.append(["runtime-size, .venv-runtime / .venv", "report",
                 f"{size['runtime_venv_mb']:.0f} / {size['full_venv_mb']:.0f} MiB", ""])
    setting = (f"{fig['profile']} profile, {fig['frame']}, imgsz {fig['run']['imgsz']}, threads {fig['threads']}, "
               f"fresh_wait {fig['fresh_wait']}, {fig['cpus']} cores, load {fig['load_avg'][0]:.2f}")
    if fig.get("classes", "relevance") != "relevance":
        setting += f", {fig['classes']} classes"
    setting += f", tracking {fig.get('tracking', 'off (measured before the node tracked)')}"
    return md_table(["figure", "goal", "measured", ""], rows) + f"\n{setting}; `docs/results/{name}`.\n"


def scheme_scenes(fig: dict) -> str:
    """Name the scenes of a state-scheme result: its config's, with the scene keys it set (none before any)."""
    keys = ", ".join(f"`{k}` {v}" for k, v in (fig.get("scene") or {}).items())
    return f"`{fig['config']}`'s scenes" + (f" with {keys}" if keys else "")


def state_scheme() -> str:
    """Render what folding the state into the classes costs the detection of lights (benchmarks/state_scheme.py)."""
    fig = result(STATE_SCHEME)
    if fig is None:
        return f"No result file (`docs/results/{STATE_SCHEME}`).\n"
    seeds = [str(s) for s in fig["seeds"]]
    labels = {"map50_95": "mAP50-95 of a light", "map50": "mAP50 of a light",
              "recall": f"recall at conf {fig['conf']}", "precision": f"precision at conf {fig['conf']}"}
    rows = []
    for key, label in labels.items():
        means = {s: statistics.fmean(100 * (v[key] or 0.0) for v in fig["schemes"][s].values())
                 for s in fig["schemes"]}
        rows.append([label, f"{means['relevance_state']:.1f}", f"{means['relevance']:.1f}",
                     interval(fig["folded_minus_two_classes_pts"][key])])
    return md_table(["held-out, every class as one (percent)", "10 folded classes", "2 classes",
                     "folded - 2 classes, 95 % CI"], rows) + (
        f"\nBaseline students, seeds {', '.join(seeds)}, {scheme_scenes(fig)}, both on the labels "
        f"{fig.get('labels', 'of their own scheme')}: recall is like for like; the two-class model's detections of "
        f"back and side lights count as false positives, so its precision and mAP are understated; "
        f"`docs/results/{STATE_SCHEME}`.\n")


def _classifier_alone(classifiers: dict[str, Any]) -> str:
    """Summarise the crop classifier alone (argmax, held-out else val labelled boxes, mean over seeds, percent)."""
    crops = [v["test"] or v["val"] for v in classifiers.values()]
    per_state = ", ".join(
        f"{s} {100 * statistics.fmean(c['per_state'][s]['recall'] for c in crops):.1f}"
        for s in crops[0]["per_state"] if all(c["per_state"][s]["recall"] is not None for c in crops))
    return f"accuracy {100 * statistics.fmean(c['accuracy'] for c in crops):.1f}, recall {per_state}"


def state_reading() -> str:
    """Render folded classes against two classes + the crop classifier, as the node runs them (state_scheme.py)."""
    fig = result(STATE_SCHEME)
    if fig is None or "state_reading" not in fig:
        return f"No crop-classifier figures in `docs/results/{STATE_SCHEME}`.\n"
    reading, seeds = fig["state_reading"], [str(s) for s in fig["seeds"]]
    more = "two_classes_classifier_more_scenes" in reading
    columns = ["folded", "two_classes_classifier"] + (["two_classes_classifier_more_scenes"] if more else [])

    def mean(scheme: str, key: str) -> str:
        values = [v[key] for v in reading[scheme].values() if v[key] is not None]
        return f"{100 * statistics.fmean(values):.1f}" if values else "-"

    rows = []
    for key, label in (("state_accuracy", "state accuracy on matched lights"), *(
            (f"{s}_recall", f"{s} recall (light found, state right)") for s in ("red", "yellow", "red_yellow",
                                                                                 "green", "off"))):
        rows.append([label, *(mean(c, key) for c in columns), interval(fig["classifier_minus_folded_pts"][key])]
                    + ([interval(reading["more_scenes_minus_same_pts"][key])] if more else []))
    for key, label in (("state_matched", "matched lights (all seeds)"),
                       ("red_to_green", "red -> green (all seeds)"), ("red_yellow_to_green", "red_yellow -> green")):
        rows.append([label, *(str(sum(v[key] for v in reading[c].values())) for c in columns), ""]
                    + ([""] if more else []))
    cost = reading["cost"]
    curves = [v["val_green_threshold"] for v in reading["classifier"].values() if "val_green_threshold" in v]
    curve_rows = [[f"{row['green_min_prob']:g}", *(
        f"{100 * statistics.fmean(c[i][key] for c in curves):.1f}"
        for key in ("red_to_green_share", "red_recall", "green_recall", "balanced_accuracy"))]
        for i, row in enumerate(curves[0])] if curves else []
    curve = md_table(["`state_green_min_prob`", "red crops read green", "red recall", "green recall",
                      "balanced accuracy"], curve_rows) + (
        f"\nThe classifier alone on the labelled boxes of the val split, mean over the {len(curves)} seeds (percent), "
        "where the node's default `state_green_min_prob` 0.9 was chosen: the reds read green against argmax (0), "
        "for the balanced accuracy in the last column.\n" if curves else "")
    header = ["held-out, as the node runs them (percent)", "10 folded classes", "2 classes + crop classifier"] + (
        ["2 classes + classifier on more scenes"] if more else []) + ["classifier - folded, 95 % CI"] + (
        ["more scenes - same, 95 % CI"] if more else [])
    extra = ""
    if more:
        m = reading["more_scenes"]

        def counts(key: str) -> str:
            return ", ".join(f"{k} {v}" for k, v in reading[key][seeds[0]]["train_lights_per_state"].items())

        keys = ", ".join(f"`{k}` {v}" for k, v in m["scene"].items())
        extra = (f" The second classifier learns from {m['sequences']} more scenes ({keys}, data seed {m['seed']}): "
                 f"train lights {counts('classifier_more_scenes')} against {counts('classifier')}; alone, "
                 f"{_classifier_alone(reading['classifier_more_scenes'])}.")
    return curve + "\n" + md_table(header, rows) + (
        f"\nSeeds {', '.join(seeds)} (the detector and the classifier of a row share the seed), conf "
        f"{fig['conf']}, class-agnostic NMS {fig['nms_iou']}, the node's default `state_green_min_prob`, "
        f"{scheme_scenes(fig)}. The classifier alone, argmax, on the labelled boxes of the held-out split "
        f"(mean over seeds): {_classifier_alone(reading['classifier'])}.{extra} Its cost: "
        f"{cost['median_ms']:.2f} ms median ({cost['p95_ms']:.2f} p95) for {cost['lights']} lights on one "
        f"{cost['frame_hw'][1]}x{cost['frame_hw'][0]} frame. `docs/results/{STATE_SCHEME}`.\n")


def fastdds_profiles() -> str:
    """Render the shipped Fast DDS profile against its version without TCP (one quick run each)."""
    rows = []
    for label, name in (("SHM + UDP (before; LARGE_DATA peers see nothing)", NODE_WITHOUT_TCP),
                        ("SHM + UDP + TCP (shipped)", NODE_QUICK)):
        fig = result(name)
        if fig is None:
            continue
        c = fig["context"]
        rows.append([label, f"{fig['node-start']['onnx']['first_detection_s_median']:.2f} s",
                     f"{c['relay_latency_ms_median']:.1f} / {c['relay_latency_ms_p99']:.1f} ms",
                     f"{c['high_latency_ms_p99']:.1f} / {c['low_latency_ms_p99']:.1f} ms", f"`{name}`"])
    return md_table(["profile", "first detection of a fresh ONNX node", "two-process round trip, median / p99",
                     "p99 above capacity / at half capacity", "result file"], rows)


def cost_figures() -> str:
    """Render convert and kd-step against their goals (benchmarks/convert.py, benchmarks/kd_step.py)."""
    rows = []
    conv = result("convert.json")
    if conv is None:
        rows.append(["convert: N-worker images/s / (N x one process)", ">= 0.8", "no result file", ""])
    else:
        rows.append([f"convert ({conv.get('workers', 'N')} workers, 2048x1024 TIFF -> PNG)", ">= 0.8",
                     f"{conv['ratio_median']:.3f} ({conv['single_ips_median']:.1f} img/s alone, "
                     f"{conv['parallel_ips_median']:.1f} in parallel)",
                     "met" if conv["ratio_median"] >= 0.8 else "**not met**"])
    step = result("kd_step.json")
    for fig in (step, result(KD_STEP_STATE), result(KD_STEP_YOLO26)):
        for r in (fig or {}).get("results", []):
            classes = "" if fig.get("classes", "relevance") == "relevance" else f", {fig['classes']} classes"
            family = "" if fig.get("family", "yolov5") == "yolov5" else f"{fig['family']} "
            rows.append([f"kd-step {family}{r['pair']} (all terms of {Path(fig['config']).name}{classes})",
                         "<= 1.10",
                         f"{r['ratio']:.3f} (peak RSS {r['peak_rss_mb_plain_teacher']:.0f} -> "
                         f"{r['peak_rss_mb_after_kd']:.0f} MB)", "met" if r["ratio"] <= 1.10 else "**not met**"])
    if step is None:
        rows.append(["kd-step: KD step / (student step + teacher forward)", "<= 1.10", "no result file", ""])
    return md_table(["figure", "goal", "measured", ""], rows)


def _delay(m: dict[str, Any], key: str, states: tuple[str, ...], goal: int) -> str:
    """Render the largest and median delay to ``states`` against ``goal``; a change never published is not met."""
    worst, median = m[f"{key}_delay_frames_max"], m.get(f"{key}_delay_frames_median")
    delays = m["revised"]["delays"]
    changes = sum(delays.get(s, {}).get("changes", 0) for s in states)
    if worst is None:
        return "none published (**not met**)" if changes else "no such change (-)"
    return f"{worst:d} / {median:g} ({'met' if worst <= goal else '**not met**'})"


def signal_figures() -> str:
    """Render raw against revised signal per model and the tracker's cost (benchmarks/signal_revision.py)."""
    fig = result(SIGNAL)
    if fig is None:
        return "*(no result file: run `python benchmarks/signal_revision.py --model ...`)*\n"
    k = fig["tracking"]["green_frames"]

    def num(v: Any, f: str = ".2f") -> str:
        return "n/a" if v is None else format(v, f)

    rows = []
    for name, m in fig["models"].items():
        raw, rev = m["raw"], m["revised"]
        ratio = m["spurious_ratio"]
        shown = f"{name} + crop classifier" if m.get("state_model") and "," not in name else name
        rows.append([shown, f"{num(raw['accuracy'], '.3f')} -> {num(rev['accuracy'], '.3f')}",
                     f"{num(raw['spurious_per_minute'], '.1f')} -> {num(rev['spurious_per_minute'], '.1f')}",
                     f"{num(ratio, '.3f')} ({'met' if ratio is not None and ratio <= 0.1 else '**not met**'})",
                     f"{raw['red_to_green']} -> {rev['red_to_green']}, {raw['red_yellow_to_green']} -> "
                     f"{rev['red_yellow_to_green']} "
                     f"({'met' if rev['red_to_green'] == rev['red_yellow_to_green'] == 0 else '**not met**'})",
                     _delay(m, "stop", ("red", "yellow", "red_yellow"), 2),
                     _delay(m, "green", ("green",), k + 1)])
    table = md_table(["model", "accuracy raw -> revised", "spurious changes / min raw -> revised",
                      "revised / raw (goal <= 0.1)", "red->green, red_yellow->green frames (goal 0)",
                      "delay to red / yellow / red_yellow, frames, max / median (goal: max <= 2)",
                      f"delay to green, frames, max / median (goal: max <= k + 1 = {k + 1})"], rows)
    cost = fig["tracker_cost"]
    delays_missed = {name: {s: d["missed"] for s, d in m["revised"]["delays"].items() if d["missed"]}
                     for name, m in fig["models"].items()}
    return (table + f"\n{fig['drives']} drives of {fig['seconds']:.0f} s at {fig['hz']:.0f} Hz (red and green "
            f"{fig['phase_s'][0]:.0f}-{fig['phase_s'][1]:.0f} s), imgsz {fig['imgsz']}"
            + (f", the node's `state_edge_px` {fig['detector']['state_edge_px']:g} but where a row says otherwise"
               if "detector" in fig else "") + "; true changes never "
            f"published (missed, per target state): {delays_missed}. Tracking, filter and vote at "
            f"{cost['lights']} lights: median {cost['median_us']:.0f} us per frame (p95 {cost['p95_us']:.0f}).\n")


def kd_gain_state_recall(name: str = KD_GAIN_STATE) -> str:
    """Render state accuracy and recall per state of each arm on both scene sets (the rare states apart)."""
    fig = result(name)
    if fig is None or "state" not in fig:
        return "*(no state figures: run benchmarks/kd_gain.py with the relevance_state profile)*\n"
    rows = []
    for label, body in (("tuning", fig), ("second", _second(fig))):
        chosen = set((body.get("chosen") or fig.get("chosen") or {}).values())
        for arm, st in (body.get("state") or {}).items():
            if arm not in chosen | {"baseline", "teacher"}:
                continue
            rec = st["recall"]
            rows.append([label, arm, str(st["seeds"]), f"{st['state_accuracy']:.1f}",
                         *[("-" if rec[s] is None else f"{rec[s]:.1f}") for s in ("red", "green", "yellow",
                                                                                 "red_yellow", "off")],
                         f"{st['red_to_green']}, {st['red_yellow_to_green']}"])
    return md_table(["scene set", "arm", "seeds", "state accuracy (matched lights)", "red recall", "green recall",
                     "yellow recall", "red_yellow recall", "off recall", "red->green, red_yellow->green (all seeds)"],
                    rows) + (f"\nPercent, held-out split at the nodes' conf 0.25, mean over seeds; rare states are "
                             f"yellow, red_yellow and off; `docs/results/{name}`.\n")


def _lam(arm: str | None) -> str:
    """``0.25`` for ``ours_integrated_lam025``, ``0.25, weight x4`` for ``ours_integrated_x4_lam025`` (its name)."""
    m = re.search(r"(?:_x(\d+))?_lam(\d+)$", arm or "")
    if not m:
        return str(arm)
    return f"{int(m.group(2)) / 100:.2f}" + (f", weight x{m.group(1)}" if m.group(1) else "")


def kd_gain_summary_no_native(name: str) -> str:
    """Render, per scene set of a kd-gain result without a native arm, baseline and chosen arm, D_ours and kd-gap."""
    rows = []
    for label, _, fig in kd_sets(name, None):
        arm, mean = fig["chosen"]["ours"], fig["mean_map50_95"]
        rows.append([label, _lam(arm), f"{mean['baseline']:.2f}", f"{mean[arm]:.2f}", interval(fig["D_ours"]),
                     held(fig["goals"]["D_ours_ci_excludes_zero"]),
                     "n/a" if fig["kd_gap"] is None else f"{fig['kd_gap']:.2f}"])
    return md_table(["scene set", "lam (chosen on val)", "coupled baseline", "coupled + integrated KD",
                     "distilled - baseline, 95 % CI", "CI excludes 0", "kd-gap"], rows) + f"\n`docs/results/{name}`.\n"


def lam_curve(name: str = KD_GAIN_INTEGRATED) -> str:
    """Render each integrated arm's val mean and held-out interval on the tuning scenes (the lam curve)."""
    fig = result(name)
    if fig is None:
        return f"*(no {name})*\n"
    lams = [a for a in fig["arms"] if a.startswith("ours_")]
    val, base_val = fig["val_map50_95"], fig["val_map50_95"].get("baseline", {})
    curve = [[_lam(a) + (" (chosen)" if a == fig["chosen"]["ours"] else ""),
              f"{statistics.fmean(val[a].values()):.2f}" if val.get(a) else "-",
              f"{statistics.fmean(val[a][s] - base_val[s] for s in val[a] if s in base_val):+.2f}"
              if val.get(a) and base_val else "-",
              str(len(val.get(a) or {})), interval(fig["D_arms"].get(a))] for a in lams]
    return md_table(["lam", "val mAP50-95", "val, distilled - baseline", "seeds",
                     "held-out, distilled - baseline, 95 % CI"], curve)


def kd_gain_integrated(name: str = KD_GAIN_INTEGRATED, decoupled: str = KD_GAIN_STATE) -> str:
    """Render the integrated method: its interval per scene set, the lam curve, and the paper's Table 1 columns.

    The decoupled student's mAP is the baseline of ``decoupled`` (same scenes, seeds and recipe); its cost is the
    reference student ``name`` recorded.
    """
    fig = result(name)
    if fig is None:
        return "*(not run yet: benchmarks/kd_gain.py --config training/configs/kd_gain_integrated_quick.yaml)*\n"
    second = _second(fig)
    out = [kd_gain_summary_no_native(name)]
    out.append("The lam curve (class KD weight lam, box KD 1 - lam), val split of the tuning scenes:\n\n"
               + lam_curve(name))
    cost, ref = fig.get("cost") or {}, result(decoupled)
    table1 = []

    def row(model: str, head: str, c: dict[str, float] | None, tune: float | None, sec: float | None) -> list[str]:
        figs = ["-"] * 4 if not c else [f"{c['gflops']:.3f}", f"{c['head_gflops']:.4f}", f"{c['params_m']:.3f}",
                                        f"{c['head_params_m']:.4f}"]
        return [model, head, *figs, "-" if tune is None else f"{tune:.2f}", "-" if sec is None else f"{sec:.2f}"]

    def means(body: dict[str, Any], arm: str) -> float | None:
        return (body.get("mean_map50_95") or {}).get(arm)

    table1.append(row("yolov5s (teacher)", "decoupled", cost.get("teacher"), fig["map50_95"]["teacher"],
                      second.get("map50_95", {}).get("teacher")))
    if ref is not None:
        table1.append(row("yolov5n", "decoupled", cost.get("yolov5n"), means(ref, "baseline"),
                          means(_second(ref), "baseline")))
    table1.append(row("yolov5n-coupled", "coupled", cost.get("baseline"), means(fig, "baseline"),
                      means(second, "baseline")))
    arm = fig["chosen"]["ours"]
    table1.append(row(f"yolov5n-coupled + integrated KD (lam {_lam(arm)})", "coupled", cost.get(arm),
                      means(fig, arm), means(second, arm)))
    out.append("The paper's Table 1 columns (FLOPs and parameters at the evaluation size; mAP50-95 the mean over "
               f"the {len(fig['seeds'])} seeds, held-out split; the decoupled yolov5n is the baseline of "
               f"`docs/results/{decoupled}`, same scenes, seeds and recipe):\n\n" + md_table(
                   ["model", "head", "FLOPs (G)", "head FLOPs (G)", "params (M)", "head params (M)",
                    "mAP50-95 tuning", "mAP50-95 second"], table1)
               + f"\n`docs/results/{name}`.\n")
    return "\n".join(out)


TABLES: dict[str, Callable[[], str]] = {
    "cost-figures": cost_figures,
    "kd-gain-summary": kd_gain_summary,
    "kd-gain-arms": kd_gain_arms,
    "kd-gain-spread": kd_gain_spread,
    "kd-terms": kd_terms,
    "node-figures": node_figures,
    "node-figures-state": lambda: node_figures(NODE_STATE),
    "state-scheme": state_scheme,
    "state-reading": state_reading,
    "kd-gain-state-summary": lambda: kd_gain_summary(kd_sets(KD_GAIN_STATE, None)),
    "kd-gain-state-arms": lambda: kd_gain_arms(KD_GAIN_STATE, None),
    "kd-gain-state-recall": kd_gain_state_recall,
    "kd-gain-integrated": kd_gain_integrated,
    "kd-gain-integrated-arms": lambda: kd_gain_arms(KD_GAIN_INTEGRATED, None),
    "kd-gain-integrated-weight1-curve": lambda: lam_curve(KD_GAIN_INTEGRATED_WEIGHT1),
    "kd-gain-integrated-weight1": lambda: kd_gain_summary_no_native(KD_GAIN_INTEGRATED_WEIGHT1),
    "kd-gain-yolo26-summary": lambda: kd_gain_summary(kd_sets(KD_GAIN_YOLO26, None)),
    "kd-gain-yolo26-arms": lambda: kd_gain_arms(KD_GAIN_YOLO26, None),
    "kd-gain-yolo26-recall": lambda: kd_gain_state_recall(KD_GAIN_YOLO26),
    "kd-gain-yolo11-summary": lambda: kd_gain_summary(kd_sets(KD_GAIN_YOLO11, None)),
    "kd-gain-yolo11-arms": lambda: kd_gain_arms(KD_GAIN_YOLO11, None),
    "kd-gain-yolo11-recall": lambda: kd_gain_state_recall(KD_GAIN_YOLO11),
    "fastdds-profiles": fastdds_profiles,
    "signal-figures": signal_figures,
}


# ------------------------------------------------------------------------------------------------ files
def render_text(text: str, where: str) -> tuple[str, list[str]]:
    """Return ``text`` with every rendered block rewritten, and the names of the blocks that changed.

    Raises:
        ValueError: A block names no table of :data:`TABLES` (naming the file and the block).
    """
    changed: list[str] = []

    def fill(m: re.Match) -> str:
        name = m.group("name")
        if name not in TABLES:
            raise ValueError(f"{where}: rendered block '{name}': no such table; expected one of {sorted(TABLES)}")
        body = TABLES[name]()
        if body != m.group("body"):
            changed.append(name)
        return m.group(1) + body + m.group(4)

    return BLOCK.sub(fill, text), changed


def stale(files: list[Path]) -> list[str]:
    """``file: table`` for every rendered table whose text differs from what the result files give."""
    return [f"{path.name}: {name}" for path in files
            for name in render_text(path.read_text(encoding="utf-8"), str(path))[1]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/tables.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="do not write; exit 1 when a rendered table is stale")
    args = p.parse_args(argv)
    files = [REPO / f for f in DOCS]
    if args.check:
        old = stale(files)
        for line in old:
            print(f"stale rendered table: {line} (run python benchmarks/tables.py)", file=sys.stderr)
        return 1 if old else 0
    for path in files:
        text, changed = render_text(path.read_text(encoding="utf-8"), str(path))
        if changed:
            path.write_text(text, encoding="utf-8")
            print(f"{path.relative_to(REPO)}: {', '.join(changed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
