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


def standardise(faces: np.ndarray, mean: float, std: float) -> np.ndarray:
    """N x H x W x 3 uint8 RGB -> N x 3 x H x W float32, ``(x - mean) / std``."""
    batch = np.asarray(faces, dtype=np.float32)
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"expected N x H x W x 3 RGB faces, got shape {batch.shape}")
    return np.ascontiguousarray(((batch - mean) / std).transpose(0, 3, 1, 2))
