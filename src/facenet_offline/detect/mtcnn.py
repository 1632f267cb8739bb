"""MTCNN face detection, batched across images: PNet over pyramid levels (a lone photo's levels
packed into one input, ``packing``), inputs of one shape together; then every RNet and ONet
candidate of the whole batch together, in runs of at most 256 rows padded to a multiple of 32
(below 32, to an even count).

Engines only return raw arrays; all box math is in ``boxes``. Results are ``Detection`` objects
with empty arrays when there is no face, never None.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..choices import Choice
from ..data.batches import bounded_runs
from ..data.tensors import pad_rows, to_nchw
from ..runtime.base import Backend
from ..weights.registry import MTCNN, DetectorSpec
from . import boxes as bx
from .packing import Layout, pack

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MTCNNConfig:
    """The algorithm's constants (defaults from the paper and the reference) and batching limits."""

    min_face: float = 20.0
    factor: float = 0.709
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    nms_pnet_scale: float = 0.5  # within one scale
    nms_pnet_image: float = 0.7  # across scales
    nms_rnet: float = 0.7
    nms_onet: float = 0.7  # with the "min" overlap
    # Rows per RNet/ONet run: as fast as the NPU reference's 2,000, and with the padding below each net
    # meets at most 23 shapes, so the runtimes' per-shape memory stays bounded (docs/engine-choices.md).
    rnet_batch: int = 256
    onet_batch: int = 256
    pnet_batch_pixels: int = 1 << 23  # bound on one PNet run's input size
    # A photo whose size no other photo in the batch shares has its pyramid levels of at most this
    # many pixels packed into one input for ``packed_pnet`` (0: never): the same detections with one
    # shape change per photo; larger levels gain nothing and cost memory (docs/engine-choices.md).
    pnet_pack_pixels: int = 1 << 16
    # Images detected together hold at most this many pixels (one image over it runs alone): a stage's
    # working memory grows with everything in flight, and smaller runs cost no speed (docs/engine-choices.md).
    batch_pixels: int = 1 << 25
    batch_bucket: int = 32  # RNet/ONet runs are padded to a multiple of this many rows, runs of fewer
    # to a multiple of ``small_bucket``, as ONet's time grows with every row.
    small_bucket: int = 2
    # Levels and crops come from one float32 copy of an image of at most this many pixels (faster,
    # and equal to the uint8 result once rounded); larger photos stay uint8, as their float copy is large.
    float_canvas_pixels: int = 1 << 22

    def __post_init__(self):
        if min(self.rnet_batch, self.onet_batch, self.batch_bucket, self.small_bucket, self.pnet_batch_pixels,
               self.batch_pixels) < 1:
            raise ValueError("rnet_batch, onet_batch, batch_bucket, small_bucket, pnet_batch_pixels and batch_pixels "
                             "must be at least 1")
        if min(self.float_canvas_pixels, self.pnet_pack_pixels) < 0:
            raise ValueError("float_canvas_pixels and pnet_pack_pixels must be at least 0")
        if not all(0 <= t <= 1 for t in self.thresholds):
            raise ValueError(f"thresholds must lie in [0, 1], got {self.thresholds}")


class Selection(Choice):
    """Which face of an image to keep when one is wanted."""

    LARGEST = "largest"
    PROBABLE = "probable"
    CENTRE_WEIGHTED = "centre-weighted"  # large and near the centre (facenet-pytorch's center_weighted_size)
    # The face whose box centre is nearest the image centre: LFW (and sets cut like it) centres every
    # image on its labelled subject, so a larger face beside the subject is someone else.
    NEAREST_CENTRE = "nearest-centre"
    ALL = "all"


@dataclass
class Detection:
    """The faces found in one image: boxes (x1, y1, x2, y2), scores, 5 landmarks (x, y) each."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((0, 5, 2), np.float32))
    image_size: tuple[int, int] = (0, 0)  # height, width

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, index: np.ndarray) -> Detection:
        return Detection(self.boxes[index], self.scores[index], self.landmarks[index], self.image_size)

    def unscaled(self, scale: tuple[float, float], size: tuple[int, int]) -> Detection:
        """This detection in the coordinates of the original image, of ``size``, that was shrunk by ``scale`` (x, y)."""
        fx, fy = scale
        factors = np.array([fx, fy], np.float32)
        return Detection((self.boxes.reshape(-1, 2, 2) / factors).reshape(-1, 4).astype(np.float32), self.scores,
                         (self.landmarks / factors).astype(np.float32), tuple(size))

    def select(self, how: Selection | str = Selection.LARGEST) -> Detection:
        """At most one face (or all, sorted by score), chosen as ``how`` says."""
        return self.take(self.chosen(how))

    def chosen(self, how: Selection | str = Selection.LARGEST) -> np.ndarray:
        """Indices of the faces ``select`` keeps: every face by score for ``all``, else at most one."""
        how = Selection.parse(how)
        if len(self) == 0 or how is Selection.ALL:
            return np.argsort(-self.scores, kind="stable")
        w, h = self.boxes[:, 2] - self.boxes[:, 0], self.boxes[:, 3] - self.boxes[:, 1]
        if how is Selection.PROBABLE:
            key = self.scores
        elif how is Selection.LARGEST:
            key = w * h
        else:
            centre = np.array(self.image_size[::-1], np.float32) / 2
            offset = np.sum(((self.boxes[:, :2] + self.boxes[:, 2:]) / 2 - centre) ** 2, axis=1)
            key = -offset if how is Selection.NEAREST_CENTRE else w * h - 2.0 * offset
        return np.array([int(np.argmax(key))])

    def at_least(self, side: float) -> Detection:
        """The faces whose box is at least ``side`` pixels on its longer side."""
        w, h = self.boxes[:, 2] - self.boxes[:, 0], self.boxes[:, 3] - self.boxes[:, 1]
        return self.take(np.flatnonzero(np.maximum(w, h) >= side))


@dataclass
class _Candidates:
    """Candidate boxes of a whole batch, with the image each belongs to, sorted by image.

    PNet's candidates are sorted by image, and every later step keeps a sorted subset.
    """

    boxes: np.ndarray
    scores: np.ndarray
    image: np.ndarray

    def take(self, index: np.ndarray) -> _Candidates:
        return _Candidates(self.boxes[index], self.scores[index], self.image[index])


def _empty() -> _Candidates:
    return _Candidates(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


def pixel_bounded(images: Sequence[np.ndarray], budget: int) -> list[Sequence[np.ndarray]]:
    """Consecutive runs of ``images`` holding at most ``budget`` pixels each (an image over it runs alone)."""
    return [images[a:b] for a, b in bounded_runs((img.shape[0] * img.shape[1] for img in images), budget)]


class MTCNNDetector:
    """Runs MTCNN over batches of uint8 RGB images of any sizes with three backends.

    ``packed_pnet``, if given, runs ``PackedPNet`` (four input channels) on packed pyramids
    (``MTCNNConfig.pnet_pack_pixels``); ``pnet`` runs every level that is not packed, as the packed
    net is the slower of the two on a single level.
    """

    def __init__(self, pnet: Backend, rnet: Backend, onet: Backend, config: MTCNNConfig = MTCNNConfig(),
                 spec: DetectorSpec = MTCNN, threads: int = 2, packed_pnet: Backend | None = None):
        self.pnet, self.rnet, self.onet, self.config, self.spec = pnet, rnet, onet, config, spec
        self.packed_pnet = packed_pnet
        self._lock = threading.Lock()
        self._threads = max(1, threads)
        # The calling thread works a lane itself (``_each``), so the pool needs one thread fewer.
        self._pool = ThreadPoolExecutor(max_workers=max(1, self._threads - 1), thread_name_prefix="mtcnn")

    def detect(self, images: Sequence[np.ndarray]) -> list[Detection]:
        """One ``Detection`` per image."""
        for i, img in enumerate(images):
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise ValueError(f"image {i}: expected H x W x 3 uint8 RGB, got {img.shape} {img.dtype}")
        out: list[Detection] = []
        with self._lock:  # one run at a time: the runtimes' requests and the lane pool are not re-entrant
            for part in pixel_bounded(images, self.config.batch_pixels):
                cands = self._stage_pnet(part)
                cands = self._stage_rnet(part, cands)
                out += self._stage_onet(part, cands)
        return out

    def _pnet_plan(self, images: Sequence[np.ndarray]) -> list[tuple[int, Layout, tuple[tuple[int, float], ...]]]:
        """PNet inputs for ``images``: (image, layout, (level, scale) of each place), in image order.

        An image whose size no other image here shares has its levels of at most
        ``pnet_pack_pixels`` pixels packed into one input; larger levels (a packed 12 MP pyramid
        would be one 5 M pixel input), and the levels of images that share a size, run alone: levels
        of one shape from several images already run as one batch, and packing them would only add
        the gaps' pixels.
        """
        c = self.config
        sizes = Counter(img.shape[:2] for img in images)
        plan = []
        for i, img in enumerate(images):
            h, w = img.shape[:2]
            levels = [(k, s, bx.scaled_size(h, w, s)) for k, s in enumerate(bx.pyramid_scales(h, w, c.min_face, c.factor))]
            limit = c.pnet_pack_pixels if self.packed_pnet is not None and sizes[h, w] == 1 else 0
            packed = [(k, s, size) for k, s, size in levels if size[0] * size[1] <= limit]
            plan += [(i, pack([size]), ((k, s),)) for k, s, size in levels if size[0] * size[1] > limit]
            if packed:
                plan.append((i, pack([size for _, _, size in packed]), tuple((k, s) for k, s, _ in packed)))
        return plan

    def _stage_pnet(self, images: Sequence[np.ndarray]) -> _Candidates:
        """PNet over every pyramid level of ``images``, inputs of one shape batched together.

        Worker threads make the levels and standardise them straight into the net's input, a wave
        of at most ``pnet_batch_pixels`` input pixels at a time; the main thread only runs the net
        and reads its maps. Candidates come out in the same order whatever the batch or packing.
        """
        c = self.config
        shapes: dict[tuple[bool, tuple[int, int]], list] = defaultdict(list)
        for item in self._pnet_plan(images):
            shapes[item[1].packed, item[1].shape].append(item)
        runs = []  # ((packed, (height, width)), members (image, layout, levels)): one PNet run
        for (packed, (h, w)), members in shapes.items():
            step = max(1, c.pnet_batch_pixels // (h * w))
            runs += [((packed, (h, w)), members[a:a + step]) for a in range(0, len(members), step)]
        parts: list[tuple[np.ndarray, ...]] = []  # boxes, scores, regressions, image, (image, level) group
        for a, b in bounded_runs((len(m) * h * w for (_, (h, w)), m in runs), c.pnet_batch_pixels):
            for ((packed, _), members), batch in zip(runs[a:b], self._pnet_inputs(images, runs[a:b])):
                reg, prob = (self.packed_pnet if packed else self.pnet).run(batch)
                by_layout: dict[Layout, list[int]] = defaultdict(list)
                for row, (_, layout, _) in enumerate(members):
                    by_layout[layout].append(row)
                for layout, rows in by_layout.items():
                    image = np.array([members[r][0] for r in rows])
                    for place, (ys, xs) in enumerate(layout.cells(k) for k in range(len(layout.places))):
                        level, scale = (np.array(v) for v in zip(*(members[r][2][place] for r in rows)))
                        boxes, scores, regs, k = bx.pnet_candidates(prob[rows, 1, ys, xs], reg[rows, :, ys, xs],
                                                                    scale, c.thresholds[0])
                        parts.append((boxes, scores, regs, image[k], image[k] * 1000 + level[k]))
        if not parts:
            return _empty()
        boxes, scores, reg, image, group = (np.concatenate(a) for a in zip(*parts))
        order = np.lexsort((group, image))  # by image, then scale: the same order whatever the batch
        boxes, scores, reg, image, group = boxes[order], scores[order], reg[order], image[order], group[order]
        keep = bx.grouped_nms(boxes, scores, group, c.nms_pnet_scale)
        keep = keep[bx.grouped_nms(boxes[keep], scores[keep], image[keep], c.nms_pnet_image)]
        cands = _Candidates(boxes[keep], scores[keep], image[keep])
        cands.boxes = np.fix(bx.square(bx.regress(cands.boxes, reg[keep], inclusive=False)))
        return cands

    def _pnet_inputs(self, images: Sequence[np.ndarray], runs: list) -> list[np.ndarray]:
        """The standardised NCHW input of each run, each level shrunk from its full image by area averaging.

        Shrinking each level from the one above would be faster, but it moves the final boxes away from
        the reference ports (docs/engine-choices.md).
        Packed inputs get ``PackedPNet``'s fourth channel, the layout's gaps, and zeros between levels.
        """
        batches = [np.zeros((len(members), 4, h, w), np.float32) if packed else np.empty((len(members), 3, h, w), np.float32)
                   for (packed, (h, w)), members in runs]
        slots: dict[int, list[tuple[np.ndarray, tuple[int, int]]]] = defaultdict(list)  # image -> (level's input, size)
        for batch, ((packed, _), members) in zip(batches, runs):
            for row, (i, layout, _) in zip(batch, members):
                if packed:
                    row[3] = layout.gaps()
                for y, x, h, w in layout.places:
                    slots[i].append((row[:3, y:y + h, x:x + w], (w, h)))

        def fill(i: int) -> None:  # OpenCV and numpy release the GIL
            # OpenCV's area resize of a float32 copy, rounded, gives exactly its uint8 result, for less.
            img = self._float_if_small(images[i])
            for place, size in slots[i]:
                level = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
                if level.dtype == np.float32:
                    np.rint(level, out=level)
                to_nchw(level[None], self.spec.mean, self.spec.std, out=place[None])

        self._each(fill, list(slots))
        return batches

    def _float_if_small(self, image: np.ndarray) -> np.ndarray:
        """A float32 copy of ``image`` if it holds at most ``float_canvas_pixels`` pixels, else ``image`` itself."""
        if image.shape[0] * image.shape[1] <= self.config.float_canvas_pixels:
            return image.astype(np.float32)
        return image

    def _each(self, work, tasks: list) -> None:
        """``work`` on every task, in one lane per thread: the calling thread takes every
        ``threads``-th task and a worker each of the other lanes: one submission per lane, not per task,
        which is faster (docs/engine-choices.md)."""
        lanes = min(len(tasks), self._threads)
        if lanes == 0:
            return

        def lane(k: int) -> None:
            for task in tasks[k::lanes]:
                work(task)

        rest = [self._pool.submit(lane, k) for k in range(1, lanes)]
        lane(0)
        for future in rest:
            future.result()

    def _run_chunked(self, backend: Backend, patches: np.ndarray, chunk: int) -> tuple[np.ndarray, ...]:
        """Run in chunks of at most ``chunk``, each padded as ``pad_rows`` does to a few row counts.

        The candidate count differs every batch; padding bounds the shapes the runtimes see (``pad_rows``).
        """
        c, outs = self.config, []
        for s in range(0, len(patches), chunk):
            part = patches[s:s + chunk]
            padded = pad_rows(part, c.batch_bucket, chunk, c.small_bucket)
            outs.append(tuple(o[:len(part)] for o in backend.run(padded)))
        return tuple(np.concatenate(parts) for parts in zip(*outs))

    def _patches(self, images: Sequence[np.ndarray], cands: _Candidates, size: int) -> np.ndarray:
        """Standardised NCHW crops of every candidate, zero-padded and resized to ``size`` in float (no uint8 rounding).

        Worker threads crop an image each (OpenCV and numpy release the GIL) and write its rows of
        the net input in place; candidates are sorted by image, so an image's rows are one slice.
        """
        out = np.empty((len(cands.scores), 3, size, size), np.float32)
        bounds = np.searchsorted(cands.image, np.arange(len(images) + 1))

        def crop_image(i: int) -> None:
            a, b = bounds[i], bounds[i + 1]
            img = images[i]
            pixels = bx.pixel_boxes(cands.boxes[a:b])
            pad = bx.border_needed(pixels, img.shape[1], img.shape[0])
            # Padded in uint8 (a quarter of float32's memory on a large photo); a crop converted to
            # float gives exactly what a float canvas would.
            canvas = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0) if pad else img
            canvas = self._float_if_small(canvas)
            whole = canvas.dtype == np.float32
            crops = np.empty((b - a, size, size, 3), np.float32)
            for crop, (x1, y1, x2, y2) in zip(crops, (pixels + pad).tolist()):
                part = canvas[y1:y2 + 1, x1:x2 + 1]
                cv2.resize(part if whole else part.astype(np.float32), (size, size), dst=crop,
                           interpolation=cv2.INTER_AREA)
            to_nchw(crops, self.spec.mean, self.spec.std, out=out[a:b])

        self._each(crop_image, [i for i in range(len(images)) if bounds[i + 1] > bounds[i]])
        return out

    def _stage_rnet(self, images: Sequence[np.ndarray], cands: _Candidates) -> _Candidates:
        c = self.config
        if len(cands.scores) == 0:
            return cands
        reg, prob = self._run_chunked(self.rnet, self._patches(images, cands, 24), c.rnet_batch)
        passed = np.flatnonzero(prob[:, 1] > c.thresholds[1])
        cands, reg = cands.take(passed), reg[passed]
        cands.scores = prob[passed, 1]
        keep = bx.grouped_nms(cands.boxes, cands.scores, cands.image, c.nms_rnet)
        cands, reg = cands.take(keep), reg[keep]
        cands.boxes = bx.square(bx.regress(cands.boxes, reg))
        return cands

    def _stage_onet(self, images: Sequence[np.ndarray], cands: _Candidates) -> list[Detection]:
        c = self.config
        sizes = [img.shape[:2] for img in images]
        if len(cands.scores) == 0:
            return [Detection(image_size=s) for s in sizes]
        cands.boxes = np.fix(cands.boxes)
        reg, marks, prob = self._run_chunked(self.onet, self._patches(images, cands, 48), c.onet_batch)
        passed = np.flatnonzero(prob[:, 1] > c.thresholds[2])
        cands, reg, marks = cands.take(passed), reg[passed], marks[passed]
        cands.scores = prob[passed, 1]
        landmarks = bx.landmarks_from_offsets(cands.boxes, marks)
        cands.boxes = bx.regress(cands.boxes, reg)
        keep = bx.grouped_nms(cands.boxes, cands.scores, cands.image, c.nms_onet, bx.Overlap.MIN)
        cands, landmarks = cands.take(keep), landmarks[keep]
        out = []
        for i, size in enumerate(sizes):
            rows = np.flatnonzero(cands.image == i)
            out.append(Detection(cands.boxes[rows].astype(np.float32), cands.scores[rows].astype(np.float32),
                                 landmarks[rows], size))
        return out
