"""Soak test of the node processes: start, serve frames, Ctrl-C (SIGINT twice, as a terminal plus launch
deliver it), many times; count the clean runs.

A run is clean when the node answered a frame, exited with 0 after the signals, and its log holds no
traceback, fatal error or crash dump. Anything else is printed with the log's tail. The node test suite
runs a few cycles (test_shutdown.py); reproduce rare failures with many:

    python -m test.nodes.soak --runs 50                  # constant ONNX model (built here, no torch)
    python -m test.nodes.soak --runs 30 --model x.pt     # any model, e.g. a .pt through ultralytics
    python -m test.nodes.soak --runs 30 --node comparison
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from test.nodes.ros_helpers import (
    RELIABLE,
    RosTestNode,
    domain_id,
    read_log,
    restart_until_matched,
    ros_env,
    start_node,
    stop,
)

BAD_LOG = ("Traceback", "KeyboardInterrupt", "Fatal Python error", "Segmentation fault", "[FATAL]",
           "terminate called", "Timeout (0:")  # the last: SignalGuard's watchdog fired (stuck clean-up)


@dataclass
class Outcome:
    """One start/serve/stop cycle."""

    answered: bool
    code: int | None
    log: str
    seconds_to_exit: float

    @property
    def clean(self) -> bool:
        """Answered, exit 0, and nothing bad in the log."""
        return self.answered and self.code == 0 and not any(b in self.log for b in BAD_LOG)

    @property
    def kind(self) -> str:
        """A short label for the tally."""
        if self.clean:
            return "clean"
        if self.code is not None and self.code < 0:
            return f"killed by {signal.Signals(-self.code).name}"
        if not self.answered:
            return "never answered"
        return f"exit {self.code}" + (" with traceback" if "Traceback" in self.log else "")


def _image(sec: int):
    import numpy as np
    from sensor_msgs.msg import Image

    msg = Image(height=256, width=512, encoding="bgr8", step=512 * 3)
    msg.header.stamp.sec, msg.header.frame_id = sec, "soak"
    msg.data = np.full((256, 512, 3), 90, np.uint8).tobytes()
    return msg


def cycle(env: dict, log: Path, node: str, model: str | None, busy: bool = True, gap_s: float = 0.05) -> Outcome:
    """Start one node, make it answer (detector) or publish (comparison), then SIGINT it twice."""
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray

    if node == "detector":
        args = ["--ros-args", "-r", "__ns:=/soak", "-r", "image:=/soak_cam/image", "-p", f"model:={model}"]
        proc = start_node("kd_traffic_light.detector_node", args, env, log)
    else:
        proc = start_node("kd_traffic_light.comparison_node",
                          ["--ros-args", "-r", "__ns:=/soak", "-p", "diagnostics_period_s:=0.2"], env, log)
    answered, stop_pub = False, threading.Event()
    try:
        with RosTestNode("soak_probe", env) as probe:
            if node == "detector":
                got = probe.subscribe("/soak/detector/detections", Detection2DArray)
                pub = probe.publisher("/soak_cam/image", Image, RELIABLE)

                def feed() -> None:
                    sec = 1
                    while not stop_pub.is_set():
                        pub.publish(_image(sec))
                        sec += 1
                        time.sleep(0.02)

                feeder = threading.Thread(target=feed, daemon=True)
                feeder.start()
            else:
                got = probe.subscribe("/diagnostics", DiagnosticArray)
            try:  # a node its probe never discovers (the Fast DDS stall, docs/runtime.md) is started again
                proc = restart_until_matched(proc, proc.restart, lambda: bool(got), log, timeout=30)
            except RuntimeError:
                pass
            answered = bool(got)
            if not busy:
                stop_pub.set()
            # Ctrl-C in a terminal: SIGINT to the process, and launch forwards one more right after
            t0 = time.monotonic()
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                time.sleep(gap_s)
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(timeout=30)
            except Exception:  # noqa: BLE001 - hung: escalate like launch does, and report it
                code = stop(proc, timeout=5)
            seconds = time.monotonic() - t0
            stop_pub.set()
    finally:
        stop_pub.set()
        if proc.poll() is None:
            stop(proc, timeout=5)
    return Outcome(answered, code, read_log(log, tail=20000), seconds)


def soak(runs: int, node: str = "detector", model: str | None = None, workdir: Path | None = None,
         verbose: bool = True) -> Counter:
    """Run ``runs`` cycles; returns the tally of outcomes (``clean`` and the failure kinds)."""
    with tempfile.TemporaryDirectory(prefix="kd_soak_") as tmp:
        root = Path(workdir or tmp)
        if node == "detector" and model is None:
            from test.core.lean_models import make_constant_onnx

            model = str(make_constant_onnx(root / "soak.onnx"))
        env = ros_env(root, domain_id(f"soak{time.time_ns()}"))
        tally: Counter = Counter()
        for i in range(runs):
            out = cycle(env, root / f"run{i}.log", node, model, busy=i % 2 == 0)
            tally[out.kind] += 1
            if verbose:
                print(f"run {i + 1}/{runs}: {out.kind} (exit {out.code}, {out.seconds_to_exit:.2f} s after SIGINT)",
                      flush=True)
                if not out.clean:
                    print(out.log[-3000:], flush=True)
        return tally


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20, help="start/stop cycles")
    p.add_argument("--node", choices=["detector", "comparison"], default="detector", help="which node to soak")
    p.add_argument("--model", default=None, help="detector model (default: a constant ONNX model built here)")
    a = p.parse_args(argv)
    tally = soak(a.runs, a.node, a.model)
    print(f"{tally['clean']}/{a.runs} clean; {dict(tally)}")
    return 0 if tally["clean"] == a.runs else 1


if __name__ == "__main__":
    sys.exit(main())
