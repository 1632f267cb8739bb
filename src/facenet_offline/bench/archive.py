"""embed --engine ray against the single-process embed, over the same LFW photos, each run a fresh process.

A run's process is the driver; Ray's processes (its own services and the actors) start from it, so
the memory of every one of them is sampled from here, through the process tree. Each run is pinned
to its cores with CPU affinity, which the processes it starts inherit: that is how the scaling runs
give Ray one core or two while it is told of as many logical CPUs as its actors ask for.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from ..allocator import keep_large_blocks_mapped
from ..cache import atomic_write_json
from .harness import Sampler, peak_rss_mb
from .memory import lfw_photos

log = logging.getLogger(__name__)

MAIN_IMAGES = 5000
SCALING_IMAGES = 1500
# Every round, in this order and close in time (the host's speed drifts between sets of runs): both engines on
# both sizes, for the two-size fit. (set, size, engine, cores, actors per stage); size "main" is ``images``,
# "small" ``scaling_images``.
ROUND = (("main", "main", "single", 2, 0), ("main", "main", "ray", 2, 1), ("scaling", "small", "single", 2, 0),
         ("scaling", "small", "ray", 2, 1))
# Once, after the rounds: one core, and more actors than cores.
SCALING = (("scaling", "small", "single", 1, 0), ("scaling", "small", "ray", 1, 1),
           ("scaling", "small", "ray", 2, 2), ("scaling", "small", "ray", 2, 3))


def _child(engine: str, folder: str, out: str, result: str, cores: str, workers: str) -> None:
    """One measured run in this fresh process; its figures go to the JSON file ``result``."""
    os.sched_setaffinity(0, range(int(cores)))  # every process started from here inherits it
    keep_large_blocks_mapped()  # as the command line does for long runs (allocator.py): both engines alike
    began = time.perf_counter()
    if engine == "single":  # what `facenet-offline embed FOLDER --out OUT.npz` runs
        from ..api import FaceNet

        fn = FaceNet(threads=int(cores))
        started = time.perf_counter()
        summary = fn.embed_to_file([folder], out)
        figures = {"faces": summary.faces, "ok": summary.ok, "startup_s": started - began,
                   "output_bytes": Path(out).stat().st_size}
    else:  # what `facenet-offline embed FOLDER --engine ray --out OUT` runs, with Ray told of 2 CPUs per worker
        import ray

        from ..distributed import embed_archive
        from ..distributed.archive_table import part_files

        ray.init(address="local", num_cpus=2 * int(workers), include_dashboard=False, logging_level=logging.WARNING)
        started = time.perf_counter()
        summary = embed_archive([folder], out, num_workers=int(workers))
        ray.shutdown()
        figures = {"faces": summary.faces, "ok": summary.ok, "startup_s": started - began,
                   "rows": summary.faces + len(summary.failures),
                   "output_bytes": sum(p.stat().st_size for p in part_files(out))}
    atomic_write_json(result, {**figures, "wall_s": time.perf_counter() - began, "driver_peak_mib": peak_rss_mb()})


class TreeSampler(Sampler):
    """Memory of every process under ``root``, sampled every ``every_s``: each one's peak resident set (RSS),
    and the peak of their proportional sets (PSS) summed, which counts a page shared by several processes
    (Ray's object store is mapped into each of them) once: the tree's real total."""

    def __init__(self, root: int, every_s: float = 0.5):
        super().__init__(every_s, "tree-sampler")
        self.root = root
        self.peaks: dict[int, tuple[str, float]] = {}
        self.cpu_s: dict[int, float] = {}  # each process's CPU time (user and system) at its last sample
        self.total_pss = self.others_pss = 0.0

    @staticmethod
    def _field(path: str, name: str) -> float:
        with open(path, encoding="ascii") as fh:
            return next((int(line.split()[1]) / 1024 for line in fh if line.startswith(name + ":")), 0.0)

    @classmethod
    def _read(cls, pid: int) -> tuple[int, str, float, float, float] | None:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read().rsplit(")", 1)[1].split()
            ppid, cpu_s = int(stat[1]), (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                name = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
            return (ppid, name, cls._field(f"/proc/{pid}/status", "VmRSS"),
                    cls._field(f"/proc/{pid}/smaps_rollup", "Pss"), cpu_s)
        except (OSError, ValueError, IndexError):
            return None

    def sample(self) -> None:
        parents = {}
        for pid in (int(e) for e in os.listdir("/proc") if e.isdigit()):
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                    parents[pid] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
        inside, grew = {self.root}, True
        while grew:
            more = {pid for pid, ppid in parents.items() if ppid in inside} - inside
            inside |= more
            grew = bool(more)
        total = others = 0.0
        for pid in inside:
            info = self._read(pid)
            if info is None:
                continue
            _, name, rss, pss, self.cpu_s[pid] = info
            before = self.peaks.get(pid, ("", 0.0))
            self.peaks[pid] = (name if "ray::" in name or not before[0] else before[0], max(before[1], rss))
            total += pss
            engine_actor = any(stage in self.peaks[pid][0] for stage in ("DetectStage", "EmbedStage"))
            others += pss if pid != self.root and not engine_actor else 0.0  # the writers are among the others
        self.total_pss, self.others_pss = max(self.total_pss, total), max(self.others_pss, others)

    def by_role(self) -> dict:
        """Peak RSS (MiB) of the driver and of the largest detect and embed actor; the peak PSS of Ray's other
        processes together, and of the whole tree together."""
        roles = {"driver": 0.0, "detect_actor": 0.0, "embed_actor": 0.0}
        for pid, (name, peak) in self.peaks.items():
            if pid == self.root:
                roles["driver"] = peak
            elif "DetectStage" in name:
                roles["detect_actor"] = max(roles["detect_actor"], peak)
            elif "EmbedStage" in name:
                roles["embed_actor"] = max(roles["embed_actor"], peak)
        roles.update(ray_services=self.others_pss, all_processes=self.total_pss, processes=len(self.peaks))
        return {k: round(v, 1) for k, v in roles.items()}

    def cpu_by_stage(self) -> dict:
        """CPU seconds of the detect actors, of the embed actors, and of the whole tree (each process as of its
        last sample: one that ended is short of at most ``every_s`` of its time)."""
        stages = {"detect": 0.0, "embed": 0.0, "all": sum(self.cpu_s.values())}
        for pid, cpu in self.cpu_s.items():
            name = self.peaks[pid][0]
            for stage, marker in (("detect", "DetectStage"), ("embed", "EmbedStage")):
                stages[stage] += cpu if marker in name else 0.0
        return {k: round(v, 2) for k, v in stages.items()}


def measure(engine: str, folder: Path, out: Path, cores: int, workers: int) -> dict:
    """One run in a fresh process: its figures, and the peaks of the processes under it."""
    result = out.with_name(out.name + ".json")
    child = subprocess.Popen([sys.executable, "-m", __name__, engine, str(folder), str(out), str(result), str(cores),
                              str(workers)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, TQDM_DISABLE="1"))
    with TreeSampler(child.pid) as tree:
        _, stderr = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"archive run ({engine}, {cores} cores, {workers} workers) failed:\n{stderr[-3000:]}")
    figures = json.loads(result.read_text())
    images = sum(1 for _ in folder.iterdir())
    return {"engine": engine, "cores": cores, "workers": workers, "images": images, **figures,
            "images_per_s": images / figures["wall_s"], "memory_mib": tree.by_role(), "cpu_s": tree.cpu_by_stage()}


def bench_archive(images: int = MAIN_IMAGES, rounds: int = 2, scaling_images: int = SCALING_IMAGES,
                  scaling: Sequence[tuple[str, str, str, int, int]] = SCALING) -> dict:
    """``rounds`` of ``ROUND`` (the single process and Ray on ``images`` and ``scaling_images`` photos), then the
    ``scaling`` runs; each row says its round."""
    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        raise RuntimeError("the archive suite compares runs on 1 and 2 cores; this process may use only 1")
    photos = lfw_photos(max(images, scaling_images))
    plan = [(k, *run) for k in range(rounds) for run in ROUND] + [(rounds, *run) for run in scaling]
    rows = []
    with tempfile.TemporaryDirectory(prefix="facenet-offline-archive-") as tmp:
        folders = {}
        for size, n in (("main", images), ("small", scaling_images)):
            folders[size] = Path(tmp) / f"photos-{n}"
            if not folders[size].is_dir():
                folders[size].mkdir()
                for k, path in enumerate(photos[:n]):
                    (folders[size] / f"{k:05d}_{path.name}").symlink_to(path)
        for k, (round_, kind, size, engine, run_cores, workers) in enumerate(plan):
            out = Path(tmp) / (f"{k}-{kind}-{engine}" + (".npz" if engine == "single" else ""))
            row = {"set": kind, "round": round_, **measure(engine, folders[size], out, run_cores, workers)}
            rows.append(row)
            log.info("archive %s %s, %d cores, %d workers: %.1f images/s (%.0f s), driver %.0f MiB", kind, engine,
                     run_cores, workers, row["images_per_s"], row["wall_s"], row["memory_mib"]["driver"])
    return {"rows": rows, "images": images, "scaling_images": scaling_images}


if __name__ == "__main__":
    _child(*sys.argv[1:7])
