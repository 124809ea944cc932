"""Suite-wide settings: hermetic, offline, isolated from other ROS 2 runs on the machine; the test tiers.

Tiers (markers, registered in pyproject.toml), applied here by where a test lives and what its module
imports, so a new test file needs no marker of its own:

- ``ros``: under ``test/nodes``, or its module imports rclpy, launch, a ROS message package or
  ``test.nodes`` (the node helpers) anywhere.
- ``training``: under ``test/training`` or ``test/benchmarks``, or its module imports ``training``,
  torch or ultralytics (``pytest.importorskip`` of them included; in ``test/core`` and ``test/nodes``
  only at import time, see :func:`tiers`).
- A module may also declare a tier itself: ``pytestmark = pytest.mark.training``.
- ``slow``: set by the test itself (end-to-end runs).

Where torch or ultralytics is not importable (the runtime-only venv, a vehicle's ``colcon test``), the
``training`` tier is not collected at all, and the report header says so.
"""

import ast
import importlib.util
import os
import random
import tempfile
from functools import cache
from pathlib import Path

import pytest

from kd_traffic_light.tools.processes import fastdds_profile

TEST_DIR = Path(__file__).resolve().parent
ROS_IMPORTS = ("rclpy", "launch", "launch_ros", "launch_testing", "rosidl_runtime_py", "rosbag2_py",
               "builtin_interfaces", "vision_msgs", "test.nodes")
TRAINING_IMPORTS = ("training", "torch", "ultralytics")
TIER_DIRS = {"nodes": "ros", "training": "training", "benchmarks": "training"}
RUNTIME_DIRS = ("core", "nodes")

# Set before anything imports ultralytics or rclpy, and inherited by every subprocess a test starts.
os.environ["YOLO_AUTOINSTALL"] = "false"
os.environ["YOLO_OFFLINE"] = "1"
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="kd_yolo_cfg_"))
# the shipped Fast DDS profile without TCP, as for every process the project starts itself (docs/runtime.md)
os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = fastdds_profile(tcp=False)
os.environ["FASTDDS_BUILTIN_TRANSPORTS"] = "LARGE_DATA"  # where the profile cannot load
os.environ.pop("ROS_AUTOMATIC_DISCOVERY_RANGE", None)
# One DDS domain per test run, so parallel runs on this machine never see each other's topics.
os.environ["ROS_DOMAIN_ID"] = str(random.Random(os.getpid()).randint(1, 100))
os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="kd_ros_log_"))


@pytest.fixture(autouse=True)
def _yolo_config_dir(request, monkeypatch):
    """A training-tier test keeps Ultralytics' settings in its own directory (in-process and in the subprocesses it
    starts), so no test reads settings that another one wrote."""
    if request.node.get_closest_marker("training"):
        monkeypatch.setenv("YOLO_CONFIG_DIR", str(request.getfixturevalue("tmp_path") / "yolo_cfg"))


@pytest.fixture(scope="session")
def constant_onnx(tmp_path_factory):
    """A real ONNX model whose raw output is two known boxes (built without torch: test/core/lean_models.py).

    Returns ``(path, expected)`` where ``expected`` holds the boxes in pixels of a 2048x1024 frame. Torch-free,
    so the runtime-only venv's core and node tests use the same fixture.
    """
    from test.core.lean_models import make_constant_onnx

    path = make_constant_onnx(tmp_path_factory.mktemp("models") / "constant.onnx")  # lean_models.BOXES
    # letterbox 2048x1024 -> 640x320 (scale 0.3125) padded to 640x640 (160 px top): x / 0.3125, (y - 160) / 0.3125
    expected = [(992.0, 448.0, 1056.0, 576.0, 0), (304.0, 256.0, 336.0, 320.0, 1)]
    return path, expected


@pytest.fixture(scope="session")
def untrained_pt(tmp_path_factory):
    """An untrained YOLOv5n model file of the package's classes, built from its yaml (test/model_factory.py).

    Needs torch and ultralytics (imported when the fixture runs, not when this file is loaded). Read-only.
    """
    from test.model_factory import make_untrained_pt

    return make_untrained_pt(tmp_path_factory.mktemp("models") / "yolov5n_untrained.pt")


@pytest.fixture(scope="session")
def dist():
    """setup.py evaluated up to its setup() call (data_files globs resolve against the repository)."""
    from distutils.core import run_setup

    cwd = Path.cwd()
    try:
        os.chdir(TEST_DIR.parent)
        return run_setup("setup.py", stop_after="init")
    finally:
        os.chdir(cwd)


# ------------------------------------------------------------------------------------------ tiers
def _walk(node: ast.AST, top_level: bool):
    """``ast.walk``, but with ``top_level`` not entering functions and classes (code run at import only)."""
    todo = [node]
    while todo:
        n = todo.pop()
        yield n
        if top_level and isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        todo.extend(ast.iter_child_nodes(n))


def _imported(tree: ast.Module, top_level: bool) -> set[str]:
    """Modules imported (``import``, ``from``, ``pytest.importorskip("...")``), at import time or anywhere."""
    names = set()
    for node in _walk(tree, top_level):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "importorskip" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value)
    return names


def _declared(tree: ast.Module) -> set[str]:
    """Tiers a module declares itself with ``pytestmark = pytest.mark.<tier>`` (or a list of marks)."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "pytestmark" for t in node.targets):
            return {tier for tier in ("ros", "training") if f"mark.{tier}" in ast.unparse(node.value)}
    return set()


def _matches(name: str, roots: tuple[str, ...], msgs: bool = False) -> bool:
    """Whether module ``name`` is one of ``roots`` or inside one (or, with ``msgs``, a ``*_msgs`` package)."""
    return any(name == r or name.startswith(f"{r}.") for r in roots) or (msgs and name.split(".")[0].endswith("_msgs"))


@cache
def tiers(module: Path) -> frozenset[str]:
    """The tier markers of the tests in ``module``.

    Imports anywhere in the module count, except that for ``training`` in the runtime tier's own
    directories (``test/core``, ``test/nodes``) only imports at import time do: their tests skip what
    needs torch themselves, and one that imports torch inside itself (e.g. to check it is absent) is
    not thereby a training test.
    """
    rel = module.relative_to(TEST_DIR).parts
    tree = ast.parse(module.read_text(encoding="utf-8"), str(module))
    found = {TIER_DIRS[rel[0]]} if len(rel) > 1 and rel[0] in TIER_DIRS else set()
    found |= _declared(tree)
    if any(_matches(n, ROS_IMPORTS, msgs=True) for n in _imported(tree, top_level=False)):
        found.add("ros")
    if any(_matches(n, TRAINING_IMPORTS) for n in _imported(tree, top_level=rel[0] in RUNTIME_DIRS)):
        found.add("training")
    return frozenset(found)


def _training_stack() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "ultralytics"))


TRAINING_STACK = _training_stack()
# Paths relative to this directory; pytest reads the name at collection.
collect_ignore = [] if TRAINING_STACK else sorted(
    [d for d, tier in TIER_DIRS.items() if tier == "training"]
    + [p.relative_to(TEST_DIR).as_posix() for p in TEST_DIR.rglob("test_*.py")
       if p.relative_to(TEST_DIR).parts[0] not in TIER_DIRS and "training" in tiers(p)])


def pytest_report_header(config):
    from test.seeds import ENV, SHIFT

    lines = [f"training seeds shifted by {SHIFT} ({ENV})"]
    if not TRAINING_STACK:
        lines.append(f"torch/ultralytics not importable: the training tier is not collected "
                     f"({', '.join(f'test/{p}' for p in collect_ignore)})")
    return lines


def _not_here(item) -> bool:
    """A test that belongs to the other venv: ``training`` without the training stack, ``runtime_venv`` with it."""
    if not TRAINING_STACK and item.get_closest_marker("training") is not None:
        return True
    return os.environ.get("KD_RUNTIME_VENV") != "1" and item.get_closest_marker("runtime_venv") is not None


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(getattr(item, "path", None) or item.fspath)).resolve()
        if path.suffix == ".py" and TEST_DIR in path.parents:
            for tier in sorted(tiers(path)):
                item.add_marker(tier)
    # deselected, not skipped: each runs in the venv it is about (make test runs both)
    elsewhere = [item for item in items if _not_here(item)]
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = [item for item in items if not _not_here(item)]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Say how often a node test restarted a node its probe never discovered (the Fast DDS discovery stall)."""
    from kd_traffic_light.tools.processes import STALL_RESTARTS

    if STALL_RESTARTS:
        terminalreporter.write_line(f"node restarts after a discovery stall: {len(STALL_RESTARTS)} "
                                    f"({', '.join(Path(p).name for p in STALL_RESTARTS)})")
    else:
        terminalreporter.write_line("node restarts after a discovery stall: 0")
