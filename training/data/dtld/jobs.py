"""Image jobs of a conversion: decode one TIFF, resize, encode and write it; run them in a process pool.

Usage: ``run_jobs(image_jobs(root, out, order, opts), workers, progress)`` returns one ``(status, message)`` per
frame, in order; an image already written is skipped, so a killed run resumes where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training.data.dtld import output
from training.data.dtld.images import read_dtld_image
from training.data.dtld.labels import DtldFrame
from training.data.dtld.options import ConvertOptions


@dataclass(frozen=True)
class ImageJob:
    """Work item for one image: source TIFF, destination file and encoding options."""

    src: str
    dst: str
    key: str
    ext: str
    jpeg_quality: int
    resize: tuple[int, int] | None
    size: tuple[int, int]


def convert_image(job: ImageJob) -> tuple[str, str]:
    """Decode and write one image (skipped when the destination exists); returns (status, message).

    Status is one of ``written``, ``skipped``, ``missing_image``, ``unreadable_image``, ``wrong_size``.
    """
    import cv2

    dst = Path(job.dst)
    if dst.is_file():
        return "skipped", ""
    try:
        bgr = read_dtld_image(job.src, job.size)
    except FileNotFoundError as exc:
        return "missing_image", str(exc).replace(job.src, job.key)  # no machine paths in the summary
    except ValueError as exc:
        kind = "wrong_size" if "image size" in str(exc) else "unreadable_image"
        return kind, str(exc).replace(job.src, job.key)
    if job.resize is not None:
        bgr = cv2.resize(bgr, job.resize, interpolation=cv2.INTER_AREA)
    params = [cv2.IMWRITE_JPEG_QUALITY, job.jpeg_quality] if job.ext == ".jpg" else []
    ok, buf = cv2.imencode(job.ext, bgr, params)
    if not ok:
        return "unreadable_image", f"{job.key}: encoding {job.ext} failed"
    output.write_artefact(dst, buf.tobytes())
    return "written", ""


def image_jobs(root: Path, out: Path, order: list[tuple[str, DtldFrame]], opts: ConvertOptions) -> list[ImageJob]:
    """Return one decode job per listed frame, in ``order``: its TIFF under ``root``, its image under ``out``."""
    ext = ".png" if opts.image_format == "png" else ".jpg"
    return [ImageJob(str(root / frame.key), str(out / "images" / split / Path(frame.key).with_suffix(ext)),
                     frame.key, ext, opts.jpeg_quality, opts.resize(), tuple(opts.size)) for split, frame in order]


def _worker_init() -> None:
    """One OpenCV thread per worker process (the processes are the parallelism)."""
    import cv2

    cv2.setNumThreads(1)


def run_jobs(jobs: list[ImageJob], workers: int, progress: bool) -> list[tuple[str, str]]:
    """Run ``jobs`` in order (in a spawn pool of ``workers`` processes if > 1) and return their results."""
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc="convert-dtld", unit="img", disable=not progress)
    results: list[tuple[str, str]] = []
    if workers <= 1:
        for job in jobs:
            results.append(convert_image(job))
            bar.update()
    else:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers, initializer=_worker_init) as pool:
            for res in pool.imap(convert_image, jobs, chunksize=1):
                results.append(res)
                bar.update()
    bar.close()
    return results
