"""``--launcher ray``: every run of the grid as a Ray task, teachers before the students that need them.

Same signature and outputs as ``local_launcher.train_all_local``: each task runs ``runs.train_run`` and
``evaluation.evaluation_row`` (cached), so either launcher resumes or skips what the other left. Resources per
task come from the experiment's ``resources``; ``--retries`` is Ray's ``max_retries`` plus
``retry_exceptions=[RunError]``. ``ray`` is imported only here. Order, resources, retries and progress in
detail: docs/training.md ("Experiments on Ray").
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from training.errors import RunError, UsageError
from training.experiment.config import Experiment, Resources
from training.experiment.grid import Run

LOG = logging.getLogger(__name__)
KILL_ONCE_ENV = "KD_EXPERIMENT_KILL_ONCE"  # test hook "<run name>:<flag file>": see _kill_once_after_checkpoint


def tiers(runs: list[Run]) -> list[list[Run]]:
    """Group runs by dependency depth: tier 0 needs no run of the grid, tier k+1 a teacher run of tier k."""
    depth: dict[str, int] = {}
    by_name = {r.name: r for r in runs}

    def level(run: Run) -> int:
        if run.name not in depth:
            teacher = run.teacher_run if run.kd else None
            depth[run.name] = 0 if teacher not in by_name else level(by_name[teacher]) + 1
        return depth[run.name]

    out: list[list[Run]] = []
    for run in runs:
        k = level(run)
        out.extend([] for _ in range(k + 1 - len(out)))
        out[k].append(run)
    return out


def _import_ray() -> Any:
    """Return the ``ray`` module, or raise UsageError saying how to get it."""
    try:
        import ray
    except ImportError:
        raise UsageError("--launcher ray: the ray package is not installed (it is pinned in "
                         "requirements/lock.txt; `make venv` installs it)") from None
    return ray


def _reachable(address: str, timeout_s: float = 5.0) -> None:
    """Raise RunError naming ``address`` when nothing answers at HOST:PORT (Ray itself would retry for minutes)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address {address}: expected auto or HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise RunError(f"--address {address}: no Ray cluster answers there ({exc})") from None


def connect(address: str | None) -> Any:
    """Join the Ray cluster at ``address`` (``auto``, ``HOST:PORT``), or start a local one using every CPU."""
    ray = _import_ray()
    if address not in (None, "auto"):
        _reachable(address)
    try:
        if address is None:
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, configure_logging=False)
        else:
            ray.init(address=address, configure_logging=False)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        where = f"--address {address}" if address else "a local Ray"
        raise RunError(f"{where}: cannot connect to a Ray cluster: {str(exc).splitlines()[0]}") from None
    return ray


def check_fits(ray: Any, resources: Resources) -> None:
    """Raise UsageError when no live node of the cluster has the CPUs and GPUs one run asks for."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if any(n.get("CPU", 0) >= resources.cpus and n.get("GPU", 0) >= resources.gpus for n in nodes):
        return
    have = ", ".join(f"{n.get('CPU', 0):g} CPUs / {n.get('GPU', 0):g} GPUs" for n in nodes) or "no live node"
    raise UsageError(f"resources: a run asks for {resources.cpus} CPUs and {resources.gpus} GPUs on one "
                     f"node; the cluster's nodes have {have}")


def _kill_once_after_checkpoint(run: Run, out: Path) -> None:
    """Test hook: when KILL_ONCE_ENV names this run and its flag file is absent, end this worker process.

    A thread waits for the run's first loadable ``last.pt``, writes the flag file (so the retry lives), kills the
    training process and then this Ray worker with ``os._exit``, as an out-of-memory kill or a lost node would.
    """
    name, _, flag = os.environ.get(KILL_ONCE_ENV, "").partition(":")
    if name != run.name or not flag or Path(flag).exists():
        return

    def watch() -> None:
        import psutil

        from training import checkpoints

        last = out / "runs" / run.name / "weights" / "last.pt"
        while True:
            time.sleep(0.02)
            try:
                state = checkpoints.resume_state(last) if last.is_file() else None
            except checkpoints.CheckpointError:
                continue  # still being written
            if state is not None:
                break
        Path(flag).write_text(f"killed {run.name} after {last}\n")
        for child in psutil.Process().children(recursive=True):
            child.kill()
        os._exit(17)

    threading.Thread(target=watch, daemon=True).start()


def run_task(exp: Experiment, run: Run, out: Path, data_yaml: Path, workers: int | None,
             events: Any, teacher: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Body of one run's Ray task: train (or skip, or resume) it, then its held-out row; ``teacher`` orders it."""
    import ray

    from training.experiment.evaluation import evaluation_row
    from training.experiment.runs import train_run

    del teacher  # only there so that Ray starts this task after the teacher's
    gpus = ray.get_gpu_ids()
    device = ",".join(str(int(g)) for g in gpus) if gpus else "cpu"
    events.put((run.name, "started", time.time(), ray.get_runtime_context().get_node_id()))
    _kill_once_after_checkpoint(run, out)
    record = train_run(run, out, data_yaml, device, workers)
    return record, evaluation_row(exp, record, out, data_yaml)


def _submit(ray: Any, exp: Experiment, runs: list[Run], out: Path, data_yaml: Path,
            workers: int | None, retries: int, events: Any) -> dict[Any, str]:
    """Submit every run tier by tier (a student's task gets its teacher's result ref); return ref -> run name."""
    res = exp.resources
    task = ray.remote(run_task).options(num_cpus=res.cpus, num_gpus=res.gpus, max_retries=retries,
                                        retry_exceptions=[RunError])
    refs: dict[str, Any] = {}
    for tier in tiers(runs):
        for run in tier:
            teacher = refs.get(run.teacher_run) if run.kd else None
            refs[run.name] = task.remote(exp, run, out, data_yaml, workers, events, teacher)
    return {ref: name for name, ref in refs.items()}


class Progress:
    """Counts of the runs (done / running / failed / left) and one log line on each change."""

    def __init__(self, names: list[str]):
        self.names, self.started, self.done, self.failed = list(names), set(), {}, {}
        self.rows: dict[str, dict[str, Any]] = {}

    def line(self, event: str) -> str:
        """Return the progress line after ``event``."""
        running = len(self.started - set(self.done) - set(self.failed))
        left = len(self.names) - len(self.done) - len(self.failed) - running
        return (f"[ray] {event}: {len(self.done)} done, {running} running, {len(self.failed)} failed, "
                f"{left} left (of {len(self.names)})")

    def start(self, name: str, node: str) -> None:
        """Log that a run's task began (again, after a retry)."""
        if name in self.done or name in self.failed:
            return  # a skipped run can finish before its start event is read
        again = " (retry)" if name in self.started else ""
        self.started.add(name)
        print(self.line(f"started {name}{again} on node {node[:8]}"), flush=True)

    def finish(self, name: str, record: dict[str, Any], row: dict[str, Any]) -> None:
        """Log a finished run and print the table of the finished runs so far."""
        from training.experiment.tables import aggregate, to_markdown

        self.started.add(name)
        self.done[name], self.rows[name] = record, row
        print(self.line(f"finished {name}"), flush=True)
        rows = [self.rows[n] for n in self.names if n in self.rows]
        print(f"[ray] current table ({len(rows)} runs):\n{to_markdown(aggregate(rows))}", flush=True)

    def fail(self, name: str, why: str) -> None:
        """Log a run that failed for good (retries spent, or its teacher failed)."""
        self.failed[name] = why
        print(self.line(f"FAILED {name}: {why}"), flush=True)


def _why(exc: BaseException) -> str:
    """One line saying why a task failed: the RunError's message when there is one, else the error's type."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"


def _drain(events: Any, progress: Progress) -> None:
    """Log every start event the tasks queued since the last call."""
    while not events.empty():
        name, _, _, node = events.get_nowait()
        progress.start(name, node)


def wait_all(ray: Any, pending: dict[Any, str], events: Any, progress: Progress) -> None:
    """Wait for every task, logging starts, finishes and failures as they happen."""
    pending = dict(pending)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
        for ref in ready:  # before the start events: a run that started in a finished run's slot comes after it
            name = pending.pop(ref)
            try:
                record, row = ray.get(ref)
            except ray.exceptions.RayError as exc:
                progress.fail(name, _why(exc))
            else:
                progress.finish(name, record, row)
        _drain(events, progress)


def train_all_ray(exp: Experiment, runs: list[Run], out: Path, data_yaml: Path,
                  device: str | None, workers: int | None, address: str | None = None,
                  retries: int = 1) -> list[dict[str, Any]]:
    """Train and evaluate every run on Ray; return their results records in ``runs``' order.

    Raises:
        UsageError: A GPU ``device`` (Ray assigns the GPUs: set ``resources.gpus``), bad ``retries``, or a
            run's resources fit no node.
        RunError: The cluster cannot be reached, or runs failed after their retries (all named).
    """
    if device not in (None, "cpu"):
        raise UsageError(f"--device {device}: with --launcher ray each run's GPUs come from Ray; "
                         "set resources.gpus in the experiment instead")
    if retries < 0:
        raise UsageError(f"--retries: expected a whole number >= 0, got {retries}")
    ray = connect(address)
    try:
        check_fits(ray, exp.resources)
        from ray.util.queue import Queue

        events = Queue(actor_options={"num_cpus": 0})
        progress = Progress([r.name for r in runs])
        print(progress.line(f"{len(runs)} runs in {len(tiers(runs))} tiers on "
                            f"{ray.cluster_resources().get('CPU', 0):g} CPUs / "
                            f"{ray.cluster_resources().get('GPU', 0):g} GPUs"), flush=True)
        wait_all(ray, _submit(ray, exp, runs, out, data_yaml, workers, retries, events), events, progress)
    finally:
        ray.shutdown()
    if progress.failed:
        raise RunError(f"{len(progress.failed)} of {len(runs)} runs failed: "
                       + "; ".join(f"{n} ({why})" for n, why in progress.failed.items()))
    return [progress.done[r.name] for r in runs]
