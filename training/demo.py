r"""End-to-end demo on synthetic DTLD-format data, sized for a 2-core CPU (``make demo``).

Sixteen resumable stages, from generating the data through training (teacher, baseline, distilled and
coupled-head students, the crop classifier that reads each light's state), evaluation, export and timing to a
bag replayed through the nodes (``--skip-nodes`` leaves that out). Everything lands in ``--out``, linked from
``<out>/REPORT.md``.

    python -m training.demo --out runs/demo
    python -m training.demo --quick --out runs/demo_quick     # smoke run, about 3 minutes

The stages, the sizes and what the REPORT shows: docs/demo.md.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kd_traffic_light.core.atomic_io import atomic_write_json, atomic_write_yaml, read_json, read_yaml
from training.errors import UsageError

if TYPE_CHECKING:
    from training.experiment import Experiment, Run

LOG = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "training" / "configs" / "demo_cpu.yaml"

#: Overrides of demo_cpu.yaml for ``--quick``: tiny images, one epoch, a handful of frames.
QUICK = {
    "data": {"sequences": 4, "frames": 3, "val_images": 3, "resize_width": 256},
    "train": {"epochs": 1, "imgsz": 64, "batch": 4, "mosaic": 0.0, "close_mosaic": 0, "warmup_epochs": 0},
    "teacher_train": {"epochs": 1},
    "evaluate": {"imgsz": 64, "batch": 4, "latency_reps": 2},
    "workers": 0,
}
BAG_FRAMES = {"full": 90, "quick": 6}  # at BAG_HZ: a 6 s drive (0.4 s quick)
#: The demo bag is a camera-rate drive, with red and green phases shortened so a few seconds show changes.
BAG_HZ, BAG_PHASE_S = 15.0, (2.0, 5.0)
#: Ego speed of the demo bag (m/s): creeping up to the light, so lights sized for one frame stay camera-sized.
BAG_SPEED = (1.0, 2.5)
#: The training stages of the demo: (key, title, selector of the run in the grid).
TRAIN_STAGES = (
    ("teacher", "train teacher", lambda r: r.role == "teacher"),
    ("baseline", "train baseline student", lambda r: r.method == "baseline" and r.label == "n"),
    ("ours", "distil student (ours)", lambda r: r.method == "ours" and r.label == "n"),
    ("native", "distil student (ultralytics native)", lambda r: r.method == "native" and r.label == "n"),
    ("coupled_baseline", "train coupled-head student", lambda r: r.method == "baseline" and r.label == "n_coupled"),
    ("coupled_ours", "distil decoupled teacher -> coupled-head student (ours, as published)",
     lambda r: r.method == "ours" and r.label == "n_coupled"),
)
BAG_WIDTH = {"full": 1024, "quick": 256}
#: Epochs of the state classifier.
STATE_EPOCHS = {"full": 30, "quick": 2}
#: The demo's frames with their relevance_state labels (the classifier's data), under ``--out``.
STATE_DATA = Path("experiment/data/yolo_relevance_state/data.yaml")
#: Scenes the classifier learns from besides the demo's own, every state as often
#: (training/state_classifier/scenes.py), under ``--out``; how many per mode.
CLASSIFIER_SCENES_DIR = Path("classifier_scenes")
CLASSIFIER_SCENES = {"full": 100, "quick": 2}


def get_args_parser() -> argparse.ArgumentParser:
    """Build the flags of the demo: where to write and how big to run."""
    p = argparse.ArgumentParser(prog="python -m training.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=None, help="output directory (default runs/demo, or runs/demo_quick)")
    p.add_argument("--quick", action="store_true", help="smoke version: 64 px, 1 epoch, a few images (~3 min)")
    p.add_argument("--config", default=None,
                   help="experiment YAML of the demo (default training/configs/demo_cpu.yaml)")
    p.add_argument("--device", default="cpu", help="training device (default cpu)")
    p.add_argument("--skip-nodes", action="store_true", help="do not replay the bag through the ROS nodes")
    return p


def _deep_update(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``over`` laid over it, one level of nested mappings deep."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = {**(out.get(k) or {}), **v} if isinstance(v, dict) else v
    return out


def demo_experiment(config: str | Path, quick: bool) -> Experiment:
    """Return the resolved demo experiment (``QUICK`` laid over the file with ``--quick``)."""
    from training.experiment import resolve_experiment
    from training.strict import read_config

    raw = read_config(config, f"--config: experiment file not found: {config}")
    return resolve_experiment(_deep_update(raw, QUICK) if quick else raw, str(config))


class Stages:
    """Runs named stages with banners, skips those whose outputs exist, records their seconds in stages.json."""

    def __init__(self, out: Path, mode: str):
        self.out, self.path = out, out / "stages.json"
        self.state = (read_json(self.path) if self.path.is_file() else None) or {"mode": mode, "stages": {}}
        if self.state.get("mode") != mode:
            raise ValueError(f"{self.path}: mode: this directory holds a {self.state.get('mode')} demo, not {mode};"
                             " use another --out")
        self.total = 0

    def run(self, name: str, done: Callable[[], bool], fn: Callable[[], Any], index: int, total: int) -> Any:
        """Run ``fn`` unless ``done()``; print a banner; record status and seconds."""
        head = f"[{index}/{total}] {name}"
        if done():
            print(f"\n==== {head}: outputs exist, skipped ====", flush=True)
            self.state["stages"].setdefault(name, {"status": "done", "seconds": None})
            if self.state["stages"][name].get("status") != "done":
                self.state["stages"][name]["status"] = "done"
            self._save()
            return None
        print(f"\n==== {head} ====", flush=True)
        t0 = time.perf_counter()
        status = "done"
        try:
            result = fn()
            if isinstance(result, dict) and result.get("status"):
                status = result["status"]
        finally:
            seconds = round(time.perf_counter() - t0, 1)
            self.state["stages"][name] = {"status": status if sys.exc_info()[0] is None else "failed",
                                          "seconds": seconds}
            self._save()
        print(f"==== {head}: {status} in {seconds:.0f} s ====", flush=True)
        return result

    def _save(self) -> None:
        atomic_write_json(self.path, self.state)


def _run_record(out: Path, name: str) -> dict[str, Any] | None:
    path = out / "experiment" / "runs" / name / "results.json"
    return read_json(path) if path.is_file() else None


#: Outputs made from the trained models: redone when a model is retrained.
DERIVED = ("experiment/results.json", "exports.json", "speed.json", "node_run/summary.json", "state.json",
           "state_classifier/metrics.json")


def set_aside_stale_data(out: Path, exp: Experiment) -> list[str]:
    """Move the data and everything trained on it aside when the experiment's ``data`` section changed.

    Data made from an earlier ``demo_cpu.yaml`` (another class scheme or lamp look, say) is not reused: the
    experiment would stop on it. ``experiment/data`` and every run go to ``.stale`` siblings, the outputs made from
    them (table, exports, speed, bag, node run) are removed, and the demo starts over. Returns what differed.
    """
    import shutil

    from training.experiment.data import data_diff

    exp_out = out / "experiment"
    done = exp_out / "data" / "done.json"
    diff = data_diff(exp, done)[0] if done.is_file() else []
    if not diff:
        return []
    for path in [exp_out / "data", *(p for p in (exp_out / "runs").glob("*") if p.is_dir()
                                     and not p.name.endswith(".stale"))]:
        target = path.with_name(path.name + ".stale")
        shutil.rmtree(target, ignore_errors=True)
        path.rename(target)
    for rel in DERIVED:
        (out / rel).unlink(missing_ok=True)
    for rel in ("bag", "bag_dtld", CLASSIFIER_SCENES_DIR, "state_classifier"):
        shutil.rmtree(out / rel, ignore_errors=True)
    print(f"demo: the data section changed ({', '.join(diff)}); the old data and runs were moved to '.stale' "
          "siblings and everything is made again", flush=True)
    return diff


def set_aside_stale_runs(out: Path, runs: dict[str, Run], data_yaml: Path) -> list[str]:
    """Move every finished run whose config, model, teacher or data changed to ``<name>.stale``; return them.

    A demo directory from before a change of ``demo_cpu.yaml`` (a new distillation recipe, say) would otherwise
    skip the stage on the old model or stop on its fingerprint. The moved run keeps its files for comparison; the
    outputs made from the models (held-out table, exports, speed, node run) are redone.
    """
    import shutil

    from training.experiment.runs import same_run

    exp_out = out / "experiment"
    finished = {n: rec for n in runs if (rec := _run_record(out, n)) is not None}
    stale = [n for n, rec in finished.items() if data_yaml.is_file() and not same_run(rec, runs[n], exp_out, data_yaml)]
    # a student distilled from a teacher that is trained again is stale too (its fingerprint names the teacher run)
    stale += [n for n in finished if n not in stale and runs[n].teacher_run in stale]
    for name in stale:
        target = exp_out / "runs" / f"{name}.stale"
        shutil.rmtree(target, ignore_errors=True)
        (exp_out / "runs" / name).rename(target)
    if stale:
        print(f"demo: {', '.join(stale)}: trained with another config than the current one; moved to "
              f"'<name>.stale' and trained again (the table, exports, speed and node run are redone)", flush=True)
        for rel in DERIVED:
            (out / rel).unlink(missing_ok=True)
    return stale


def state_classifier_stage(out: Path, mode: str) -> dict[str, Any]:
    """Train the crop classifier (``out/state_classifier``) on the demo's frames and its extra scenes.

    Its train split is the ``relevance_state`` labels of the demo's train frames plus the extra scenes'; val and
    test are the demo's own (DTLD's state shares).
    """
    from training.state_classifier.scenes import with_extra_train
    from training.state_classifier.train import Settings, train_state_classifier

    extra = out / CLASSIFIER_SCENES_DIR
    data = with_extra_train(out / STATE_DATA, extra / "data" / "yolo" / "data.yaml", extra / "data_with_demo.yaml")
    return train_state_classifier(data, out / "state_classifier", Settings(epochs=STATE_EPOCHS[mode]))


def state_stage(out: Path, records: dict[str, dict], exp: Experiment) -> dict[str, Any]:
    """Score the teacher's and the distilled student's light state with the classifier, as the nodes run them.

    Writes ``out/state.json`` and ``out/state_confusion_<role>.png``.
    """
    from training.experiment import weights_path
    from training.state_classifier.evaluate import node_state_metrics
    from training.state_metrics import plot_confusion

    result = {}
    for role, record in records.items():
        result[role] = node_state_metrics(weights_path(record, out / "experiment"), out / STATE_DATA,
                                          exp.evaluate.split, exp.eval_imgsz(),
                                          out / "state_classifier" / "state_classifier.onnx")
        plot_confusion(result[role], out / f"state_confusion_{role}.png", f"{role} + crop classifier")
    atomic_write_json(out / "state.json", result)
    return result


def export_stage(exp_out: Path, records: dict[str, dict], imgsz: int, out: Path) -> dict[str, Any]:
    """Export the distilled student (ONNX + OpenVINO) and the teacher (for the speed table); write exports.json."""
    from training.experiment import weights_path
    from training.export import export_model

    result = {}
    for role in ("student", "teacher"):
        w = weights_path(records[role], exp_out)
        manifest = export_model(w, formats=["onnx", "openvino"], imgsz=imgsz, device="cpu")
        result[role] = {"weights": str(w.relative_to(out)), "exports": {
            fmt: str((w.parent / e["path"]).relative_to(out)) for fmt, e in manifest["exports"].items()}}
    atomic_write_json(out / "exports.json", result)
    return result


def backend_latency(out: Path, exports: dict[str, Any], imgsz: int, reps: int) -> list[dict[str, Any]]:
    """CPU forward latency (ms, median, batch 1) per backend: PyTorch, ONNX Runtime, OpenVINO; FP16 size."""
    import numpy as np

    from training.evaluate import cpu_latency_ms, median_ms, model_cost

    x = np.zeros((1, 3, imgsz, imgsz), np.float32)
    rows = []
    for role, entry in exports.items():
        from ultralytics import YOLO

        model = YOLO(str(out / entry["weights"]), task="detect").model
        row = {"role": role, "model": Path(str(getattr(model, "yaml", {}).get("yaml_file", role))).stem,
               "fp16_mb": model_cost(model, imgsz)["fp16_mb"], "pytorch_ms": cpu_latency_ms(model, imgsz, reps)}
        if "onnx" in entry["exports"]:
            import onnxruntime as ort

            sess = ort.InferenceSession(str(out / entry["exports"]["onnx"]), providers=["CPUExecutionProvider"])
            name = sess.get_inputs()[0].name
            row["onnxruntime_ms"] = median_ms(lambda s=sess, n=name: s.run(None, {n: x}), reps, warmup=2)
        if "openvino" in entry["exports"]:
            import openvino as ov

            xml = next((out / entry["exports"]["openvino"]).glob("*.xml"))
            compiled = ov.Core().compile_model(str(xml), "CPU")
            row["openvino_ms"] = median_ms(lambda c=compiled: c(x), reps, warmup=2)
        rows.append(row)
    return rows


def bag_stage(out: Path, mode: str, exp: Experiment) -> dict[str, Any]:
    """Write a fresh held-out synthetic drive (its own seed, the experiment's scenes) as a rosbag2 (mcap).

    The drive is at a camera rate (:data:`BAG_HZ`); beside the bag, ``bag_truth.json`` holds the true state of
    the governing signal per frame, against which the node run scores the raw and revised signals.
    """
    from dataclasses import replace

    from training.data.synth import make_synthetic_dtld, write_drive_bag, write_drive_truth
    from training.experiment import synth_config

    cfg = replace(synth_config(exp.data), test_fraction=0.0, frame_interval_s=1.0 / BAG_HZ,
                  phase_s=BAG_PHASE_S, speed_mps=BAG_SPEED, truck_p=1.0)  # a truck hides the lights a while
    ds = make_synthetic_dtld(out / "bag_dtld", 1, BAG_FRAMES[mode], seed=4242, config=cfg, progress=True)
    write_drive_truth(ds, ds.sequences()[0], out / "bag_truth.json", resize_width=BAG_WIDTH[mode])
    n = write_drive_bag(ds, ds.sequences()[0], out / "bag", resize_width=BAG_WIDTH[mode])
    return {"frames": n, "hz": BAG_HZ}


def node_params(out: Path, role: str, model: Path, imgsz: int, reader: Path | None) -> Path:
    """Write the package's detector params for ``role`` with the demo's model, inference size and classifier.

    ``out/nodes/<role>.yaml`` runs the demo's model as it ran over the bag: ``--params-file`` is all a user adds.
    """
    params = read_yaml(REPO / "config" / f"{role}.yaml")
    params["/**"]["ros__parameters"]["model"] = str(model.resolve())
    params["/**"]["ros__parameters"]["imgsz"] = imgsz
    if reader is not None:
        params["/**"]["ros__parameters"]["state_model"] = str(reader.resolve())
    path = out / "nodes" / f"{role}.yaml"
    atomic_write_yaml(path, params)
    return path


def nodes_stage(out: Path, exports: dict[str, Any], imgsz: int, quick: bool, reader: Path | None) -> dict[str, Any]:
    """Replay the bag through student, teacher and comparison nodes (real processes, ``tools.bag_eval``)."""
    tool = "kd_traffic_light.tools.bag_eval"
    if importlib.util.find_spec(tool) is None or importlib.util.find_spec("rclpy") is None:
        atomic_write_json(out / "node_run" / "skipped.json", {"reason": f"{tool} or rclpy missing"})
        return {"status": "skipped (bag_eval or rclpy missing)"}
    student = (out / (exports["student"]["exports"].get("onnx") or exports["student"]["weights"])).resolve()
    teacher = (out / exports["teacher"]["weights"]).resolve()
    cmd = [sys.executable, "-m", tool, str(out / "bag"), "--student-model", str(student),
           "--teacher-model", str(teacher), "--out", str(out / "node_run"), "--device", "cpu",
           "--student-params", str(node_params(out, "student", student, imgsz, reader)),
           "--teacher-params", str(node_params(out, "teacher", teacher, imgsz, reader)), "--fps", "5"]
    if (out / "bag_truth.json").is_file():
        cmd += ["--truth", str(out / "bag_truth.json")]
    if quick:
        cmd += ["--startup-timeout", "120", "--pace-timeout", "30"]
    print(" ".join(cmd), flush=True)
    code = subprocess.run(cmd, check=False).returncode
    if not (out / "node_run" / "summary.json").is_file():
        raise RuntimeError(f"bag_eval wrote no summary.json (exit {code}); see {out / 'node_run' / 'logs'}")
    grid = frame_grid(out / "node_run" / "frames", out / "node_run" / "frames_grid.jpg")
    return {"status": "done" if code == 0 else f"done (bag_eval exit {code})", "grid": str(grid) if grid else None}


def frame_grid(frames_dir: Path, path: Path, n: int = 6, cols: int = 3, width: int = 480) -> Path | None:
    """Tile up to ``n`` evenly spaced annotated frames into one JPEG; None when there are none."""
    import cv2
    import numpy as np

    files = sorted(frames_dir.glob("*.jpg"))
    if not files:
        return None
    pick = [files[round(i * (len(files) - 1) / max(1, n - 1))] for i in range(min(n, len(files)))]
    tiles = []
    for f in pick:
        img = cv2.imread(str(f))
        tiles.append(cv2.resize(img, (width, round(img.shape[0] * width / img.shape[1]))))
    h = max(t.shape[0] for t in tiles)
    tiles = [cv2.copyMakeBorder(t, 0, h - t.shape[0], 0, 0, cv2.BORDER_CONSTANT) for t in tiles]
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)]
    cv2.imwrite(str(path), np.vstack(rows))
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    args = get_args_parser().parse_args(argv)
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    mode = "quick" if args.quick else "full"
    out = Path(args.out or ("runs/demo_quick" if args.quick else "runs/demo"))
    out.mkdir(parents=True, exist_ok=True)
    return run_demo(demo_experiment(args.config or DEMO_CONFIG, args.quick), out, mode, args.device, args.skip_nodes)


def demo_runs(exp: Experiment) -> tuple[dict[str, Run], dict[str, str]]:
    """Return the grid's runs by name and, per training stage key, its run's name (absent stages left out)."""
    from training import experiment as X

    runs = {r.name: r for r in X.plan_runs(exp)}
    names = {}
    for key, _, select in TRAIN_STAGES:
        match = next((n for n, r in runs.items() if select(r)), None)
        if match is not None:
            names[key] = match
    missing = [k for k in ("teacher", "baseline", "ours", "native") if k not in names]
    if missing:
        raise UsageError(f"{exp.source}: the demo grid has no run for {', '.join(missing)} (students 'n', "
                         "methods baseline / ours / native)")
    return runs, names


def run_demo(exp: Experiment, out: Path, mode: str, device: str = "cpu", skip_nodes: bool = False) -> int:
    """Every stage of the demo in order (docs/demo.md); writes ``out/REPORT.md``."""
    from training import experiment as X
    from training.report import write_report
    from training.state_classifier.scenes import extra_scenes

    exp_out, workers = out / "experiment", exp.workers
    runs, names = demo_runs(exp)
    only = set(names.values())
    imgsz = exp.eval_imgsz()
    set_aside_stale_data(out, exp)
    st = Stages(out, mode)
    stages: list[tuple[str, Callable[[], bool], Callable[[], Any]]] = [
        ("generate synthetic DTLD-format data", lambda: (exp_out / "data" / "dtld_done.json").is_file(),
         lambda: X.generate_synth(exp, exp_out, max(1, workers or 1))),
        ("convert DTLD -> YOLO", lambda: (exp_out / "data" / "done.json").is_file(),
         lambda: X.convert_data(exp, exp_out, max(1, workers or 1))),
    ]
    # two-class detectors get the crop classifier; a relevance_state experiment's detectors read the state
    reader = out / "state_classifier" / "state_classifier.onnx" if exp.data.classes == "relevance" else None
    if reader is not None:
        stages.append(("convert DTLD -> YOLO with light states (the state classifier's labels)",
                       lambda: (exp_out / "data" / "done_relevance_state.json").is_file(),
                       lambda: X.convert_data(exp, exp_out, max(1, workers or 1), classes="relevance_state")))
    data_yaml = exp_out / "data" / "yolo" / "data.yaml"
    set_aside_stale_runs(out, {n: runs[n] for n in names.values()}, data_yaml)
    for key, title, _ in TRAIN_STAGES:
        if key in names:
            run = runs[names[key]]
            stages.append((f"{title}: {run.name}", lambda n=run.name: _run_record(out, n) is not None,
                           lambda r=run: X.train_run(r, exp_out, data_yaml, device, workers)))
    stages.append(("evaluate all on the held-out split", lambda: (exp_out / "results.json").is_file() and all(
        X.eval_cache(exp_out, n, exp.evaluate.split, imgsz).is_file() for n in only),
        lambda: X.run_experiment(exp, exp_out, device, workers, only=only)))
    if reader is not None:
        stages.append(("generate the state classifier's extra scenes (every state as often)",
                       lambda: (out / CLASSIFIER_SCENES_DIR / "data" / "done.json").is_file(),
                       lambda: extra_scenes(exp, out / CLASSIFIER_SCENES_DIR, CLASSIFIER_SCENES[mode],
                                            max(1, workers or 1))))
        stages.append(("train the state classifier (crops of the lights)",
                       lambda: (out / "state_classifier" / "metrics.json").is_file(),
                       lambda: state_classifier_stage(out, mode)))
        stages.append(("light state of teacher and distilled student with the classifier",
                       lambda: (out / "state.json").is_file(), lambda: state_stage(out, {
                           "teacher": _run_record(out, names["teacher"]),
                           "student": _run_record(out, names["ours"])}, exp)))
    stages.append(("export the distilled student (ONNX, OpenVINO) and the teacher",
                   lambda: (out / "exports.json").is_file(), lambda: export_stage(exp_out, {
                       "student": _run_record(out, names["ours"]), "teacher": _run_record(out, names["teacher"])},
                       imgsz, out)))
    stages.append(("speed per backend", lambda: (out / "speed.json").is_file(), lambda: atomic_write_json(
        out / "speed.json", backend_latency(out, read_json(out / "exports.json"), imgsz,
                                            max(3, exp.evaluate.latency_reps)))))
    stages.append(("write a synthetic drive bag", lambda: (out / "bag" / "metadata.yaml").is_file(),
                   lambda: bag_stage(out, mode, exp)))
    if not skip_nodes:
        stages.append(("replay through student, teacher and comparison nodes",
                       lambda: (out / "node_run" / "summary.json").is_file(),
                       lambda: nodes_stage(out, read_json(out / "exports.json"), imgsz, mode == "quick", reader)))
    t_all = time.perf_counter()
    for i, (title, done, fn) in enumerate(stages, start=1):
        st.run(title, done, fn, i, len(stages))
    st.state["total_seconds_this_invocation"] = round(time.perf_counter() - t_all, 1)
    st._save()
    report = write_report(out, exp, names)
    print(f"\n==== report: {report} ====", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
