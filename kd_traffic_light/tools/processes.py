"""Nodes as child processes: their ROS environment, start, stop and logs.

The parent's side of running nodes as real processes, for the tools, the benchmarks and the node tests
(``test/nodes/ros_helpers.py`` re-exports these); the child's side is :mod:`kd_traffic_light.shutdown`, the probe
that talks to them :mod:`kd_traffic_light.tools.probe`. Imports neither rclpy nor torch nor ``training``::

    env = ros_env(tmp / "ros_log", domain_id("my_tool"))
    proc = start_node("kd_traffic_light.comparison_node", [], env, tmp / "comparison.log"); ...; stop(proc)

The helpers, a full example and the start-up order: docs/testing.md, "Nodes as child processes".
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

#: The shipped Fast DDS profile of the nodes (the launch files load it: SHM, UDP and TCP), below the share directory.
FASTDDS_PROFILE = ("config", "fastdds_large_frames.xml")
#: The same without TCP, for the processes this project starts itself (:func:`ros_env`): Fast DDS 3.2 can deadlock
#: tearing down a TCP channel in the middle of a read, and these start and stop participants by the hundred.
FASTDDS_PROFILE_NO_TCP = ("config", "fastdds_large_frames_no_tcp.xml")

#: What :func:`ros_env` sets besides the profile (``ROS_LOG_DIR`` and ``ROS_DOMAIN_ID`` come from its arguments).
ROS_ENV_DEFAULTS = {
    "FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA",
    "PYTHONUNBUFFERED": "1",
    "RCUTILS_COLORIZED_OUTPUT": "0",
    "YOLO_AUTOINSTALL": "false",
}


def export_participant_env(env: dict[str, str], *, override: bool = False) -> None:
    """Export ``env``'s transport and log variables to this process before its participant is created.

    Variables already set here are kept unless ``override``.
    """
    for var in ("FASTDDS_BUILTIN_TRANSPORTS", "FASTDDS_DEFAULT_PROFILES_FILE", "ROS_LOG_DIR"):
        if var in env:
            if override:
                os.environ[var] = env[var]
            else:
                os.environ.setdefault(var, env[var])


def fastdds_profile(tcp: bool = True) -> str:
    """Path of the shipped Fast DDS profile, or with ``tcp=False`` of its version without TCP (installed or here)."""
    from kd_traffic_light.resources import share_path

    return str(share_path(*(FASTDDS_PROFILE if tcp else FASTDDS_PROFILE_NO_TCP)))


def domain_id(salt: str, low: int = 1, high: int = 101) -> int:
    """Return a ROS_DOMAIN_ID in ``low..high`` derived from this process's pid and ``salt`` (e.g. a module name)."""
    digest = hashlib.sha1(f"{os.getpid()}:{salt}".encode()).digest()
    return low + int.from_bytes(digest[:4], "little") % (high - low + 1)


def ros_env(log_dir: str | os.PathLike, domain: int | None = None, *,
            keep_user_settings: bool = False) -> dict[str, str]:
    """Return the environment for node processes and this process's participant.

    Args:
        log_dir: ROS log directory (``ROS_LOG_DIR``), created.
        domain: ``ROS_DOMAIN_ID``; None keeps the inherited one.
        keep_user_settings: keep variables already set in this process's environment (a user's choice of
            transports or log directory) instead of overriding them; the domain is set either way when given.

    Returns:
        A copy of ``os.environ`` with ``ROS_LOG_DIR``, :data:`ROS_ENV_DEFAULTS` and the domain applied. Unless
        user settings are kept, ``ROS_AUTOMATIC_DISCOVERY_RANGE`` is removed: it would override ``LARGE_DATA``.
    """
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    settings = {"ROS_LOG_DIR": str(log_dir), **ROS_ENV_DEFAULTS,
                "FASTDDS_DEFAULT_PROFILES_FILE": fastdds_profile(tcp=False)}
    for key, value in settings.items():
        if keep_user_settings:
            env.setdefault(key, value)
        else:
            env[key] = value
    if not keep_user_settings:
        env.pop("ROS_AUTOMATIC_DISCOVERY_RANGE", None)
    if domain is not None:
        env["ROS_DOMAIN_ID"] = str(domain)
    return env


def start_process(cmd: Sequence[str], env: dict[str, str], log_path: str | os.PathLike) -> subprocess.Popen:
    """Start ``cmd`` in its own session (a Ctrl-C of this terminal does not reach it), output into ``log_path``."""
    log = open(log_path, "wb")  # the child gets its own copy of the descriptor
    try:
        return subprocess.Popen(list(cmd), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        log.close()


def start_node(module: str, args: Sequence[str], env: dict[str, str], log_path: str | os.PathLike,
               python: str | None = None) -> subprocess.Popen:
    """Start ``<python> -m <module> <args>`` (default: this interpreter) with :func:`start_process`.

    The process carries ``restart``: a callable that starts the same node again (see
    :func:`restart_until_matched`).
    """
    proc = start_process([python or sys.executable, "-m", module, *args], env, log_path)
    proc.restart = lambda: start_node(module, args, env, log_path, python)
    return proc


def stop(proc: subprocess.Popen | None, timeout: float = 15.0) -> int | None:
    """Stop a process: SIGINT, then SIGTERM, then SIGKILL, waiting up to ``timeout`` s after each.

    A node of this package exits 0 on the SIGINT (:mod:`kd_traffic_light.shutdown`); a negative code says which
    signal it took to end it. Returns the exit code (None for ``proc=None``).
    """
    if proc is None:
        return None
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout if sig != signal.SIGKILL else None)
        except subprocess.TimeoutExpired:
            continue
    return proc.returncode


#: One entry (the stalled attempt's log path) per restart made by :func:`restart_until_matched` in this process.
STALL_RESTARTS: list[str] = []


def restart_until_matched(proc: subprocess.Popen, restart: Callable[[], subprocess.Popen],
                          matched: Callable[[], object], log_path: str | os.PathLike, *, timeout: float = 20.0,
                          attempts: int = 3) -> subprocess.Popen:
    """Wait until ``matched()`` (e.g. a probe's publisher sees the node's subscription); restart a node never seen.

    Works around the Fast DDS LARGE_DATA late-joiner stall (docs/runtime.md): a participant that joins after
    the node sometimes never discovers it, although the node is up. A fresh start of the node, which then
    joins after the waiting side, has always been seen. Each stalled attempt's log is kept as
    ``<log>.attemptN`` and listed in :data:`STALL_RESTARTS` (the test session reports how many there were).
    Returns the process that matched.

    Raises:
        RuntimeError: The node exited, or was not matched in ``attempts`` starts (with the last log).
    """
    log_path = Path(log_path)
    for attempt in range(1, attempts + 1):
        wait_until(lambda p=proc: matched() or p.poll() is not None, timeout)
        if proc.poll() is not None:
            raise RuntimeError(f"node exited with {proc.returncode} before it was matched:\n{read_log(log_path)}")
        if matched():
            return proc
        stop(proc)
        if attempt == attempts:
            break
        kept = log_path.with_name(f"{log_path.name}.attempt{attempt}")
        log_path.replace(kept)
        STALL_RESTARTS.append(str(kept))
        proc = restart()
    raise RuntimeError(f"node not matched in {attempts} starts of {timeout:.0f} s each (Fast DDS discovery "
                       f"stall?):\n{read_log(log_path)}")


def read_log(path: str | os.PathLike, tail: int = 4000) -> str:
    """Return the last ``tail`` characters of a process's log (for error messages); never raises."""
    try:
        return Path(path).read_text(errors="replace")[-tail:]
    except OSError as exc:
        return f"<no log: {exc}>"


def wait_until(predicate: Callable[[], object], timeout: float, period: float = 0.05) -> bool:
    """Poll ``predicate`` until it is truthy or ``timeout`` seconds passed; return its last truthiness."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(period)
    return bool(predicate())


def rss_mb(pid: int) -> float:
    """Resident memory of a running process (``VmRSS`` from /proc, MiB); NaN when it is not reported."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
