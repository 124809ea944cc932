"""Ctrl-C as a terminal plus ``ros2 launch`` deliver it: SIGINT twice; every node must exit 0, no traceback."""

import pytest

from test.nodes.soak import soak


@pytest.mark.parametrize("node", ["detector", "comparison"])
def test_sigint_twice_exits_zero_without_traceback(node, tmp_path):
    tally = soak(2, node=node, workdir=tmp_path, verbose=False)  # run 1 while frames flow, run 2 idle
    assert tally["clean"] == 2, dict(tally)


@pytest.mark.slow
def test_soak_start_stop_cycles_are_all_clean(tmp_path):
    tally = soak(6, node="detector", workdir=tmp_path, verbose=False)
    assert tally["clean"] == 6, dict(tally)


HUNG_CLEANUP = """
import ctypes, sys, time
from kd_traffic_light.shutdown import SignalGuard
guard = SignalGuard("hung", grace_s=1.0).install()
print("ready", flush=True)
while not guard.requested.is_set():
    time.sleep(0.02)
guard.ignore_further()
ctypes.PyDLL(None).sleep(60)  # a clean-up blocked in native code that keeps the GIL (as destroy_node can)
"""


def test_a_clean_up_stuck_holding_the_gil_still_ends_with_its_stacks(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "hung.py"
    script.write_text(HUNG_CLEANUP)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # ignored
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1, out
    assert "Timeout (0:00:01)" in out and "hung.py" in out and "KeyboardInterrupt" not in out
