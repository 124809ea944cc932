"""Tests of the benchmark scripts (``benchmarks/*.py`` run as scripts: load them by path)."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_benchmark(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` as a fresh module, with its directory on ``sys.path`` as a script has it."""
    scripts = str(ROOT / "benchmarks")
    if scripts not in sys.path:
        sys.path.append(scripts)  # for its ``import _setup``
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
