"""Distances between embeddings, in one place: squared L2 (what every threshold is stated in) and angles.

Embeddings are unit length, so the squared L2 distance runs from 0 (the same) to 4 (opposite) and
equals 2 - 2 cos: a cosine similarity from an inner-product index converts with ``from_cosine``.
Pure numpy.
"""

from __future__ import annotations

import numpy as np


def squared_l2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row i of ``a`` against row i of ``b`` (a single pair of vectors gives a 0-d array)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.sum(np.square(a - b), axis=-1)


def squared_l2_matrix(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Every row of ``a`` against every row of ``b`` (default ``a``): an N x M matrix, never below 0."""
    a = np.asarray(a, np.float64)
    b = a if b is None else np.asarray(b, np.float64)
    return np.maximum(np.sum(a * a, 1)[:, None] + np.sum(b * b, 1)[None, :] - 2.0 * a @ b.T, 0.0)


def max_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    """The largest elementwise difference of two outputs: how parity between two runtimes is stated."""
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def from_cosine(similarity: np.ndarray | float) -> np.ndarray | float:
    """Squared L2 between unit vectors from their cosine similarity."""
    return np.maximum(0.0, 2.0 - 2.0 * np.asarray(similarity, np.float64))


def row_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of row i of ``a`` and row i of ``b`` (any lengths)."""
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def angular(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The angle between row i of ``a`` and row i of ``b``, over pi: 0 to 1."""
    return np.arccos(np.clip(row_cosine(a, b), -1.0, 1.0)) / np.pi
