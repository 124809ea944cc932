"""`make bench`'s runner: a benchmark that hangs is stopped with its child processes, the others still run.

No sleeps and no clocks: the runner's timer is replaced by one that fires when the hanging benchmark has
started its child (it writes the child's pid to a file), and the child's end is awaited on a pidfd.
"""

import json
import os
import select
import signal
import threading
from pathlib import Path
from types import SimpleNamespace

from test.benchmarks import load_benchmark

# A benchmark that starts a child and then blocks on a pipe nobody writes to; the child blocks too.
# Neither ends by itself: only a kill of the whole process group ends both. The child does not hold the
# runner's output pipe, so a runner that killed the benchmark alone would return (and this test fail)
# instead of waiting for the child forever.
HANG = """
import argparse, os, subprocess, sys
from pathlib import Path
p = argparse.ArgumentParser(); p.add_argument("--quick", action="store_true"); p.add_argument("--out")
p.parse_args()
child = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("child", child.pid, flush=True)
ready = Path(__file__).with_name("ready")
ready.with_suffix(".tmp").write_text(str(child.pid))
ready.with_suffix(".tmp").rename(ready)
r, w = os.pipe()
os.read(r, 1)
"""

OK = """
import argparse, json
p = argparse.ArgumentParser(); p.add_argument("--quick", action="store_true"); p.add_argument("--out")
a = p.parse_args()
open(a.out, "w").write(json.dumps({"ratio": 0.5}))
print("ratio: 0.5")
"""


class _ReadyTimer:
    """Stands in for ``threading.Timer`` in the runner: fires once the benchmark wrote ``ready``, not after a time.

    Before firing it opens a pidfd of the child named there, so the test can wait for that very process.
    """

    pidfds: list[int] = []

    def __init__(self, ready: Path, interval: float, function):  # noqa: ANN001
        self.ready, self.function = ready, function
        self.cancelled = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        self.cancelled.set()

    def _run(self) -> None:
        while not self.ready.is_file():
            if self.cancelled.wait(0.01):  # a benchmark that ends by itself is never stopped
                return
        self.pidfds.append(os.pidfd_open(int(self.ready.read_text())))
        self.ready.unlink()  # consumed: the next benchmark's timer waits for its own
        self.function()


def test_hanging_benchmark_is_stopped_with_its_children(tmp_path, monkeypatch):
    ra = load_benchmark("run_all")
    (tmp_path / "hang.py").write_text(HANG)
    (tmp_path / "fine.py").write_text(OK)
    monkeypatch.setattr(ra, "HERE", tmp_path)
    monkeypatch.setattr(ra, "BENCHMARKS", ("hang", "fine"))
    timer = lambda interval, function: _ReadyTimer(tmp_path / "ready", interval, function)  # noqa: E731
    monkeypatch.setattr(ra, "threading", SimpleNamespace(Timer=timer, Event=threading.Event))
    _ReadyTimer.pidfds = []
    try:
        code = ra.main(["--out-dir", str(tmp_path / "out"), "--timeout", "3600"])
        entries = {e["name"]: e for e in json.loads((tmp_path / "out" / "SUMMARY.json").read_text())}
        assert code == 1 and entries["hang"]["status"] == "failed (timeout)"
        assert entries["fine"]["status"] == "ok" and entries["fine"]["figures"] == {"ratio": 0.5}
        assert "failed (timeout)" in (tmp_path / "out" / "SUMMARY.md").read_text()
        assert os.path.isfile(tmp_path / "out" / "fine.json")
        assert len(_ReadyTimer.pidfds) == 1  # the timer fired for the hanging benchmark only
        # the child was killed with its group: its pidfd turns readable when it has ended (the bound only
        # keeps a broken runner from hanging the suite; a live child would never end by itself)
        readable, _, _ = select.select(_ReadyTimer.pidfds, [], [], 120)
        assert readable, "the hanging benchmark's child outlived the timeout"
    finally:
        for fd in _ReadyTimer.pidfds:
            try:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.close(fd)
