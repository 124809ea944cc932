"""kd-step figure: KD training step time / (plain student step + teacher forward), same batch, same run.

For each pair (n <- l, s <- l by default; models built from yaml, nothing downloaded) the three measurements
alternate within every repetition (plain student step, teacher forward under inference mode, KD step with the
config's terms) and the figure is the median over repetitions of the per-repetition ratio. Peak memory is the
process peak RSS (resource.getrusage) after the plain + teacher phase and after the KD phase (RSS is monotonic,
so the KD figure is an upper bound of what KD adds). Goal (docs/benchmarks.md): ratio <= 1.10.

    python benchmarks/kd_step.py --imgsz 640 --batch 2 --steps 3 --out runs/bench/kd_step.json
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _setup  # noqa: F401  (the repository on sys.path, ultralytics offline: before ultralytics is imported)
import torch
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import DetectionModel

from kd_traffic_light.core.atomic_io import atomic_write_json
from kd_traffic_light.core.classes import DEFAULT_SCHEME, SCHEMES, class_names
from training.distill.config import load_config
from training.distill.model import KDDistillationModel


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", default="n:l,s:l", help="student:teacher scales, comma separated")
    p.add_argument("--family", choices=tuple(FAMILIES), default="yolov5",
                   help="model family of both (yolo26: end-to-end head without DFL; pair it with a config whose "
                        "terms work there, e.g. training/configs/ours_yolo26.yaml)")
    p.add_argument("--imgsz", type=int, default=640, help="square input size")
    p.add_argument("--batch", type=int, default=2, help="images per step")
    p.add_argument("--steps", type=int, default=3, help="measured repetitions per pair (after one warm-up)")
    p.add_argument("--config", default="training/configs/combined.yaml", help="config whose distill.terms to time")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--classes", choices=tuple(SCHEMES), default=DEFAULT_SCHEME,
                   help="class scheme of the models: relevance (2 classes) or relevance_state (10)")
    p.add_argument("--out", default="runs/bench/kd_step.json", help="JSON output path")
    return p


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


#: Model families: the yaml prefix of a scale (ultralytics 8.4 names them yolov5n.yaml, yolo11n.yaml, yolo26n.yaml).
FAMILIES = {"yolov5": "yolov5", "yolo11": "yolo11", "yolo26": "yolo26"}


def build(scale: str, imgsz: int, scheme: str = DEFAULT_SCHEME, family: str = "yolov5") -> DetectionModel:
    names = class_names(scheme)
    m = DetectionModel(f"{FAMILIES[family]}{scale}.yaml", nc=len(names), verbose=False)
    m.names = names
    m.args = get_cfg(overrides={"imgsz": imgsz, "close_mosaic": 0})
    return m


def make_batch(b: int, imgsz: int, device: str, nc: int = 2) -> dict:
    g = torch.Generator().manual_seed(0)
    n = 4 * b
    xy = torch.rand(n, 2, generator=g) * 0.8 + 0.1
    wh = torch.rand(n, 2, generator=g) * 0.05 + 0.01
    return {
        "img": torch.rand(b, 3, imgsz, imgsz, generator=g).to(device),
        "batch_idx": torch.arange(b).repeat_interleave(4).float().to(device),
        "cls": torch.randint(0, nc, (n, 1), generator=g).float().to(device),
        "bboxes": torch.cat((xy, wh), 1).to(device),
    }


def timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def bench_pair(student_scale: str, teacher_scale: str, args, terms: dict, tmp: Path) -> dict:
    teacher_path = tmp / f"teacher_{teacher_scale}.pt"  # not yolov5l.pt: ultralytics would fetch it
    torch.save({"model": build(teacher_scale, args.imgsz, args.classes, args.family).half(), "train_args": {}},
               teacher_path)
    batch = make_batch(args.batch, args.imgsz, args.device, len(class_names(args.classes)))
    plain = build(student_scale, args.imgsz, args.classes, args.family).to(args.device).train()
    kd_student = build(student_scale, args.imgsz, args.classes, args.family)
    kd_student.load_state_dict(plain.state_dict())
    kd = KDDistillationModel(teacher_path, kd_student, terms).to(args.device).train()
    teacher = kd.teacher_model
    opt_plain = torch.optim.SGD([p for p in plain.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)
    opt_kd = torch.optim.SGD([p for p in kd.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)

    def plain_step():
        loss, _ = plain.loss(batch)
        loss.sum().backward()
        opt_plain.step()
        opt_plain.zero_grad()

    def teacher_fwd():
        with torch.inference_mode():
            teacher(batch["img"].half() if args.device != "cpu" else batch["img"])

    def kd_step():
        loss, _ = kd(batch)
        loss.sum().backward()
        opt_kd.step()
        opt_kd.zero_grad()

    plain_step(), teacher_fwd()  # warm-up of the baseline
    rss_base = rss_mb()
    kd_step()  # warm-up of KD
    rows = []
    for _ in range(args.steps):
        a, t, k = timed(plain_step), timed(teacher_fwd), timed(kd_step)
        rows.append({"plain_s": a, "teacher_s": t, "kd_s": k, "ratio": k / (a + t)})
    rss_kd = rss_mb()
    return {
        "pair": f"{student_scale}<-{teacher_scale}",
        "terms": sorted(terms),
        "reps": rows,
        "median_plain_s": statistics.median(r["plain_s"] for r in rows),
        "median_teacher_s": statistics.median(r["teacher_s"] for r in rows),
        "median_kd_s": statistics.median(r["kd_s"] for r in rows),
        "ratio": statistics.median(r["ratio"] for r in rows),
        "peak_rss_mb_plain_teacher": rss_base,
        "peak_rss_mb_after_kd": rss_kd,
    }


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    terms = {name: t.as_dict() for name, t in load_config(args.config).terms.items()}
    for cfg in terms.values():  # time every term at full weight from the first step
        cfg["warmup_iters"], cfg["warmup_epochs"], cfg["off_last_epochs"] = 0, 0.0, 0
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for pair in args.pairs.split(","):
            s, t = pair.split(":")
            print(f"kd-step {s} <- {t} at {args.imgsz}, batch {args.batch}, {args.steps} reps ...", flush=True)
            results.append(bench_pair(s, t, args, terms, Path(tmp)))
    out = {
        "figure": "kd-step", "goal": "<= 1.10", "imgsz": args.imgsz, "batch": args.batch, "device": args.device,
        "torch_threads": torch.get_num_threads(), "config": args.config, "classes": args.classes,
        "family": args.family, "results": results,
    }
    path = Path(args.out)
    atomic_write_json(path, out)
    for r in results:
        print(f"  {r['pair']}: plain {r['median_plain_s']:.2f}s + teacher {r['median_teacher_s']:.2f}s, "
              f"KD {r['median_kd_s']:.2f}s; peak RSS {r['peak_rss_mb_plain_teacher']:.0f} -> "
              f"{r['peak_rss_mb_after_kd']:.0f} MB")
    for r in results:  # ratios last
        print(f"kd-step ratio {r['pair']}: {r['ratio']:.3f} (goal <= 1.10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
