r"""Student vs teacher over a rosbag2, as real processes: the pip-setup equivalent of teacher_student.launch.py.

Starts the student and teacher detector nodes, the comparison node and the bag replay paced by both detectors
(/clock and use_sim_time on every node), waits for the end, stops every process cleanly and writes the
comparison records, the overlays (frames and an MP4), `summary.json` and each process's log into `--out`.

    python -m kd_traffic_light.tools.bag_eval BAG --student-model student.onnx --teacher-model teacher.onnx \
        --out runs/eval

Outputs, start-up order, errors and exit status: docs/runtime.md, "Offline tools over a bag".
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2

from kd_traffic_light.core.atomic_io import atomic_path, atomic_write_json
from kd_traffic_light.core.matching import Counts
from kd_traffic_light.core.records import count_records, parse_records, record_counts
from kd_traffic_light.resources import share_path
from kd_traffic_light.tools import processes

OVERLAY_TOPIC = "/comparison/comparison/overlay"
PACE_TOPICS = ["/teacher/detector/detections", "/student/detector/detections"]
ROLES = ("replay", "student", "teacher", "comparison")
START_FILE = "replay.start"  # in <out>/logs: created once the overlay saver is matched; the replay waits for it
OVERLAY_DRAIN_S = 10.0  # after the last record, how long the overlays still in flight may take
UP_LINES = {"student": "]: active: ", "teacher": "]: active: ", "comparison": "]: comparing "}  # model loaded
PLAYING_LINE = "]: starting playback after "  # the replay's line once everything it waits for appeared
DISCOVERY_S = 30.0  # once every node is up, how long they may take to find each other before a fresh start
START_ATTEMPTS = 3


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
                   help="seconds to wait for the detectors to load their models and subscribe, the comparison "
                        "and the overlay saver to match; what did not appear by then fails the run")
    p.add_argument("--fps", type=float, default=10.0, help="frame rate of overlay.mp4")
    p.add_argument("--no-video", action="store_true", help="do not collect overlays, frames or the MP4")
    p.add_argument("--truth", type=Path, default=None,
                   help="true state of the governing signal per frame (JSON, as training.data.synth."
                        "write_drive_truth writes it): score each detector's raw and revised signal against it "
                        "(signal.json, signal_timeline.png)")
    return p


def node_commands(args: argparse.Namespace, out: Path) -> dict[str, list[str]]:
    """Return the command line of every process, keyed by role (student, teacher, comparison, replay).

    With overlays or ``--truth`` the replay also waits for ``<out>/logs/replay.start`` (:data:`START_FILE`), created
    once this process' listener has matched every publisher it records.
    """
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
        *py, "kd_traffic_light.tools.replay", str(args.bag), "--topics", args.image_topic, "--clock",
        "--pace-topic", *PACE_TOPICS, "--pace-timeout", str(args.pace_timeout), "--start-delay", "1.0",
        "--wait-subscribers", "2" if args.no_video else "3",
        # bag_eval decides first (see _await_playback); the replay's own limit only ends an orphaned replay
        "--wait-timeout", str(args.startup_timeout + DISCOVERY_S + 30)]
    if not args.no_video or args.truth:  # the listener in this process must hear the first frame's results
        cmds["replay"] += ["--start-file", str(out.resolve() / "logs" / START_FILE)]
    return cmds


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


def pooled_metrics(records: Path) -> dict:
    """Pooled TP/FP/FN, precision, recall and F1 over every record (CSV or JSONL).

    The per-frame counts are pooled with the core's :class:`~kd_traffic_light.core.matching.Counts`, as the
    comparison node's rolling summary does. Undefined ratios are None (JSON null), not the core's empty-set
    convention (1.0 when both sides saw nothing): precision without any student detection, recall without
    any teacher box, all three over zero frames (also when ``records`` does not exist). A malformed records
    file raises ValueError naming it.
    """
    rows: list = []
    counts = Counts()
    if records.exists():
        text = records.read_text(encoding="utf-8")
        try:
            rows = parse_records(text, records)
            counts = sum((record_counts(r) for r in rows), Counts())
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{records}: malformed records file ({type(exc).__name__}: {exc})") from None
    tp, fp, fn = counts.tp, counts.fp, counts.fn
    out = {"frames": len(rows), "tp": tp, "fp": fp, "fn": fn,
           "precision": counts.precision if tp + fp else None,
           "recall": counts.recall if tp + fn else None,
           "f1": counts.f1 if tp + fp + fn else None}
    if any("state_pairs" in r for r in rows):  # models whose classes carry the light's state
        pairs = sum(int(r.get("state_pairs") or 0) for r in rows)
        out["state_pairs"] = pairs
        out["state_agreement"] = sum(int(r.get("state_agree") or 0) for r in rows) / pairs if pairs else None
    return out


def check_bag(bag: Path, image_topic: str) -> str:
    """Check, before any process starts, that ``bag`` can be replayed on ``image_topic``; return a line about it.

    Reads every message of the topic (raw bytes, not decoded), so that a bag truncated or corrupt in the
    middle is refused too. Raises the replay's BagError (a ValueError naming the file and what is wrong).
    """
    from kd_traffic_light.tools.replay import BagError, read_bag

    conns, messages = read_bag(bag, [image_topic])  # refuses a topic that is absent or not an image type
    n = sum(1 for _ in messages)
    if not n:
        raise BagError(f"{bag}: image topic {image_topic} ({conns[0].msgtype}) has no messages")
    return f"{n} images on {image_topic} ({conns[0].msgtype})"


def outcome(metrics: dict, codes: dict[str, int], logs: Path, overlay_frames: int | None = None) -> str | None:
    """Why the run failed (None when it did not).

    A process exited non-zero, no frame was compared, or, when overlays were asked for (``overlay_frames``
    is not None), frames were compared but not one overlay was saved.
    """
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
    if overlay_frames == 0:
        return (f"{metrics['frames']} frames were compared (the metrics in summary.json are valid) but the overlay "
                f"saver got no overlay of {OVERLAY_TOPIC}, so there are no frames and no overlay.mp4; see {logs} "
                "(comparison.log), or run with --no-video")
    return None


def overlay_warnings(metrics: dict, overlay_frames: int | None) -> list[str]:
    """Return the warnings of a run that did not fail: fewer overlays saved than frames compared."""
    frames = metrics.get("frames") or 0
    if overlay_frames is not None and 0 < overlay_frames < frames:
        return [f"only {overlay_frames} of the {frames} compared frames have an overlay ({OVERLAY_TOPIC})"]
    return []


class OverlaySaver:
    """Listens in this process: saves every comparison overlay as a JPEG, keeps both detectors' signals.

    With ``frames_dir`` None no overlay is subscribed. ``signals[role][stamp_ns]`` is the state the detector
    published on ``~/traffic_signals``, ``tracks[role][stamp_ns]`` its per-light ``~/traffic_lights`` (track id ->
    revised state), ``detections[role][stamp_ns]`` its detections (class names from its latched ``~/label_info``).
    """

    def __init__(self, frames_dir: Path | None) -> None:
        import rclpy
        from autoware_perception_msgs.msg import TrafficLightGroupArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        from vision_msgs.msg import Detection2DArray, LabelInfo

        from kd_traffic_light.conversions import image_msg_to_bgr, signal_from_msg, tracks_from_msg

        self.frames_dir = frames_dir
        self.count = 0
        self._decode, self._read_signal, self._read_tracks = image_msg_to_bgr, signal_from_msg, tracks_from_msg
        self.context = rclpy.context.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("bag_eval_overlay_saver", context=self.context)
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.sub = None if frames_dir is None else self.node.create_subscription(Image, OVERLAY_TOPIC,
                                                                                 self._on_overlay, reliable)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.signals: dict[str, dict[int, str]] = {}
        self.tracks: dict[str, dict[int, dict[str, str]]] = {}
        self.detections: dict[str, dict[int, object]] = {}
        self.names: dict[str, dict[int, str]] = {}
        self._signal_subs = []
        for role in ("student", "teacher"):
            self.signals[role], self.tracks[role], self.detections[role], self.names[role] = {}, {}, {}, {}
            self._signal_subs += [
                self.node.create_subscription(TrafficLightGroupArray, f"/{role}/detector/traffic_signals",
                                              lambda m, r=role: self._on_signal(r, m), reliable),
                self.node.create_subscription(TrafficLightGroupArray, f"/{role}/detector/traffic_lights",
                                              lambda m, r=role: self._on_tracks(r, m), reliable),
                self.node.create_subscription(Detection2DArray, f"/{role}/detector/detections",
                                              lambda m, r=role: self._on_detections(r, m), reliable),
                self.node.create_subscription(LabelInfo, f"/{role}/detector/label_info",
                                              lambda m, r=role: self.names[r].update(
                                                  {c.class_id: c.class_name for c in m.class_map}), latched)]
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

    def _on_signal(self, role: str, msg) -> None:
        self.signals[role][msg.stamp.sec * 1_000_000_000 + msg.stamp.nanosec] = self._read_signal(msg)[0]

    def _on_tracks(self, role: str, msg) -> None:
        self.tracks[role][msg.stamp.sec * 1_000_000_000 + msg.stamp.nanosec] = {
            str(k): v for k, v in self._read_tracks(msg).items()}

    def _on_detections(self, role: str, msg) -> None:
        self.detections[role][msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec] = msg

    def ready(self) -> bool:
        """Whether every subscription has matched its publisher (not only seen it): overlay, signals, detections."""
        subs = [self.sub] if self.sub is not None else []
        return all(self._matched(sub) for sub in subs + self._signal_subs)

    def _matched(self, sub) -> bool:
        count = getattr(sub, "get_publisher_count", None)  # not on Humble
        return (count() if count else self.node.count_publishers(sub.topic_name)) >= 1

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


def _dead(procs: dict[str, subprocess.Popen]) -> list[str]:
    return [role for role, proc in procs.items() if proc.poll() is not None]


def _logged(logs: Path, role: str, text: str) -> bool:
    return text in processes.read_log(logs / f"{role}.log", tail=1 << 20)


def _await_playback(procs: dict[str, subprocess.Popen], saver: OverlaySaver | None, logs: Path, start_file: Path,
                    startup_timeout: float, discovery_s: float) -> tuple[str | None, bool]:
    """Wait until the replay started playing; return ``(why not, whether a fresh start may help)``.

    First every node must be up (its model loaded: the line of :data:`UP_LINES` in its log) within
    ``startup_timeout``; then, within ``discovery_s``, the saver's subscription must match the overlay
    publisher (then the replay's start file is created) and the replay must have found its subscribers and
    pace publishers and started. Only the second kind of stall is worth a fresh start (the Fast DDS
    discovery problem of docs/runtime.md). ``(None, False)`` also when a process exited meanwhile: its exit
    code and log say why.
    """
    deadline = time.monotonic() + startup_timeout
    while not all(_logged(logs, role, line) for role, line in UP_LINES.items()):
        if _dead(procs):
            return None, False
        if time.monotonic() > deadline:
            down = [role for role, line in UP_LINES.items() if not _logged(logs, role, line)]
            return f"{down} not up within --startup-timeout {startup_timeout} s (model loading?); see {logs}", False
        time.sleep(0.1)
    deadline = time.monotonic() + discovery_s
    while not _logged(logs, "replay", PLAYING_LINE):
        if saver is not None and not start_file.exists() and saver.ready():
            start_file.touch()
        if _dead(procs):
            return None, False
        if time.monotonic() > deadline:
            missing = []
            if saver is not None and not saver.ready():
                missing.append("this process' listener has not matched every publisher it records (the "
                               f"comparison's {OVERLAY_TOPIC}, the detectors' signals and detections)")
            waiting = [ln for ln in processes.read_log(logs / "replay.log").splitlines() if "waiting for: " in ln]
            if waiting:
                missing.append("the replay is " + waiting[-1].split("]: ", 1)[-1])
            return (f"the nodes were up but did not all find each other within {discovery_s} s: "
                    f"{'; '.join(missing) or 'the replay has not started'}"), True
        time.sleep(0.1)
    return None, False


def _prepare_out(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """Create ``--out`` with its logs and frames folders, remove a previous run's results.

    Returns ``(logs, frames_dir, start_file)``.
    """
    out = args.out
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    frames_dir = out / "frames"
    frames_dir.mkdir(exist_ok=True)
    start_file = logs / START_FILE
    # A previous run's results must not be read as this run's (the comparison node appends to its records),
    # nor its start file let this run's replay start before the saver is matched.
    for stale in [out / "summary.json", out / args.records, out / "overlay.mp4", start_file,
                  *frames_dir.glob("*.jpg"), *logs.glob("*.attempt*.log")]:
        stale.unlink(missing_ok=True)
    return logs, frames_dir, start_file


def _ros_env(logs: Path) -> dict[str, str]:
    """Return the children's environment; this process's own participant (the saver) gets its transports too."""
    env = processes.ros_env(logs / "ros", keep_user_settings=True)
    processes.export_participant_env(env)
    return env


def _stop_stalled(procs: dict[str, subprocess.Popen], logs: Path, attempt: int) -> None:
    """Stop every process of a stalled start-up attempt, keeping its logs as ``<role>.attempt<N>.log``."""
    for role in ROLES:
        processes.stop(procs.pop(role), 20.0)
        (logs / f"{role}.log").replace(logs / f"{role}.attempt{attempt}.log")


def _wait_replay_end(procs: dict[str, subprocess.Popen], logs: Path) -> None:
    """Wait until the replay ended, or until another process exited early (said on stderr)."""
    while procs["replay"].poll() is None:
        dead = [r for r in _dead(procs) if r != "replay"]
        if dead:
            print(f"bag_eval: {dead} exited early; see {logs}", file=sys.stderr)
            return
        time.sleep(0.2)


def _drain(records: Path, saver: OverlaySaver | None) -> None:
    """Wait for the last records and, with a saver, for the overlays still in flight after the last record."""
    _wait_records_settle(records)
    if saver is not None:
        frames = count_records(records)
        processes.wait_until(lambda: saver.count >= frames, OVERLAY_DRAIN_S, period=0.1)


def signal_report(args: argparse.Namespace, saver: OverlaySaver) -> dict:
    """Score each detector's raw and revised signal against ``--truth``; draw the timeline (docs/tracking.md).

    A frame a detector did not answer counts as ``unknown`` on both sides. With the heads in view in the truth
    file, each head's raw and revised state is scored too (``tracks``), one timeline per head.
    """
    from kd_traffic_light.conversions import msg_to_detections
    from kd_traffic_light.core.signal import frame_signal
    from kd_traffic_light.tools.signal_eval import drive_metrics, plot_timelines, pool, read_truth, score_tracks

    frames = read_truth(args.truth)
    stamps = [int(f["stamp_ns"]) for f in frames]
    times, truth = [ns / 1e9 for ns in stamps], [f["state"] for f in frames]
    out, panels = {}, []
    for role in ("student", "teacher"):
        names = saver.names[role]
        dets = saver.detections[role]
        raw = [frame_signal(msg_to_detections(dets[ns], names)).state if ns in dets else "unknown" for ns in stamps]
        revised = [saver.signals[role].get(ns, "unknown") for ns in stamps]
        out[role] = {"answered": sum(ns in saver.signals[role] for ns in stamps),
                     "raw": pool([drive_metrics(times, truth, raw)]),
                     "revised": pool([drive_metrics(times, truth, revised)])}
        panels.append({"name": f"{role} ({args.truth.name})", "times": times, "truth": truth, "raw": raw,
                       "revised": revised})
    out["frames"] = len(frames)
    pictures = {"timeline": ("signal_timeline.png", panels)}
    if any(f.get("lights") for f in frames):
        out["tracks"] = {}
        for role in ("student", "teacher"):
            timelines = role_tracks(frames, saver, role)
            out["tracks"][role] = score_tracks(timelines)
            pictures[f"track_timeline_{role}"] = (f"track_timeline_{role}.png", timelines[:TRACK_PANELS])
    for key, (name, shown) in pictures.items():
        try:
            out[key] = plot_timelines(shown, args.out / name).name if shown else None
        except ImportError as exc:  # the runtime-only venv has no matplotlib: the figures stand without the picture
            out[key] = None
            print(f"bag_eval: warning: no {name} ({exc}; install matplotlib for it)", file=sys.stderr, flush=True)
    atomic_write_json(args.out / "signal.json", out)
    return out


def role_tracks(frames: list[dict], saver: OverlaySaver, role: str) -> list[dict]:
    """One detector's per-head timelines (signal_eval.track_timelines) from what the listener recorded."""
    from kd_traffic_light.conversions import msg_to_detections
    from kd_traffic_light.core.classes import split_label
    from kd_traffic_light.tools.signal_eval import track_timelines

    names, detections = saver.names[role], {}
    for ns, msg in saver.detections[role].items():
        dets = msg_to_detections(msg, names)
        ids = [d.id for d in msg.detections if d.results]
        detections[ns] = [(d.xyxy, split_label(d.label)[1] or "unknown", track) for d, track in zip(dets, ids,
                                                                                                    strict=True)]
    return track_timelines(frames, detections, saver.tracks[role])


#: Heads drawn in each per-head timeline picture (most frames in view, relevant first).
TRACK_PANELS = 6


def _report(args: argparse.Namespace, codes: dict[str, int], cmds: dict[str, list[str]],
            startup_error: str | None, signal: dict | None = None) -> int:
    """Write the video and ``summary.json``, print the error or the warnings and metrics; return the exit status."""
    out, logs = args.out, args.out / "logs"
    n_video = 0 if args.no_video else write_video(out / "frames", out / "overlay.mp4", args.fps)
    overlays = None if args.no_video else n_video
    warnings: list[str] = []
    try:
        metrics = pooled_metrics(out / args.records)
        # SIGINT'ed nodes exit 0; the replay ends by itself (0)
        error = startup_error or outcome(metrics, codes, logs, overlays)
        warnings = [] if error else overlay_warnings(metrics, overlays)
    except ValueError as exc:
        metrics, error = {"frames": None, "precision": None, "recall": None, "f1": None}, str(exc)
    summary = {"status": "failed" if error else "ok", "error": error, "warnings": warnings, "bag": str(args.bag),
               "student_model": args.student_model, "teacher_model": args.teacher_model, "metrics": metrics,
               "overlay_frames": n_video, "exit_codes": codes, "commands": cmds}
    if signal is not None:
        summary["signal"] = signal
    atomic_write_json(out / "summary.json", summary)
    if error:
        print(f"bag_eval: error: {error}", file=sys.stderr, flush=True)
        return 1
    for line in warnings:
        print(f"bag_eval: warning: {line}", file=sys.stderr, flush=True)
    print(json.dumps(metrics), flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the evaluation; return 0 when it is ``ok`` (docs/runtime.md, "Offline tools over a bag"), else 1.

    ``ok``: every process ended cleanly, at least one frame was compared and, unless ``--no-video``, at
    least one overlay was saved.
    """
    try:
        bag_line = check_bag(args.bag, args.image_topic)
    except ValueError as exc:
        print(f"bag_eval: error: {exc}", file=sys.stderr, flush=True)
        return 1
    logs, frames_dir, start_file = _prepare_out(args)
    print(f"bag_eval: {args.bag}: {bag_line}", flush=True)
    env = _ros_env(logs)
    cmds = node_commands(args, args.out)
    procs: dict[str, subprocess.Popen] = {}
    codes: dict[str, int] = {}
    saver = None
    startup_error = None
    try:
        for attempt in range(1, START_ATTEMPTS + 1):
            # The saver's participant joins first and every process starts at once: with Fast DDS LARGE_DATA a
            # participant that joins after several others started together sometimes never discovers one of
            # them (docs/runtime.md). The replay holds playback until everything it feeds has matched; when
            # the nodes are up but have not found each other in time, every process starts afresh.
            saver = OverlaySaver(None if args.no_video else frames_dir) if (
                not args.no_video or args.truth) else None
            for role in ROLES:
                procs[role] = processes.start_process(cmds[role], env, logs / f"{role}.log")
            print(f"bag_eval: replay, detectors and comparison started; replaying {args.bag} once they are up",
                  flush=True)
            why, retry = _await_playback(procs, saver, logs, start_file, args.startup_timeout, DISCOVERY_S)
            if why is None:
                break
            if not retry or attempt == START_ATTEMPTS:
                startup_error = f"{why} (start-up attempt {attempt} of {START_ATTEMPTS}); nothing was replayed"
                break
            print(f"bag_eval: start-up attempt {attempt} stalled: {why}; starting every process again",
                  file=sys.stderr, flush=True)
            _stop_stalled(procs, logs, attempt)
            if saver is not None:
                saver.close()
                saver = None
            start_file.unlink(missing_ok=True)
        if startup_error is None:
            _wait_replay_end(procs, logs)
            _drain(args.out / args.records, saver if not args.no_video else None)
    except KeyboardInterrupt:
        print("bag_eval: interrupted; stopping the processes", file=sys.stderr)
    finally:
        for role in ROLES:
            if role in procs:
                codes[role] = processes.stop(procs[role], 20.0)
        if saver is not None:
            saver.close()
        start_file.unlink(missing_ok=True)
    signal = signal_report(args, saver) if args.truth and saver is not None and startup_error is None else None
    return _report(args, codes, cmds, startup_error, signal)


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m kd_traffic_light.tools.bag_eval BAG --student-model M --teacher-model M --out DIR`."""
    parser = get_args_parser()
    args = parser.parse_args(argv)
    if min(args.pace_timeout, args.startup_timeout, args.fps) <= 0:
        parser.error("--pace-timeout, --startup-timeout and --fps must be > 0")
    if not args.records.endswith((".csv", ".jsonl")) or Path(args.records).name != args.records:
        parser.error(f"--records {args.records!r}: expected a file name ending with .csv or .jsonl")
    if args.truth is not None:
        from kd_traffic_light.tools.signal_eval import read_truth

        try:
            read_truth(args.truth)
        except ValueError as exc:
            parser.error(str(exc))
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
