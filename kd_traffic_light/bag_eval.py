"""Student vs teacher over a rosbag2, as real processes: the pip-setup equivalent of teacher_student.launch.py.

Starts `/student/detector` and `/teacher/detector` (detector_node with config/student.yaml and
config/teacher.yaml), `/comparison/comparison` (comparison_node with config/comparison.yaml) and the bag
replay paced by both detectors' results (so both process every frame) with /clock and
use_sim_time on every node (as `bag:=` does in the launch file), waits for the
end, stops every process cleanly and writes into `--out`:

* `records.csv` (or .jsonl): one comparison record per frame both detectors processed;
* `frames/<stamp_ns>.jpg`: the comparison overlays (teacher dashed, student solid);
* `overlay.mp4`: the overlays as a video (cv2 mp4v);
* `summary.json`: `status` (`ok` or `failed`, with `error`), pooled metrics, frame counts, exit codes and
  the commands run;
* `logs/*.log`: each process's output.

Nothing is reported over nothing. The bag is checked before any process starts: a missing path, a file
that is not a rosbag2, a truncated or corrupt one, or an `--image-topic` that is absent, not an Image or
CompressedImage, or without messages ends the tool with one `bag_eval: error: ...` line naming the file
and what is wrong, exit status 1, and nothing written. Once the processes ran, `summary.json` is always
written; when no frame was compared or a process failed, its `status` is `failed`, `error` says why, the
exit status is 1 and no metrics JSON is printed. Precision, recall and F1 are null where undefined (no
detection, no reference box, or no frame). Bad flags exit with status 2.

    python -m kd_traffic_light.bag_eval BAG --student-model student.onnx --teacher-model teacher.pt --out runs/eval
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2

from kd_traffic_light.core.atomic_io import atomic_path, atomic_write_json
from kd_traffic_light.resources import share_path

OVERLAY_TOPIC = "/comparison/comparison/overlay"
PACE_TOPICS = ["/teacher/detector/detections", "/student/detector/detections"]


def get_args_parser() -> argparse.ArgumentParser:
    """Command-line flags of bag_eval."""
    p = argparse.ArgumentParser(prog="bag_eval", description=__doc__.split("\n\n")[0])
    p.add_argument("bag", type=Path, help="rosbag2 directory (sqlite3 or mcap) with the camera topic")
    p.add_argument("--student-model", required=True, help="student model path (.pt, .onnx, OpenVINO dir)")
    p.add_argument("--teacher-model", required=True, help="teacher model path (.pt, .onnx, OpenVINO dir)")
    p.add_argument("--out", type=Path, required=True,
                   help="output folder (created; a previous run's records, frames, video and summary are replaced)")
    p.add_argument("--image-topic", default="/camera/image_raw", help="camera topic in the bag")
    p.add_argument("--student-params", type=Path, default=None,
                   help="student params file (default: the package's config/student.yaml)")
    p.add_argument("--teacher-params", type=Path, default=None,
                   help="teacher params file (default: the package's config/teacher.yaml)")
    p.add_argument("--comparison-params", type=Path, default=None,
                   help="comparison params file (default: the package's config/comparison.yaml)")
    p.add_argument("--device", default=None, help="override the detectors' 'device' parameter (cpu, cuda:0)")
    p.add_argument("--records", default="records.csv", help="records file name in --out (.csv or .jsonl)")
    p.add_argument("--pace-timeout", type=float, default=60.0,
                   help="seconds the replay waits for both detectors' results of a frame before moving on")
    p.add_argument("--startup-timeout", type=float, default=300.0,
                   help="seconds to wait for the detectors to load their models and subscribe")
    p.add_argument("--fps", type=float, default=10.0, help="frame rate of overlay.mp4")
    p.add_argument("--no-video", action="store_true", help="do not collect overlays, frames or the MP4")
    return p


def node_commands(args: argparse.Namespace, out: Path) -> dict[str, list[str]]:
    """Return the command line of every process, keyed by role (student, teacher, comparison, replay)."""
    py = [sys.executable, "-m"]
    cmds = {}
    for role in ("student", "teacher"):
        params = getattr(args, f"{role}_params") or share_path("config", f"{role}.yaml")
        cmd = [*py, "kd_traffic_light.detector_node", "--ros-args", "--params-file", str(params),
               "-r", f"__ns:=/{role}", "-r", "__node:=detector", "-r", f"image:={args.image_topic}",
               "-p", f"model:={getattr(args, f'{role}_model')}", "-p", "use_sim_time:=true"]
        if args.device:
            cmd += ["-p", f"device:={args.device}"]
        cmds[role] = cmd
    comparison_params = args.comparison_params or share_path("config", "comparison.yaml")
    cmds["comparison"] = [
        *py, "kd_traffic_light.comparison_node", "--ros-args", "--params-file", str(comparison_params),
        "-r", "__ns:=/comparison", "-r", "__node:=comparison", "-p", f"records_path:={out.resolve() / args.records}",
        "-p", "use_sim_time:=true",
        "-p", f"image_topic:={args.image_topic}", "-p", f"publish_overlay:={'false' if args.no_video else 'true'}"]
    cmds["replay"] = [
        *py, "kd_traffic_light.replay", str(args.bag), "--topics", args.image_topic, "--clock",
        "--pace-topic", *PACE_TOPICS, "--pace-timeout", str(args.pace_timeout), "--start-delay", "1.0",
        "--wait-subscribers", "2" if args.no_video else "3", "--wait-timeout", str(args.startup_timeout)]
    return cmds


def ros_env(out: Path) -> dict[str, str]:
    """Environment of the processes: LARGE_DATA transports and a log dir unless the user set them."""
    env = dict(os.environ)
    env.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA")
    env.setdefault("ROS_LOG_DIR", str(out / "logs" / "ros"))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def stop(proc: subprocess.Popen, timeout: float = 20.0) -> int:
    """SIGINT, then SIGTERM, then SIGKILL; return the exit code."""
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()


def write_video(frames_dir: Path, path: Path, fps: float) -> int:
    """Encode the frames (sorted by name) into an mp4v MP4 written atomically; return the frames written."""
    files = sorted(frames_dir.glob("*.jpg"))
    if not files:
        return 0
    first = cv2.imread(str(files[0]))
    h, w = first.shape[:2]
    with atomic_path(path, keep_suffix=True) as tmp:  # OpenCV picks the container by the extension
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        try:
            if not writer.isOpened():
                raise OSError(f"{path}: OpenCV could not open an mp4v writer")
            for f in files:
                img = cv2.imread(str(f))
                writer.write(img if img.shape[:2] == (h, w) else cv2.resize(img, (w, h)))
        finally:
            writer.release()
    return len(files)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def pooled_metrics(records: Path) -> dict:
    """Pooled TP/FP/FN, precision, recall and F1 over every record (CSV or JSONL).

    Undefined ratios are None (JSON null): precision without any student detection, recall without any
    teacher box, all three over zero frames (also when ``records`` does not exist). A malformed records
    file raises ValueError naming it.
    """
    rows: list = []
    if records.exists():
        text = records.read_text(encoding="utf-8")
        try:
            if records.suffix == ".csv":
                rows = list(csv.DictReader(text.splitlines()))
            else:
                rows = [json.loads(line) for line in text.splitlines() if line.strip()]
            tp, fp, fn = (sum(int(r[k]) for r in rows) for k in ("tp", "fp", "fn"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{records}: malformed records file ({type(exc).__name__}: {exc})") from None
    else:
        tp = fp = fn = 0
    return {"frames": len(rows), "tp": tp, "fp": fp, "fn": fn, "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn), "f1": _ratio(2 * tp, 2 * tp + fp + fn)}


def check_bag(bag: Path, image_topic: str) -> str:
    """Check, before any process starts, that ``bag`` can be replayed on ``image_topic``; return a line about it.

    Reads every message of the topic (raw bytes, not decoded), so that a bag truncated or corrupt in the
    middle is refused too. Raises the replay's BagError (a ValueError naming the file and what is wrong).
    """
    from kd_traffic_light.replay import BagError, read_bag

    conns, messages = read_bag(bag, [image_topic])  # refuses a topic that is absent or not an image type
    n = sum(1 for _ in messages)
    if not n:
        raise BagError(f"{bag}: image topic {image_topic} ({conns[0].msgtype}) has no messages")
    return f"{n} images on {image_topic} ({conns[0].msgtype})"


def outcome(metrics: dict, codes: dict[str, int], logs: Path) -> str | None:
    """Why the run failed (None when it did not): a process exited non-zero, or no frame was compared."""
    bad = {role: code for role, code in codes.items() if code != 0}
    if bad:
        why = ""
        log = logs / "replay.log"
        if "replay" in bad and log.is_file():
            errors = [ln for ln in log.read_text(errors="replace").splitlines() if ln.startswith("replay: error:")]
            why = f" ({errors[-1]})" if errors else ""
        return f"processes exited with {bad}{why}; see {logs}"
    if not metrics.get("frames"):
        return (f"no frame was compared: the comparison wrote no record, so there are no metrics; "
                f"see {logs} (replay.log counts the images published, student.log and teacher.log the detections)")
    return None


class OverlaySaver:
    """Subscribes to the comparison overlay in this process and saves every frame as a JPEG."""

    def __init__(self, frames_dir: Path) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        from kd_traffic_light.conversions import image_msg_to_bgr

        self.frames_dir = frames_dir
        self.count = 0
        self._decode = image_msg_to_bgr
        self.context = rclpy.context.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("bag_eval_overlay_saver", context=self.context)
        self.node.create_subscription(Image, OVERLAY_TOPIC, self._on_overlay,
                                      QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set() and self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.1)
            except Exception:  # noqa: BLE001 - context shut down meanwhile
                return

    def _on_overlay(self, msg) -> None:
        try:
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            name = f"{stamp:020d}_{msg.header.frame_id.replace('/', '_')}.jpg"
            cv2.imwrite(str(self.frames_dir / name), self._decode(msg))
            self.count += 1
        except Exception as exc:  # noqa: BLE001 - a callback never raises
            self.node.get_logger().warning(f"overlay not saved: {exc}")

    def ready(self) -> bool:
        """Whether the comparison node's overlay publisher has been discovered."""
        return self.node.count_publishers(OVERLAY_TOPIC) >= 1

    def close(self) -> None:
        """Stop spinning and shut the context down."""
        import rclpy

        self._stop.set()
        self._thread.join(timeout=5)
        self.executor.shutdown(timeout_sec=1)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def _wait_records_settle(records: Path, settle_s: float = 1.5, timeout_s: float = 60.0) -> None:
    """After the replay ends, wait until the records file stopped growing for `settle_s` seconds."""
    deadline, last, since = time.monotonic() + timeout_s, -1, time.monotonic()
    while time.monotonic() < deadline:
        size = records.stat().st_size if records.exists() else 0
        if size != last:
            last, since = size, time.monotonic()
        elif time.monotonic() - since >= settle_s:
            return
        time.sleep(0.2)


def run(args: argparse.Namespace) -> int:
    """Run the evaluation; return 0 when every process ended cleanly and at least one frame was compared."""
    try:
        bag_line = check_bag(args.bag, args.image_topic)
    except ValueError as exc:
        print(f"bag_eval: error: {exc}", file=sys.stderr, flush=True)
        return 1
    out = args.out
    (out / "logs").mkdir(parents=True, exist_ok=True)
    frames_dir = out / "frames"
    frames_dir.mkdir(exist_ok=True)
    # A previous run's results must not be read as this run's (the comparison node appends to its records).
    for stale in [out / "summary.json", out / args.records, out / "overlay.mp4", *frames_dir.glob("*.jpg")]:
        stale.unlink(missing_ok=True)
    print(f"bag_eval: {args.bag}: {bag_line}", flush=True)
    env = ros_env(out)
    os.environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", env["FASTDDS_BUILTIN_TRANSPORTS"])
    os.environ.setdefault("ROS_LOG_DIR", env["ROS_LOG_DIR"])
    cmds = node_commands(args, out)
    procs: dict[str, subprocess.Popen] = {}
    codes: dict[str, int] = {}
    saver = None
    try:
        # The replay starts first and waits for its subscribers: with Fast DDS LARGE_DATA a participant that
        # joins after several others started together often never discovers one of them
        # (test/nodes/discovery_repro.py), and the replay used to be that late joiner.
        for role in ("replay", "student", "teacher", "comparison"):
            with open(out / "logs" / f"{role}.log", "wb") as log:
                procs[role] = subprocess.Popen(cmds[role], env=env, stdout=log, stderr=subprocess.STDOUT)
        saver = None if args.no_video else OverlaySaver(frames_dir)
        if saver is not None:
            deadline = time.monotonic() + args.startup_timeout
            while not saver.ready() and time.monotonic() < deadline:
                time.sleep(0.1)
        print(f"bag_eval: replay, detectors and comparison started; replaying {args.bag} once they are up",
              flush=True)
        while procs["replay"].poll() is None:
            dead = [r for r in ("student", "teacher", "comparison") if procs[r].poll() is not None]
            if dead:
                print(f"bag_eval: {dead} exited early; see {out / 'logs'}", file=sys.stderr)
                break
            time.sleep(0.5)
        _wait_records_settle(out / args.records)
    except KeyboardInterrupt:
        print("bag_eval: interrupted; stopping the processes", file=sys.stderr)
    finally:
        for role in ("replay", "student", "teacher", "comparison"):
            if role in procs:
                codes[role] = stop(procs[role])
        if saver is not None:
            saver.close()
    n_video = 0 if args.no_video else write_video(frames_dir, out / "overlay.mp4", args.fps)
    try:
        metrics = pooled_metrics(out / args.records)
        error = outcome(metrics, codes, out / "logs")  # SIGINT'ed nodes exit 0; the replay ends by itself (0)
    except ValueError as exc:
        metrics, error = {"frames": None, "precision": None, "recall": None, "f1": None}, str(exc)
    summary = {"status": "failed" if error else "ok", "error": error, "bag": str(args.bag),
               "student_model": args.student_model, "teacher_model": args.teacher_model, "metrics": metrics,
               "overlay_frames": n_video, "exit_codes": codes, "commands": cmds}
    atomic_write_json(out / "summary.json", summary)
    if error:
        print(f"bag_eval: error: {error}", file=sys.stderr, flush=True)
        return 1
    print(json.dumps(metrics), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m kd_traffic_light.bag_eval BAG --student-model ... --teacher-model ... --out ...`."""
    parser = get_args_parser()
    args = parser.parse_args(argv)
    if min(args.pace_timeout, args.startup_timeout, args.fps) <= 0:
        parser.error("--pace-timeout, --startup-timeout and --fps must be > 0")
    if not args.records.endswith((".csv", ".jsonl")) or Path(args.records).name != args.records:
        parser.error(f"--records {args.records!r}: expected a file name ending with .csv or .jsonl")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
