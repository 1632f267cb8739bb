"""Box math of MTCNN in pure numpy: candidates, non-maximum suppression, regression, squaring, padding.

Boxes are float arrays of shape (N, 4) holding x1, y1, x2, y2 in image pixels. When candidates
are cropped for RNet and ONet, an integer box covers the columns x1-1..x2-1 and rows y1-1..y2-1
(zero-based, inclusive): the 1-based convention of the MATLAB original that the nets were
trained with and that the reference ports (davidsandberg, ipazc, facenet-pytorch) keep.
"""

from __future__ import annotations

from enum import Enum

import cv2
import numpy as np


class Overlap(str, Enum):
    UNION = "union"  # intersection over union
    MIN = "min"  # intersection over the smaller box (MTCNN's last stage)


def pyramid_scales(height: int, width: int, min_face: float = 20.0, factor: float = 0.709,
                   cell: int = 12) -> list[float]:
    """Scales at which a ``min_face`` face becomes PNet's 12-pixel cell, down to a 12-pixel image."""
    if min_face <= 0 or not 0 < factor < 1:
        raise ValueError(f"need min_face > 0 and 0 < factor < 1, got {min_face}, {factor}")
    m = cell / min_face
    side = min(height, width) * m
    scales = []
    while side >= cell:
        scales.append(m * factor ** len(scales))
        side *= factor
    return scales


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    return int(np.ceil(height * scale)), int(np.ceil(width * scale))


def pnet_candidates(prob: np.ndarray, reg: np.ndarray, scales: np.ndarray, threshold: float,
                    stride: int = 2, cell: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Boxes, scores, regressions and map index of the PNet cells whose face probability reaches ``threshold``.

    ``prob`` holds K face-probability maps (K, H, W) of one PNet run, ``reg`` their (K, 4, H, W)
    regression maps and ``scales`` the K scales they were made at (images of different sizes can
    share a level's shape at different scales). Each cell maps back to a ``cell``-pixel window at
    ``stride`` in its scaled image. Cells come map by map, row-major within a map: one call per
    run instead of one per map keeps this off the critical path (a batch of 64 LFW photos has 512 maps).
    """
    index, rows, cols = np.nonzero(prob >= threshold)
    scores = prob[index, rows, cols].astype(np.float32)
    regs = reg[index, :, rows, cols].astype(np.float32)
    origin = np.stack([cols, rows], axis=1).astype(np.float64)
    scale = np.asarray(scales, np.float64)[index][:, None]
    top_left = np.floor((stride * origin + 1) / scale)
    bottom_right = np.floor((stride * origin + cell) / scale)
    return np.hstack([top_left, bottom_right]).astype(np.float32), scores, regs.reshape(-1, 4), index


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: Overlap | str = Overlap.UNION) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first (the reference algorithm).

    Areas count pixels inclusively (``x2 - x1 + 1``), as the MTCNN reference does.
    """
    mode = Overlap(mode)
    boxes = np.asarray(boxes, np.float64)
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if mode is Overlap.MIN else area[i] + area[rest] - inter
        order = rest[inter / denom <= threshold]
    return np.asarray(keep, dtype=np.int64)


def grouped_nms(boxes: np.ndarray, scores: np.ndarray, groups: np.ndarray, threshold: float,
                mode: Overlap | str = Overlap.UNION) -> np.ndarray:
    """NMS within each group (an image, or an image and scale) independently; sorted indices into the inputs.

    Each group is suppressed on its own: a batch holds hundreds of groups, and one pooled run (as
    OpenCV's ``NMSBoxesBatched`` does) compares every box with the survivors of all groups, which was
    ten times slower (docs/engine-choices.md). The union
    overlap runs in OpenCV's compiled ``NMSBoxes`` (same result as ``nms``, tested); scores must be
    positive, as face probabilities are.
    """
    mode = Overlap(mode)
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    boxes, scores, groups = np.asarray(boxes, np.float64), np.asarray(scores, np.float32), np.asarray(groups)
    order = np.argsort(groups, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(groups[order]) != 0])
    if mode is Overlap.UNION:

        rects = np.hstack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2] + 1])  # inclusive pixel extent, as in ``nms``

        def suppress(idx: np.ndarray) -> np.ndarray:
            return np.asarray(cv2.dnn.NMSBoxes(rects[idx], scores[idx], 0.0, float(threshold)), np.int64).reshape(-1)
    else:
        def suppress(idx: np.ndarray) -> np.ndarray:
            return nms(boxes[idx], scores[idx], threshold, mode)

    keep = [idx[suppress(idx)] for idx in np.split(order, starts[1:])]
    return np.sort(np.concatenate(keep))


def regress(boxes: np.ndarray, reg: np.ndarray, inclusive: bool = True) -> np.ndarray:
    """Shift box edges by the nets' regression, in units of the box size.

    ``inclusive`` measures size as ``x2 - x1 + 1`` (RNet and ONet stages of the reference); the
    PNet stage of the reference uses ``x2 - x1``.
    """
    boxes = np.asarray(boxes, np.float32)
    extra = 1.0 if inclusive else 0.0
    w = boxes[:, 2] - boxes[:, 0] + extra
    h = boxes[:, 3] - boxes[:, 1] + extra
    return boxes + reg * np.stack([w, h, w, h], axis=1)


def square(boxes: np.ndarray) -> np.ndarray:
    """Square boxes with the same centre and the longer side."""
    boxes = np.asarray(boxes, np.float32)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x1 = boxes[:, 0] + w * 0.5 - side * 0.5
    y1 = boxes[:, 1] + h * 0.5 - side * 0.5
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1)


def pixel_boxes(boxes: np.ndarray) -> np.ndarray:
    """Integer, zero-based, inclusive pixel ranges (x1, y1, x2, y2) of boxes in the 1-based convention."""
    return np.fix(np.asarray(boxes, np.float64)).astype(np.int64) - 1


def border_needed(pixels: np.ndarray, width: int, height: int) -> int:
    """Zero border (pixels on every side) that puts all ``pixels`` boxes inside a ``width`` x ``height`` image."""
    if len(pixels) == 0:
        return 0
    over = [-pixels[:, 0].min(), -pixels[:, 1].min(), pixels[:, 2].max() - (width - 1), pixels[:, 3].max() - (height - 1)]
    return int(max(0, *over))


def landmarks_from_offsets(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(N, 5, 2) landmark coordinates from ONet's (N, 10) outputs (x1..x5, y1..y5 in box units)."""
    boxes = np.asarray(boxes, np.float32)
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    xs = boxes[:, :1] + w[:, None] * offsets[:, :5]
    ys = boxes[:, 1:2] + h[:, None] * offsets[:, 5:]
    return np.stack([xs, ys], axis=2).astype(np.float32)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union of two box sets (continuous coordinates)."""
    a, b = np.asarray(a, np.float64)[:, None], np.asarray(b, np.float64)[None]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-12)
