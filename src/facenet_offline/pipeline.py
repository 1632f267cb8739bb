"""Streaming jobs over many images: decode (in threads, one batch ahead), detect, align, embed.

Every input gets a status: "ok", "no face", "too small" (smaller than the smallest face the
detector looks for) or "error: <what is wrong and what to do>"; a bad input never stops a run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.batches import bounded_runs
from .data.images import DEFAULT_MAX_SIDE, DecodedImage, decoded_pixels, load_image
from .detect.align import AlignConfig, align_face
from .detect.mtcnn import Detection, MTCNNConfig, MTCNNDetector, Selection
from .embedder import Embedder
from .embeddings import OK, EmbeddingSet
from .errors import ImageError

log = logging.getLogger(__name__)

NO_FACE = "no face"
TOO_SMALL = "too small"
ERROR = "error"
Progress = Callable[[int], None] | None
# Decoded pixels per batch: one batch is at most one detection run. Batches counted in images alone
# held 32 phone photos of 4000 x 3000, 1.1 GiB each: `embed` over 64 of them peaked at 3.41 GiB;
# bounded, at 1.53 GiB, with identical embeddings and time (74.5 vs 77.4 s).
DECODE_BATCH_PIXELS = MTCNNConfig().batch_pixels


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n: int) -> None:
        pass


def progress_bar(factory: Callable[[int, str], object] | None, total: int, desc: str, done: int = 0):
    """A progress bar from ``factory(total, desc)`` (the CLI's tqdm), or one that shows nothing."""
    bar = factory(total, desc) if factory else _NoBar()
    if done:
        bar.update(done)
    return bar


def is_error(status: str) -> bool:
    """The input could not be read at all (as opposed to being read and holding no face)."""
    return status.startswith(ERROR)


def _decode(path: Path, max_side: int | None) -> DecodedImage | str:
    try:
        return load_image(path, max_side)
    except ImageError as exc:
        log.info("%s", exc)  # reported through the input's status
        return f"{ERROR}: {exc}"


def decoded_batches(paths: Sequence[Path], batch_size: int, workers: int = 2, max_side: int | None = DEFAULT_MAX_SIDE,
                    batch_pixels: int = DECODE_BATCH_PIXELS) -> Iterator[list[DecodedImage | str]]:
    """Batches of decoded images (or error strings), decoded in threads one batch ahead.

    A batch holds at most ``batch_size`` images and ``batch_pixels`` decoded pixels (read from the
    headers; a photo over it comes alone), and at most two batches are held at once, so memory
    grows neither with the number of inputs nor with their size.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")

    def decode(path: Path) -> DecodedImage | str:
        return _decode(path, max_side)

    runs = bounded_runs((decoded_pixels(p, max_side) for p in paths), batch_pixels, batch_size)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        run = next(runs, None)
        pending = pool.map(decode, paths[run[0]:run[1]]) if run else None
        while pending is not None:
            current = list(pending)
            run = next(runs, None)
            pending = pool.map(decode, paths[run[0]:run[1]]) if run else None
            yield current


def embed_aligned(paths: Sequence[Path], embedder: Embedder, batch_size: int = 32, progress: Progress = None) -> EmbeddingSet:
    """Embed ready face crops; undecodable inputs get an error status and a NaN row."""
    out = np.full((len(paths), embedder.spec.embedding_dim), np.nan, dtype=np.float32)
    status: list[str] = []
    for batch in decoded_batches(paths, batch_size):
        start = len(status)
        good = [j for j, d in enumerate(batch) if not isinstance(d, str)]
        if good:
            out[[start + j for j in good]] = embedder.embed([batch[j].pixels for j in good])
        status += [d if isinstance(d, str) else OK for d in batch]
        if progress:
            progress(len(batch))
    return EmbeddingSet([str(p) for p in paths], out, status, dict(embedder.description))


@dataclass
class ImageFaces:
    """One input image: its path, status, decoded image (None if undecodable) and detection.

    The detection is in the decoded image's pixels (see ``DecodedImage.scale`` for a downscaled one).
    """

    path: Path
    status: str
    decoded: DecodedImage | None
    detection: Detection

    @property
    def image(self) -> np.ndarray | None:
        return None if self.decoded is None else self.decoded.pixels


def detect_batches(paths: Sequence[Path], detector: MTCNNDetector, batch_size: int = 16,
                   progress: Progress = None) -> Iterator[list[ImageFaces]]:
    """Detect faces in every image, one batch of results at a time, in input order."""
    done = 0
    for batch in decoded_batches(paths, batch_size):
        found = iter(detector.detect([d.pixels for d in batch if not isinstance(d, str)]))
        results = []
        for k, d in enumerate(batch):
            if isinstance(d, str):
                results.append(ImageFaces(paths[done + k], d, None, Detection()))
            else:
                det = next(found)
                small = min(d.pixels.shape[:2]) < detector.config.min_face
                results.append(ImageFaces(paths[done + k], TOO_SMALL if small else OK, d, det))
        yield results
        done += len(batch)
        if progress:
            progress(len(batch))


def embed_images(paths: Sequence[Path], detector: MTCNNDetector, embedder: Embedder, align: AlignConfig = AlignConfig(),
                 select: Selection = Selection.LARGEST, batch_size: int = 16, progress: Progress = None) -> EmbeddingSet:
    """Detect, select one face per image, align, embed. Images without a face get status "no face"."""
    out = np.full((len(paths), embedder.spec.embedding_dim), np.nan, dtype=np.float32)
    status: list[str] = []
    for results in detect_batches(paths, detector, batch_size, progress):
        rows, crops = [], []
        for item in results:
            face = item.detection.select(select)
            if item.image is not None and len(face):
                rows.append(len(status))
                crops.append(align_face(item.image, face.boxes[0], face.landmarks[0], align))
            status.append(item.status if item.status != OK else (OK if len(face) else NO_FACE))
        if crops:
            out[rows] = embedder.embed(crops)
    meta = dict(embedder.description, align=align.method.value, margin=align.margin, select=Selection(select).value)
    return EmbeddingSet([str(p) for p in paths], out, status, meta)
