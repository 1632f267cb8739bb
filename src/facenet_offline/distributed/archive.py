"""Embed a photo archive with Ray Data: on this machine's cores, or on a running Ray cluster.

paths -> [detect actors: decode, detect, align] -> [embed actors] -> Parquet part files, streamed:
Ray's executor holds a bounded number of batches between the stages, so memory does not grow with
the archive, and nothing is collected in the driver. Rerunning into the same folder computes only
the inputs it does not hold yet (or whose file changed since); other settings are refused.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..cache import remove_stale_temporaries
from ..chunk_store import manifest_differences
from ..data.images import DEFAULT_MAX_SIDE, iter_image_paths
from ..detect.align import AlignConfig
from ..detect.mtcnn import Selection
from ..face_loop import FaceOptions
from ..status import Status
from ..weights import DEFAULT_MODEL
from .archive_table import (
    MANIFEST,
    ArchiveError,
    drop_inputs,
    file_identity,
    iter_tables,
    part_files,
    read_manifest,
    recorded_inputs,
    write_manifest,
)
from .job import ArchiveJob

log = logging.getLogger(__name__)

LOCK = "_facenet_offline.lock"


@dataclass
class ArchiveSummary:
    """What an archive run did: its inputs, those found done already, those computed now, and the result
    for all of this run's inputs (faces, inputs with one, failures) as the output folder holds it."""

    out: Path
    inputs: int = 0
    already_done: int = 0
    computed: int = 0
    redone: int = 0  # inputs whose earlier rows were dropped: their file changed, or a killed run left them partial
    ok: int = 0
    faces: int = 0
    failures: list[tuple[str, Status]] = field(default_factory=list)
    workers: int = 0  # actors per stage
    cpus: float = 0.0  # CPUs of the Ray cluster
    startup_seconds: float = 0.0  # ray.init, or joining the cluster
    seconds: float = 0.0  # the whole run
    archive_inputs: int = 0  # inputs the output folder holds, from this run and earlier ones


def archive_settings(job: ArchiveJob) -> dict:
    """Everything a row depends on: the embedder (model, precision, weights and build digests, input
    convention, backend), the detector's runtime, the face options and the size bound."""
    from ..engines import embedder_description  # builds: torch, which the package's workers never import

    description, dim = embedder_description(job.model, job.backend, job.weights, job.precision, job.calibration)
    return {"embedder": description, "embedding_dim": dim, "detector": job.detector_backend,
            **job.options.to_dict(), "max_side": DEFAULT_MAX_SIDE}


class _Lock:
    """One run at a time per output folder."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.file = open(folder / LOCK, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.close()
            raise ArchiveError(f"another run is writing {folder}; wait for it to finish or stop it.") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()
        return False


def _check_folder(out: Path, settings: dict) -> None:
    """Refuse a folder that is not an archive, or one made with other settings."""
    manifest = read_manifest(out)
    if manifest is None:
        others = [p.name for p in out.iterdir() if p.name != LOCK] if out.is_dir() else []
        if others:
            raise ArchiveError(f"out={out} holds files that are not an archive's ({', '.join(sorted(others)[:3])}"
                               f"{', ...' if len(others) > 3 else ''}); give an empty or new folder.")
        write_manifest(out, settings)
        return
    before = manifest["settings"]
    if before != settings:
        diffs = manifest_differences(before, settings)
        raise ArchiveError(f"cannot continue {out}: it was made with other settings:\n  " + "\n  ".join(diffs)
                           + f"\nwrite to another out=, or use the settings above (its {MANIFEST} has them all).")


def plan(out: Path, paths: list[str]) -> tuple[list[str], int, list[str]]:
    """(inputs still to compute, inputs already complete, inputs whose rows must be dropped first).

    An input is complete when all its rows are there and its file has the size and modification
    time it had when they were made; a killed run's partial inputs are dropped, even of other runs.
    """
    recorded = recorded_inputs(out)
    todo, done, stale = [], 0, [p for p, r in recorded.items() if not r.complete]
    for path in dict.fromkeys(paths):
        entry = recorded.get(path)
        if entry is not None and entry.complete and entry.file == file_identity(path):
            done += 1
            continue
        if entry is not None and entry.complete:
            stale.append(path)
        todo.append(path)
    return todo, done, stale


def _start_ray(address: str | None) -> tuple[bool, float]:
    """Join the cluster at ``address``, or start Ray on this machine's cores; (started here, seconds)."""
    import ray

    if ray.is_initialized():
        return False, 0.0
    began = time.perf_counter()
    import ray.data  # configures its loggers on import

    # Ray's notes on its own working (a local cluster's token, the plan, progress as log lines when not in a
    # terminal) are for debugging Ray: its session's log files keep them, the terminal shows its warnings
    # and, in a terminal, its progress bars.
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    for handler in logging.getLogger("ray.data").handlers:
        if getattr(handler, "stream", None) in (sys.stderr, sys.stdout):
            handler.setLevel(logging.WARNING)
    if address:
        try:
            ray.init(address=address, logging_level=logging.WARNING)
        except ConnectionError as exc:
            raise ArchiveError(f"ray_address={address}: no Ray cluster answers there ({exc}); start one with "
                               "`ray start --head` on its head node and give that node's HOST:6379, or leave the "
                               "address out to run on this machine's cores.") from None
    else:
        # "local": a Ray of its own, even where RAY_ADDRESS or a `ray start` on this machine names another one.
        ray.init(address="local", num_cpus=len(os.sched_getaffinity(0)), include_dashboard=False,
                 logging_level=logging.WARNING)
    return True, time.perf_counter() - began


def workers_for(cpus: float, threads: int, num_workers: int | None) -> int:
    """Actors per stage: as asked, or as many as fill the cluster (each stage gets half its CPUs)."""
    n = num_workers if num_workers is not None else max(1, int(cpus // (2 * threads)))
    if n < 1:
        raise ValueError(f"num_workers={n}: must be at least 1")
    if 2 * n * threads > cpus:
        raise ArchiveError(f"num_workers={n} with threads={threads} needs {2 * n * threads} CPUs (a detect and an "
                           f"embed actor per worker), and the Ray cluster has {cpus:g}; give fewer num_workers=, or "
                           "add nodes.")
    return n


def rows_per_file(inputs: int, batch_size: int) -> int:
    """Rows per part file: a killed run loses at most one file's worth per writer, and a run of many inputs
    is still cut into at least 16 files (as ``embed``'s chunks are), of at most 4,096 rows (about 10 MB)."""
    return max(batch_size, min(4096, -(-inputs // 16)))


def run_pipeline(todo: list[str], out: Path, job: ArchiveJob, workers: int) -> None:
    """The Ray Data pipeline over ``todo``, written into ``out`` as it goes."""
    import ray
    import ray.data

    from .stages import DetectStage, EmbedStage, WriteStage

    blocks = max(1, min(-(-len(todo) // job.batch_size), 4096))  # blocks of at most a batch: no runt batches
    ds = ray.data.from_items([{"path": p} for p in todo], override_num_blocks=blocks)
    # Detection costs less a face than embedding, so it runs ahead and finishes first; the embed stage may then
    # grow onto the cores it freed and work off the backlog on twice the actors.
    for stage, most in ((DetectStage, workers), (EmbedStage, 2 * workers)):
        # The job rides on the class (pickled with it), not as a constructor argument in the object
        # store, which a restarted actor could find gone.
        bound = type(stage.__name__, (stage,), {"job": job})
        ds = ds.map_batches(bound, batch_size=job.batch_size, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(min_size=workers, max_size=most),
                            num_cpus=job.threads)
    # Writing is I/O: it holds no core. As many writers as nodes, each an actor that lives through the run.
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    writer = type(WriteStage.__name__, (WriteStage,), {"folder": str(out)})
    ds = ds.map_batches(writer, batch_size=rows_per_file(len(todo), job.batch_size), batch_format="pyarrow",
                        compute=ray.data.ActorPoolStrategy(size=max(1, nodes)), num_cpus=0)
    written = sum(int(batch["rows"].sum()) for batch in ds.iter_batches(batch_size=None, batch_format="numpy"))
    log.debug("%d rows written", written)


def summarise(out: Path, paths: Iterable[str], summary: ArchiveSummary) -> ArchiveSummary:
    """Count faces, inputs with one, and failures among ``paths`` as the output folder holds them."""
    wanted, held = set(paths), set()
    status: dict[str, Status] = {}
    for table in iter_tables(out, ["path", "face", "status"]):
        for path, face, st in zip(*(table.column(c).to_pylist() for c in ("path", "face", "status"))):
            held.add(path)
            if path in wanted:
                status[path] = Status.parse(st)
                summary.faces += face >= 0
    summary.ok = sum(s.ok for s in status.values())
    summary.failures = [(p, s) for p, s in sorted(status.items()) if not s.ok]
    summary.archive_inputs = len(held)
    return summary


def embed_archive(inputs: str | os.PathLike | Iterable[str | os.PathLike], out: str | os.PathLike,
                  model: str = DEFAULT_MODEL, precision: str = "fp32", backend: str = "onnxruntime",
                  detector_backend: str = "openvino", weights: str | os.PathLike | None = None,
                  calibration: str | None = None, faces: Selection | str = Selection.LARGEST,
                  align: AlignConfig = AlignConfig(), threads: int = 1, batch_size: int = 32,
                  ray_address: str | None = None, num_workers: int | None = None) -> ArchiveSummary:
    """Embed the chosen faces (``faces='all'``: every face) of every photo of ``inputs`` (files and folders)
    into the Parquet dataset folder ``out``, with Ray Data.

    Without ``ray_address`` Ray starts on this machine's cores (unless ``ray.init`` ran already);
    with one (``auto``, or ``HOST:6379``) it joins that cluster, whose every node needs this package
    and the photos at the same paths. ``num_workers`` detect and embed actors run (default: as many
    as fill the cluster), each on ``threads`` cores; once detection is done, embedding may grow to twice
    its actors on the cores detection freed. Running it again into the same ``out`` computes
    only what is missing; a folder made with other settings is refused.
    """
    if batch_size < 1 or threads < 1:
        raise ValueError(f"batch_size={batch_size}, threads={threads}: both must be at least 1")
    began = time.perf_counter()
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    paths = [os.path.abspath(p) for p in iter_image_paths(inputs)]
    out = Path(out).absolute()
    if out.suffix == ".npz":
        raise ValueError(f"out={out}: the Ray engine writes a Parquet dataset folder, not an .npz; give a folder.")
    job = ArchiveJob(model, precision, backend, detector_backend, str(weights) if weights else None, calibration,
                     FaceOptions(faces, align), threads, batch_size)
    job = job.with_built_models()  # once, here, before the workers start
    settings = archive_settings(job)
    summary = ArchiveSummary(out, inputs=len(set(paths)))
    with _Lock(out):
        _check_folder(out, settings)
        remove_stale_temporaries(out)  # a killed run's hidden, half-written part files
        todo, summary.already_done, stale = plan(out, paths)
        summary.redone = len(stale)
        if stale:
            log.info("dropping the rows of %d inputs (changed, or left partial by a killed run)", len(stale))
            drop_inputs(out, stale)
        summary.computed = len(todo)
        if todo:
            import ray

            started, summary.startup_seconds = _start_ray(ray_address)
            try:
                summary.cpus = float(ray.cluster_resources().get("CPU", 0))
                summary.workers = workers_for(summary.cpus, threads, num_workers)
                log.info("%d inputs to embed (%d done already) with %d detect and %d embed actors of %d threads",
                         len(todo), summary.already_done, summary.workers, summary.workers, threads)
                run_pipeline(todo, out, job, summary.workers)
            finally:
                if started:
                    ray.shutdown()
    summary.seconds = time.perf_counter() - began
    log.info("%d part files in %s", len(part_files(out)), out)
    return summarise(out, paths, summary)
