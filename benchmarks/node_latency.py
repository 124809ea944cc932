"""Detector node figures: node-overhead, node-throughput, node-bounded, node-start, runtime-size, student-vs-teacher.

The student (yolov5n, exported to ONNX at the frames' 2:1 aspect and run by the lean ONNX Runtime backend),
the teacher (yolov5l ``.pt`` through ultralytics) and a relay run as real, separate processes; this process
publishes 2048x1024 bgr8 frames and receives their ``~/detections`` (Detection2DArray, input header copied
verbatim, so answers are matched by stamp). The relay (``--relay`` mode of this script) receives the same
frames the same way the detector does (raw subscription, header read from the bytes) and publishes an empty
Detection2DArray with the header: the transport floor. The student node runs in the runtime-only venv
(``.venv-runtime``, no torch) when it exists. The core's own predict time (``TrafficLightDetector.predict``,
same ONNX file, same frames) is measured in a separate process with the node's Python (this process has
torch loaded for the teacher's core, whose threads would slow ONNX Runtime down). Every repetition runs, in an
order that is reversed on odd repetitions, these blocks:

* serial: frames sent one at a time, each after the previous answer, to the student and to the relay ->
  end-to-end latencies;
* core: ``predict`` on the same frames in this process (student, then teacher) -> predict time P;
* low: input at ``--low-factor`` x capacity (capacity = 1/P, estimated once at start) -> latencies;
* high: input above capacity (``--high-rate``, 30 Hz, raised to 1.5 x capacity where 30 Hz is not above
  it) to the student, then to the teacher -> answered frames/s and latencies.

Figures (median over repetitions of the per-repetition ratio unless said otherwise):

* node-overhead = (median student serial latency - median relay serial latency) / median student predict
  time: the node's cost above the transport floor (goal <= 1.10; 1.0 is the limit);
* node-overhead-e2e = median student serial latency / median predict time (transport included; report);
* node-throughput = student frames/s at the high rate x P (goal >= 0.90);
* node-bounded = p99 latency at the high rate / p99 at the low rate, each pooled over repetitions (goal <= 1.5);
* node-start = time from process start to the first published detection and resident memory then, for the
  ONNX student and for the same student as ``.pt`` (report);
* runtime-size = installed size of .venv-runtime vs .venv (report);
* student-vs-teacher = student frames/s / teacher frames/s at the same input (report; FLOPs ratio is the
  ceiling, the core's teacher/student predict-time ratio is this machine's ceiling).

Absolute times are for context only; the ratios are printed last and written to JSON. Goals and measured values:
docs/benchmarks.md.

    python benchmarks/node_latency.py --quick          # imgsz 320, fewer/shorter reps (~4 minutes)
    python benchmarks/node_latency.py                  # imgsz 640, full profile
    python benchmarks/node_latency.py --out runs/bench/node_latency.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import struct
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# before rclpy, torch or ultralytics are imported / the participant is created
os.environ["YOLO_AUTOINSTALL"] = "false"
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ["FASTDDS_BUILTIN_TRANSPORTS"] = "LARGE_DATA"
os.environ.pop("ROS_AUTOMATIC_DISCOVERY_RANGE", None)  # it would override LARGE_DATA

import numpy as np  # noqa: E402

from kd_traffic_light.core.atomic_io import atomic_write_json  # noqa: E402
from kd_traffic_light.core.config import ConfigError, NodeConfig  # noqa: E402
from kd_traffic_light.processes import read_log, rss_mb, start_process, stop  # noqa: E402

WIDTH, HEIGHT = 2048, 1024
PROFILES = {  # --quick and the full default
    "quick": {"imgsz": 320, "reps": 4, "serial_frames": 8, "core_frames": 8, "duration": 4.0,
              "teacher_duration": 5.0, "start_reps": 2},
    "full": {"imgsz": 640, "reps": 7, "serial_frames": 20, "core_frames": 20, "duration": 12.0,
             "teacher_duration": 15.0, "start_reps": 3},
}
GOALS = {"node-overhead": "<= 1.10 (against the relay floor; 1.0 is the limit)", "node-overhead-e2e": "report",
         "node-throughput": ">= 0.90", "node-bounded": "<= 1.5",
         "student-vs-teacher": "report (FLOPs ratio is the ceiling)"}
RUNTIME_VENV = REPO / ".venv-runtime"


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="quick profile: imgsz 320, 4 short repetitions")
    p.add_argument("--imgsz", type=int, default=None, help="inference size (default 640, 320 with --quick)")
    p.add_argument("--reps", type=int, default=None, help="repetitions of the alternating blocks")
    p.add_argument("--serial-frames", type=int, default=None, help="frames per serial (one-at-a-time) block")
    p.add_argument("--core-frames", type=int, default=None, help="core predict calls per core block")
    p.add_argument("--duration", type=float, default=None, help="seconds of each low/high-rate student block")
    p.add_argument("--teacher-duration", type=float, default=None, help="seconds of each teacher high-rate block")
    p.add_argument("--high-rate", type=float, default=30.0,
                   help="input Hz above capacity (raised to 1.5 x capacity where it is not above it)")
    p.add_argument("--low-factor", type=float, default=0.5, help="sustainable input rate as a fraction of capacity")
    p.add_argument("--student-cfg", default="yolov5n.yaml", help="student model yaml (built untrained, 2 classes)")
    p.add_argument("--teacher-cfg", default="yolov5l.yaml", help="teacher model yaml (built untrained, 2 classes)")
    p.add_argument("--device", default="cpu", help="device for the nodes and the core (cpu, cuda:0)")
    p.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                   help="the student's inference threads (node parameter threads), also for its core predict time; "
                        "default: one core fewer than the machine has, leaving one to the camera and the transport "
                        "(0: the runtime's default, every core)")
    p.add_argument("--fresh-wait", type=float, default=None,
                   help="the student's fresh_wait node parameter (default: the node's default; 0: always serve the "
                        "pending frame, a pure latest-frame slot)")
    p.add_argument("--fastdds-profile", default=None, metavar="XML",
                   help="Fast DDS XML profiles file of every participant (FASTDDS_DEFAULT_PROFILES_FILE); default: "
                        "the shipped config/fastdds_large_frames.xml; 'none': FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA")
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: random in 215..232)")
    p.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait for a node to be up")
    p.add_argument("--out", default="runs/bench/node_latency.json", help="JSON output path")
    p.add_argument("--node-python", default=None,
                   help="Python of the ONNX student and the relay (default: .venv-runtime's when it exists, "
                        "else this one)")
    p.add_argument("--start-reps", type=int, default=None, help="fresh starts per model for node-start")
    p.add_argument("--relay", action="store_true", help="run as the relay node (used by the benchmark itself)")
    return p


def make_frames(n: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Synthetic 2048x1024 street-like frames: gradient sky, noise, a few lit lamp housings."""
    import cv2

    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        y = np.linspace(0, 1, HEIGHT, dtype=np.float32)[:, None, None]
        img = (np.array([200, 150, 90], np.float32) * (1 - y) + np.array([60, 60, 60], np.float32) * y)
        img = np.broadcast_to(img, (HEIGHT, WIDTH, 3)) + rng.normal(0, 12, (HEIGHT, WIDTH, 3))
        img = np.clip(img, 0, 255).astype(np.uint8)
        for _ in range(6):
            x0, y0 = int(rng.integers(0, WIDTH - 40)), int(rng.integers(50, HEIGHT // 2))
            w, h = int(rng.integers(10, 30)), int(rng.integers(25, 80))
            cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), (20, 20, 20), -1)
            lamp = [(0, 0, 255), (0, 200, 255), (0, 255, 0)][int(rng.integers(0, 3))]
            cv2.circle(img, (x0 + w // 2, y0 + h // 4), max(2, w // 3), lamp, -1)
        frames.append(np.ascontiguousarray(img))
    return frames


def image_msg(bgr: np.ndarray) -> bytes:
    """Serialize the frame as a sensor_msgs/Image (plain CDR, little endian); the stamp is patched per send.

    Publishing these bytes (rclpy's raw publish) keeps the load generator cheap: converting a 6.3 MB
    message to C and serialising it for every send would cost this process more CPU than the node's
    transport, on the same cores.
    """
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header.frame_id = "camera"
    msg.height, msg.width = bgr.shape[:2]
    msg.encoding, msg.is_bigendian, msg.step = "bgr8", 0, bgr.shape[1] * 3
    msg.data = bgr.tobytes()  # bytes: an ndarray assignment costs ~50x more
    raw = serialize_message(msg)
    assert raw[:2] == b"\x00\x01", "expected plain little-endian CDR"
    return raw


def pct(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


def med(values) -> float:
    return float(statistics.median(values)) if len(values) else float("nan")


class Bench:
    """Publishes frames to the nodes and matches their answers by stamp."""

    def __init__(self, probe, targets: dict[str, str]) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        self.probe = probe
        self.cond = threading.Condition()
        self.sent: dict[tuple[int, int], float] = {}
        self.recv: dict[tuple[int, int], float] = {}
        self.diag: dict[str, dict[str, str]] = {}
        self._last_ns = 0
        self.pubs = {}
        node = probe.node
        reliable_in = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        answers = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self._qos = (reliable_in, answers)
        for name, ns in targets.items():
            self.add_target(name, ns)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)

    def add_target(self, name: str, ns: str) -> None:
        """Publish frames on ``/bench/image_<name>`` and listen to ``<ns>/detector/detections``."""
        from sensor_msgs.msg import Image
        from vision_msgs.msg import Detection2DArray

        node = self.probe.node
        self.pubs[name] = node.create_publisher(Image, f"/bench/image_{name}", self._qos[0])
        node.create_subscription(Detection2DArray, f"{ns}/detector/detections", self._on_answer, self._qos[1])

    def _on_answer(self, msg) -> None:
        t = time.perf_counter()
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        with self.cond:
            self.recv.setdefault(key, t)
            self.cond.notify_all()

    def _on_diag(self, msg) -> None:
        for st in msg.status:  # model paths point into the temp dir: keep the file name only
            self.diag[st.name] = {kv.key: Path(kv.value).name if kv.key == "model" else kv.value
                                  for kv in st.values}

    def publish(self, target: str, msg) -> tuple[int, int]:
        """Stamp `msg` uniquely, record the send time and publish it to `target`; returns the stamp."""
        ns = max(time.time_ns(), self._last_ns + 1)  # unique, real-time stamps
        self._last_ns = ns
        key = (ns // 1_000_000_000, ns % 1_000_000_000)
        raw = msg[:4] + struct.pack("<iI", *key) + msg[12:]  # header.stamp: the first 8 bytes after encapsulation
        with self.cond:
            self.sent[key] = time.perf_counter()
        self.pubs[target].publish(raw)
        return key

    def wait_answer(self, key, timeout: float) -> float | None:
        """Latency of the answer to stamp `key`, waiting up to `timeout` s; None when it never came."""
        with self.cond:
            if self.cond.wait_for(lambda: key in self.recv, timeout=timeout):
                return self.recv[key] - self.sent[key]
        return None

    def wait_ready(self, target: str, proc, log: Path, msg, timeout: float) -> None:
        """Wait until the node subscribes to the input and answers a frame (model loaded and warm)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{target} node exited with {proc.returncode}:\n{read_log(log, 3000)}")
            if self.pubs[target].get_subscription_count() >= 1:
                key = self.publish(target, msg)
                if self.wait_answer(key, timeout=5.0) is not None:
                    return
            else:
                time.sleep(0.2)
        raise TimeoutError(f"{target} node did not answer within {timeout:.0f} s:\n{read_log(log, 3000)}")

    def serial(self, target: str, msgs, n: int, timeout: float) -> tuple[list[float], int]:
        """Send ``n`` frames one at a time, each after the previous answer; returns latencies and losses."""
        lat, lost = [], 0
        for i in range(n):
            got = self.wait_answer(self.publish(target, msgs[i % len(msgs)]), timeout)
            if got is None:
                lost += 1
            else:
                lat.append(got)
        return lat, lost

    def at_rate(self, target: str, msgs, rate: float, duration: float, drain: float) -> dict:
        """Publish at ``rate`` Hz for ``duration`` s; answered frames/s and latencies of the answered frames."""
        period = 1.0 / rate
        keys = []
        t0 = nxt = time.perf_counter()
        while True:
            now = time.perf_counter()
            if now - t0 >= duration:
                break
            if nxt > now:
                time.sleep(nxt - now)
            keys.append(self.publish(target, msgs[len(keys) % len(msgs)]))
            nxt += period
            if time.perf_counter() - nxt > period:  # fell behind by more than a period: no bursts
                nxt = time.perf_counter()
        sent_s = time.perf_counter() - t0
        time.sleep(drain)
        with self.cond:
            answered = sorted((self.recv[k], self.recv[k] - self.sent[k]) for k in keys if k in self.recv)
        times = [t for t, _ in answered]
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) >= 2 and times[-1] > times[0] else 0.0
        return {"sent": len(keys), "sent_hz": len(keys) / sent_s, "answered": len(times), "fps": fps,
                "latencies": [lat for _, lat in answered]}


def core_block(det, frames, n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        det.predict(frames[i % len(frames)])
        out.append(time.perf_counter() - t0)
    return out


def core_worker_main(model: str, imgsz: int, device: str, threads: int = 0) -> int:
    """Time ``predict`` in a process like the node's (same Python, no torch): one line ``N`` in, N times out."""
    from kd_traffic_light.core.config import DetectorConfig
    from kd_traffic_light.core.detector import TrafficLightDetector

    det = TrafficLightDetector(DetectorConfig(model=model, imgsz=imgsz, device=device, threads=threads))
    frames = make_frames()
    det.warmup((HEIGHT, WIDTH))
    print(json.dumps({"ready": det.backend}), flush=True)
    for line in sys.stdin:
        n = int(line)
        print(json.dumps(core_block(det, frames, n)), flush=True)
    return 0


class CoreWorker:
    """The student's core predict timed in a separate process with the node's Python (see core_worker_main)."""

    def __init__(self, python: str, model: Path, imgsz: int, device: str, env: dict, threads: int = 0) -> None:
        import subprocess

        self.proc = subprocess.Popen([python, str(Path(__file__).resolve()), "--core-worker", str(model), str(imgsz),
                                      device, str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        ready = json.loads(self.proc.stdout.readline())
        self.backend = ready["ready"]

    def times(self, n: int) -> list[float]:
        """``n`` predict times (s) on the benchmark frames."""
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        """End the worker."""
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def relay_main(ros_args: list[str]) -> int:
    """Run the transport floor: frames received as the detector receives them, answered at once.

    Raw subscription, header read from the bytes, an empty Detection2DArray with that header published.
    """
    from kd_traffic_light.shutdown import SignalGuard, init_rclpy, spin_until_requested

    guard = SignalGuard("relay").install()
    init_rclpy(ros_args)
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray

    from kd_traffic_light.cdr_image import read_image
    from kd_traffic_light.detector_node import header_msg

    class Relay(Node):
        def __init__(self) -> None:
            super().__init__("detector")
            self.pub = self.create_publisher(Detection2DArray, "~/detections", 10)
            self.create_subscription(Image, "image", self._on_image,
                                     QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT), raw=True)

        def _on_image(self, raw: bytes) -> None:
            out = Detection2DArray()
            out.header = header_msg(read_image(raw))
            self.pub.publish(out)

    node = Relay()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        spin_until_requested(executor, guard)
    finally:
        guard.ignore_further()
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def untrained_pt(path: Path, cfg: str) -> Path:
    """Write an untrained 2-class checkpoint of the model yaml ``cfg`` that ``ultralytics.YOLO`` loads."""
    import torch
    from ultralytics import __version__
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel(cfg, nc=2, verbose=False)
    model.names = {0: "relevant", 1: "not_relevant"}
    model.args = {"imgsz": 64, "task": "detect"}
    torch.save({"model": model, "train_args": {"imgsz": 64, "task": "detect"}, "version": __version__}, path)
    return Path(path)


def export_onnx(pt: Path, imgsz: int) -> Path:
    """Export ``pt`` to a static ONNX model at the frames' 2:1 aspect (imgsz wide), no padding rows."""
    from ultralytics import YOLO

    return Path(YOLO(str(pt)).export(format="onnx", imgsz=[imgsz * HEIGHT // WIDTH, imgsz], verbose=False))


def venv_size_mb(path: Path) -> float:
    """Installed size of a directory tree (files only, links not followed), MiB."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total / 2**20


def node_start(bench, cmds: dict[str, list[str]], env: dict, tmp: Path, msg, reps: int, timeout: float) -> dict:
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


def gflops(cfg: str, imgsz: int) -> float:
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.torch_utils import get_flops

    model = DetectionModel(cfg, nc=2, verbose=False)
    return float(get_flops(model, [imgsz * HEIGHT // WIDTH, imgsz]))  # the letterboxed 2:1 input


TARGETS = {"student": "/student", "teacher": "/teacher", "relay": "/relay"}  # node name -> namespace


def _node_python(args) -> str:
    """Return the Python of the ONNX student and the relay: ``--node-python``, else .venv-runtime's, else this one."""
    runtime_py = RUNTIME_VENV / "bin" / "python"
    return args.node_python or (str(runtime_py) if runtime_py.exists() else sys.executable)


def _bench_env(args, tmp: Path) -> tuple[int, dict]:
    """Draw the ROS domain and build the nodes' environment; this process's participant uses it too."""
    from kd_traffic_light.processes import export_participant_env, ros_env

    # the tests draw ROS_DOMAIN_ID from 1..101 (kd_traffic_light.processes.domain_id); 215..232 keeps this benchmark's
    # /student and /teacher nodes off their graphs, and its DDS ports (7400 + 250 x id) above Linux's
    # ephemeral port range
    dom = args.domain_id if args.domain_id is not None else random.SystemRandom().randint(215, 232)
    env = ros_env(tmp / "ros_log", dom)
    if args.fastdds_profile == "none":
        env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
        os.environ.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    elif args.fastdds_profile:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(Path(args.fastdds_profile).resolve())
    export_participant_env(env, override=True)  # this process's participant, before rclpy.init
    for var in ("ROS_DOMAIN_ID", "YOLO_AUTOINSTALL"):
        os.environ[var] = env[var]
    return dom, env


def _start_nodes(procs: dict, node_py: str, models: dict[str, Path], imgsz: int, device: str, env: dict,
                 tmp: Path, threads: int = 0, fresh_wait: float | None = None) -> dict[str, Path]:
    """Start the student, teacher and relay nodes into ``procs`` (so each started one is stopped); return their logs."""
    pythons = {"student": node_py, "teacher": sys.executable}
    logs = {}
    for name, ns in TARGETS.items():  # all start (load + warm up) while this process loads its core
        logs[name] = tmp / f"{name}_node.log"
        remaps = ["-r", f"__ns:={ns}", "-r", f"image:=/bench/image_{name}"]
        if name == "relay":
            cmd = [node_py, str(Path(__file__).resolve()), "--relay", "--ros-args", *remaps]
        else:
            cmd = [pythons[name], "-m", "kd_traffic_light.detector_node", "--ros-args", *remaps,
                   "-p", f"model:={models[name]}", "-p", f"imgsz:={imgsz}", "-p", f"device:={device}"]
            if name == "student":
                cmd += ["-p", f"threads:={threads}"]
                if fresh_wait is not None:
                    cmd += ["-p", f"fresh_wait:={fresh_wait}"]
        procs[name] = start_process(cmd, env, logs[name])
    return logs


def _wait_nodes(bench: Bench, procs: dict, logs: dict[str, Path], msgs: list, timeout: float) -> None:
    """Wait until every node answers a frame, then warm its 2048x1024 path end to end."""
    for name in TARGETS:
        try:
            bench.wait_ready(name, procs[name], logs[name], msgs[0], timeout)
            bench.serial(name, msgs, 3, timeout=30.0)
        except Exception:  # shown now: rclpy's clean-up on the way out has been seen to hang
            traceback.print_exc()
            sys.stdout.flush()
            raise


def _input_rates(worker: CoreWorker, args) -> tuple[float, float, float, float]:
    """Return the student predict time P, capacity 1/P and the low and high input rates (Hz) set from it."""
    p0 = med(worker.times(10))  # capacity estimate, taken while the nodes are up and idle
    capacity = 1.0 / p0
    high = args.high_rate if args.high_rate >= 1.2 * capacity else 1.5 * capacity
    low = args.low_factor * capacity
    print(f"nodes answering; student predict {p0 * 1000:.1f} ms -> capacity {capacity:.1f} Hz; "
          f"low {low:.1f} Hz, high {high:.1f} Hz; measuring ...", flush=True)
    return p0, capacity, low, high


@dataclass
class Blocks:
    """The measured blocks of a repetition; each fills its keys of the repetition's dict ``r``."""

    bench: Bench
    worker: CoreWorker
    teacher_core: Any
    frames: list
    msgs: list
    prof: dict
    p0: float
    low: float
    high: float

    def serial(self, r: dict) -> None:
        """Measure student and relay end-to-end latencies, alternating frame by frame."""
        timeout = max(3.0, 20 * self.p0)
        r["serial_s"], r["serial_lost"] = [], 0
        r["relay_s"], r["relay_lost"] = [], 0
        for _ in range(self.prof["serial_frames"]):
            for target, key in (("student", "serial"), ("relay", "relay")):
                lat, lost = self.bench.serial(target, self.msgs, 1, timeout)
                r[f"{key}_s"] += lat
                r[f"{key}_lost"] += lost

    def core(self, r: dict) -> None:
        """Time core predicts: the student's in its worker, the teacher's in this process."""
        r["core_s"] = self.worker.times(self.prof["core_frames"])
        r["core_teacher_s"] = core_block(self.teacher_core, self.frames, max(3, self.prof["core_frames"] // 3))

    def low_rate(self, r: dict) -> None:
        """Send to the student at the sustainable input rate."""
        r["low"] = self.bench.at_rate("student", self.msgs, self.low, self.prof["duration"],
                                      drain=max(0.3, 4 * self.p0))

    def high_rate(self, r: dict) -> None:
        """Send to the student above capacity."""
        r["high"] = self.bench.at_rate("student", self.msgs, self.high, self.prof["duration"],
                                       drain=max(0.3, 4 * self.p0))

    def teacher(self, r: dict) -> None:
        """Send to the teacher above capacity (drained for its own predict time where already measured)."""
        pt = med(r.get("core_teacher_s") or [10 * self.p0])
        r["teacher"] = self.bench.at_rate("teacher", self.msgs, self.high, self.prof["teacher_duration"],
                                          drain=max(0.5, 3 * pt))

    def repetition(self, rep: int) -> dict:
        """Run every block, in reverse order on odd repetitions; the measurements and this repetition's ratios."""
        r: dict = {}
        blocks = [self.serial, self.core, self.low_rate, self.high_rate, self.teacher]
        for block in blocks if rep % 2 == 0 else blocks[::-1]:
            block(r)
        p = med(r["core_s"])
        r["ratio_overhead"] = (med(r["serial_s"]) - med(r["relay_s"])) / p
        r["ratio_overhead_e2e"] = med(r["serial_s"]) / p
        r["ratio_throughput"] = r["high"]["fps"] * p
        r["ratio_student_teacher"] = (r["high"]["fps"] / r["teacher"]["fps"]
                                      if r["teacher"]["fps"] > 0 else float("nan"))
        r["ratio_bounded_rep"] = pct(r["high"]["latencies"], 99) / pct(r["low"]["latencies"], 99)
        return r


def _start_commands(node_py: str, onnx: Path, pt: Path, imgsz: int, device: str,
                    threads: int = 0) -> dict[str, list[str]]:
    """Return node-start's commands: the student as ONNX with the node's Python, and as ``.pt`` with this one."""
    detector = ["-m", "kd_traffic_light.detector_node", "--ros-args", "-p", f"imgsz:={imgsz}",
                "-p", f"device:={device}", "-p", f"threads:={threads}"]
    return {"onnx": [node_py, *detector, "-p", f"model:={onnx}"],
            "pt": [sys.executable, *detector, "-p", f"model:={pt}"]}


def run(args, prof: dict, tmp: Path) -> dict:
    """Start the nodes, measure every repetition's blocks, then node-start; return the raw results for ``summarize``."""
    from tqdm import tqdm

    from kd_traffic_light.core.config import DetectorConfig
    from kd_traffic_light.core.detector import TrafficLightDetector
    from kd_traffic_light.processes import ProbeNode

    imgsz = prof["imgsz"]
    student_pt = untrained_pt(tmp / "student_bench.pt", args.student_cfg)
    models = {"student": export_onnx(student_pt, imgsz),
              "teacher": untrained_pt(tmp / "teacher_bench.pt", args.teacher_cfg)}
    node_py = _node_python(args)
    dom, env = _bench_env(args, tmp)
    procs: dict = {}
    try:
        # The probe joins first: a participant joining after several others started together often never
        # discovers one of them with Fast DDS LARGE_DATA (test/nodes/discovery_repro.py)
        with ProbeNode("node_latency_bench", env) as probe:
            logs = _start_nodes(procs, node_py, models, imgsz, args.device, env, tmp, args.threads, args.fresh_wait)
            print(f"nodes started (ROS_DOMAIN_ID={dom}); loading the core models here ...", flush=True)
            frames = make_frames()
            teacher_core = TrafficLightDetector(DetectorConfig(model=str(models["teacher"]), imgsz=imgsz,
                                                               device=args.device))
            teacher_core.warmup((HEIGHT, WIDTH))
            worker = CoreWorker(node_py, models["student"], imgsz, args.device, env, args.threads)
            msgs = [image_msg(f) for f in frames]
            bench = Bench(probe, TARGETS)
            _wait_nodes(bench, procs, logs, msgs, args.startup_timeout)
            p0, capacity, low, high = _input_rates(worker, args)
            blocks = Blocks(bench, worker, teacher_core, frames, msgs, prof, p0, low, high)
            reps = [blocks.repetition(rep) for rep in tqdm(range(prof["reps"]), desc="repetitions", unit="rep")]
            time.sleep(1.2)  # one more diagnostics period
            diag = dict(bench.diag)
            rss = {name: rss_mb(proc.pid) for name, proc in procs.items()}
            rss["core_worker"] = rss_mb(worker.proc.pid)
            worker.close()
            for proc in procs.values():
                stop(proc)
            print("main blocks done; node-start: fresh starts of the ONNX and the .pt student ...", flush=True)
            start = node_start(bench, _start_commands(node_py, models["student"], student_pt, imgsz, args.device,
                                                       args.threads),
                               env, tmp, msgs[0], prof["start_reps"], min(60.0, args.startup_timeout))
    finally:
        codes = {name: (stop(proc) if proc.poll() is None else proc.returncode) for name, proc in procs.items()}
    return {"imgsz": imgsz, "reps": reps, "capacity_hz": capacity, "low_hz": low, "high_hz": high,
            "domain_id": dom, "node_exit_codes": codes, "diagnostics": diag, "node_rss_mb": rss,
            "node_start": start, "student_model": models["student"].name, "student_python": node_py,
            "gflops": {"student": gflops(args.student_cfg, imgsz), "teacher": gflops(args.teacher_cfg, imgsz)}}


def summarize(res: dict) -> dict:
    reps = res["reps"]
    pool = {k: [x for r in reps for x in r[k]] for k in ("serial_s", "relay_s", "core_s", "core_teacher_s")}
    for k in ("low", "high", "teacher"):
        pool[k] = [x for r in reps for x in r[k]["latencies"]]
    fl = res["gflops"]
    return {
        "figures": {
            "node-overhead": med([r["ratio_overhead"] for r in reps]),
            "node-overhead-e2e": med([r["ratio_overhead_e2e"] for r in reps]),
            "node-throughput": med([r["ratio_throughput"] for r in reps]),
            "node-bounded": pct(pool["high"], 99) / pct(pool["low"], 99),
            "student-vs-teacher": med([r["ratio_student_teacher"] for r in reps]),
        },
        "goals": GOALS,
        "context": {
            "student_predict_ms_median": med(pool["core_s"]) * 1000,
            "teacher_predict_ms_median": med(pool["core_teacher_s"]) * 1000,
            "serial_latency_ms_median": med(pool["serial_s"]) * 1000,
            "serial_latency_ms_p99": pct(pool["serial_s"], 99) * 1000,
            "serial_lost": sum(r["serial_lost"] for r in reps),
            "relay_latency_ms_median": med(pool["relay_s"]) * 1000,
            "relay_latency_ms_p99": pct(pool["relay_s"], 99) * 1000,
            "relay_lost": sum(r["relay_lost"] for r in reps),
            "student_fps_high_median": med([r["high"]["fps"] for r in reps]),
            "teacher_fps_high_median": med([r["teacher"]["fps"] for r in reps]),
            "ideal_student_fps": 1000 / (med(pool["core_s"]) * 1000),
            "low_latency_ms_median": med(pool["low"]) * 1000,
            "low_latency_ms_p99": pct(pool["low"], 99) * 1000,
            "high_latency_ms_median": med(pool["high"]) * 1000,
            "high_latency_ms_p99": pct(pool["high"], 99) * 1000,
            "teacher_latency_ms_p99": pct(pool["teacher"], 99) * 1000,
            "low_answered_fraction": sum(r["low"]["answered"] for r in reps) / max(1, sum(r["low"]["sent"]
                                                                                          for r in reps)),
            "high_sent_hz_median": med([r["high"]["sent_hz"] for r in reps]),
            "low_sent_hz_median": med([r["low"]["sent_hz"] for r in reps]),
            "bounded_per_rep_median": med([r["ratio_bounded_rep"] for r in reps]),
            "core_teacher_over_student_predict": med(pool["core_teacher_s"]) / med(pool["core_s"]),
            "flops_ratio_teacher_over_student": fl["teacher"] / fl["student"] if fl["student"] else float("nan"),
            "node_rss_mb": res["node_rss_mb"],
        },
        "node-start": {kind: {"first_detection_s_median": med([x["first_detection_s"] for x in runs
                                                                if x["first_detection_s"] is not None]),
                              "rss_mb_median": med([x["rss_mb"] for x in runs if x["rss_mb"] == x["rss_mb"]]),
                              "answered": sum(x["first_detection_s"] is not None for x in runs), "runs": runs}
                       for kind, runs in res["node_start"].items()},
        "runtime-size": res["runtime_size"],
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--core-worker"]:
        return core_worker_main(argv[1], int(argv[2]), argv[3], int(argv[4]))
    if "--relay" in argv:
        return relay_main(argv[argv.index("--ros-args"):] if "--ros-args" in argv else [])
    args = get_args_parser().parse_args(argv)
    try:  # the node's own check, before any process starts; the value used is recorded in the JSON
        fresh_wait = NodeConfig(**({} if args.fresh_wait is None else {"fresh_wait": args.fresh_wait})).fresh_wait
    except ConfigError as exc:
        raise SystemExit(f"node_latency: --fresh-wait: {exc}") from None
    prof = dict(PROFILES["quick" if args.quick else "full"])
    for k in ("imgsz", "reps", "serial_frames", "core_frames", "duration", "teacher_duration", "start_reps"):
        if getattr(args, k) is not None:
            prof[k] = getattr(args, k)
    print(f"node_latency ({'quick' if args.quick else 'full'}): {prof}", flush=True)
    with tempfile.TemporaryDirectory(prefix="node_latency_") as tmp:
        res = run(args, prof, Path(tmp))
    res["runtime_size"] = {"runtime_venv_mb": venv_size_mb(RUNTIME_VENV) if RUNTIME_VENV.exists() else None,
                           "full_venv_mb": venv_size_mb(Path(sys.prefix))}
    summary = summarize(res)
    import torch

    out = {"benchmark": "node_latency", "profile": "quick" if args.quick else "full", "settings": prof,
           "frame": f"{WIDTH}x{HEIGHT} bgr8", "student_cfg": args.student_cfg, "teacher_cfg": args.teacher_cfg,
           "device": args.device, "threads": args.threads,
           "fresh_wait": fresh_wait,
           "fastdds_profile": args.fastdds_profile or "config/fastdds_large_frames.xml",
           "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
           "load_avg": os.getloadavg(), "python": platform.python_version(), **summary,
           "run": {k: v for k, v in res.items() if k != "reps"},
           "reps": [{k: v for k, v in r.items()} for r in res["reps"]]}
    path = Path(args.out)
    atomic_write_json(path, out)
    print_summary(res, summary, path)
    return 0


def print_summary(res: dict, summary: dict, path: Path) -> None:
    """Print the figures of a run as a table, the JSON's path, then the ratios against their goals."""
    c = summary["context"]
    print(f"\nimgsz {res['imgsz']}, {len(res['reps'])} reps, capacity {res['capacity_hz']:.1f} Hz, "
          f"low {c['low_sent_hz_median']:.1f} Hz, high {c['high_sent_hz_median']:.1f} Hz sent; "
          f"load avg {os.getloadavg()[0]:.2f}")
    rows = [
        ("student core predict (median)", f"{c['student_predict_ms_median']:.1f} ms"),
        ("teacher core predict (median)", f"{c['teacher_predict_ms_median']:.1f} ms"),
        ("serial end-to-end latency (median / p99)",
         f"{c['serial_latency_ms_median']:.1f} / {c['serial_latency_ms_p99']:.1f} ms ({c['serial_lost']} lost)"),
        ("relay (transport floor) latency (median / p99)",
         f"{c['relay_latency_ms_median']:.1f} / {c['relay_latency_ms_p99']:.1f} ms ({c['relay_lost']} lost)"),
        ("student fps at high rate / ideal 1/P", f"{c['student_fps_high_median']:.2f} / {c['ideal_student_fps']:.2f}"),
        ("teacher fps at high rate", f"{c['teacher_fps_high_median']:.2f}"),
        ("latency at low rate (median / p99)", f"{c['low_latency_ms_median']:.1f} / {c['low_latency_ms_p99']:.1f} ms"),
        ("latency at high rate (median / p99)",
         f"{c['high_latency_ms_median']:.1f} / {c['high_latency_ms_p99']:.1f} ms"),
        ("low-rate frames answered", f"{c['low_answered_fraction']:.1%}"),
        ("core teacher/student predict time", f"{c['core_teacher_over_student_predict']:.2f}"),
        ("FLOPs teacher/student", f"{c['flops_ratio_teacher_over_student']:.2f}"),
    ]
    for kind, st in summary["node-start"].items():
        rows.append((f"node-start {kind}: first detection / RSS (median)",
                     f"{st['first_detection_s_median']:.2f} s / {st['rss_mb_median']:.0f} MiB "
                     f"({st['answered']}/{len(st['runs'])} starts answered)"))
    rows.append(("node RSS after the run (student / teacher / relay)",
                 " / ".join(f"{c['node_rss_mb'][k]:.0f}" for k in ("student", "teacher", "relay")) + " MiB"))
    size = summary["runtime-size"]
    if size["runtime_venv_mb"]:
        rows.append(("runtime-size: .venv-runtime / full venv",
                     f"{size['runtime_venv_mb']:.0f} / {size['full_venv_mb']:.0f} MiB "
                     f"({size['runtime_venv_mb'] / size['full_venv_mb']:.3f})"))
    width = max(len(a) for a, _ in rows)
    for a, b in rows:
        print(f"  {a:<{width}}  {b}")
    print(f"JSON: {path}")
    for name, value in summary["figures"].items():  # ratios last
        print(f"{name}: {value:.3f} (goal {GOALS[name]})")


if __name__ == "__main__":
    sys.exit(main())
