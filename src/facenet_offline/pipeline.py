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

from .data.images import DEFAULT_MAX_SIDE, DecodedImage, load_image
from .detect.align import AlignConfig, align_face
from .detect.mtcnn import Detection, MTCNNDetector, Selection
from .embedder import Embedder
from .embeddings import OK, EmbeddingSet
from .errors import ImageError

log = logging.getLogger(__name__)

NO_FACE = "no face"
TOO_SMALL = "too small"
ERROR = "error"
Progress = Callable[[int], None] | None


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


def decoded_batches(paths: Sequence[Path], batch_size: int, workers: int = 2,
                    max_side: int | None = DEFAULT_MAX_SIDE) -> Iterator[list[DecodedImage | str]]:
    """Batches of decoded images (or error strings), decoded in threads one batch ahead.

    At most two batches are held at once, so memory does not grow with the number of inputs.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")

    def decode(path: Path) -> DecodedImage | str:
        return _decode(path, max_side)

    starts = list(range(0, len(paths), batch_size))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        pending = pool.map(decode, paths[:batch_size]) if starts else None
        for i, start in enumerate(starts):
            current = list(pending)
            if i + 1 < len(starts):
                nxt = starts[i + 1]
                pending = pool.map(decode, paths[nxt:nxt + batch_size])
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
