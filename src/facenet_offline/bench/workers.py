"""FaceNet throughput when the machine is shared out as one worker of many threads or many workers of one.

Deployments scale by starting one worker process per core. Each worker runs in a fresh process;
the workers of one layout start together (a barrier) and embed for the same time, and their
rates add up. Layouts are timed round by round, so each round's ratio against one worker using
every core sees the same machine load. One worker of one thread, times the cores, is the ideal
that perfect scaling would reach.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerLayout:
    """``processes`` workers of ``threads`` threads each on ``backend``; ``pinning`` None is the backend's own choice."""

    backend: str
    processes: int
    threads: int
    pinning: bool | None = None

    @property
    def label(self) -> str:
        workers = "1 worker" if self.processes == 1 else f"{self.processes} workers"
        threads = "1 thread" if self.threads == 1 else f"{self.threads} threads"
        pinned = {None: "", True: ", pinned to cores (OpenVINO's default)", False: ", not pinned"}[self.pinning]
        return f"{workers} x {threads}{pinned}"


def default_layouts(cores: int) -> list[WorkerLayout]:
    """The layouts worth comparing on ``cores`` CPUs: the baseline (one worker, every core) first per backend."""
    layouts = []
    for backend in ("openvino", "onnxruntime"):
        layouts += [WorkerLayout(backend, 1, cores), WorkerLayout(backend, 1, 1), WorkerLayout(backend, cores, 1)]
    layouts.append(WorkerLayout("openvino", cores, 1, pinning=True))
    return layouts


def _worker(layout: WorkerLayout, batch: int, seconds: float, barrier, results) -> None:
    """Runs in a fresh process: build the engine, warm up, wait for the others, embed for ``seconds``."""
    from .models import _engine

    run = _engine("facenet", layout.backend, layout.threads, pinning=layout.pinning)
    x = np.random.default_rng(0).uniform(-1, 1, (batch, 3, 160, 160)).astype(np.float32)
    run(x)
    run(x)
    barrier.wait(timeout=600)
    started, batches = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        run(x)
        batches += 1
    results.put(batches * batch / (time.perf_counter() - started))


def aggregate_rate(layout: WorkerLayout, batch: int = 16, seconds: float = 4.0) -> float:
    """Images per second of all of ``layout``'s workers together."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(layout.processes), context.Queue()
    procs = [context.Process(target=_worker, args=(layout, batch, seconds, barrier, results))
             for _ in range(layout.processes)]
    for p in procs:
        p.start()
    rates = []
    try:
        for _ in procs:
            rates.append(results.get(timeout=900))
    finally:
        for p in procs:
            p.join(timeout=60)
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed or len(rates) != layout.processes:
        raise RuntimeError(f"workers bench: a worker of {layout.label} on {layout.backend} failed (exit codes {failed})")
    return float(sum(rates))


@dataclass
class WorkersRow:
    backend: str
    label: str
    processes: int
    threads: int
    pinning: bool | None
    rates: list[float]  # images/s, all workers together, one per round
    ratios: list[float]  # against the backend's one worker on every core, round by round

    @property
    def rate(self) -> float:
        return float(np.median(self.rates))

    @property
    def ratio(self) -> float:
        return float(np.median(self.ratios))


def bench_workers(layouts: Sequence[WorkerLayout], batch: int = 16, seconds: float = 4.0,
                  repeats: int = 3) -> list[WorkersRow]:
    """Every layout once per round for ``repeats`` rounds; each backend's first layout is its baseline."""
    rates: dict[WorkerLayout, list[float]] = {layout: [] for layout in layouts}
    for round_ in range(repeats):
        for layout in layouts:
            rates[layout].append(aggregate_rate(layout, batch, seconds))
            log.info("workers round %d: %s on %s, %.1f img/s", round_ + 1, layout.label, layout.backend,
                     rates[layout][-1])
    baseline = {}
    for layout in layouts:
        baseline.setdefault(layout.backend, rates[layout])
    return [WorkersRow(layout.backend, layout.label, layout.processes, layout.threads, layout.pinning, rates[layout],
                       [r / b for r, b in zip(rates[layout], baseline[layout.backend])]) for layout in layouts]


def workers_section(rows: Sequence[WorkersRow], batch: int, seconds: float, cores: int, date: str) -> dict:
    return {"date": date, "batch": batch, "seconds": seconds, "cores": cores,
            "rows": [{**asdict(r), "rate": r.rate, "ratio": r.ratio} for r in rows]}
