"""``python -m training experiment --launcher ray``: the grid on a real local Ray (2 CPUs), next to the local launcher.

The slow tests share one tiny real grid (imgsz 32, 4 images, 1 epoch; teachers 2 epochs): 2 teachers, a student
with 2 methods (baseline and KD from each teacher) x 2 seeds = 8 runs in 2 tiers. It runs once sequentially and
once on Ray, where the worker of one teacher run is killed after its first checkpoint (the KILL_ONCE_ENV hook).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from test.model_factory import write_tiny_yolo_dataset
from test.seeds import seed
from training import experiment as X
from training.errors import RunError, UsageError
from training.experiment import ray_launcher as R
from training.experiment.evaluation import eval_cache

KILLED = f"teacher_s_seed{seed(0)}"
TIMING = {"train_s", "cpu_latency_ms"}  # wall-clock figures: differ between any two invocations


def _grid(data_yaml: Path) -> dict:
    return {
        "data": {"source": "yolo", "yaml": str(data_yaml)},
        "train": {"epochs": 1, "imgsz": 32, "batch": 4, "plots": False, "amp": False, "warmup_epochs": 0,
                  "mosaic": 0.0},
        "teacher_train": {"epochs": 2},  # the killed teacher resumes its second epoch from last.pt
        "teachers": {"s": "yolov5n.yaml", "t": "yolov5n.yaml"},
        "students": {"c": "training/configs/models/yolov5n-coupled.yaml"},
        "methods": {"baseline": None, "kd": {"distill": {"terms": {"response": {"weight": 1.0}}}}},
        "seeds": [seed(0), seed(1)], "teacher_seeds": [seed(0)],
        "device": "cpu", "workers": 0, "resources": {"cpus": 1, "gpus": 0},
        "evaluate": {"imgsz": 32, "batch": 4, "latency_reps": 1, "device": "cpu"},
    }


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny experiment, resolved, and a directory for its outputs."""
    root = tmp_path_factory.mktemp("ray_grid")
    data = write_tiny_yolo_dataset(root / "data", n_train=4, n_val=2, size=32)
    path = root / "exp.yaml"
    path.write_text(yaml.safe_dump(_grid(data), sort_keys=False))
    return {"exp": X.load_experiment(path), "root": root}


@pytest.fixture(scope="module")
def sequential(grid: dict) -> dict:
    """The grid run by the local (sequential) launcher."""
    return X.run_experiment(grid["exp"], grid["root"] / "seq")


@pytest.fixture(scope="module")
def on_ray(grid: dict) -> dict:
    """The grid run on a local Ray with 2 CPUs; KILLED's worker process dies once after its first checkpoint."""
    flag = grid["root"] / "killed.flag"
    os.environ[R.KILL_ONCE_ENV] = f"{KILLED}:{flag}"
    try:
        result = X.run_experiment(grid["exp"], grid["root"] / "ray", launcher="ray", retries=2)
    finally:
        del os.environ[R.KILL_ONCE_ENV]
    return {**result, "flag": flag, "out": grid["root"] / "ray"}


def _span(out: Path, name: str) -> tuple[float, float]:
    """Start (its config written by train_run) and end (results.json written) of a run, as file times."""
    return (out / "configs" / f"{name}.yaml").stat().st_mtime, (out / "runs" / name / "results.json").stat().st_mtime


@pytest.mark.slow
def test_ray_grid_runs_two_at_once_and_matches_the_sequential_launcher(grid, sequential, on_ray):
    out = on_ray["out"]
    names = [r["name"] for r in on_ray["runs"]]
    assert len(names) == 8 and names == [r["name"] for r in sequential["runs"]]
    spans = {n: _span(out, n) for n in names}
    assert any(a != b and spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1] for a in names for b in names)
    for name in names:  # a student starts only once its teacher finished
        for t in ("s", "t"):
            if f"_from_{t}_" in name:
                assert spans[f"teacher_{t}_seed{seed(0)}"][1] <= spans[name][0], name
    seq_out = str(out.parent / "seq")
    for a, b in zip(sequential["runs"], on_ray["runs"]):
        assert set(a) == set(b)
        # scores are left out here: each launcher's weights took their own trajectory (the killed teacher resumed,
        # thread counts differ); they are checked below against each side's own evaluation
        for key in set(a) - TIMING - {k for k in a if "map" in k}:
            want = a[key].replace(seq_out, str(out)) if isinstance(a[key], str) else a[key]
            assert b[key] == (pytest.approx(want, rel=1e-6) if isinstance(want, float) else want), key
    exp = grid["exp"]
    for rows, root in ((sequential["runs"], Path(seq_out)), (on_ray["runs"], out)):
        for row in rows:  # the scores in a row are those its launcher's own weights got, read from their evaluation
            cached = json.loads(eval_cache(root, row["name"], exp.evaluate.split, exp.eval_imgsz()).read_text())
            scores = {k: v for k, v in row.items() if "map" in k}
            assert scores and scores == {k: cached[k] for k in scores}, row["name"]
    seq_md = (Path(sequential["files"]["results_md"])).read_text().splitlines()
    ray_md = (Path(on_ray["files"]["results_md"])).read_text().splitlines()
    assert len(seq_md) == len(ray_md) and seq_md[:3] == ray_md[:3]  # title, header, rule
    assert [r.split("|")[1:4] for r in seq_md[3:]] == [r.split("|")[1:4] for r in ray_md[3:]]
    for name in ("results.json", "runs.json", "map_vs_flops.png", "curves.png"):
        assert (out / name).is_file(), name


@pytest.mark.slow
def test_killed_worker_is_retried_and_resumes_from_its_checkpoint(on_ray):
    from training import checkpoints

    assert on_ray["flag"].is_file()  # the hook did kill the worker of KILLED once
    run = on_ray["out"] / "runs" / KILLED
    assert checkpoints.is_complete(run)[0]
    assert len(X.csv_rows(run / "results.csv")) == 2  # both epochs, the second one resumed


@pytest.mark.slow
def test_second_invocation_skips_every_run_whatever_launcher_ran_them(grid, sequential, on_ray):
    stamps = {p: p.stat().st_mtime_ns for p in (on_ray["out"] / "runs").rglob("*") if p.suffix in (".pt", ".json")}
    again = X.run_experiment(grid["exp"], on_ray["out"], launcher="ray")
    assert stamps == {p: p.stat().st_mtime_ns for p in stamps}
    assert again["groups"] == on_ray["groups"]
    seq_stamps = {p: p.stat().st_mtime_ns for p in (grid["root"] / "seq" / "runs").rglob("*.pt")}
    X.run_experiment(grid["exp"], grid["root"] / "seq", launcher="ray")  # Ray skips the local launcher's runs
    assert seq_stamps == {p: p.stat().st_mtime_ns for p in seq_stamps}


def test_tiers_put_teachers_before_their_students():
    def run(name: str, **kw) -> X.Run:
        return X.Run(name=name, role="student", model="m.yaml", label="n", method="m", seed=0, config={}, **kw)

    runs = [run("teacher_a"), run("x", kd=True, teacher_run="teacher_a"), run("y", kd=False, teacher_run=None),
            run("z", kd=True, teacher_run="gone")]
    assert [[r.name for r in tier] for tier in R.tiers(runs)] == [["teacher_a", "y", "z"], ["x"]]


@pytest.mark.parametrize("resources, key", [({"cpus": 0}, "resources.cpus"), ({"gpus": 1.5}, "resources.gpus"),
                                            ({"gpu": 1}, "gpu")])
def test_resources_are_validated(tmp_path, resources, key):
    cfg = {"data": {"source": "yolo", "yaml": "d.yaml"}, "students": {"n": "yolov5n.yaml"}, "resources": resources}
    path = tmp_path / "exp.yaml"
    path.write_text(json.dumps(cfg))
    with pytest.raises(UsageError, match=key):
        X.load_experiment(path)


def test_defaults_and_flag_errors(tmp_path):
    cfg = {"data": {"source": "yolo", "yaml": "d.yaml"}, "students": {"n": "yolov5n.yaml"}}
    path = tmp_path / "exp.yaml"
    path.write_text(json.dumps(cfg))
    assert X.load_experiment(path).resources == X.Resources(cpus=1, gpus=0)
    with pytest.raises(RunError, match="--address 127.0.0.1:1"):
        R.connect("127.0.0.1:1")
    with pytest.raises(UsageError, match="--device 0"):
        R.train_all_ray({"resources": {"cpus": 1, "gpus": 0}}, [], tmp_path, tmp_path / "d.yaml", "0", None)


def test_cli_refuses_ray_flags_with_the_local_launcher(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "training", "experiment", "--config", str(tmp_path / "x.yaml"),
                           "--address", "auto"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "--launcher ray" in proc.stderr
