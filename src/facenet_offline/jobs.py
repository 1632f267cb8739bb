"""Long runs over photo folders (``embed``, ``detect``): chunked, resumable, one status per input.

Each chunk of inputs goes through the streaming pipeline and is written atomically into
``<out>.parts/``; the output is assembled (atomically) once every chunk is done. The output
records the settings it was made with, so ``--resume`` can refuse to mix runs.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .cache import atomic_path
from .chunks import ChunkStore, ResumeError, manifest_differences, parts_dir, run_manifest
from .detect.align import AlignConfig
from .detect.jsonl import detection_record, iter_records, read_meta, save_crops
from .detect.mtcnn import MTCNNDetector, Selection
from .embedder import Embedder
from .embeddings import EmbeddingSet, SetSummary, save_concatenated
from .pipeline import detect_batches, embed_aligned, embed_images, is_error, progress_bar

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 256
ProgressFactory = Callable[[int, str], object] | None


@dataclass(frozen=True)
class RunConfig:
    """Where a run writes, in chunks of how many inputs, and whether to continue an interrupted one."""

    out: Path
    chunk_size: int = DEFAULT_CHUNK_SIZE
    resume: bool = False


def _open_store(command: str, settings: dict, paths: Sequence[Path], run: RunConfig, suffix: str,
                finished_manifest: Callable[[Path], dict | None]) -> tuple[ChunkStore | None, dict]:
    """The run's chunk store, or None when ``--resume`` finds the output already complete with these settings."""
    manifest = json.loads(json.dumps(run_manifest(command, settings, [str(p) for p in paths], run.chunk_size)))
    if run.resume and run.out.is_file() and not parts_dir(run.out).exists():
        before = finished_manifest(run.out)
        if before == manifest:
            log.info("%s is already complete with these settings; nothing to do", run.out)
            return None, manifest
        diffs = manifest_differences(before or {}, manifest)
        raise ResumeError(f"cannot resume into {run.out}: it was made with other settings or inputs:\n  "
                          + "\n  ".join(diffs) + "\nwrite to another --out, or drop --resume to overwrite it.")
    return ChunkStore.open(parts_dir(run.out), manifest, suffix, run.resume), manifest


def embed_run(paths: Sequence[Path], embedder: Embedder, run: RunConfig, detector: MTCNNDetector | None = None,
              detector_name: str = "", align: AlignConfig = AlignConfig(), select: Selection = Selection.LARGEST,
              batch_size: int = 32, progress_factory: ProgressFactory = None) -> SetSummary:
    """Embed every input (detecting and aligning first unless ``detector`` is None: ready crops), resumably.

    The embeddings go to ``run.out`` (``EmbeddingSet.load`` reads them); what comes back is the
    summary, so memory does not grow with the number of inputs.
    """
    settings: dict = {"embedder": embedder.description, "aligned": detector is None}
    if detector is not None:
        settings.update(detector=detector_name, align=align.method.value, margin=align.margin,
                        select=Selection(select).value)

    def finished(out: Path) -> dict | None:
        return EmbeddingSet.load(out).meta.get("run")

    store, manifest = _open_store("embed", settings, paths, run, ".npz", finished)
    if store is None:
        done, summary = EmbeddingSet.load(run.out), SetSummary()
        summary.add(done.paths, done.status)
        return summary
    with store, progress_bar(progress_factory, len(paths), "embed", store.done_items()) as bar:
        for index, chunk in store.pending(paths):
            if detector is None:
                part = embed_aligned(chunk, embedder, batch_size, progress=bar.update)
            else:
                part = embed_images(chunk, detector, embedder, align, select, batch_size, progress=bar.update)
            store.write(index, part.write)
        summary = save_concatenated(run.out, store.files(), dict(settings, **settings["embedder"], run=manifest))
        store.remove()
    return summary


@dataclass
class DetectSummary:
    images: int = 0
    faces: int = 0
    no_face: int = 0
    errors: int = 0


def detect_run(paths: Sequence[Path], detector: MTCNNDetector, run: RunConfig, detector_name: str = "",
               align: AlignConfig = AlignConfig(), select: Selection = Selection.ALL, batch_size: int = 16,
               crops_dir: Path | None = None, progress_factory: ProgressFactory = None) -> DetectSummary:
    """Detect faces in every input and write one JSON line per image (after a ``meta`` header line), resumably."""
    settings = {"detector": detector_name, "select": Selection(select).value, "crops": str(crops_dir or "")}
    if crops_dir:
        settings.update(align=align.method.value, margin=align.margin)

    def finished(out: Path) -> dict | None:
        return read_meta(out).get("run")

    store, manifest = _open_store("detect", settings, paths, run, ".jsonl", finished)
    if store is not None:
        with store, progress_bar(progress_factory, len(paths), "detect", store.done_items()) as bar:
            for index, chunk in store.pending(paths):
                first = index * run.chunk_size
                lines = []
                for results in detect_batches(chunk, detector, batch_size, progress=bar.update):
                    for item in results:
                        det = item.detection.select(select)
                        crops = save_crops(item, det, align, crops_dir, first + len(lines)) if crops_dir else []
                        lines.append(json.dumps(detection_record(item, det, crops), ensure_ascii=False) + "\n")
                store.write(index, lambda tmp: Path(tmp).write_text("".join(lines), encoding="utf-8"))
            with atomic_path(run.out, ".jsonl") as tmp, open(tmp, "w", encoding="utf-8") as fh:
                fh.write(json.dumps({"meta": dict(settings, run=manifest)}) + "\n")
                for part in store.files():
                    with open(part, encoding="utf-8") as src:
                        shutil.copyfileobj(src, fh)
            store.remove()
    summary = DetectSummary()
    for record in iter_records(run.out):
        summary.images += 1
        summary.faces += len(record["faces"])
        summary.errors += is_error(record["status"])
        summary.no_face += not is_error(record["status"]) and not record["faces"]
    return summary
