"""Operating points: the distance thresholds that hold false accepts to a chosen rate.

Measured on every pair of images of a labelled set (LFW's development set, View 1): pairs of one
person are genuine, pairs of two people impostors. A threshold accepts a pair when its distance
is below it; the false-accept rate (FAR) is the share of impostor pairs accepted, the
true-accept rate (TAR) the share of genuine pairs. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..distance import squared_l2_matrix


def pair_distances(embeddings: np.ndarray, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(genuine, impostor) squared L2 distances over every unordered pair of rows."""
    labels = np.asarray(labels)
    d = squared_l2_matrix(embeddings)
    upper = np.triu_indices(len(labels), k=1)
    same = labels[upper[0]] == labels[upper[1]]
    values = d[upper]
    return values[same], values[~same]


def threshold_at_far(impostor: np.ndarray, far: float) -> float:
    """The largest threshold that accepts at most ``far`` of the impostor pairs (distance < threshold)."""
    if not 0 < far < 1:
        raise ValueError(f"far must lie in (0, 1), got {far}")
    if len(impostor) < 1 / far:
        raise ValueError(f"{len(impostor):,} impostor pairs cannot measure a FAR of {far:g}; at least "
                         f"{int(np.ceil(1 / far)):,} are needed")
    ordered = np.sort(np.asarray(impostor, np.float64))
    return float(ordered[int(np.floor(far * len(ordered)))])  # that many distances lie below it


def accepted(distances: np.ndarray, threshold: float) -> float:
    """Share of ``distances`` below ``threshold``."""
    distances = np.asarray(distances)
    return float(np.mean(distances < threshold)) if len(distances) else float("nan")


def accuracy_threshold(same: np.ndarray, different: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy): the middle of the widest-scoring gap between sorted distances of a balanced pair set."""
    values = np.concatenate([same, different]).astype(np.float64)
    truth = np.concatenate([np.ones(len(same), bool), np.zeros(len(different), bool)])
    order = np.argsort(values, kind="stable")
    values, truth = values[order], truth[order]
    # Threshold between positions k-1 and k accepts the first k pairs: correct = same among them + different after.
    correct = np.concatenate([[0], np.cumsum(truth)]) + (len(different) - np.concatenate([[0], np.cumsum(~truth)]))
    k = int(np.argmax(correct))
    lower = values[k - 1] if k > 0 else values[0] - 1e-3
    upper = values[k] if k < len(values) else values[-1] + 1e-3
    return float((lower + upper) / 2), float(correct[k] / len(values))


@dataclass(frozen=True)
class MeasuredPoint:
    """A threshold and what it does on the pairs it was measured on."""

    far_target: float | None  # None: the accuracy-optimal threshold
    threshold: float
    far: float
    tar: float


def measure(genuine: np.ndarray, impostor: np.ndarray, fars: Sequence[float],
            accuracy: tuple[float, float] | None = None) -> list[MeasuredPoint]:
    """The threshold at each FAR (and, if given, the accuracy-optimal one), with the FAR and TAR each achieves."""
    points = [MeasuredPoint(f, t, accepted(impostor, t), accepted(genuine, t))
              for f in fars for t in [threshold_at_far(impostor, f)]]
    if accuracy is not None:
        points.insert(0, MeasuredPoint(None, accuracy[0], accepted(impostor, accuracy[0]), accepted(genuine, accuracy[0])))
    return points
