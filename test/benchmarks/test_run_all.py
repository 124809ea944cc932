"""`make bench`'s runner: a benchmark that hangs is stopped with its child processes, the others still run."""

import json
import os
import time
from pathlib import Path

from test.benchmarks import load_benchmark


def _run_all():
    return load_benchmark("run_all")


HANG = """
import argparse, subprocess, sys, time
p = argparse.ArgumentParser(); p.add_argument("--quick", action="store_true"); p.add_argument("--out")
p.parse_args()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print("child", child.pid, flush=True)
time.sleep(600)
"""

OK = """
import argparse, json
p = argparse.ArgumentParser(); p.add_argument("--quick", action="store_true"); p.add_argument("--out")
a = p.parse_args()
open(a.out, "w").write(json.dumps({"ratio": 0.5}))
print("ratio: 0.5")
"""


def test_hanging_benchmark_is_stopped_with_its_children(tmp_path, monkeypatch):
    ra = _run_all()
    (tmp_path / "hang.py").write_text(HANG)
    (tmp_path / "fine.py").write_text(OK)
    monkeypatch.setattr(ra, "HERE", tmp_path)
    monkeypatch.setattr(ra, "BENCHMARKS", ("hang", "fine"))
    t0 = time.monotonic()
    code = ra.main(["--out-dir", str(tmp_path / "out"), "--timeout", "8"])
    assert time.monotonic() - t0 < 60
    entries = {e["name"]: e for e in json.loads((tmp_path / "out" / "SUMMARY.json").read_text())}
    assert code == 1 and entries["hang"]["status"] == "failed (timeout)"
    assert entries["fine"]["status"] == "ok" and entries["fine"]["figures"] == {"ratio": 0.5}
    child = int(next(line.split()[1] for line in entries["hang"]["last_lines"] if line.startswith("child")))
    time.sleep(0.5)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
    assert "failed (timeout)" in (tmp_path / "out" / "SUMMARY.md").read_text()
    assert os.path.isfile(tmp_path / "out" / "fine.json")
