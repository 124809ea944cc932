"""The layers of the tree, checked on what importing each module really pulls in and on the import statements.

- ``kd_traffic_light.core`` (every module, backends included) imports no ROS (rclpy, launch, message
  packages), nothing of ``kd_traffic_light`` outside ``core``, nothing of ``training``, and neither
  torch nor ultralytics: it is the part the training stack, the benchmarks and the nodes share.
- The runtime (every module of ``kd_traffic_light``, its offline ``tools`` included) imports nothing of
  ``training`` and neither torch nor ultralytics: the vehicle installs the runtime without the training stack.
  Modules that need ROS at import (the nodes, the message conversions) are part of it; where ROS is not
  installed only those are left out.
- What runs on the car (``core``, the nodes and their helpers) never imports ``kd_traffic_light.tools``.
- The project's modules (``kd_traffic_light``, ``training``, ``benchmarks``) import each other without cycles.

Each layer is imported in a fresh interpreter, one module after another; a forbidden module is blamed
on the first module after whose import it appears in ``sys.modules``. The static checks read every import
statement (inside functions too) with ``ast``, so an import made only when a function runs is seen as well.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
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
TOOLS = "kd_traffic_light.tools"
VEHICLE = [m for m in _modules(ROOT / "kd_traffic_light", recursive=False) if m != TOOLS]
RUNTIME = VEHICLE + _modules(ROOT / "kd_traffic_light" / "tools", recursive=True)
PROJECT = ("kd_traffic_light", "training", "benchmarks")  # the trees whose module graph must have no cycle


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
    assert "kd_traffic_light.tools.bag_eval" in RUNTIME and "kd_traffic_light.tools.processes" not in VEHICLE
    assert "kd_traffic_light" in VEHICLE and TOOLS not in VEHICLE


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


def test_nodes_import_no_tools():
    report = _import_each(VEHICLE)
    if _ros_installed():
        assert not {n: r for n, r in report.items() if "missing" in r}, report
    assert _offences(report, lambda m: _within(m, TOOLS)) == {}


def test_core_and_nodes_never_import_the_tools_not_even_inside_a_function():
    graph = _import_graph(ROOT, PROJECT)
    vehicle = [m for m in graph if _top(m) == "kd_traffic_light" and not _within(m, TOOLS)]
    offences = [f"{graph[m][dst]} imports {dst}" for m in vehicle for dst in graph[m] if _within(dst, TOOLS)]
    assert offences == [], offences


def test_the_project_has_no_import_cycle():
    graph = _import_graph(ROOT, PROJECT)
    assert len(graph) > 50 and "kd_traffic_light.core.matching" in graph["kd_traffic_light.core.summary"]  # real
    cycles = _cycles(graph)
    assert not cycles, "\n".join(_describe_cycle(c, graph) for c in cycles)


def test_the_cycle_check_names_a_planted_cycle(tmp_path):
    """The check is live: a cycle through a function-level, a relative and a package import is found and named."""
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("def f():\n    from pkg.sub import thing\n")
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("from .b import thing\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("import json\n\nfrom .. import a\n\nthing = 1\n")
    (tmp_path / "pkg" / "c.py").write_text("from pkg import a\n")  # into the cycle, not part of it
    graph = _import_graph(tmp_path, ("pkg",))
    assert graph["pkg.sub.b"] == {"pkg.a": "pkg/sub/b.py:3"} and graph["pkg.a"] == {"pkg.sub": "pkg/a.py:2"}
    assert _cycles(graph) == [["pkg.a", "pkg.sub", "pkg.sub.b", "pkg.a"]]
    assert _describe_cycle(["pkg.a", "pkg.sub", "pkg.sub.b", "pkg.a"], graph) == (
        "import cycle: pkg.a -> pkg.sub -> pkg.sub.b -> pkg.a "
        "(pkg/a.py:2 imports pkg.sub; pkg/sub/__init__.py:1 imports pkg.sub.b; pkg/sub/b.py:3 imports pkg.a)")


def test_the_probe_blames_the_importing_module(tmp_path):
    """The check is live: a planted module that imports ``training`` is the one reported."""
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "__init__.py").write_text("")
    (tmp_path / "clean_mod.py").write_text("import json\n")
    (tmp_path / "offender_mod.py").write_text("import training\n")
    report = _import_each(["clean_mod", "offender_mod"], path=tmp_path)
    assert _offences(report, lambda m: _top(m) == "training") == {"offender_mod": ["training"]}


# ---------------------------------------------------------------- the static import graph
def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def _module_files(root: Path, tops: tuple[str, ...]) -> dict[str, Path]:
    """``{dotted name: file}`` of every module under ``root/<top>``; a package is named by its ``__init__``."""
    files = {}
    for top in tops:
        for f in sorted((root / top).rglob("*.py")):
            parts = f.relative_to(root).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return files


def _imported_names(tree: ast.AST, package: str) -> Iterator[tuple[str, int]]:
    """``(dotted name, line)`` of every import in ``tree``, anywhere; relative ones resolved against ``package``.

    ``from X import y`` gives ``X.y`` (a submodule or a name of ``X``; :func:`_resolve` decides which).
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[:len(parts) - node.level + 1], *([base] if base else [])])
            yield from ((base if alias.name == "*" else f"{base}.{alias.name}", node.lineno) for alias in node.names)


def _resolve(name: str, modules: dict[str, Path], importer: str, root: Path) -> str | None:
    """The project module an imported name lands in: its longest dotted prefix that is a module.

    A script directory without ``__init__.py`` (``benchmarks/``) also finds its siblings by bare name.
    """
    top = _top(importer)
    candidates = [name] + ([f"{top}.{name}"] if not (root / top / "__init__.py").exists() else [])
    for candidate in candidates:
        while candidate:
            if candidate in modules:
                return candidate
            candidate = candidate.rpartition(".")[0]
    return None


@functools.cache
def _static_graph(root: Path, tops: tuple[str, ...]) -> dict[str, dict[str, str]]:
    files = _module_files(root, tops)
    graph: dict[str, dict[str, str]] = {}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges = graph.setdefault(module, {})
        for name, line in _imported_names(ast.parse(path.read_text(), str(path)), package):
            target = _resolve(name, files, module, root)
            if target is not None and target != module:
                edges.setdefault(target, f"{path.relative_to(root).as_posix()}:{line}")
    return graph


def _import_graph(root: Path, tops: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """``{module: {module it imports: "file:line" of the first such import}}`` over the project's modules.

    Every import statement counts, inside functions too; an import of a package is an edge to its
    ``__init__``, ``from package import submodule`` one to the submodule. Outside modules are left out.
    """
    return {m: dict(edges) for m, edges in _static_graph(root, tops).items()}


def _cycles(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """One cycle ``[a, b, ..., a]`` per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:  # v is the root of a component: it and everything above it on the stack
            component = set(stack[stack.index(v):])
            del stack[stack.index(v):]
            components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_through(min(c), c, graph) for c in sorted(components, key=min) if len(c) > 1]


def _cycle_through(start: str, component: set[str], graph: dict[str, dict[str, str]]) -> list[str]:
    """The shortest path from ``start`` back to itself inside ``component`` (breadth first)."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w == start:
                    return [*paths[v], start]
                if w in component and w not in paths:
                    paths[w] = [*paths[v], w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")  # a strongly connected component always has one


def _describe_cycle(cycle: list[str], graph: dict[str, dict[str, str]]) -> str:
    hops = "; ".join(f"{graph[a][b]} imports {b}" for a, b in zip(cycle, cycle[1:]))
    return f"import cycle: {' -> '.join(cycle)} ({hops})"
