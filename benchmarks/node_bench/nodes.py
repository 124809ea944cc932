"""The node processes: their environment, start (student, teacher, relay), readiness, and node-start's fresh starts.

The student and the relay run with the node's Python (``.venv-runtime``'s when it exists), the teacher with
this one; each is a ``detector`` in its own namespace (:data:`TARGETS`), fed on ``/bench/image_<name>``.
"""

from __future__ import annotations

import os
import random
import sys
import time
import traceback
from pathlib import Path

from benchmarks._setup import REPO
from benchmarks.node_bench.bench import Bench
from kd_traffic_light.tools.processes import read_log, rss_mb, start_process, stop

TARGETS = {"student": "/student", "teacher": "/teacher", "relay": "/relay"}  # node name -> namespace
RUNTIME_VENV = REPO / ".venv-runtime"
RELAY_MODULE = "benchmarks.node_bench.relay"


def module_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the repository first on ``PYTHONPATH``: a child started as ``-m benchmarks....`` imports it."""
    path = [str(REPO), *filter(None, [env.get("PYTHONPATH")])]
    return {**env, "PYTHONPATH": os.pathsep.join(path)}


def node_python(requested: str | None) -> str:
    """Return the Python of the ONNX student and the relay: ``requested``, else .venv-runtime's, else this one."""
    runtime_py = RUNTIME_VENV / "bin" / "python"
    return requested or (str(runtime_py) if runtime_py.exists() else sys.executable)


def bench_env(domain: int | None, fastdds_profile: str | None, tmp: Path) -> tuple[int, dict]:
    """Draw the ROS domain and build the nodes' environment; this process's participant uses it too."""
    from kd_traffic_light.tools.processes import export_participant_env, ros_env
    from kd_traffic_light.tools.processes import fastdds_profile as shipped_profile

    # the tests draw ROS_DOMAIN_ID from 1..101 (kd_traffic_light.tools.processes.domain_id); 215..232 keeps this
    # benchmark's /student and /teacher nodes off their graphs, and its DDS ports (7400 + 250 x id) above Linux's
    # ephemeral port range
    dom = domain if domain is not None else random.SystemRandom().randint(215, 232)
    env = ros_env(tmp / "ros_log", dom)
    if fastdds_profile == "none":
        env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
        os.environ.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    else:  # default: the shipped profile, as the launch files start the nodes
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(Path(fastdds_profile or shipped_profile()).resolve())
    export_participant_env(env, override=True)  # this process's participant, before rclpy.init
    os.environ["ROS_DOMAIN_ID"] = env["ROS_DOMAIN_ID"]
    os.environ.pop("ROS_AUTOMATIC_DISCOVERY_RANGE", None)  # it would override the transports
    return dom, env


def start_nodes(procs: dict, node_py: str, models: dict[str, Path], imgsz: int, device: str, env: dict,
                tmp: Path, threads: int = 0, fresh_wait: float | None = None, tracking: bool = True
                ) -> dict[str, Path]:
    """Start the student, teacher and relay nodes into ``procs`` (so each started one is stopped); return their logs."""
    pythons = {"student": node_py, "teacher": sys.executable}
    logs = {}
    for name, ns in TARGETS.items():  # all start (load + warm up) while this process loads its core
        logs[name] = tmp / f"{name}_node.log"
        remaps = ["-r", f"__ns:={ns}", "-r", f"image:=/bench/image_{name}"]
        if name == "relay":
            procs[name] = start_process([node_py, "-m", RELAY_MODULE, "--ros-args", *remaps], module_env(env),
                                        logs[name])
            continue
        cmd = [pythons[name], "-m", "kd_traffic_light.detector_node", "--ros-args", *remaps,
               "-p", f"model:={models[name]}", "-p", f"imgsz:={imgsz}", "-p", f"device:={device}"]
        if name == "student":
            cmd += ["-p", f"threads:={threads}"]
            if fresh_wait is not None:
                cmd += ["-p", f"fresh_wait:={fresh_wait}"]
            cmd += ["-p", f"tracking:={'true' if tracking else 'false'}"]
        procs[name] = start_process(cmd, env, logs[name])
    return logs


def wait_nodes(bench: Bench, procs: dict, logs: dict[str, Path], msgs: list, timeout: float) -> None:
    """Wait until every node answers a frame, then warm its 2048x1024 path end to end."""
    for name in TARGETS:
        try:
            bench.wait_ready(name, procs[name], logs[name], msgs[0], timeout)
            bench.serial(name, msgs, 3, timeout=30.0)
        except Exception:  # shown now: rclpy's clean-up on the way out has been seen to hang
            traceback.print_exc()
            sys.stdout.flush()
            raise


def start_commands(node_py: str, onnx: Path, pt: Path, imgsz: int, device: str,
                   threads: int = 0) -> dict[str, list[str]]:
    """Return node-start's commands: the student as ONNX with the node's Python, and as ``.pt`` with this one."""
    detector = ["-m", "kd_traffic_light.detector_node", "--ros-args", "-p", f"imgsz:={imgsz}",
                "-p", f"device:={device}", "-p", f"threads:={threads}"]
    return {"onnx": [node_py, *detector, "-p", f"model:={onnx}"],
            "pt": [sys.executable, *detector, "-p", f"model:={pt}"]}


def node_start(bench: Bench, cmds: dict[str, list[str]], env: dict, tmp: Path, msg: bytes, reps: int,
               timeout: float) -> dict:
    """Fresh starts of each command: seconds from process start to the first detection, and RSS then (MiB)."""
    out: dict = {}
    for kind, cmd in cmds.items():
        for rep in range(reps):
            name = f"start_{kind}_{rep}"
            bench.add_target(name, f"/{name}")
            log = tmp / f"{name}.log"
            t0 = time.perf_counter()
            proc = start_process([*cmd, "-r", f"__ns:=/{name}", "-r", f"image:=/bench/image_{name}"], env, log)
            first = None
            try:
                while first is None and time.perf_counter() - t0 < timeout:
                    if proc.poll() is not None:
                        raise RuntimeError(f"{name} exited with {proc.returncode}:\n{read_log(log, 3000)}")
                    key = bench.publish(name, msg)
                    if bench.wait_answer(key, timeout=0.1) is not None:
                        first = bench.recv[key] - t0
                rss = rss_mb(proc.pid) if first is not None else float("nan")
            finally:
                code = stop(proc)
            out.setdefault(kind, []).append({"first_detection_s": first, "rss_mb": rss, "exit_code": code})
    return out
