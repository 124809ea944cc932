"""Node parameters of the wrong type or range: one line naming each, exit status 1, no traceback.

The real node processes are started with each bad parameter (several at once, they exit within seconds);
an integer for a double (``conf:=1``) must simply work.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from kd_traffic_light.core.config import ComparisonConfig, ConfigError, DetectorConfig, NodeConfig, type_problems
from test.nodes import ros_helpers as rh

DETECTOR = "kd_traffic_light.detector_node"
COMPARISON = "kd_traffic_light.comparison_node"

# (node, parameters, {parameter: words its line must hold})
CASES = [
    (DETECTOR, ["conf:=abc"], {"conf": "'abc' (string) is invalid: expected a float in [0, 1]"}),
    (DETECTOR, ["imgsz:=64.0"], {"imgsz": "64.0 (float) is invalid: expected an integer multiple of 32"}),
    (DETECTOR, ["model:=5"], {"model": "5 (integer) is invalid: expected a non-empty path"}),
    (DETECTOR, ["autostart:=maybe"], {"autostart": "'maybe' (string) is invalid: expected a boolean"}),
    (DETECTOR, ["image_topics:=image"], {"image_topics": "'image' (string) is invalid: expected a non-empty list"}),
    (DETECTOR, ["image_topics:=[]"], {"image_topics": "has no value"}),
    (DETECTOR, ["conf:=abc", "iou:=2.0", "max_det:=true"],
     {"conf": "expected a float in [0, 1]", "iou": "2.0 (float) is invalid", "max_det": "True (bool) is invalid"}),
    (DETECTOR, ["conf:=1.5"], {"conf": "1.5 (float) is invalid: expected a float in [0, 1]"}),  # range, at configure
    (COMPARISON, ["window:=abc"], {"window": "'abc' (string) is invalid: expected an integer >= 1"}),
    (COMPARISON, ["cache_size:=2.0", "publish_overlay:=maybe"],
     {"cache_size": "2.0 (float) is invalid", "publish_overlay": "expected a boolean"}),
    (COMPARISON, ["student_detections:=5"], {"student_detections": "5 (integer) is invalid"}),
]


def run_node(module: str, params: list[str], env: dict, model: str, timeout: float = 60.0):
    args = [sys.executable, "-m", module, "--ros-args"]
    if module == DETECTOR and not any(p.startswith("model:=") for p in params):
        args += ["-p", f"model:={model}"]
    for p in params:
        args += ["-p", p]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def results(tmp_path_factory, constant_onnx):
    """Run every case's node at once (3 at a time); return {case index: CompletedProcess}."""
    env = rh.ros_env(tmp_path_factory.mktemp("param_faults"), rh.domain_id(__name__))
    with ThreadPoolExecutor(3) as pool:
        futures = {i: pool.submit(run_node, module, params, env, str(constant_onnx[0]))
                   for i, (module, params, _) in enumerate(CASES)}
        return {i: f.result() for i, f in futures.items()}


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{m.split('.')[-1]}:{','.join(p)}" for m, p, _ in CASES])
def test_bad_parameter_one_line_each_and_exit_1(results, index):
    _, params, expected = CASES[index]
    r = results[index]
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "Traceback" not in out and "Exception" not in out, out
    for name, words in expected.items():
        lines = [line for line in out.splitlines() if f"parameter '{name}'" in line]
        assert len(lines) == 1, out
        assert words in lines[0], out
    named = [line for line in out.splitlines() if "parameter '" in line]
    assert len(named) == len(expected), out  # one line per bad parameter, none for the good ones


@pytest.mark.slow
def test_integer_for_a_double_starts_and_configures(tmp_path, constant_onnx):
    env = rh.ros_env(tmp_path, rh.domain_id(__name__ + "int"))
    log = tmp_path / "detector.log"
    proc = rh.start_node(DETECTOR, ["--ros-args", "-p", f"model:={constant_onnx[0]}", "-p", "conf:=1",
                                    "-p", "max_image_age_s:=0"], env, log)
    try:
        assert rh.wait_until(lambda: "active:" in rh.read_log(log) or proc.poll() is not None, 60), rh.read_log(log)
        assert proc.poll() is None, rh.read_log(log)
    finally:
        rc = rh.stop(proc)
    assert rc == 0, rh.read_log(log)
    assert "error" not in rh.read_log(log).lower()


# ---------------------------------------------------------------- the same rules in-process (the config builder)
@pytest.mark.parametrize(
    ("cls", "values", "name"),
    [(DetectorConfig, {"conf": "abc"}, "conf"), (DetectorConfig, {"imgsz": 64.0}, "imgsz"),
     (DetectorConfig, {"model": 5}, "model"), (NodeConfig, {"autostart": "maybe"}, "autostart"),
     (NodeConfig, {"image_topics": "image"}, "image_topics"), (NodeConfig, {"image_topics": None}, "image_topics"),
     (ComparisonConfig, {"window": "abc"}, "window"), (ComparisonConfig, {"iou_threshold": True}, "iou_threshold")],
)
def test_type_problems_name_the_parameter_and_the_expectation(cls, values, name):
    (line,) = type_problems(cls, values).values()
    assert line.startswith(f"parameter '{name}' ") and ": expected " in line
    with pytest.raises(ConfigError, match=f"parameter '{name}'"):
        cls(**({"model": "m.onnx"} if cls is DetectorConfig and name != "model" else {}), **values)


def test_integers_are_taken_for_doubles():
    assert type_problems(DetectorConfig, {"conf": 1, "iou": 0}) == {}
    cfg = DetectorConfig(model="m.onnx", conf=1, iou=0)
    assert (cfg.conf, cfg.iou) == (1.0, 0.0) and isinstance(cfg.conf, float)
    assert ComparisonConfig(pair_timeout_s=2).pair_timeout_s == 2.0


@pytest.mark.parametrize("module", [DETECTOR, COMPARISON])
def test_malformed_ros_arguments_one_line_and_exit_1(tmp_path, module):
    """A parameter rule rcl cannot parse (a list of mixed types) fails before any node exists: still one line."""
    env = rh.ros_env(tmp_path, rh.domain_id(__name__ + module))
    r = run_node(module, ["image_topics:=['a', 1]"], env, "unused.onnx")
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "Traceback" not in out, out
    (line,) = [line for line in out.splitlines() if "invalid ROS arguments" in line]
    assert "image_topics:=['a', 1]" in line and "same type" in line, out
