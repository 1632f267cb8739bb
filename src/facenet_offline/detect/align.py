"""Face alignment: from a detection to the square crop the embedding model expects.

Three methods, all from the same detection:
- ``margin``: facenet-pytorch's crop, the box grown by ``margin`` pixels *of the output* image;
- ``dsb-margin``: davidsandberg/facenet's crop (align_dataset_mtcnn), the box grown by ``margin``
  pixels *of the source* image;
- ``similarity``: a 5-landmark similarity transform onto a template.
The geometry is pure numpy; resampling uses OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..choices import Choice
from ..data.tensors import resize_face


class AlignMethod(Choice):
    MARGIN = "margin"
    DSB_MARGIN = "dsb-margin"
    SIMILARITY = "similarity"


# Landmark template for ``similarity`` in a 160x160 crop (left eye, right eye, nose, mouth left,
# mouth right), measured by tools/landmark_template.py: the mean MTCNN landmarks inside ``margin``
# crops (margin 32) of 1,000 LFW images that pairs.txt does not use, made left-right symmetric.
# So the similarity crop frames a face as the training crops did, but upright and at one scale.
TEMPLATE_160 = np.array([
    [51.21, 66.81], [108.79, 66.81], [80.00, 92.00], [54.70, 114.11], [105.30, 114.11],
], dtype=np.float64)


@dataclass(frozen=True)
class AlignConfig:
    """How to cut a face out of an image. The default, a margin-28 crop, is the best of the alignments
    tried on LFW's development set (docs/lfw-variants.md); every threshold was measured on it."""

    method: AlignMethod = AlignMethod.MARGIN
    image_size: int = 160
    margin: float = 28.0

    def __post_init__(self):
        object.__setattr__(self, "method", AlignMethod(self.method))
        if self.image_size < 8 or self.margin < 0 or (self.method is AlignMethod.MARGIN and self.margin >= self.image_size):
            raise ValueError(f"invalid alignment: image_size={self.image_size}, margin={self.margin}")


def margin_box(box: np.ndarray, margin: float, image_size: int, width: int, height: int) -> np.ndarray:
    """facenet-pytorch: grow by ``margin`` output pixels (scaled to the box), clip, round down to ints."""
    x1, y1, x2, y2 = np.asarray(box, np.float64)
    mx = margin * (x2 - x1) / (image_size - margin)
    my = margin * (y2 - y1) / (image_size - margin)
    return _clip_box(np.array([x1 - mx / 2, y1 - my / 2, x2 + mx / 2, y2 + my / 2]), width, height)


def dsb_margin_box(box: np.ndarray, margin: float, width: int, height: int) -> np.ndarray:
    """davidsandberg/facenet: grow by ``margin`` source pixels in total per axis, clip, round down."""
    x1, y1, x2, y2 = np.asarray(box, np.float64)
    return _clip_box(np.array([x1 - margin / 2, y1 - margin / 2, x2 + margin / 2, y2 + margin / 2]), width, height)


def _clip_box(box: np.ndarray, width: int, height: int) -> np.ndarray:
    x1, y1 = max(int(box[0]), 0), max(int(box[1]), 0)
    x2, y2 = min(int(box[2]), width), min(int(box[3]), height)
    return np.array([x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)], dtype=np.int64)


def centre_box(width: int, height: int, fraction: float = 0.6) -> np.ndarray:
    """A centred square box covering ``fraction`` of the shorter side: the fallback face when none is found."""
    side = fraction * min(width, height)
    cx, cy = width / 2, height / 2
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], dtype=np.float64)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix of the least-squares similarity (rotation, uniform scale, shift) mapping src onto dst.

    Umeyama (1991), closed form, no reflection.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / s.var(0).sum()
    shift = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, shift[:, None]])


def align_face(image: np.ndarray, box: np.ndarray, landmarks: np.ndarray | None, config: AlignConfig) -> np.ndarray:
    """``image_size`` x ``image_size`` uint8 RGB face cut out of ``image`` as ``config`` says."""
    h, w = image.shape[:2]
    size = config.image_size
    if config.method is AlignMethod.SIMILARITY and landmarks is not None and len(landmarks) == 5:
        matrix = similarity_transform(landmarks, TEMPLATE_160 * (size / 160.0))
        return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    if config.method is AlignMethod.DSB_MARGIN:
        x1, y1, x2, y2 = dsb_margin_box(box, config.margin, w, h)
    else:  # MARGIN, and SIMILARITY without landmarks (the centre-crop fallback)
        x1, y1, x2, y2 = margin_box(box, config.margin, size, w, h)
    return resize_face(np.ascontiguousarray(image[y1:y2, x1:x2]), size)
