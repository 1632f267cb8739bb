"""The one face loop: decode (in threads, one batch ahead) -> detect -> select -> align -> embed.

Every input gets a ``Status`` and the loop goes on: a bad input never stops a run. The jobs over
folders, the recognition package and the Python API all run their images through ``analyse``
(or, for the LFW protocol's centre-crop fallback, through ``detect_batches`` beneath it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .data.batches import bounded_runs
from .data.images import DEFAULT_MAX_SIDE, DecodedImage, ImageSource, as_source, decoded_pixels, load_image
from .data.tensors import resize_face
from .detect.align import AlignConfig, align_face, centre_box
from .detect.mtcnn import Detection, MTCNNConfig, MTCNNDetector, Selection
from .embedder import Embedder
from .errors import ImageError
from .status import NO_FACE, OK, TOO_SMALL, Status

log = logging.getLogger(__name__)

Progress = Callable[[int], None] | None
# Decoded pixels per batch: one batch is at most one detection run, so a batch of phone photos
# stays as small in memory as the detector's own bound (docs/benchmarks.md, Memory).
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


@dataclass(frozen=True)
class FaceOptions:
    """Which faces of an image to use and how to cut them out for the embedder."""

    select: Selection = Selection.ALL
    align: AlignConfig = AlignConfig()

    def __post_init__(self):
        object.__setattr__(self, "select", Selection.parse(self.select))

    def to_dict(self) -> dict:
        return {"select": self.select.value, "align": self.align.method.value, "margin": self.align.margin}


@dataclass
class Face:
    """One face: box (x1, y1, x2, y2) and 5 landmarks (x, y) in the original image's pixels.

    ``index`` is its place among every face found in its image, most certain first. ``embedding``
    and ``crop`` (the aligned face) are empty unless they were asked for.
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    index: int = 0
    embedding: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    crop: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3), np.uint8))

    def __repr__(self) -> str:  # the arrays by their shape: a REPL should not print 512 numbers
        box = ", ".join(f"{v:.1f}" for v in self.box)
        return (f"Face(index={self.index}, box=[{box}], score={self.score:.4f}, "
                f"embedding={'(%d,)' % len(self.embedding) if self.embedding.size else 'none'}, "
                f"crop={'x'.join(map(str, self.crop.shape)) if self.crop.size else 'none'})")


@dataclass
class ImageResult:
    """One input: its label, status, size (height, width; (0, 0) if unreadable) and faces."""

    source: str
    status: Status
    faces: list[Face] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)
    detected_size: tuple[int, int] = (0, 0)  # the pixels detection ran on: smaller for photos over max_side


@dataclass
class DetectedImage:
    """``detect_batches``' view of one input: its decoded pixels and its detection in those pixels."""

    source: ImageSource
    status: Status
    decoded: DecodedImage | None
    detection: Detection  # faces smaller than the detector's smallest face already dropped

    @property
    def image(self) -> np.ndarray | None:
        return None if self.decoded is None else self.decoded.pixels


def decoded_batches(sources: Iterable[ImageSource], batch_size: int, workers: int = 2,
                    max_side: int | None = DEFAULT_MAX_SIDE, batch_pixels: int = DECODE_BATCH_PIXELS
                    ) -> Iterator[list[tuple[ImageSource, DecodedImage | ImageError]]]:
    """Batches of (input, decoded image or its ImageError), decoded in threads one batch ahead.

    A batch holds at most ``batch_size`` images and ``batch_pixels`` decoded pixels (read from the
    headers; a photo over it comes alone), and at most two batches are held at once, so memory
    grows neither with the number of inputs nor with their size. ``sources`` is read lazily.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    seen: list[ImageSource] = []

    def sizes() -> Iterator[int]:
        for source in sources:
            seen.append(as_source(source))
            yield decoded_pixels(seen[-1], max_side)

    def decode(source: ImageSource) -> tuple[ImageSource, DecodedImage | ImageError]:
        try:
            return source, load_image(source, max_side)
        except ImageError as exc:
            log.info("%s", exc)  # reported through the input's status
            return source, exc

    runs = bounded_runs(sizes(), batch_pixels, batch_size)
    offset = 0  # inputs already handed out and forgotten
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        run = next(runs, None)
        pending = pool.map(decode, seen[run[0] - offset:run[1] - offset]) if run else None
        while pending is not None:
            current = list(pending)
            del seen[:len(current)]
            offset += len(current)
            run = next(runs, None)
            pending = pool.map(decode, seen[run[0] - offset:run[1] - offset]) if run else None
            yield current


def image_status(pixels: np.ndarray, found: Detection, min_face: float) -> tuple[Status, Detection]:
    """The status of a decoded image and its faces of at least ``min_face`` pixels.

    Boxes below the smallest face the detector looks for are regression artefacts (a 30 x 30
    photo gave a 10 x 14 px "face" with a useless embedding), so they are dropped. An image is
    ``too small`` when it held only such boxes, or when its shorter side is under twice the
    smallest face: a face needs room around it to be found, so such a photo cannot show one.
    """
    kept = found.at_least(min_face)
    if min(pixels.shape[:2]) < 2 * min_face or (len(found) and not len(kept)):
        return TOO_SMALL, kept.take(np.zeros(0, np.int64))
    return (OK if len(kept) else NO_FACE), kept


def detect_decoded(batch: Sequence[tuple[ImageSource, DecodedImage | ImageError]], detector: MTCNNDetector | None,
                   ready: Sequence[bool] | None = None) -> list[DetectedImage]:
    """One detector run over every decoded image of ``batch`` (an ImageError becomes an error status).

    Images marked ``ready`` (or all, without a detector) are face crops already: they skip detection.
    """
    ready = [detector is None] * len(batch) if ready is None else list(ready)
    wanted = [d.pixels for (_, d), r in zip(batch, ready) if isinstance(d, DecodedImage) and not r]
    found = iter(detector.detect(wanted) if wanted else [])
    results = []
    for (source, decoded), is_ready in zip(batch, ready):
        if isinstance(decoded, ImageError):
            results.append(DetectedImage(source, Status.error(decoded.reason, decoded.code), None, Detection()))
        elif is_ready:
            results.append(DetectedImage(source, OK, decoded, Detection()))
        else:
            status, det = image_status(decoded.pixels, next(found), detector.config.min_face)
            results.append(DetectedImage(source, status, decoded, det))
    return results


def detect_batches(sources: Iterable[ImageSource], detector: MTCNNDetector, batch_size: int = 16,
                   progress: Progress = None) -> Iterator[list[DetectedImage]]:
    """Detect faces in every input, one batch of results at a time, in input order."""
    for batch in decoded_batches(sources, batch_size):
        yield detect_decoded(batch, detector)
        if progress:
            progress(len(batch))


def face_or_centre(det: Detection, select: Selection, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """(box, landmarks, found) of the selected face, or a centre crop when there is none: the LFW protocol's
    fallback (LFW centres every image on its subject), so no pair is ever dropped."""
    face = det.select(select)
    if len(face):
        return face.boxes[0], face.landmarks[0], True
    return centre_box(image.shape[1], image.shape[0]), np.full((5, 2), np.nan, np.float32), False


def _face(det: Detection, k: int, index: int, decoded: DecodedImage) -> Face:
    """Face ``k`` of ``det`` (in the decoded pixels), with its box and landmarks in the original's pixels."""
    fx, fy = decoded.scale
    scale = np.array([fx, fy, fx, fy], np.float32)
    return Face((det.boxes[k] / scale).astype(np.float32), float(det.scores[k]),
                (det.landmarks[k] / scale[:2]).astype(np.float32), index)


def _faces_of(item: DetectedImage, options: FaceOptions, want_crops: bool) -> tuple[list[Face], list[np.ndarray]]:
    """The selected faces of one detected image and their aligned crops."""
    det = item.detection
    order = det.chosen(Selection.ALL)  # by score: a face's index is its place here
    rank = {int(k): i for i, k in enumerate(order)}
    faces, crops = [], []
    for k in det.chosen(options.select):
        faces.append(_face(det, int(k), rank[int(k)], item.decoded))
        if want_crops:
            crops.append(align_face(item.image, det.boxes[k], det.landmarks[k], options.align))
    return faces, crops


def _whole_image(decoded: DecodedImage, size: int) -> tuple[Face, np.ndarray]:
    """A ready face crop: the whole image is the face (no detection ran, so score and landmarks are NaN)."""
    height, width = decoded.size
    face = Face(np.array([0, 0, width, height], np.float32), float("nan"), np.full((5, 2), np.nan, np.float32), 0)
    return face, resize_face(decoded.pixels, size)


@dataclass(frozen=True)
class FaceTask:
    """What to make of one image: which faces and how cut (``options``), whether the image is a ready face
    crop (``ready``: embedded whole, no detection), and whether to keep the aligned crops."""

    options: FaceOptions = FaceOptions()
    ready: bool = False
    crops: bool = False


def finish(detected: Sequence[DetectedImage], tasks: Sequence[FaceTask], embedder: Embedder | None) -> list[ImageResult]:
    """Each detected image's selected faces, aligned, and all of them embedded in one embedder run.

    The images may come from different callers with different tasks: the service batches requests so.
    """
    results, all_faces, all_crops, kept = [], [], [], []
    for item, task in zip(detected, tasks):
        result = ImageResult(item.source.label, item.status)
        if item.decoded is not None:
            result.size, result.detected_size = item.decoded.size, item.decoded.pixels.shape[:2]
            if task.ready:
                face, crop = _whole_image(item.decoded, embedder.spec.input_size if embedder else
                                          task.options.align.image_size)
                faces, crops = [face], [crop]
            else:
                faces, crops = _faces_of(item, task.options, embedder is not None or task.crops)
            result.faces = faces
            all_faces += faces
            all_crops += crops
            kept += [task.crops] * len(faces)
        results.append(result)
    if embedder is not None and all_crops:
        for face, vector in zip(all_faces, embedder.embed(all_crops)):
            face.embedding = vector
    for face, crop, keep in zip(all_faces, all_crops, kept):
        if keep:
            face.crop = crop
    return results


def analyse(sources: Iterable[ImageSource], detector: MTCNNDetector | None, embedder: Embedder | None = None,
            options: FaceOptions = FaceOptions(), batch_size: int = 16, crops: bool = False,
            progress: Progress = None, decode_workers: int = 2) -> Iterator[ImageResult]:
    """Every input's faces, in input order: detected (or, without a detector, the input is one ready crop),
    selected as ``options`` say, aligned, and embedded when an embedder is given; one batch at a time.

    ``crops`` keeps each face's aligned crop on it; ``decode_workers`` threads decode the next batch.
    """
    task = FaceTask(options, ready=detector is None, crops=crops)
    for batch in decoded_batches(sources, batch_size, decode_workers):
        yield from finish(detect_decoded(batch, detector), [task] * len(batch), embedder)
        if progress:
            progress(len(batch))
