"""The layers of the tree, checked on what importing each module really pulls in.

- ``kd_traffic_light.core`` (every module, backends included) imports no ROS (rclpy, launch, message
  packages), nothing of ``kd_traffic_light`` outside ``core``, nothing of ``training``, and neither
  torch nor ultralytics: it is the part the training stack, the benchmarks and the nodes share.
- The runtime (every module of ``kd_traffic_light``) imports nothing of ``training`` and neither torch
  nor ultralytics: the vehicle installs the runtime without the training stack. Modules that need ROS
  at import (the nodes, the message conversions) are part of it; where ROS is not installed only
  those are left out.

Each layer is imported in a fresh interpreter, one module after another; a forbidden module is blamed
on the first module after whose import it appears in ``sys.modules``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "ultralytics", "torchvision")
ROS = ("rclpy", "launch", "launch_ros", "rosidl_runtime_py", "builtin_interfaces", "std_msgs", "sensor_msgs",
       "vision_msgs")

PROBE = r"""
import importlib, json, sys
before = set(sys.modules)
report = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
        entry = {}
    except ModuleNotFoundError as exc:
        entry = {"missing": exc.name}
    now = set(sys.modules)
    report[name] = {**entry, "new": sorted(now - before)}
    before = now
print(json.dumps(report))
"""


def _modules(package_dir: Path, recursive: bool) -> list[str]:
    files = package_dir.rglob("*.py") if recursive else package_dir.glob("*.py")
    names = []
    for f in sorted(files):
        parts = f.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


CORE = _modules(ROOT / "kd_traffic_light" / "core", recursive=True)
RUNTIME = _modules(ROOT / "kd_traffic_light", recursive=False)


def _import_each(modules: list[str], path: Path = ROOT) -> dict[str, dict]:
    """``{module: {"new": [modules its import added], "missing": name if it failed for a missing module}}``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-c", PROBE, *modules], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def _offences(report: dict[str, dict], forbidden) -> dict[str, list[str]]:  # noqa: ANN001
    """``{module: [forbidden packages that appeared with its import]}``, only modules with some.

    A forbidden package is named once (``torch``, not each of its submodules).
    """
    out = {}
    for name, r in report.items():
        bad = [m for m in r.get("new", []) if forbidden(m)]
        if bad:
            out[name] = sorted({m for m in bad if not any(m.startswith(f"{o}.") for o in bad)})
    return out


def _top(m: str) -> str:
    return m.split(".", 1)[0]


def _ros_installed() -> bool:
    return importlib.util.find_spec("rclpy") is not None


def test_the_layers_are_found():
    assert "kd_traffic_light.core" in CORE and "kd_traffic_light.core.backends.onnxruntime_backend" in CORE
    assert "kd_traffic_light.detector_node" in RUNTIME and "kd_traffic_light.core.config" not in RUNTIME


def test_core_imports_neither_ros_nor_runtime_nor_training_nor_torch():
    report = _import_each(CORE)
    assert not {n: r for n, r in report.items() if "missing" in r}, report

    def forbidden(m: str) -> bool:
        outside_core = m.startswith("kd_traffic_light.") and not m.startswith("kd_traffic_light.core")
        return _top(m) in ROS or _top(m) in HEAVY or _top(m) == "training" or outside_core

    assert _offences(report, forbidden) == {}


def test_runtime_imports_neither_training_nor_torch():
    report = _import_each(RUNTIME)
    missing = {n: r["missing"] for n, r in report.items() if "missing" in r}
    if _ros_installed():
        assert not missing, missing
    else:  # only the modules that need ROS at import, and only for want of ROS
        assert all(_top(m) in ROS for m in missing.values()), missing
    assert _offences(report, lambda m: _top(m) in HEAVY or _top(m) == "training") == {}


def test_the_probe_blames_the_importing_module(tmp_path):
    """The check is live: a planted module that imports ``training`` is the one reported."""
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "__init__.py").write_text("")
    (tmp_path / "clean_mod.py").write_text("import json\n")
    (tmp_path / "offender_mod.py").write_text("import training\n")
    report = _import_each(["clean_mod", "offender_mod"], path=tmp_path)
    assert _offences(report, lambda m: _top(m) == "training") == {"offender_mod": ["training"]}
