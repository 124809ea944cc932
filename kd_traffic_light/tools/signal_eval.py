"""How well a published signal follows the true one over a drive: accuracy, flicker, delay, the errors that kill.

The inputs are per frame of one drive, in stamp order: the stamp (seconds), the true state of the governing
signal (None where no relevant light is in view: not scored) and the published state (a state of
core/classes.py or ``unknown``). :func:`drive_metrics` scores one drive, :func:`pool` adds drives up,
:func:`plot_timelines` draws truth, raw and revised per drive. Used by ``benchmarks/signal_revision.py`` and
``bag_eval --truth``; the definitions are in docs/tracking.md, "Measuring the revision".

- **accuracy**: share of scored frames whose published state equals the truth (``unknown`` is wrong).
- **spurious changes**: a published change is *explained* when it moves to the true state of that frame and
  either the truth changed within the last ``explain_s`` seconds or nothing but ``unknown`` was published
  in the scored frames before (the first reading of a light); every other change is spurious. Per minute of
  scored frames.
- **delay**: for each true change to state s, from its frame to the first frame publishing s before the next
  true change (frames and ms); a change never published is *missed*.
- **red->green**, **red_yellow->green**: frames whose truth is red (red_yellow) and whose published state is
  green.

Per light (:func:`track_timelines`): each true head of the drive is one timeline, scored with the same
definitions over the frames it is in view, so spurious changes are per track-minute. Its raw state is what the
detection overlapping it (IoU >= :data:`TRACK_IOU`) read in that frame (``unknown`` when none does); its revised
state is what the node published on ``~/traffic_lights`` for the node track of that detection, or, in a frame
the head is not detected, for the node track that last overlapped it (a coasting track; ``unknown`` when that
track is not published in the frame, or overlaps another head in it). A node track that moves to another head
(an id switch) thus speaks for the head it overlaps in each frame, and for no other.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kd_traffic_light.core.classes import STATES
from kd_traffic_light.core.matching import iou_matrix
from kd_traffic_light.core.types import Detection

#: A published change this soon after a true change, to the true state, is the change being followed.
EXPLAIN_S = 1.0
#: IoU a detection needs with a true head's box to be that head's reading in a frame.
TRACK_IOU = 0.3


def drive_metrics(times: Sequence[float], truth: Sequence[str | None], published: Sequence[str],
                  explain_s: float = EXPLAIN_S) -> dict[str, Any]:
    """Score one drive (see the module docstring); every sequence has one entry per frame."""
    if not (len(times) == len(truth) == len(published)):
        raise ValueError(f"one entry per frame expected: {len(times)} stamps, {len(truth)} truths, "
                         f"{len(published)} published states")
    n = len(times)
    scored = [i for i in range(n) if truth[i] is not None]
    seconds = sum(times[i + 1] - times[i] for i in range(n - 1) if truth[i] is not None)
    if scored and scored[-1] == n - 1 and n > 1:  # the last frame counts one typical interval
        seconds += (times[-1] - times[0]) / (n - 1)
    true_changes = [i for i in range(1, n) if truth[i] is not None and truth[i - 1] is not None
                    and truth[i] != truth[i - 1]]
    spurious = changes = 0
    for i in range(1, n):
        if published[i] == published[i - 1] or truth[i] is None:
            continue
        changes += 1
        first = all(published[j] == "unknown" for j in range(i) if truth[j] is not None)
        recent = any(0.0 <= times[i] - times[j] <= explain_s for j in true_changes if j <= i)
        if not (published[i] == truth[i] and (recent or first)):
            spurious += 1
    delays: list[dict[str, Any]] = []
    for k, i0 in enumerate(true_changes):
        end = true_changes[k + 1] if k + 1 < len(true_changes) else n
        hit = next((j for j in range(i0, end) if published[j] == truth[i0]), None)
        delays.append({"to": truth[i0], "frames": None if hit is None else hit - i0,
                       "ms": None if hit is None else round((times[hit] - times[i0]) * 1000.0, 1)})
    return {
        "frames": n, "scored_frames": len(scored), "seconds": round(seconds, 3),
        "correct": sum(published[i] == truth[i] for i in scored),
        "changes": changes, "spurious_changes": spurious, "true_changes": len(true_changes),
        "red_to_green": sum(truth[i] == "red" and published[i] == "green" for i in scored),
        "red_yellow_to_green": sum(truth[i] == "red_yellow" and published[i] == "green" for i in scored),
        "delays": delays,
    }


def pool(drives: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Add drives' metrics up: accuracy, spurious changes per minute, delays per target state, the green errors."""
    scored = sum(d["scored_frames"] for d in drives)
    minutes = sum(d["seconds"] for d in drives) / 60.0
    spurious = sum(d["spurious_changes"] for d in drives)
    by_state: dict[str, list[dict[str, Any]]] = {}
    for d in drives:
        for delay in d["delays"]:
            by_state.setdefault(delay["to"], []).append(delay)
    delays = {}
    for state, items in sorted(by_state.items()):
        hit = [x for x in items if x["frames"] is not None]
        delays[state] = {
            "changes": len(items), "missed": len(items) - len(hit),
            "median_frames": statistics.median(x["frames"] for x in hit) if hit else None,
            "max_frames": max(x["frames"] for x in hit) if hit else None,
            "median_ms": statistics.median(x["ms"] for x in hit) if hit else None,
        }
    return {
        "drives": len(drives), "scored_frames": scored, "minutes": round(minutes, 4),
        "accuracy": sum(d["correct"] for d in drives) / scored if scored else None,
        "spurious_changes": spurious,
        "spurious_per_minute": spurious / minutes if minutes else None,
        "red_to_green": sum(d["red_to_green"] for d in drives),
        "red_yellow_to_green": sum(d["red_yellow_to_green"] for d in drives),
        "delays": delays,
    }


def track_timelines(frames: Sequence[dict[str, Any]], detections: dict[int, list[tuple[Sequence[float], str, str]]],
                    tracks: dict[int, dict[str, str]], iou: float = TRACK_IOU) -> list[dict[str, Any]]:
    """Per true head of a drive: its truth, raw and revised states per frame (module docstring).

    Args:
        frames: The truth file's frames (:func:`read_truth`), each with ``lights``.
        detections: ``{stamp_ns: [(xyxy, state, track id or "")]}``: what the detector published per frame.
        tracks: ``{stamp_ns: {track id: revised state}}``: what it published on ``~/traffic_lights``.
        iou: Overlap a detection needs with a head's box.

    Returns:
        One dict per true head, most frames in view first (relevant heads before the others): ``name``,
        ``track``, ``relevant``, ``times`` and the per-frame ``truth`` (None out of view), ``raw``, ``revised``.
    """
    times = [int(f["stamp_ns"]) / 1e9 for f in frames]
    heads: dict[str, dict[str, Any]] = {}
    last: dict[str, str] = {}  # head -> the node track that last overlapped it
    for i, f in enumerate(frames):
        ns = int(f["stamp_ns"])
        dets, published = detections.get(ns, []), tracks.get(ns, {})
        taken: set[int] = set()
        on_head: dict[str, str] = {}  # node track -> the head its detection overlaps in this frame
        lights = f.get("lights") or []
        overlap = iou_matrix([Detection(*light["box"], 0.0, 0) for light in lights],
                             [Detection(*box, 0.0, 0) for box, _, _ in dets])
        for row, light in enumerate(lights):
            head = heads.setdefault(light["track"], {
                "track": light["track"], "relevant": light["relevant"], "truth": [None] * len(frames),
                "raw": ["unknown"] * len(frames), "revised": ["unknown"] * len(frames), "node_tracks": set()})
            head["truth"][i] = light["state"] if light["state"] in STATES else None  # DTLD's unknown: unscored
            scores = [(overlap[row, k], k) for k in range(len(dets)) if k not in taken]
            best = max(scores, default=(0.0, -1))
            if best[0] >= iou:
                taken.add(best[1])
                _, state, track_id = dets[best[1]]
                head["raw"][i] = state
                if track_id:
                    last[light["track"]] = track_id
                    head["node_tracks"].add(track_id)
                    on_head[track_id] = light["track"]
        for light in lights:
            track_id = last.get(light["track"])
            if track_id is not None and on_head.get(track_id, light["track"]) == light["track"]:
                heads[light["track"]]["revised"][i] = published.get(track_id, "unknown")
    out = []
    for name, head in heads.items():
        seen = sum(s is not None for s in head["truth"])
        if not seen:
            continue
        mine = sorted(head.pop("node_tracks"), key=lambda t: (len(t), t))
        out.append({**head, "name": f"{'relevant' if head['relevant'] else 'not relevant'} {name} "
                                     f"({seen} frames, node tracks {', '.join(mine) or 'none'})",
                    "times": times, "frames_in_view": seen})
    return sorted(out, key=lambda h: (not h["relevant"], -h["frames_in_view"]))


def score_tracks(timelines: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pool the raw and the revised states of every head's timeline (:func:`pool`; minutes are track-minutes)."""
    return {side: pool([drive_metrics(t["times"], t["truth"], t[side]) for t in timelines])
            for side in ("raw", "revised")} | {"tracks": len(timelines)}


def read_truth(path: str | Path) -> list[dict[str, Any]]:
    """Read a drive's truth file (``{"frames": [{"stamp_ns": int, "state": str | null, "lights": [...]}]}``).

    Stamps increase; ``lights`` (optional) is what :func:`track_timelines` reads.

    Raises ValueError naming the file, the entry and the field that is wrong.
    """
    import json

    path = Path(path)
    try:
        frames = json.loads(path.read_text(encoding="utf-8"))["frames"]
    except FileNotFoundError:
        raise ValueError(f"{path}: no such truth file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    except (KeyError, TypeError):
        raise ValueError(f"{path}: expected an object with a 'frames' list") from None
    if not isinstance(frames, list) or not frames:
        raise ValueError(f"{path}: 'frames' must be a non-empty list")
    last = -1
    for i, f in enumerate(frames):
        ns = f.get("stamp_ns") if isinstance(f, dict) else None
        if not isinstance(ns, int) or isinstance(ns, bool) or ns <= last:
            raise ValueError(f"{path}: frames[{i}].stamp_ns = {ns!r}: expected an integer (ns) above the previous one")
        if f.get("state") is not None and f["state"] not in STATES:
            raise ValueError(f"{path}: frames[{i}].state = {f['state']!r}: expected one of {STATES} or null")
        for k, light in enumerate(f.get("lights") or []):
            where = f"{path}: frames[{i}].lights[{k}]"
            if not isinstance(light, dict) or not isinstance(light.get("track"), str):
                raise ValueError(f"{where}.track: expected a string (the head's track id)")
            box = light.get("box")
            if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
                raise ValueError(f"{where}.box = {box!r}: expected [x1, y1, x2, y2] in the bag's pixels")
            if not isinstance(light.get("relevant"), bool):
                raise ValueError(f"{where}.relevant = {light.get('relevant')!r}: expected true or false")
        last = ns
    return frames


#: Colours of the timeline plot (matplotlib names), per state.
TIMELINE_COLOURS = {"red": "tab:red", "yellow": "gold", "red_yellow": "darkorange", "green": "tab:green",
                    "off": "dimgray", "unknown": "whitesmoke", None: "white"}


def plot_timelines(drives: Sequence[dict[str, Any]], path: str | Path, max_drives: int = 8) -> Path:
    """Draw truth, raw and revised state over time, one panel per drive (``times``, ``truth``, ``raw``, ``revised``).

    Each drive is a mapping with its ``name`` and the three per-frame sequences; writes a PNG and returns its path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    shown = list(drives)[:max_drives]
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 1.3 * len(shown) + 0.8), squeeze=False)
    for ax, d in zip(axes[:, 0], shown, strict=True):
        t = list(d["times"])
        step = (t[-1] - t[0]) / max(len(t) - 1, 1) if len(t) > 1 else 0.1
        for row, key in enumerate(("revised", "raw", "truth")):
            for i, state in enumerate(d[key]):
                ax.broken_barh([(t[i] - t[0], step)], (row, 0.8), color=TIMELINE_COLOURS.get(state, "black"))
        ax.set_yticks([0.4, 1.4, 2.4], ["revised", "raw", "truth"])
        ax.set_xlim(0, t[-1] - t[0] + step)
        ax.set_title(d.get("name", ""), fontsize=8, loc="left")
    axes[-1, 0].set_xlabel("seconds")
    fig.legend(handles=[Patch(color=c, label=s or "no light") for s, c in TIMELINE_COLOURS.items() if s],
               loc="lower center", ncol=6, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
