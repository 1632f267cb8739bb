"""Model input tensors: uint8 RGB faces to the standardised float32 NCHW batches the nets expect."""

from __future__ import annotations

import cv2
import numpy as np


def resize_face(face: np.ndarray, size: int) -> np.ndarray:
    """Square ``size`` x ``size`` crop of any size; area averaging when shrinking, bilinear when growing."""
    if face.shape[:2] == (size, size):
        return face
    shrinking = face.shape[0] > size or face.shape[1] > size
    return cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def to_nchw(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """N x H x W x C (uint8 or float) -> N x C x H x W float32 ``(x - mean) / std``, in one pass per channel."""
    if images.ndim != 4:
        raise ValueError(f"expected N x H x W x C images, got shape {images.shape}")
    n, h, w, c = images.shape
    out = np.empty((n, c, h, w), np.float32)
    scale = np.float32(1.0 / std)
    for ch in range(c):
        np.multiply(np.subtract(images[..., ch], np.float32(mean), dtype=np.float32), scale, out=out[:, ch])
    return out


def standardise(faces: np.ndarray, mean: float, std: float) -> np.ndarray:
    """N x H x W x 3 uint8 RGB faces -> N x 3 x H x W float32, ``(x - mean) / std``."""
    batch = np.asarray(faces)
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"expected N x H x W x 3 RGB faces, got shape {batch.shape}")
    return to_nchw(batch, mean, std)
