"""Launch files, params files and the RViz config, read as text/YAML (launch and rviz2 cannot run here).

Checks that every executable, launch argument, parameter and file they name exists, that params files are
keyed `/**:` with values of the types the nodes declare, and that setup.py's data_files install them (the
``dist`` fixture, test/conftest.py). How ``resources.share_path`` finds them: test/test_resources.py.
"""

import ast
import sys
from dataclasses import MISSING, fields
from pathlib import Path

import pytest
import yaml

from kd_traffic_light import resources
from kd_traffic_light.core.config import ComparisonConfig, DetectorConfig, NodeConfig, TrackingConfig

REPO = Path(__file__).resolve().parent.parent
LAUNCH_FILES = ["detector.launch.py", "teacher_student.launch.py"]
DETECTOR_PARAMS = {f.name: f.default for f in fields(DetectorConfig) + fields(NodeConfig) + fields(TrackingConfig)}
COMPARISON_PARAMS = {f.name: f.default for f in fields(ComparisonConfig)}
ROS_PARAMS = {"use_sim_time"}
MODEL_ARGS = {"detector.launch.py": {"model"}, "teacher_student.launch.py": {"student_model", "teacher_model"}}
REQUIRED_ARGS = {
    "detector.launch.py": {"params_file", "model", "image_topic", "namespace", "use_sim_time", "input_transport",
                           "rviz"},
    "teacher_student.launch.py": {"bag", "rviz", "use_sim_time", "image_topic", "input_transport",
                                  "student_model", "teacher_model"},
}


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and (getattr(n.func, "id", None) == name or getattr(n.func, "attr", None) == name)]


def _kw(call: ast.Call, key: str):
    for kw in call.keywords:
        if kw.arg == key:
            return kw.value
    return None


def _str_args(call: ast.Call) -> list[str]:
    return [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]


def _tree(name: str) -> ast.AST:
    return ast.parse((REPO / "launch" / name).read_text())


def _installed(dist) -> dict[str, list[str]]:
    return {dest: list(files) for dest, files in dist.data_files}


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_launch_arguments_declared_described_and_used(name):
    tree = _tree(name)
    declared = {}
    for call in _calls(tree, "DeclareLaunchArgument"):
        (arg,) = _str_args(call)[:1]
        desc = _kw(call, "description")
        assert isinstance(desc, ast.Constant) and len(desc.value) > 10, f"{name}: argument {arg} has no description"
        if arg not in MODEL_ARGS[name]:
            assert _kw(call, "default_value") is not None, f"{name}: argument {arg} has no default"
        declared[arg] = call
    assert REQUIRED_ARGS[name] <= set(declared), f"{name} lacks {REQUIRED_ARGS[name] - set(declared)}"
    used = {s for call in _calls(tree, "LaunchConfiguration") for s in _str_args(call)}
    assert used <= set(declared), f"{name} uses undeclared arguments {used - set(declared)}"
    assert set(declared) <= used, f"{name} declares unused arguments {set(declared) - used}"


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_model_arguments_are_required(name):
    """No default: `ros2 launch` refuses to start without them and names the argument (launch's own check).

    Without this the nodes start on the params file's placeholder model, exit 1, and launch still returns 0.
    """
    tree = _tree(name)
    calls = {_str_args(c)[0]: c for c in _calls(tree, "DeclareLaunchArgument")}
    for arg in MODEL_ARGS[name]:
        assert _kw(calls[arg], "default_value") is None, f"{name}: {arg} must have no default_value"
        assert _kw(calls[arg], "description").value.startswith("REQUIRED"), f"{name}: {arg}"
    # every detector gets the model argument as its 'model' parameter, with no alternative without it
    detectors = [c for c in _calls(tree, "Node") if "detector" in ast.dump(c) and "rviz" not in ast.dump(c)]
    assert detectors and all(_kw(c, "condition") is None for c in detectors), name
    text = (REPO / "launch" / name).read_text()
    assert '"model": ParameterValue(model, value_type=str)' in text


def test_package_xml_declares_what_the_bag_mode_runs():
    import xml.etree.ElementTree as ET

    deps = {e.text for e in ET.parse(REPO / "package.xml").getroot().iter("exec_depend")}
    assert {"ros2bag", "rosbag2_storage_mcap", "launch", "launch_ros", "vision_msgs"} <= deps


def _executables(tree: ast.AST) -> set[tuple[str, str]]:
    """(package, executable) of every Node(...) and of every Node keyword dict ({"package": ..., ...})."""
    consts = {t.id: n.value.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
              for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)}

    def value(node):
        return consts.get(node.id) if isinstance(node, ast.Name) else getattr(node, "value", None)

    found = set()
    for call in _calls(tree, "Node"):
        if _kw(call, "executable") is not None:
            found.add((value(_kw(call, "package")), value(_kw(call, "executable"))))
    for d in (n for n in ast.walk(tree) if isinstance(n, ast.Dict)):
        items = {k.value: v for k, v in zip(d.keys, d.values) if isinstance(k, ast.Constant)}
        if "executable" in items:
            found.add((value(items["package"]), value(items["executable"])))
    return found


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_launch_executables_exist_and_are_installed(name, dist):
    scripts = {s.split("=")[0].strip(): s.split("=")[1].strip() for s in dist.entry_points["console_scripts"]}
    found = _executables(_tree(name))
    assert ("kd_traffic_light", "detector_node") in found and ("rviz2", "rviz2") in found
    for package, executable in found - {("rviz2", "rviz2")}:
        assert package == "kd_traffic_light", f"{name}: unexpected package {package}"
        assert executable in scripts, f"{name}: executable {executable} is not a console script in setup.py"
        module = scripts[executable].split(":")[0]
        assert (REPO / (module.replace(".", "/") + ".py")).is_file(), module
    if name == "teacher_student.launch.py":
        assert ("kd_traffic_light", "comparison_node") in found


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_launch_parameter_names_and_files_exist(name, dist):
    tree = _tree(name)
    known = set(DETECTOR_PARAMS) | set(COMPARISON_PARAMS) | ROS_PARAMS
    for d in (n for n in ast.walk(tree) if isinstance(n, ast.Dict)):
        keys = {k.value for k in d.keys if isinstance(k, ast.Constant)}
        if keys & {"package", "executable"}:
            continue  # Node keyword dicts, not parameters
        assert keys <= known, f"{name}: unknown parameters {keys - known}"
    installed_config = {Path(f).name for f in _installed(dist)["share/kd_traffic_light/config"]}
    text = (REPO / "launch" / name).read_text()
    referenced = [c for c in ["student.yaml", "teacher.yaml", "comparison.yaml", "kd_traffic_light.rviz",
                              "fastdds_large_frames.xml"]
                  if f'"{c}"' in text]
    assert referenced, name
    for cfg in referenced:
        assert (REPO / "config" / cfg).is_file() and cfg in installed_config, cfg
    assert "get_package_share_directory" in text and "FASTDDS_BUILTIN_TRANSPORTS" in text
    assert "fastdds_large_frames.xml" in installed_config and "FASTDDS_DEFAULT_PROFILES_FILE" in text
    assert f"launch/{name}" in _installed(dist)["share/kd_traffic_light/launch"]


def test_teacher_student_plays_bag_with_clock_and_namespaces():
    tree = _tree("teacher_student.launch.py")
    (play,) = _calls(tree, "ExecuteProcess")
    cmd = [e.value for e in _kw(play, "cmd").elts if isinstance(e, ast.Constant)]
    assert cmd[:3] == ["ros2", "bag", "play"] and "--clock" in cmd
    namespaces = set()
    for call in _calls(tree, "Node"):
        ns = _kw(call, "namespace")
        if isinstance(ns, ast.Constant):
            namespaces.add((ns.value, _kw(call, "name").value))
    assert ("/comparison", "comparison") in namespaces
    text = (REPO / "launch" / "teacher_student.launch.py").read_text()
    assert 'f"/{role}"' in text and '"student"' in text and '"teacher"' in text


@pytest.mark.parametrize(("name", "params"), [("student.yaml", DETECTOR_PARAMS), ("teacher.yaml", DETECTOR_PARAMS),
                                              ("comparison.yaml", COMPARISON_PARAMS)])
def test_params_files_keyed_wildcard_with_declared_types(name, params):
    data = yaml.safe_load((REPO / "config" / name).read_text())
    assert list(data) == ["/**"], f"{name} must be keyed '/**:'"
    assert list(data["/**"]) == ["ros__parameters"]
    values = data["/**"]["ros__parameters"]
    assert set(values) == set(params), f"{name}: {set(values) ^ set(params)}"
    for key, value in values.items():
        default = params[key]
        # rclpy rejects a value whose type differs from the declared default's type
        expected = str if default is MISSING else list if isinstance(default, tuple) else type(default)
        assert type(value) is expected, f"{name}: {key}={value!r} is not {expected.__name__}"
    if name != "comparison.yaml":
        DetectorConfig(**{k: values[k] for k in (f.name for f in fields(DetectorConfig))})
        NodeConfig(**{k: values[k] for k in (f.name for f in fields(NodeConfig))})
        TrackingConfig(**{k: values[k] for k in (f.name for f in fields(TrackingConfig))})
    else:
        ComparisonConfig(**values)


def test_rviz_config_has_best_effort_image_displays():
    data = yaml.safe_load((REPO / "config" / "kd_traffic_light.rviz").read_text())
    images = [d for d in data["Visualization Manager"]["Displays"] if d["Class"] == "rviz_default_plugins/Image"]
    topics = {d["Topic"]["Value"] for d in images}
    assert topics == {"/camera/image_raw", "/student/detector/debug_image", "/teacher/detector/debug_image",
                      "/comparison/comparison/overlay"}
    assert all(d["Topic"]["Reliability Policy"] == "Best Effort" for d in images)


def test_comparison_node_accepts_its_params_file(tmp_path):
    """rclpy itself parses the `/**:` file and accepts every value's type (else it exits with an error)."""
    from diagnostic_msgs.msg import DiagnosticArray

    from test.nodes import ros_helpers as rh

    env = rh.ros_env(tmp_path, rh.domain_id(__name__))
    log = tmp_path / "comparison.log"
    params = resources.share_path("config", "comparison.yaml")
    proc = rh.start_node("kd_traffic_light.comparison_node",
                         ["--ros-args", "--params-file", str(params), "-r", "__ns:=/comparison",
                          "-p", "diagnostics_period_s:=0.2"], env, log)
    try:
        with rh.RosTestNode("params_probe", env) as probe:
            diags = probe.subscribe("/diagnostics", DiagnosticArray)
            assert probe.wait_for(lambda: diags, timeout=30), rh.read_log(log)
            assert diags[0].status[0].name == "/comparison/comparison: student vs teacher"
    finally:
        rc = rh.stop(proc)
    assert rc == 0, rh.read_log(log)
    assert "window 100" in rh.read_log(log)


def test_detector_runs_as_the_launch_file_starts_it(tmp_path):
    """The launch file's command: installed student.yaml + model:= + remapped image; and the placeholder fails."""
    import subprocess

    import numpy as np
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray

    from test.core.lean_models import make_constant_onnx
    from test.nodes import ros_helpers as rh

    model = make_constant_onnx(tmp_path / "student.onnx")
    env = rh.ros_env(tmp_path, rh.domain_id(__name__ + "detector_launch"))
    params = resources.share_path("config", "student.yaml")
    base = [sys.executable, "-m", "kd_traffic_light.detector_node", "--ros-args", "--params-file", str(params),
            "-r", "__ns:=/student", "-r", "__node:=detector", "-r", "image:=/camera/image_raw"]
    placeholder = subprocess.run(base, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert placeholder.returncode == 1 and "models/student.onnx" in placeholder.stdout + placeholder.stderr
    log = tmp_path / "detector.log"
    proc = rh.start_node("kd_traffic_light.detector_node", base[3:] + ["-p", f"model:={model}"], env, log)
    try:
        with rh.RosTestNode("launch_probe", env) as probe:
            got = probe.subscribe("/student/detector/detections", Detection2DArray)
            pub = probe.publisher("/camera/image_raw", Image, rh.RELIABLE)
            proc = rh.node_matched(proc, pub, log)
            msg = Image(height=64, width=128, encoding="bgr8", step=384, data=np.zeros(64 * 384, np.uint8).tobytes())
            msg.header.stamp.sec, msg.header.frame_id = 42, "camera"
            for _ in range(5):
                pub.publish(msg)
                if probe.wait_for(lambda: got, timeout=5):
                    break
            assert got and len(got[0].detections) == 2, rh.read_log(log)
    finally:
        rc = rh.stop(proc)
    assert rc == 0, rh.read_log(log)
