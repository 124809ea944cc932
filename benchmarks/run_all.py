r"""Run every benchmark's quick profile and write one summary (``make bench``).

Each benchmark runs as its own process (``python benchmarks/<name>.py``), with ``--quick`` when it offers
that flag and ``--out runs/bench/<name>.json`` when it offers ``--out``; its JSON is collected, its last printed
lines (benchmarks print their ratios last) are kept, and ``SUMMARY.md`` + ``SUMMARY.json`` are written into
``--out-dir``. A benchmark that is missing or fails is reported as such; the others still run. The figures:
docs/benchmarks.md.

    python benchmarks/run_all.py                         # all quick profiles
    python benchmarks/run_all.py --only convert kd_step  # a subset
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _setup import REPO

from kd_traffic_light.core.atomic_io import atomic_write_json, atomic_write_text, read_json

HERE = REPO / "benchmarks"

BENCHMARKS = ("convert", "kd_step", "node_latency", "kd_gain", "grid_scaling")
#: Seconds before a benchmark is stopped (its process group killed) unless --timeout says otherwise.
TIMEOUTS = {"convert": 900.0, "kd_step": 900.0, "node_latency": 900.0, "kd_gain": 4 * 3600.0, "grid_scaling": 900.0}
#: Headline keys per benchmark (top-level keys of its JSON); other benchmarks get every top-level number.
HEADLINES = {
    "convert": ("ratio_median", "single_ips_median", "parallel_ips_median"),
    "kd_gain": ("chosen", "D_ours", "D_native", "kd_gap", "goals", "goals_both_sets"),
    "node_latency": ("figures", "goals"),
    "grid_scaling": ("ratio", "sequential_s", "ray_s", "slots"),
}


def get_args_parser() -> argparse.ArgumentParser:
    """Build the flags: which benchmarks and where the results go."""
    p = argparse.ArgumentParser(prog="run_all", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", default=None, choices=BENCHMARKS, help="run only these benchmarks")
    p.add_argument("--skip", nargs="+", default=[], choices=BENCHMARKS, help="do not run these benchmarks")
    p.add_argument("--out-dir", default="runs/bench", help="directory of the JSON files and the summary")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds per benchmark before it is stopped (default: TIMEOUTS)")
    return p


def flags_of(script: Path) -> str:
    """Return the ``--help`` text of a benchmark script ('' when it cannot tell)."""
    try:
        res = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
        return res.stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def headline(name: str, data: Any) -> dict[str, Any]:
    """Pick the figures of a benchmark's JSON worth a summary line."""
    if not isinstance(data, dict):
        return {}
    if name == "kd_step" and isinstance(data.get("results"), list):
        return {"goal": data.get("goal"), **{f"ratio {r.get('pair')}": r.get("ratio") for r in data["results"]}}
    keys = HEADLINES.get(name)
    if keys:
        return {k: data[k] for k in keys if k in data}
    return {k: v for k, v in data.items() if isinstance(v, (int, float, bool)) or k in ("goal", "figure", "goals")}


def run_one(name: str, out_dir: Path, timeout: float | None) -> dict[str, Any]:
    """Run one benchmark's quick profile; return its summary entry."""
    script = HERE / f"{name}.py"
    if not script.is_file():
        return {"name": name, "status": "missing", "command": None}
    help_text = flags_of(script)
    json_path = out_dir / f"{name}.json"
    cmd = [sys.executable, str(script)]
    if "--quick" in help_text:
        cmd.append("--quick")
    if "--out" in help_text.replace("--out-dir", ""):
        cmd += ["--out", str(json_path)]
    print(f"\n==== benchmark {name}: {' '.join(cmd[1:])} ====", flush=True)
    t0 = time.perf_counter()
    tail: list[str] = []
    limit = timeout if timeout is not None else TIMEOUTS.get(name, 1800.0)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                            start_new_session=True)  # its own group: a timeout stops its nodes too
    expired = threading.Event()

    def stop_group() -> None:
        expired.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(limit, stop_group)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            tail = (tail + [line.rstrip()])[-5:]
        code: Any = proc.wait()
    finally:
        timer.cancel()
    if expired.is_set():
        code = "timeout"
        print(f"benchmark {name} stopped after {limit:.0f} s", flush=True)
    seconds = round(time.perf_counter() - t0, 1)
    data = read_json(json_path) if json_path.is_file() and code == 0 else None
    status = "ok" if code == 0 and data is not None else ("no json" if code == 0 else f"failed ({code})")
    return {"name": name, "status": status, "exit_code": code, "seconds": seconds,
            "command": " ".join(["python", f"benchmarks/{name}.py", *cmd[2:]]),
            "json": str(json_path), "figures": headline(name, data), "last_lines": tail}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    return str(v)


def to_markdown(entries: list[dict[str, Any]]) -> str:
    """SUMMARY.md: one section per benchmark with status, command, figures and last printed lines."""
    lines = ["# Benchmark summary (quick profiles)", "",
             "| benchmark | status | seconds | figures |", "|---|---|---|---|"]
    for e in entries:
        figs = "; ".join(f"{k} = {_fmt(v)}" for k, v in (e.get("figures") or {}).items()) or "-"
        lines.append(f"| {e['name']} | {e['status']} | {e.get('seconds', '-')} | {figs} |")
    lines.append("")
    for e in entries:
        if e.get("command"):
            lines += [f"## {e['name']}", "", f"`{e['command']}`", "", "```", *e.get("last_lines", []), "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks and write SUMMARY.md / SUMMARY.json; exit 1 when one failed."""
    args = get_args_parser().parse_args(argv)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [n for n in (args.only or BENCHMARKS) if n not in args.skip]
    entries = [run_one(n, out_dir, args.timeout) for n in names]
    atomic_write_json(out_dir / "SUMMARY.json", entries)
    atomic_write_text(out_dir / "SUMMARY.md", to_markdown(entries))
    print("\n" + to_markdown(entries).split("\n## ")[0])
    print(f"wrote {out_dir / 'SUMMARY.md'} and {out_dir / 'SUMMARY.json'}")
    return 0 if all(e["status"] in ("ok", "missing") for e in entries) else 1


if __name__ == "__main__":
    sys.exit(main())
