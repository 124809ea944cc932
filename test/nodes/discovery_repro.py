"""Reproduction of a discovery failure in Fast DDS's LARGE_DATA builtin transports (a dependency, not this
project): participants started together, then one more joins a few seconds later; the late joiner sometimes
never discovers one of them (the node is missing from its graph, its topics never match). Intermittent:
5 trials measured 1/5, 2/5 and, in a later run, 5/5 complete with LARGE_DATA; 5/5 twice with DEFAULT.

    python -m test.nodes.discovery_repro                      # LARGE_DATA
    python -m test.nodes.discovery_repro --transports DEFAULT # UDP + SHM
    python -m test.nodes.discovery_repro --transports profile # the shipped config/fastdds_large_frames.xml

The nodes are minimal rclpy nodes (``rclpy.create_node`` + ``spin``): no code of this project runs in them.
Seen in this project as a detector that logged ``active:`` but never appeared in the graph, as the replay
of ``bag_eval`` waiting for subscribers forever, and as a benchmark probe waiting for a node's answers.
Mitigation in the project: start the long-lived participant (probe, recorder) before the nodes it talks to.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from test.nodes.ros_helpers import RosTestNode, domain_id, ros_env, start_node, stop

MINIMAL_NODE = """
import sys, rclpy
from rclpy.executors import ExternalShutdownException
rclpy.init(args=sys.argv)
node = rclpy.create_node("peer")
try:
    rclpy.spin(node)
except (KeyboardInterrupt, ExternalShutdownException):
    pass
"""


def trial(env: dict, work: Path, n: int, delay_s: float, timeout_s: float) -> int:
    """Start ``n`` minimal nodes together, join after ``delay_s``; return how many the joiner discovered."""
    procs = [start_node("minimal_peer", ["--ros-args", "-r", f"__ns:=/p{i}"], env, work / f"p{i}.log")
             for i in range(n)]
    try:
        time.sleep(delay_s)
        with RosTestNode("late_joiner", env) as probe:
            deadline = time.monotonic() + timeout_s
            seen = 0
            while time.monotonic() < deadline:
                names = probe.node.get_node_names_and_namespaces()
                seen = sum(("peer", f"/p{i}") in names for i in range(n))
                if seen == n:
                    break
                time.sleep(0.2)
            return seen
    finally:
        for p in procs:
            stop(p)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=5, help="repetitions (each on its own domain id)")
    p.add_argument("--nodes", type=int, default=3, help="nodes started together")
    p.add_argument("--delay", type=float, default=5.0, help="seconds before the late participant joins")
    p.add_argument("--timeout", type=float, default=25.0, help="seconds the joiner waits to see every node")
    p.add_argument("--transports", default="LARGE_DATA",
                   help="FASTDDS_BUILTIN_TRANSPORTS of every participant, without the shipped profile; 'profile': "
                        "the shipped Fast DDS profile (config/fastdds_large_frames.xml)")
    a = p.parse_args(argv)
    complete = 0
    with tempfile.TemporaryDirectory(prefix="kd_discovery_") as tmp:
        work = Path(tmp)
        (work / "minimal_peer.py").write_text(MINIMAL_NODE)
        for t in range(a.trials):
            env = ros_env(work, domain_id(f"discovery{t}{time.time_ns()}"))
            if a.transports == "profile":
                os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = env["FASTDDS_DEFAULT_PROFILES_FILE"]
            else:  # the profile would win over the builtin transports
                env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
                os.environ.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
                env["FASTDDS_BUILTIN_TRANSPORTS"] = os.environ["FASTDDS_BUILTIN_TRANSPORTS"] = a.transports
            env["PYTHONPATH"] = os.pathsep.join([str(work), env.get("PYTHONPATH", "")])
            seen = trial(env, work, a.nodes, a.delay, a.timeout)
            complete += seen == a.nodes
            print(f"trial {t + 1}: the late joiner sees {seen}/{a.nodes} nodes", flush=True)
    what = "the shipped profile" if a.transports == "profile" else f"FASTDDS_BUILTIN_TRANSPORTS={a.transports}"
    print(f"{complete}/{a.trials} trials complete with {what}")
    return 0 if complete == a.trials else 1


if __name__ == "__main__":
    sys.exit(main())
