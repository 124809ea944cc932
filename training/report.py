"""``REPORT.md`` of the demo: every result of ``training.demo`` in one Markdown file, linked relative to it.

Sections: setup (sizes, epochs, why), results table in the source study's columns, mAP-vs-FLOPs plot, speed
per backend, training curves, annotated frames and MP4 of the node run, comparison summary, stage times.
Missing parts (a stage skipped or failed) are named, never silently left out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kd_traffic_light.core.atomic_io import atomic_write_text, read_json
from training.experiment.config import Experiment
from training.strict import thaw


def _rel(path: Path, out: Path) -> str:
    """Path of ``path`` relative to the report directory, with forward slashes."""
    return Path(os.path.relpath(path, out)).as_posix()


def _link(path: Path, out: Path, text: str | None = None, image: bool = False) -> str:
    """Markdown link (or image) to ``path``, or a note that it is missing."""
    if not path.exists():
        return f"*(missing: `{_rel(path, out)}`)*"
    return f"{'!' if image else ''}[{text or path.name}]({_rel(path, out)})"


def setup_section(exp: Experiment, names: dict[str, str]) -> str:
    """Describe what was trained, at which sizes and for how long."""
    d, tr = exp.data, exp.train
    t_epochs = exp.teacher_train.get("epochs", tr.get("epochs"))
    teacher = next(iter(exp.teachers.items()))
    student = next(iter(exp.students.items()))
    return "\n".join([
        "## Setup",
        "",
        f"- Data: synthetic DTLD-format scenes (`{d.preset}` preset), {d.sequences} drive sequences x "
        f"{d.frames} frames, resized to width {d.resize_width}; held-out split = DTLD_test sequences "
        f"(never seen in training), {d.val_images} train images drawn by sequence into val; class scheme "
        f"`{d.classes}`" + (", lamps rendered as a camera sees them" if dict(d.scene).get("lamps") == "camera"
                             else "") + ".",
        f"- Teacher: `{teacher[1]}`, {t_epochs} epochs at {tr.get('imgsz')} px (run `{names['teacher']}`).",
        f"- Students: `{student[1]}`, {tr.get('epochs')} epochs at {tr.get('imgsz')} px, identical recipe for "
        f"baseline (`{names['baseline']}`), our distillation (`{names['ours']}`) and ultralytics' native "
        f"distillation (`{names['native']}`)."
        + (f" The integrated method as published: the coupled-head student (one 1x1 prediction conv per level) "
           f"alone (`{names['coupled_baseline']}`) and distilled from the decoupled-head teacher "
           f"(`{names['coupled_ours']}`)." if "coupled_ours" in names and "coupled_baseline" in names else ""),
        "- Our distillation terms: " + ", ".join(
            f"{k} (weight {v.get('weight', '-')})" for k, v in
            ((exp.methods.get("ours") or {}).get("distill") or {}).get("terms", {}).items()) + ".",
        f"- Recipe: {recipe_text(tr)}, batch {tr.get('batch')}, warm-up epochs {tr.get('warmup_epochs', 3)}, "
        f"close_mosaic {tr.get('close_mosaic', 10)}, augment {thaw(exp.augment)}, seeds {list(exp.seeds)}.",
        "- Why these sizes: lights stay >= ~7 px at the working size (smaller ones never leave the cold start on "
        "this CPU), and the teacher gets more capacity and more epochs than the students, since undertrained "
        "models of different size show no gap to distil. One seed: the gain below comes from paired seeds.",
        "",
    ])


def recipe_text(tr: Mapping[str, Any]) -> str:
    """Describe the optimizer and learning rate of a train section as ultralytics will apply them."""
    opt = str(tr.get("optimizer", "SGD"))
    if opt.lower() == "auto":
        return ("optimizer auto (ultralytics picks AdamW at lr 0.002 x 5 / (4 + nc) for runs under 10k "
                "iterations, else MuSGD)")
    return f"{opt} lr0 {tr.get('lr0', 0.01)} -> lrf {tr.get('lrf', 0.01)}"


def state_section(out: Path) -> str:
    """Render the light state the teacher and the distilled student publish with the crop classifier ("" without).

    From ``out/state.json`` (the demo's state stage: ``training.state_classifier.evaluate.node_state_metrics``).
    """
    path = out / "state.json"
    result = read_json(path) if path.is_file() else None
    if not result:
        return ""
    from kd_traffic_light.core.classes import STATES

    def pct(v: Any) -> str:
        return "-" if v is None else f"{100 * v:.1f}"

    lines = ["## Light state (two-class detector + crop classifier)", "",
             "On the held-out split as the nodes publish (conf 0.25, class-agnostic NMS 0.45), relevance merged: "
             "the lights matched, state accuracy on them, recall per state in percent (a light found with the right "
             "state; support in brackets), and the matched lights read red -> green and red_yellow -> green "
             "(docs/training.md, \"Light state\"). Classifier: "
             f"{_link(out / 'state_classifier' / 'metrics.json', out)}.", "",
             "| detector | matched lights | state accuracy | "
             + " | ".join(f"{s} recall" for s in STATES) + " | red->green | red_yellow->green |",
             "|---" * (5 + len(STATES)) + "|"]
    for role, r in result.items():
        recalls = " | ".join(f"{pct(r['per_state'][s]['recall'])} ({r['per_state'][s]['support']})" for s in STATES)
        lines.append(f"| {role} + classifier | {r['matched']} | {pct(r['state_accuracy'])} | {recalls} | "
                     f"{r['critical']['red_to_green']} | {r['critical']['red_yellow_to_green']} |")
    lines += ["", "Rows the true state, columns the predicted one; the outlined cells are the errors that kill.", ""]
    lines += [_link(out / f"state_confusion_{role}.png", out, f"{role} state confusion", image=True)
              for role in result if (out / f"state_confusion_{role}.png").is_file()]
    return "\n".join(lines + [""])


def results_section(out: Path) -> str:
    """Render the experiment's table (study's columns) and its plots."""
    exp_out = out / "experiment"
    md = exp_out / "results.md"
    table = md.read_text(encoding="utf-8").split("\n", 2)[-1] if md.is_file() else "*(no results.md)*\n"
    return "\n".join([
        "## Held-out results", "", table,
        f"Tables: {_link(md, out)}, {_link(exp_out / 'results.json', out)}; per run: "
        f"{_link(exp_out / 'runs.json', out)}.", "",
        "### mAP50-95 against FLOPs", "", _link(exp_out / "map_vs_flops.png", out, "mAP vs FLOPs", image=True), "",
        "### Training curves", "", _link(exp_out / "curves.png", out, "training curves", image=True), "",
    ])


#: Where the kd-gain benchmark writes its result, and the copy of the last measured one shipped with the docs.
REPO = Path(__file__).resolve().parents[1]
KD_GAIN_FILES = (Path("runs/bench/kd_gain.json"), REPO / "docs" / "results" / "kd_gain_quick.json")
#: The same arms on scenes generated with another data seed, where nothing was chosen (docs/training.md).
KD_GAIN_REPLICATION = REPO / "docs" / "results" / "kd_gain_replication.json"
GOALS = {"D_ours_ci_excludes_zero": "the interval of D_ours excludes 0", "D_ours_vs_native": "D_ours >= 2 x D_native",
         "kd_gap_ge_0.4": "kd-gap >= 0.4"}


def _gain_block(path: Path, data: dict[str, Any], where: str) -> list[str]:
    """Per-seed table and figures of one kd-gain result, its goals said as held or not on ``where``."""
    from training.stats import format_interval as ci

    m, d_o, d_n = data["map50_95"], data["D_ours"], data["D_native"]
    seeds = sorted(m["baseline"], key=int)
    shown = path.resolve().relative_to(REPO) if path.resolve().is_relative_to(REPO) else path
    lines = [f"From `{shown}` ({data.get('profile')} profile, held-out split, {where}, machine: "
             f"{(data.get('machine') or {}).get('cpu', '?')}); ours = `{data['chosen']['ours']}`, native = "
             f"`{data['chosen']['native']}`, both chosen on the val split of the tuning scenes.", "",
             "| arm | " + " | ".join(f"seed {s}" for s in seeds) + " |", "|---|" + "---|" * len(seeds)]
    for arm in ("baseline", "ours", "native"):
        lines.append(f"| {arm} | " + " | ".join(f"{m[arm].get(s, float('nan')):.2f}" for s in seeds) + " |")
    gap, goals = data.get("kd_gap"), data.get("goals") or {}
    verdict = "; ".join(f"{GOALS.get(k, k)}: {'held' if v else 'not held'}" for k, v in goals.items())
    return lines + ["", f"Teacher {m['teacher']:.2f}. D_ours = ours - baseline: {ci(d_o)} points; D_native: "
                        f"{ci(d_n)} points; kd-gap {'n/a' if gap is None else f'{gap:.2f}'}. Goals on these "
                        f"scenes: {verdict or 'not recorded'}.", ""]


def gain_section(files: tuple[Path, ...] = KD_GAIN_FILES, replication: Path | None = KD_GAIN_REPLICATION) -> str:
    """Quote the kd-gain benchmark on the tuning scenes and on its second scene set (or a separate replication).

    A goal is called met only where it held on both scene sets; with one set only, nothing is called met.
    """
    lines = ["## Distillation gain over paired seeds (kd-gain benchmark)", ""]
    path = next((f for f in files if f.is_file()), None)
    data = read_json(path) if path else None
    if not data or "D_ours" not in data:
        return "\n".join(lines + ["*(no kd-gain result: run `python benchmarks/kd_gain.py`)*", ""])
    lines += _gain_block(path, data, "the scenes the arms were chosen on")
    if "second_set" in data:  # the benchmark's own second scene set (its protocol since five paired seeds)
        rep, rep_path = {**data, **data["second_set"]}, path
        where = f"scenes generated with data seed {rep['data_seed']}, nothing chosen on them"
    else:
        rep = read_json(replication) if replication is not None and replication.is_file() else None
        rep_path, where = replication, "scenes generated with another data seed, nothing chosen on them"
    if not rep or "D_ours" not in rep:
        return "\n".join(lines + ["No replication on scenes nothing was chosen on: no goal is called met.", ""])
    lines += _gain_block(rep_path, rep, where)
    both = {k: bool(v and (rep.get("goals") or {}).get(k)) for k, v in (data.get("goals") or {}).items()}
    met = [GOALS.get(k, k) for k, v in both.items() if v]
    unmet = [GOALS.get(k, k) for k, v in both.items() if not v]
    return "\n".join(lines + [f"Met on both scene sets: {', '.join(met) or 'none'}. Not carried by the evidence: "
                              f"{', '.join(unmet) or 'none'}.", ""])


def speed_section(out: Path) -> str:
    """Render model size (FP16) and CPU latency per backend."""
    rows = read_json(out / "speed.json") if (out / "speed.json").is_file() else None
    lines = ["## Speed (CPU, batch 1, forward pass only, median)", ""]
    if not rows:
        return "\n".join(lines + ["*(speed stage did not run)*", ""])

    def ms(v: Any) -> str:
        return "-" if v is None else f"{v:.1f}"

    lines += ["| role | model | FP16 size (MB) | PyTorch (ms) | ONNX Runtime (ms) | OpenVINO (ms) |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {r['role']} | {r['model']} | {r['fp16_mb']:.2f} | {ms(r.get('pytorch_ms'))} | "
              f"{ms(r.get('onnxruntime_ms'))} | {ms(r.get('openvino_ms'))} |" for r in rows]
    exports = (read_json(out / "exports.json") if (out / "exports.json").is_file() else None) or {}
    links = [_link(out / p, out, f"{role} {fmt}") for role, e in exports.items() for fmt, p in e["exports"].items()]
    return "\n".join(lines + ["", "Exports: " + ", ".join(links), ""])


def nodes_section(out: Path) -> str:
    """Render annotated frames, MP4 and comparison summary of the node run."""
    run = out / "node_run"
    lines = ["## Node run (student, teacher and comparison nodes as real processes over the bag)", ""]
    skipped = read_json(run / "skipped.json") if (run / "skipped.json").is_file() else None
    summary = read_json(run / "summary.json") if (run / "summary.json").is_file() else None
    if skipped or not summary:
        reason = (skipped or {}).get("reason", "the stage did not run or failed")
        return "\n".join(lines + [f"*(node run missing: {reason})*", ""])
    m = summary.get("metrics") or {}
    lines += [f"Bag: {_link(out / 'bag', out, 'bag')}; video: {_link(run / 'overlay.mp4', out, 'overlay.mp4')} "
              f"({summary.get('overlay_frames', 0)} frames); records: {_link(run / 'records.csv', out)}; "
              f"summary: {_link(run / 'summary.json', out)}; logs: {_link(run / 'logs', out, 'logs')}.", "",
              _link(run / "frames_grid.jpg", out, "annotated frames (teacher dashed, student solid)", image=True),
              "", "### Comparison summary (student against teacher)", "", "| metric | value |", "|---|---|"]
    for k, v in m.items():
        lines.append(f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |")
    lines += signal_lines(run, out, summary.get("signal"))
    lines += ["", f"Exit codes: {summary.get('exit_codes')}", ""]
    return "\n".join(lines)


def signal_lines(run: Path, out: Path, signal: Mapping[str, Any] | None) -> list[str]:
    """Render the raw against the revised signal of each detector over the bag (bag_eval --truth)."""
    if not signal:
        return []
    lines = ["", "### The governing signal: raw detector against revised (docs/tracking.md)", "",
             f"{signal['frames']} frames at the bag's camera rate, scored against the drive's true signal state. "
             "Raw: the frame's relevant detections voted; revised: the node's `~/traffic_signals` (tracks, "
             "state filter, vote).", "",
             "| detector | signal | accuracy | spurious changes / min | red->green frames | red_yellow->green frames "
             "| delay to red / yellow / red_yellow / green (frames, max) |", "|---|---|---|---|---|---|---|"]

    def num(v: Any, fmt: str = ".2f") -> str:
        return "-" if v is None else format(v, fmt)

    for role in ("student", "teacher"):
        for side in ("raw", "revised"):
            m = signal[role][side]
            delays = " / ".join(
                "-" if s not in m["delays"] else (f"missed {m['delays'][s]['missed']}" if
                                                  m["delays"][s]["max_frames"] is None else
                                                  str(m["delays"][s]["max_frames"]))
                for s in ("red", "yellow", "red_yellow", "green"))
            lines.append(f"| {role} | {side} | {num(m['accuracy'], '.3f')} | {num(m['spurious_per_minute'])} | "
                         f"{m['red_to_green']} | {m['red_yellow_to_green']} | {delays} |")
    if signal.get("timeline"):
        lines += ["", _link(run / signal["timeline"], out, "signal timeline (truth, raw, revised)", image=True)]
    if signal.get("tracks"):
        lines += ["", "### Per light: raw detections against the revised track (`~/traffic_lights`)", "",
                  "Each head of the drive scored over the frames it is in view: raw is the detection overlapping it, "
                  "revised the state its node track published (docs/tracking.md); spurious changes per "
                  "track-minute.", "",
                  "| detector | heads | side | accuracy | spurious changes / track-minute | red->green frames |",
                  "|---|---|---|---|---|---|"]
        for role, t in signal["tracks"].items():
            for side in ("raw", "revised"):
                lines.append(f"| {role} | {t['tracks']} | {side} | {num(t[side]['accuracy'], '.3f')} | "
                             f"{num(t[side]['spurious_per_minute'])} | {t[side]['red_to_green']} |")
        lines += ["", *(_link(run / signal[key], out, f"{key.rsplit('_', 1)[-1]}: per-light timelines", image=True)
                        for key in ("track_timeline_student", "track_timeline_teacher") if signal.get(key))]
    return lines


def stages_section(out: Path) -> str:
    """Render seconds per stage (from stages.json)."""
    stages = out / "stages.json"
    state = (read_json(stages) if stages.is_file() else None) or {"stages": {}}
    lines = ["## Stages and time taken", "", "| stage | status | seconds |", "|---|---|---|"]
    total = 0.0
    for name, s in state["stages"].items():
        sec = s.get("seconds")
        total += sec or 0.0
        lines.append(f"| {name} | {s.get('status')} | {'-' if sec is None else f'{sec:.0f}'} |")
    lines += [f"| **total (stages run)** | | **{total:.0f}** |", "",
              "A stage shown with `-` seconds was skipped because its outputs existed (a resumed demo).", ""]
    return "\n".join(lines)


def write_report(out: str | Path, exp: Experiment, names: dict[str, str]) -> Path:
    """Write ``out/REPORT.md`` atomically; returns its path."""
    out = Path(out)
    stages = out / "stages.json"
    mode = ((read_json(stages) if stages.is_file() else None) or {}).get("mode", "full")
    parts = [
        f"# kd_traffic_light demo report ({mode})", "",
        "Teacher -> student distillation for traffic-light relevance"
        + (" and state" if exp.data.classes == "relevance_state" or (out / "state.json").is_file() else "")
        + " on synthetic DTLD-format data, trained and evaluated on this CPU by `python -m training.demo`"
        + (" --quick" if mode == "quick" else "") + ". "
        + "Quick mode is a smoke run: its numbers mean nothing." * (mode == "quick"), "",
        setup_section(exp, names), results_section(out), state_section(out), gain_section(),
        speed_section(out), nodes_section(out),
        stages_section(out),
    ]
    path = out / "REPORT.md"
    atomic_write_text(path, "\n".join(parts))
    return path
