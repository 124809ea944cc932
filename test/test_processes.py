"""kd_traffic_light.tools.processes: the ROS environment of child processes, starting them, stopping them."""

import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kd_traffic_light.tools import processes as P

IGNORES_SIGINT = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
"""

CLEAN_ON_SIGINT = """
import time
print("ready", flush=True)
try:
    time.sleep(60)
except KeyboardInterrupt:
    raise SystemExit(0)
"""


def test_module_imports_neither_rclpy_nor_torch_nor_training():
    probe = ("import sys, kd_traffic_light.tools.processes; "
             "print(sorted(m for m in ('rclpy', 'torch', 'ultralytics', 'training') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _descriptors(path: str) -> dict[str, str]:
    """The transport descriptors of a Fast DDS profile file, by id, as canonical XML text."""
    root = ET.parse(path).getroot()
    ns = {"dds": "http://www.eprosima.com"}
    return {d.findtext("dds:transport_id", namespaces=ns): ET.tostring(d, encoding="unicode").strip()
            for d in root.iterfind(".//dds:transport_descriptor", ns)}


def test_the_profile_without_tcp_is_the_shipped_one_less_tcp():
    shipped, local = _descriptors(P.fastdds_profile()), _descriptors(P.fastdds_profile(tcp=False))
    assert {k: v for k, v in shipped.items() if "TCPv4" not in v} == local and len(shipped) == len(local) + 1


def test_ros_env_sets_domain_log_dir_and_transports(tmp_path, monkeypatch):
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.setenv("FASTDDS_BUILTIN_TRANSPORTS", "DEFAULT")
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", "/elsewhere/profiles.xml")
    env = P.ros_env(tmp_path / "logs", 42)
    assert (tmp_path / "logs").is_dir()
    assert env["ROS_DOMAIN_ID"] == "42" and env["ROS_LOG_DIR"] == str(tmp_path / "logs")
    assert env["FASTDDS_BUILTIN_TRANSPORTS"] == "LARGE_DATA" and "ROS_AUTOMATIC_DISCOVERY_RANGE" not in env
    profile = Path(env["FASTDDS_DEFAULT_PROFILES_FILE"])
    assert profile.name == "fastdds_large_frames_no_tcp.xml" and "<segment_size>" in profile.read_text()
    assert "TCPv4" not in profile.read_text() and "TCPv4" in Path(P.fastdds_profile()).read_text()
    kept = P.ros_env(tmp_path / "other", keep_user_settings=True)
    assert kept["FASTDDS_BUILTIN_TRANSPORTS"] == "DEFAULT" and kept["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert kept["FASTDDS_DEFAULT_PROFILES_FILE"] == "/elsewhere/profiles.xml"
    assert os.environ["FASTDDS_BUILTIN_TRANSPORTS"] == "DEFAULT"  # a copy: this process's environment untouched


def test_domain_id_stays_in_its_range():
    assert all(1 <= P.domain_id(f"salt{i}") <= 101 for i in range(50))
    assert all(215 <= P.domain_id(f"salt{i}", 215, 232) <= 232 for i in range(50))


def test_start_logs_output_and_stop_escalates_past_an_ignored_sigint(tmp_path):
    script = tmp_path / "stubborn.py"
    script.write_text(IGNORES_SIGINT)
    log = tmp_path / "stubborn.log"
    proc = P.start_process([sys.executable, str(script)], dict(os.environ), log)
    assert P.wait_until(lambda: "ready" in P.read_log(log), timeout=30)
    assert P.rss_mb(proc.pid) > 0
    assert P.stop(proc, timeout=1.0) == -signal.SIGTERM
    assert P.stop(None) is None
    assert P.read_log(tmp_path / "absent.log").startswith("<no log")


def test_a_process_that_ends_on_sigint_returns_its_own_exit_code(tmp_path):
    script = tmp_path / "clean.py"
    script.write_text(CLEAN_ON_SIGINT)
    proc = P.start_node("clean", [], {**os.environ, "PYTHONPATH": str(tmp_path)}, tmp_path / "clean.log")
    assert P.wait_until(lambda: "ready" in P.read_log(tmp_path / "clean.log"), timeout=30)
    assert P.stop(proc) == 0


def test_restart_until_matched_restarts_a_node_never_seen(tmp_path, monkeypatch):
    """The Fast DDS late-joiner stall: the first start is never matched, the restart is; the first log is kept."""
    from kd_traffic_light.tools import processes

    counted: list[str] = []
    monkeypatch.setattr(processes, "STALL_RESTARTS", counted)  # these restarts are made on purpose: not a stall
    log = tmp_path / "node.log"
    starts = []

    def start():
        starts.append(processes.start_process([sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ),
                                              log))
        return starts[-1]

    first = start()
    proc = processes.restart_until_matched(first, start, lambda: len(starts) >= 2, log, timeout=0.5)
    try:
        assert proc is starts[1] and first.poll() is not None  # the unseen one was stopped
        assert (tmp_path / "node.log.attempt1").is_file()
    finally:
        processes.stop(proc)
    never = start()
    with pytest.raises(RuntimeError, match="not matched in 2 starts"):
        processes.restart_until_matched(never, start, lambda: False, log, timeout=0.2, attempts=2)
    assert all(p.poll() is not None for p in starts)
    assert counted == [str(tmp_path / "node.log.attempt1")] * 2  # each restart is counted for the session summary
