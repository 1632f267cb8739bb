"""Recognition and clustering measures, as pure functions of similarities and labels.

Closed-set rank-k identification; open-set detection-and-identification rate (DIR) at a false-alarm
rate, with the threshold set on impostor probes (people not in the gallery); pairwise and BCubed
precision, recall and F-measure of a clustering (counts from scikit-learn's contingency tools).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics.cluster import contingency_matrix, pair_confusion_matrix


def rank_k(similarity: np.ndarray, probe_labels: Sequence, gallery_labels: Sequence, ks: Sequence[int]) -> dict[int, float]:
    """Fraction of probes whose true identity is among the ``k`` most similar gallery entries."""
    sim = np.asarray(similarity)
    gallery = np.asarray(gallery_labels)
    truth = np.asarray(probe_labels)
    order = np.argsort(-sim, axis=1, kind="stable")
    hit_rank = np.argmax(gallery[order] == truth[:, None], axis=1)  # first position of the true identity
    present = (gallery[order] == truth[:, None]).any(axis=1)
    if not present.all():
        raise ValueError("every probe's identity must be in the gallery for closed-set rank-k")
    return {k: float(np.mean(hit_rank < k)) for k in ks}


@dataclass
class OpenSetPoint:
    far: float  # target false-alarm rate
    threshold: float  # similarity an answer must reach
    dir: float  # detection-and-identification rate of mated probes
    achieved_far: float


def open_set_dir(mated_similarity: np.ndarray, mated_labels: Sequence, gallery_labels: Sequence,
                 impostor_similarity: np.ndarray, fars: Sequence[float]) -> list[OpenSetPoint]:
    """DIR at each FAR: an impostor raises a false alarm when its best gallery similarity reaches the
    threshold; a mated probe counts when its best match is the right person and reaches the threshold."""
    gallery = np.asarray(gallery_labels)
    best = np.argmax(mated_similarity, axis=1)
    best_sim = mated_similarity[np.arange(len(best)), best]
    correct = gallery[best] == np.asarray(mated_labels)
    impostor_best = np.sort(np.max(impostor_similarity, axis=1))[::-1]
    points = []
    for far in fars:
        allowed = int(np.floor(far * len(impostor_best)))  # alarms allowed
        # The threshold sits just above the (allowed + 1)-th highest impostor score.
        threshold = float(np.nextafter(impostor_best[allowed], np.inf)) if allowed < len(impostor_best) else -np.inf
        points.append(OpenSetPoint(far, threshold, float(np.mean(correct & (best_sim >= threshold))),
                                   float(np.mean(impostor_best >= threshold))))
    return points


@dataclass
class ClusterScores:
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f: float
    clusters: int
    classes: int


def _f(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def cluster_scores(labels_true: Sequence, labels_pred: Sequence) -> ClusterScores:
    """Pairwise P/R/F (over all pairs of items) and BCubed P/R/F (per item, averaged)."""
    (tn, fp), (fn, tp) = pair_confusion_matrix(labels_true, labels_pred)  # counts of ordered pairs
    pp = tp / (tp + fp) if tp + fp else 1.0
    pr = tp / (tp + fn) if tp + fn else 1.0
    c = contingency_matrix(labels_true, labels_pred, sparse=True).tocsr().astype(np.float64)  # classes x clusters
    class_sizes, cluster_sizes = np.asarray(c.sum(axis=1)).ravel(), np.asarray(c.sum(axis=0)).ravel()
    coo = c.tocoo()
    n = c.sum()
    # Each of the n_ij items in cell (i, j) has precision n_ij / |cluster j| and recall n_ij / |class i|.
    bp = float(np.sum(coo.data ** 2 / cluster_sizes[coo.col]) / n)
    br = float(np.sum(coo.data ** 2 / class_sizes[coo.row]) / n)
    return ClusterScores(float(pp), float(pr), _f(pp, pr), bp, br, _f(bp, br), int(c.shape[1]), int(c.shape[0]))
