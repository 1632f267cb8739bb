"""The LFW job: raw images of the pairs -> detections -> aligned crops -> embeddings -> protocol.

Detections and embeddings are cached (keyed by everything they depend on), so scoring again
with other protocol options takes seconds. Images where no face is found fall back to a
centre crop with the same margin; they are counted and listed, never dropped.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from ..cache import atomic_path, home, options_key
from ..data.lfw import Pair, check_lfw_dir, images_in_pairs, read_pairs
from ..detect.align import AlignConfig, align_face, centre_box
from ..detect.mtcnn import Detection, MTCNNDetector, Selection
from ..embedder import Embedder
from ..errors import FacenetOfflineError
from ..pipeline import decoded_batches
from .verification import Distance, ProtocolOptions, VerificationResult, evaluate

log = logging.getLogger(__name__)


class Flip(str, Enum):
    NONE = "none"
    CONCAT = "concat"  # [e, e_flipped], renormalised
    SUM = "sum"  # e + e_flipped, renormalised


@dataclass(frozen=True)
class LfwOptions:
    """Everything the LFW job's result depends on, besides the model."""

    # Defaults: the best View 1 (development set) row of docs/lfw-variants.md.
    align: AlignConfig = AlignConfig()
    select: Selection = Selection.CENTRE_WEIGHTED
    flip: Flip = Flip.CONCAT
    protocol: ProtocolOptions = ProtocolOptions(distance=Distance.ANGULAR, subtract_mean=True)
    batch_size: int = 16

    def __post_init__(self):
        object.__setattr__(self, "select", Selection(self.select))
        object.__setattr__(self, "flip", Flip(self.flip))

    def to_dict(self) -> dict:
        return _plain(asdict(self))


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj.value if isinstance(obj, Enum) else obj


@dataclass
class Detections:
    """One chosen face per image (or the centre-crop fallback), for every image the pairs use."""

    paths: list[str]  # relative to the LFW root
    boxes: np.ndarray  # (N, 4)
    landmarks: np.ndarray  # (N, 5, 2), NaN where no face was found
    found: np.ndarray  # (N,) bool


@dataclass
class Timings:
    decode: float = 0.0
    detect: float = 0.0
    align: float = 0.0
    embed: float = 0.0
    protocol: float = 0.0
    wall: float = 0.0  # the whole run, start to finish (stages overlap, so it is less than their sum)
    cached: list[str] = field(default_factory=list)


@dataclass
class LfwRun:
    """A finished LFW evaluation."""

    pairs: list[Pair]
    result: VerificationResult
    detections: Detections
    options: LfwOptions
    model: dict
    timings: Timings
    images: int


def combine_flips(e: np.ndarray, e_flip: np.ndarray, flip: Flip) -> np.ndarray:
    """Embeddings with flip augmentation, renormalised to unit length so thresholds stay in [0, 4]."""
    if flip is Flip.NONE:
        return e
    out = np.concatenate([e, e_flip], axis=1) if flip is Flip.CONCAT else e + e_flip
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _timed_batches(paths: list[Path], batch_size: int, timings: Timings,
                   progress: Callable[[int], None] | None) -> Iterator[tuple[int, list[np.ndarray]]]:
    """(index of the first image, decoded images) per batch; time spent waiting for decoding is counted."""
    done = 0
    batches = decoded_batches(paths, batch_size)
    while True:
        start = time.perf_counter()
        batch = next(batches, None)
        timings.decode += time.perf_counter() - start
        if batch is None:
            return
        bad = [str(paths[done + k]) for k, d in enumerate(batch) if isinstance(d, str)]
        if bad:
            raise FacenetOfflineError(f"LFW images could not be read: {', '.join(bad)}")
        yield done, batch
        done += len(batch)
        if progress:
            progress(len(batch))


def _choose_face(det: Detection, select: Selection, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """(box, landmarks, found) of the selected face, or the centre-crop fallback."""
    face = det.select(select)
    if len(face):
        return face.boxes[0], face.landmarks[0], True
    return centre_box(image.shape[1], image.shape[0]), np.full((5, 2), np.nan, np.float32), False


def _process(root: Path, rel: list[str], detector: MTCNNDetector, known: Detections | None, embedder: Embedder | None,
             options: LfwOptions, flips: bool, timings: Timings, progress: Callable[[int], None] | None
             ) -> tuple[Detections, np.ndarray | None, np.ndarray | None]:
    """One streaming pass: decode (threads) -> detect (unless ``known``) -> align -> embed.

    Embedding of a batch runs in its own thread while the next batch is decoded and detected,
    so the two engines and the Python work between them overlap.
    """
    n, dim = len(rel), embedder.spec.embedding_dim if embedder else 0
    det = known or Detections(rel, np.zeros((n, 4), np.float32), np.full((n, 5, 2), np.nan, np.float32),
                              np.zeros(n, bool))
    emb = np.zeros((n, dim), np.float32) if embedder else None
    emb_flip = np.zeros((n, dim), np.float32) if embedder and flips else None

    def embed(done: int, crops: list[np.ndarray]) -> None:
        start = time.perf_counter()
        out = embedder.embed(crops + ([c[:, ::-1] for c in crops] if flips else []))
        emb[done:done + len(crops)] = out[:len(crops)]
        if flips:
            emb_flip[done:done + len(crops)] = out[len(crops):]
        timings.embed += time.perf_counter() - start

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed") as pool:
        pending = None
        for done, batch in _timed_batches([root / r for r in rel], options.batch_size, timings, progress):
            if known is None:
                start = time.perf_counter()
                for k, (img, found) in enumerate(zip(batch, detector.detect(batch))):
                    det.boxes[done + k], det.landmarks[done + k], det.found[done + k] = _choose_face(found, options.select, img)
                timings.detect += time.perf_counter() - start
            if embedder is None:
                continue
            start = time.perf_counter()
            crops = [align_face(img, det.boxes[done + k], det.landmarks[done + k] if det.found[done + k] else None,
                                options.align) for k, img in enumerate(batch)]
            timings.align += time.perf_counter() - start
            if pending is not None:
                pending.result()
            pending = pool.submit(embed, done, crops)
        if pending is not None:
            pending.result()
    return det, emb, emb_flip


def _cache_file(kind: str, key: dict) -> Path:
    return home() / "lfw" / f"{kind}-{options_key(key)}.npz"


def _save_npz(path: Path, **arrays) -> None:
    with atomic_path(path, ".npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def lfw_embeddings(root: Path, rel: list[str], embedder: Embedder, detector: MTCNNDetector, detector_key: dict,
                   options: LfwOptions, use_cache: bool = True, timings: Timings | None = None,
                   progress_factory: Callable[[int, str], object] | None = None
                   ) -> tuple[Detections, np.ndarray, np.ndarray | None]:
    """Detections, embeddings and (when flips are asked for) flipped-image embeddings of ``rel`` images."""
    timings = timings if timings is not None else Timings()
    flips = options.flip is not Flip.NONE
    det_key = {"detector": detector_key, "select": options.select.value, "images": options_key({"rel": rel})}
    emb_key = {"detections": det_key, "model": embedder.description, "align": _plain(asdict(options.align))}
    det_file = _cache_file("detections", det_key)
    det = emb = emb_flip = None
    if use_cache and det_file.is_file():
        with np.load(det_file) as z:
            det = Detections(rel, z["boxes"], z["landmarks"], z["found"])
        timings.cached.append("detections")
    for kind in (("embeddings-flip",) if flips else ("embeddings-flip", "embeddings")):
        if use_cache and det is not None and _cache_file(kind, emb_key).is_file():
            with np.load(_cache_file(kind, emb_key)) as z:
                emb, emb_flip = z["emb"], (z["emb_flip"] if "emb_flip" in z else None)
            timings.cached.append("embeddings")
            return det, emb, emb_flip
    with _bar(progress_factory, len(rel), "detect + embed" if det is None else "embed") as bar:
        fresh = det is None
        det, emb, emb_flip = _process(root, rel, detector, det, embedder, options, flips, timings, bar.update)
    if use_cache:
        if fresh:
            _save_npz(det_file, boxes=det.boxes, landmarks=det.landmarks, found=det.found)
        arrays = {"emb": emb, "emb_flip": emb_flip} if flips else {"emb": emb}
        _save_npz(_cache_file("embeddings-flip" if flips else "embeddings", emb_key), **arrays)
    return det, emb, emb_flip


def run_lfw(embedder: Embedder, detector: MTCNNDetector, detector_key: dict, lfw_dir: str | None = None,
            pairs_file: str | None = None, options: LfwOptions = LfwOptions(), use_cache: bool = True,
            progress_factory: Callable[[int, str], object] | None = None, folds: list[int] | None = None) -> LfwRun:
    """Evaluate ``embedder`` on LFW pairs; ``folds`` restricts to some folds (0-based) of the pairs file."""
    started = time.perf_counter()
    root = check_lfw_dir(lfw_dir)
    pairs = read_pairs(pairs_file or root / "pairs.txt")
    if folds is not None:
        pairs = [p for p in pairs if p.fold in set(folds)]
    rel = [p.relative_to(root).as_posix() for p in images_in_pairs(root, pairs)]
    timings = Timings()
    det, emb, emb_flip = lfw_embeddings(root, rel, embedder, detector, detector_key, options, use_cache, timings,
                                        progress_factory)
    start = time.perf_counter()
    result = score_pairs(root, pairs, rel, combine_flips(emb, emb_flip, options.flip), options.protocol)
    timings.protocol = time.perf_counter() - start
    timings.wall = time.perf_counter() - started
    return LfwRun(pairs, result, det, options, dict(embedder.description), timings, len(rel))


def score_pairs(root: Path, pairs: list[Pair], rel: list[str], emb: np.ndarray,
                protocol: ProtocolOptions) -> VerificationResult:
    """Run the protocol on the pairs, looking each image's embedding up by its path."""
    from ..data.lfw import image_path

    index = {r: i for i, r in enumerate(rel)}
    i1 = [index[image_path(root, p.name1, p.num1).relative_to(root).as_posix()] for p in pairs]
    i2 = [index[image_path(root, p.name2, p.num2).relative_to(root).as_posix()] for p in pairs]
    same = np.array([p.same for p in pairs])
    return evaluate(emb[i1], emb[i2], same, protocol, np.array([p.fold for p in pairs]))


class _NullBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n: int) -> None:
        pass


def _bar(factory, total: int, desc: str):
    return factory(total, desc) if factory else _NullBar()
