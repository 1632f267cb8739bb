"""Long runs over photo folders (``embed``, ``detect``): chunked, resumable, one status per input.

The inputs stream through the face loop (``pipeline.analyse``) in one pass; every finished chunk
of inputs is written atomically into ``<out>.parts/``, and the output is assembled (atomically)
once every chunk is done. The output records the settings it was made with, so ``resume`` can
refuse to mix runs.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .cache import atomic_path
from .chunk_store import (
    RESUME_HINT,
    ChunkStore,
    ResumeError,
    RunInterrupted,
    auto_chunk_size,
    manifest_differences,
    parts_dir,
    run_manifest,
    unfinished_chunk_size,
)
from .data.images import ImageSource
from .detect.mtcnn import MTCNNDetector, Selection
from .detection_lines import detection_record, iter_records, read_meta, save_crops
from .embedder import Embedder
from .embedding_set import EmbeddingSet, SetSummary, save_concatenated
from .face_loop import FaceOptions, ImageResult, analyse, progress_bar
from .status import Status

log = logging.getLogger(__name__)

ProgressFactory = Callable[[int, str], object] | None


@dataclass(frozen=True)
class RunConfig:
    """Where a run writes, in chunks of how many inputs (None: ``auto_chunk_size``, or the interrupted
    run's when resuming), and whether to continue an interrupted run."""

    out: Path
    chunk_size: int | None = None
    resume: bool = False

    def __post_init__(self):
        if str(self.out) in ("-", "") or Path(self.out).is_dir():
            raise ValueError(f"out={self.out or '(empty)'}: give a file to write (a run writes it in chunks and "
                             "renames it into place; standard output and folders cannot be resumed).")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size={self.chunk_size}: must be at least 1")

    def chunk_size_for(self, inputs: int, finished: dict | None = None) -> int:
        """The chunk size this run uses: as given, else the interrupted (or finished) run's, else automatic."""
        if self.chunk_size is not None:
            return self.chunk_size
        if self.resume:
            size = unfinished_chunk_size(parts_dir(self.out)) or (finished or {}).get("chunk_size")
            if size:
                return int(size)
        return auto_chunk_size(inputs)


def _open_store(command: str, settings: dict, labels: Sequence[str], run: RunConfig, suffix: str,
                finished_manifest: Callable[[Path], dict | None]) -> tuple[ChunkStore | None, dict]:
    """The run's chunk store, or None when ``resume`` finds the output already complete with these settings."""
    before = finished_manifest(run.out) if run.resume and run.out.is_file() else None
    size = run.chunk_size_for(len(labels), before)
    manifest = json.loads(json.dumps(run_manifest(command, settings, labels, size)))
    if run.resume and run.out.is_file() and not parts_dir(run.out).exists():
        if before == manifest:
            log.info("%s is already complete with these settings; nothing to do", run.out)
            return None, manifest
        diffs = manifest_differences(before or {}, manifest)
        raise ResumeError(f"cannot resume into {run.out}: it was made with other settings or inputs:\n  "
                          + "\n  ".join(diffs) + "\nwrite to another out=, or drop resume=True to overwrite it.")
    return ChunkStore.open(parts_dir(run.out), manifest, suffix, run.resume), manifest


def _chunks_of(results: Iterator[ImageResult], store: ChunkStore, sources: Sequence[ImageSource]
               ) -> Iterator[tuple[int, int, list[ImageResult]]]:
    """(chunk index, its first input, its results) for every pending chunk, from one stream of results."""
    size = store.manifest["chunk_size"]
    for index, chunk in store.pending(sources):
        yield index, index * size, [next(results) for _ in chunk]


def _interrupted(store: ChunkStore, total: int) -> RunInterrupted:
    return RunInterrupted(f"interrupted: {store.done_items()} of {total} inputs are done and kept in {store.folder}; "
                          "run it again with resume=True to continue.")


def _stream(sources: Sequence[ImageSource], store: ChunkStore, detector: MTCNNDetector | None,
            embedder: Embedder | None, options: FaceOptions, batch_size: int, crops: bool, bar):
    """The results of the pending chunks' inputs, as one stream through the face loop."""
    todo = [s for _, chunk in store.pending(sources) for s in chunk]
    return analyse(todo, detector, embedder, options, batch_size, crops, progress=bar.update)


def embed_run(sources: Sequence[ImageSource], embedder: Embedder, run: RunConfig, detector: MTCNNDetector | None = None,
              detector_name: str = "", options: FaceOptions = FaceOptions(select=Selection.LARGEST),
              batch_size: int = 32, progress_factory: ProgressFactory = None) -> SetSummary:
    """Embed the selected faces of every input (detecting and aligning first unless ``detector`` is None:
    ready crops), resumably; one row per face, or per input without one.

    The embeddings go to ``run.out`` (``EmbeddingSet.load`` reads them); what comes back is the
    summary, so memory does not grow with the number of inputs.
    """
    settings: dict = {"embedder": embedder.description, "aligned": detector is None}
    if detector is not None:
        settings.update(detector=detector_name, **options.to_dict())

    def finished(out: Path) -> dict | None:
        return EmbeddingSet.load(out).meta.get("run")

    labels = [s.label for s in sources]
    store, manifest = _open_store("embed", settings, labels, run, ".npz", finished)
    if store is None:
        done, summary = EmbeddingSet.load(run.out), SetSummary()
        summary.add(done.paths, done.status, done.inputs)
        return summary
    with store, progress_bar(progress_factory, len(sources), "embed", store.done_items()) as bar:
        try:
            results = _stream(sources, store, detector, embedder, options, batch_size, False, bar)
            for index, first, part in _chunks_of(results, store, sources):
                rows = EmbeddingSet.from_results(part, {}, embedder.spec.embedding_dim, first)
                store.write(index, rows.write)
        except KeyboardInterrupt:
            raise _interrupted(store, len(sources)) from None
        summary = save_concatenated(run.out, store.files(), dict(settings, **settings["embedder"], run=manifest),
                                    RESUME_HINT)
        store.remove()
    return summary


@dataclass
class DetectSummary:
    images: int = 0
    faces: int = 0
    no_face: int = 0
    errors: int = 0


def detect_run(sources: Sequence[ImageSource], detector: MTCNNDetector, run: RunConfig, detector_name: str = "",
               options: FaceOptions = FaceOptions(), batch_size: int = 16, crops_dir: Path | None = None,
               progress_factory: ProgressFactory = None) -> DetectSummary:
    """Detect faces in every input and write one JSON line per image (after a ``meta`` header line), resumably."""
    settings = {"detector": detector_name, "select": options.select.value, "crops": str(crops_dir or "")}
    if crops_dir:
        settings.update(align=options.align.method.value, margin=options.align.margin)

    def finished(out: Path) -> dict | None:
        return read_meta(out).get("run")

    store, manifest = _open_store("detect", settings, [s.label for s in sources], run, ".jsonl", finished)
    if store is not None:
        with store, progress_bar(progress_factory, len(sources), "detect", store.done_items()) as bar:
            try:
                results = _stream(sources, store, detector, None, options, batch_size, crops_dir is not None, bar)
                for index, first, part in _chunks_of(results, store, sources):
                    lines = []
                    for k, result in enumerate(part):
                        paths = save_crops(result, crops_dir, first + k) if crops_dir else []
                        lines.append(json.dumps(detection_record(result, paths), ensure_ascii=False) + "\n")
                    store.write(index, lambda tmp: Path(tmp).write_text("".join(lines), encoding="utf-8"))
            except KeyboardInterrupt:
                raise _interrupted(store, len(sources)) from None
            with atomic_path(run.out, ".jsonl", RESUME_HINT) as tmp, open(tmp, "w", encoding="utf-8") as fh:
                fh.write(json.dumps({"meta": dict(settings, run=manifest)}) + "\n")
                for part_file in store.files():
                    with open(part_file, encoding="utf-8") as src:
                        shutil.copyfileobj(src, fh)
            store.remove()
    summary = DetectSummary()
    for record in iter_records(run.out):
        status = Status.parse(record["status"])
        summary.images += 1
        summary.faces += len(record["faces"])
        summary.errors += status.is_error
        summary.no_face += not status.is_error and not record["faces"]
    return summary
