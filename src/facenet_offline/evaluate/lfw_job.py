"""The LFW job: raw images of the pairs -> detections -> aligned crops -> embeddings -> protocol.

Detections and embeddings are cached in chunks (keyed by everything they depend on), so scoring
again with other protocol options takes seconds and an interrupted run resumes where it stopped. Images where no face is found fall back to a
centre crop with the same margin; they are counted and listed, never dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from ..cache import HOME_ENV, home, options_key
from ..chunk_store import ChunkStore, is_complete, run_manifest
from ..data.images import as_source
from ..data.lfw_dataset import (
    Pair,
    check_lfw_dir,
    image_path,
    images_folder,
    images_identity,
    images_in_pairs,
    pairs_path,
    read_pairs,
)
from ..data.tensors import resize_face
from ..detect.align import AlignConfig, align_face
from ..detect.mtcnn import MTCNNDetector, Selection
from ..embedder import Embedder
from ..errors import FacenetOfflineError, ImageError
from ..face_loop import decoded_batches, face_or_centre, progress_bar
from .verification import Distance, ProtocolOptions, VerificationResult, evaluate

log = logging.getLogger(__name__)


class Flip(str, Enum):
    NONE = "none"
    CONCAT = "concat"  # [e, e_flipped], renormalised
    SUM = "sum"  # e + e_flipped, renormalised


@dataclass(frozen=True)
class LfwOptions:
    """Everything the LFW job's result depends on, besides the model."""

    # Defaults: the best View 1 (development set) row of docs/lfw-variants.md, with the face nearest
    # the centre, as LFW centres every image on its subject (docs/lfw.md, "Face selection").
    align: AlignConfig = AlignConfig()
    select: Selection = Selection.NEAREST_CENTRE
    flip: Flip = Flip.SUM
    protocol: ProtocolOptions = ProtocolOptions(distance=Distance.ANGULAR, subtract_mean=True)
    batch_size: int = 16
    # The images are ready face crops (e.g. LFW aligned by davidsandberg's align_dataset_mtcnn.py, as
    # the GPU reference scores it): no detection, each image embedded whole; pairs with a missing
    # image (that script skips photos where it found no face) are left out and counted.
    aligned: bool = False

    def __post_init__(self):
        object.__setattr__(self, "select", Selection(self.select))
        object.__setattr__(self, "flip", Flip(self.flip))

    def to_dict(self) -> dict:
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> LfwOptions:
        return cls(align=AlignConfig(**d["align"]), select=d["select"], flip=d["flip"],
                   protocol=ProtocolOptions(**d["protocol"]), batch_size=d["batch_size"], aligned=d.get("aligned", False))


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
    skipped_pairs: int = 0  # aligned crops only: pairs left out because an image is missing


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
    batches = decoded_batches([as_source(p) for p in paths], batch_size, max_side=None)
    while True:
        start = time.perf_counter()
        batch = next(batches, None)
        timings.decode += time.perf_counter() - start
        if batch is None:
            return
        bad = [str(d) for _, d in batch if isinstance(d, ImageError)]
        if bad:
            raise FacenetOfflineError("LFW images could not be read (check the LFW copy):\n" + "\n".join(bad))
        yield done, [d.pixels for _, d in batch]
        done += len(batch)
        if progress:
            progress(len(batch))


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
            if options.aligned:
                for k, img in enumerate(batch):
                    det.boxes[done + k], det.found[done + k] = (0, 0, img.shape[1], img.shape[0]), True
            elif known is None:
                start = time.perf_counter()
                for k, (img, found) in enumerate(zip(batch, detector.detect(batch))):
                    det.boxes[done + k], det.landmarks[done + k], det.found[done + k] = face_or_centre(found, options.select, img)
                timings.detect += time.perf_counter() - start
            if embedder is None:
                continue
            start = time.perf_counter()
            crops = [resize_face(img, options.align.image_size) if options.aligned else
                     align_face(img, det.boxes[done + k], det.landmarks[done + k] if det.found[done + k] else None,
                                options.align) for k, img in enumerate(batch)]
            timings.align += time.perf_counter() - start
            if pending is not None:
                pending.result()
            pending = pool.submit(embed, done, crops)
        if pending is not None:
            pending.result()
    return det, emb, emb_flip


CACHE_CHUNK = 1024  # images per cached chunk: an interrupted run loses at most this much work


def _store_dir(kind: str, key: dict) -> Path:
    return home() / "lfw" / f"{kind}-{options_key(key)}"


CACHE_FULL = (f"the finished chunks are kept in the cache; free space there (or set {HOME_ENV}=DIR to keep the "
              "cache on another disk) and run it again to continue")


def _store(kind: str, key: dict, rel: list[str]) -> ChunkStore:
    """A cache entry of ``kind``, in chunks: an interrupted run picks up where it stopped."""
    return ChunkStore.open(_store_dir(kind, key), run_manifest(kind, key, rel, CACHE_CHUNK), ".npz", resume=True,
                           on_full=CACHE_FULL)


def _save_npz(path: Path, **arrays) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **{k: v for k, v in arrays.items() if v is not None})


def _load_chunks(store: ChunkStore) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    for path in store.files():
        with np.load(path) as z:
            for name in z.files:
                parts.setdefault(name, []).append(z[name])
    return {name: np.concatenate(arrays) for name, arrays in parts.items()}


def lfw_embeddings(root: Path, rel: list[str], embedder: Embedder, detector: MTCNNDetector, detector_key: dict,
                   options: LfwOptions, use_cache: bool = True, timings: Timings | None = None,
                   progress_factory: Callable[[int, str], object] | None = None
                   ) -> tuple[Detections, np.ndarray, np.ndarray | None]:
    """Detections, embeddings and (when flips are asked for) flipped-image embeddings of ``rel`` images.

    With the cache, results are kept per chunk of images under keys naming everything they depend
    on, so a killed run resumes by itself and other protocol options re-score in seconds.
    """
    timings = timings if timings is not None else Timings()
    flips = options.flip is not Flip.NONE
    if not use_cache:
        with progress_bar(progress_factory, len(rel), "detect + embed") as bar:
            return _process(root, rel, detector, None, embedder, options, flips, timings, bar.update)
    det_key, emb_key = _cache_keys(root, rel, embedder, detector_key, options)
    # A complete entry with flipped-image embeddings also serves a run without flips.
    with_flips = flips or is_complete(_store_dir("embeddings-flip", emb_key), len(rel), CACHE_CHUNK, ".npz")
    with _store("detections", det_key, rel) as det_store, \
            _store("embeddings-flip" if with_flips else "embeddings", emb_key, rel) as emb_store:
        return _fill(root, rel, det_store, emb_store, embedder, detector, options, flips, timings, progress_factory)


def _cache_keys(root: Path, rel: list[str], embedder: Embedder, detector_key: dict,
                options: LfwOptions) -> tuple[dict, dict]:
    """The keys of the cached detections and embeddings of ``rel``: everything their results depend on.

    Keyed by what the images are (location, size, mtime), not only their names: two LFW copies share names.
    """
    images = {"names": options_key({"rel": rel}), "identity": images_identity([root / r for r in rel])}
    if options.aligned:
        det_key = {"aligned": True, "images": images}
        return det_key, {"detections": det_key, "model": embedder.description, "size": options.align.image_size}
    det_key = {"detector": detector_key, "select": options.select.value, "images": images}
    return det_key, {"detections": det_key, "model": embedder.description, "align": _plain(asdict(options.align))}


def is_cached(root: Path, rel: list[str], embedder: Embedder, detector_key: dict, options: LfwOptions) -> bool:
    """Whether the cache holds every detection and embedding of ``rel`` with these options (no work to do)."""
    det_key, emb_key = _cache_keys(root, rel, embedder, detector_key, options)
    kinds = ("embeddings-flip",) if options.flip is not Flip.NONE else ("embeddings-flip", "embeddings")
    return is_complete(_store_dir("detections", det_key), len(rel), CACHE_CHUNK, ".npz") and any(
        is_complete(_store_dir(kind, emb_key), len(rel), CACHE_CHUNK, ".npz") for kind in kinds)


def _fill(root: Path, rel: list[str], det_store: ChunkStore, emb_store: ChunkStore, embedder: Embedder,
          detector: MTCNNDetector, options: LfwOptions, flips: bool, timings: Timings,
          progress_factory) -> tuple[Detections, np.ndarray, np.ndarray | None]:
    """Compute the chunks the cache lacks, then read the whole result from it."""
    det_done, emb_done = set(det_store.finished()), set(emb_store.finished())
    todo = [i for i in range(emb_store.count) if i not in emb_done]
    if todo:
        remaining = sum(len(rel[i * CACHE_CHUNK:(i + 1) * CACHE_CHUNK]) for i in todo)
        desc = "embed" if set(todo) <= det_done else "detect + embed"
        with progress_bar(progress_factory, remaining, desc) as bar:
            for index in todo:
                part = rel[index * CACHE_CHUNK:(index + 1) * CACHE_CHUNK]
                known = None
                if index in det_done:
                    with np.load(det_store.path(index)) as z:
                        known = Detections(part, z["boxes"], z["landmarks"], z["found"])
                det, emb, emb_flip = _process(root, part, detector, known, embedder, options, flips, timings,
                                              bar.update)
                if known is None:
                    det_store.write(index, lambda tmp: _save_npz(tmp, boxes=det.boxes, landmarks=det.landmarks,
                                                                 found=det.found))
                emb_store.write(index, lambda tmp: _save_npz(tmp, emb=emb, emb_flip=emb_flip))
    timings.cached += [name for name, done in (("detections", det_done), ("embeddings", emb_done))
                       if len(done) == emb_store.count]
    d, e = _load_chunks(det_store), _load_chunks(emb_store)
    return Detections(rel, d["boxes"], d["landmarks"], d["found"]), e["emb"], e.get("emb_flip") if flips else None


def lfw_inputs(lfw_dir: str | None = None, pairs_file: str | None = None, folds: list[int] | None = None,
               skip_missing: bool = False) -> tuple[Path, list[Pair], list[str]]:
    """(LFW root, the pairs to score, every image they use relative to the root, in order).

    ``skip_missing`` leaves out pairs with an image that is not there (aligned crops only).
    """
    root = check_lfw_dir(lfw_dir)
    pairs = read_pairs(pairs_path(root, pairs_file))
    if folds is not None:
        pairs = [p for p in pairs if p.fold in set(folds)]
    if skip_missing:
        pairs = [p for p in pairs if image_path(root, p.name1, p.num1).is_file()
                 and image_path(root, p.name2, p.num2).is_file()]
        if not pairs:
            raise FacenetOfflineError(f"{root}: none of the pairs' images are there; check lfw_dir= and pairs=.")
    images = images_in_pairs(root, pairs)
    missing = [p for p in images if not p.is_file()]
    if missing:
        listed = "\n  ".join(str(p) for p in missing[:10]) + (f"\n  ... and {len(missing) - 10} more"
                                                              if len(missing) > 10 else "")
        raise FacenetOfflineError(f"{len(missing)} image(s) the pairs use are not in {images_folder(root)}:\n  "
                                  f"{listed}\nCheck lfw_dir= and pairs= (each pair names <Name> <number>, looked "
                                  "for as <Name>/<Name>_NNNN.<any extension>); ready crops that left some out are "
                                  "scored with aligned=True, which skips those pairs.")
    return root, pairs, [p.relative_to(root).as_posix() for p in images]


def run_lfw(lfw_dir: str | None, embedder: Embedder, detector: MTCNNDetector | None, detector_key: dict,
            pairs_file: str | None = None, options: LfwOptions = LfwOptions(), use_cache: bool = True,
            progress_factory: Callable[[int, str], object] | None = None, folds: list[int] | None = None) -> LfwRun:
    """Evaluate ``embedder`` on the LFW pairs at ``lfw_dir`` (None: the default copy); ``folds`` restricts to
    some folds (0-based) of the pairs file. ``detector`` is None for ready crops (``options.aligned``)."""
    started = time.perf_counter()
    root, pairs, rel = lfw_inputs(lfw_dir, pairs_file, folds, skip_missing=options.aligned)
    everything = lfw_inputs(lfw_dir, pairs_file, skip_missing=options.aligned)[2] if folds is not None else rel
    total = sum(folds is None or p.fold in folds for p in read_pairs(pairs_path(root, pairs_file)))
    timings = Timings()
    if use_cache and everything != rel and is_cached(root, everything, embedder, detector_key, options):
        # A run over the whole pairs file is cached: some of its folds need no work.
        det, emb, emb_flip = lfw_embeddings(root, everything, embedder, detector, detector_key, options, True,
                                            timings, progress_factory)
        where = {r: i for i, r in enumerate(everything)}
        rows = np.array([where[r] for r in rel])
        det = Detections(rel, det.boxes[rows], det.landmarks[rows], det.found[rows])
        emb, emb_flip = emb[rows], None if emb_flip is None else emb_flip[rows]
    else:
        det, emb, emb_flip = lfw_embeddings(root, rel, embedder, detector, detector_key, options, use_cache, timings,
                                            progress_factory)
    run = finish_run(root, pairs, rel, det, emb, emb_flip, options, dict(embedder.description), timings, started)
    run.skipped_pairs = total - len(pairs)
    return run


def finish_run(root: Path, pairs: list[Pair], rel: list[str], det: Detections, emb: np.ndarray,
               emb_flip: np.ndarray | None, options: LfwOptions, model: dict, timings: Timings,
               started: float) -> LfwRun:
    """Score the pairs on finished embeddings: the end of both the direct job and the .bin workflow."""
    start = time.perf_counter()
    result = score_pairs(root, pairs, rel, combine_flips(emb, emb_flip, options.flip), options.protocol)
    timings.protocol = time.perf_counter() - start
    timings.wall = time.perf_counter() - started
    return LfwRun(pairs, result, det, options, model, timings, len(rel))


def score_pairs(root: Path, pairs: list[Pair], rel: list[str], emb: np.ndarray,
                protocol: ProtocolOptions) -> VerificationResult:
    """Run the protocol on the pairs, looking each image's embedding up by its path."""
    index = {r: i for i, r in enumerate(rel)}
    i1 = [index[image_path(root, p.name1, p.num1).relative_to(root).as_posix()] for p in pairs]
    i2 = [index[image_path(root, p.name2, p.num2).relative_to(root).as_posix()] for p in pairs]
    same = np.array([p.same for p in pairs])
    return evaluate(emb[i1], emb[i2], same, protocol, np.array([p.fold for p in pairs]))
