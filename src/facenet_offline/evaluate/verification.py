"""The LFW verification protocol as davidsandberg/facenet's validate_on_lfw defines it.

Ten folds in file order, no shuffling. For each test fold, the threshold (0 to 4 in steps of
0.01) that maximises accuracy on the nine training folds is applied to the test fold. VAL at
FAR 1e-3: on the training folds, the threshold whose FAR is 1e-3 is found by linear
interpolation over thresholds in steps of 0.001, then VAL and FAR are measured on the test
fold. AUC and EER come from the ROC averaged over the test folds.

Options: squared euclidean or angular distance; subtracting the training folds' mean
embedding before measuring distance. All functions are pure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum

import numpy as np
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import auc as area_under_curve
from sklearn.model_selection import KFold, PredefinedSplit, StratifiedKFold

from ..distance import angular, squared_l2

THRESHOLDS = np.arange(0, 4, 0.01)
VAL_THRESHOLDS = np.arange(0, 4, 0.001)


class Distance(str, Enum):
    EUCLIDEAN = "euclidean"  # squared L2 of unit vectors, in [0, 4]
    ANGULAR = "angular"  # arccos(cosine similarity) / pi, in [0, 1]


@dataclass(frozen=True)
class ProtocolOptions:
    distance: Distance = Distance.EUCLIDEAN
    subtract_mean: bool = False
    folds: int = 10
    far_target: float = 1e-3

    def __post_init__(self):
        object.__setattr__(self, "distance", Distance(self.distance))


@dataclass
class VerificationResult:
    """Everything the protocol measures; per-fold arrays have one entry per fold."""

    accuracy: np.ndarray
    thresholds: np.ndarray  # the threshold chosen for each test fold
    val: np.ndarray
    far: np.ndarray
    tpr: np.ndarray  # mean ROC over test folds, one point per candidate threshold
    fpr: np.ndarray
    auc: float
    eer: float
    distances: np.ndarray  # per pair, as seen by its test fold (mean subtracted if asked)
    predictions: np.ndarray  # per pair: "same" at its fold's threshold
    options: ProtocolOptions = field(default_factory=ProtocolOptions)

    @property
    def accuracy_mean(self) -> float:
        return float(np.mean(self.accuracy))

    @property
    def accuracy_std(self) -> float:
        return float(np.std(self.accuracy))

    def summary(self) -> dict:
        return {"accuracy_mean": self.accuracy_mean, "accuracy_std": self.accuracy_std,
                "val_mean": float(np.mean(self.val)), "val_std": float(np.std(self.val)),
                "far_mean": float(np.mean(self.far)), "auc": self.auc, "eer": self.eer,
                "fold_accuracy": self.accuracy.tolist(), "fold_thresholds": self.thresholds.tolist(),
                "options": {k: (v.value if isinstance(v, Enum) else v) for k, v in asdict(self.options).items()}}


def pair_distance(a: np.ndarray, b: np.ndarray, distance: Distance | str = Distance.EUCLIDEAN) -> np.ndarray:
    """Distance of each row of ``a`` to the same row of ``b``."""
    if Distance(distance) is Distance.EUCLIDEAN:
        return squared_l2(a, b)
    return angular(a, b)


def rates(thresholds: np.ndarray, dist: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(TPR, FPR, accuracy) at each threshold, predicting "same" when dist < threshold (vectorised)."""
    thresholds = np.atleast_1d(np.asarray(thresholds, np.float64))
    pos, neg = np.sort(dist[same]), np.sort(dist[~same])
    tp = np.searchsorted(pos, thresholds, side="left")  # same pairs below the threshold
    fp = np.searchsorted(neg, thresholds, side="left")
    tpr = tp / len(pos) if len(pos) else np.zeros(len(thresholds))
    fpr = fp / len(neg) if len(neg) else np.zeros(len(thresholds))
    return tpr, fpr, (tp + len(neg) - fp) / dist.size


def accuracy_at(threshold: float, dist: np.ndarray, same: np.ndarray) -> tuple[float, float, float]:
    """(true positive rate, false positive rate, accuracy) of predicting "same" when dist < threshold."""
    tpr, fpr, acc = rates(np.array([threshold]), np.asarray(dist), np.asarray(same, bool))
    return float(tpr[0]), float(fpr[0]), float(acc[0])


def val_far_at(threshold: float, dist: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(VAL, FAR): the share of same pairs, and of different pairs, accepted at ``threshold``."""
    val, far, _ = accuracy_at(threshold, dist, same)
    return val, far


def _fold_distances(e1, e2, train, options):
    if options.subtract_mean:
        mean = np.mean(np.concatenate([e1[train], e2[train]]), axis=0)
        return pair_distance(e1 - mean, e2 - mean, options.distance)
    return pair_distance(e1, e2, options.distance)


def threshold_for_far(dist: np.ndarray, same: np.ndarray, far_target: float,
                      thresholds: np.ndarray = VAL_THRESHOLDS) -> float:
    """The threshold whose FAR is ``far_target``, by linear interpolation (0 if it cannot be reached)."""
    _, far, _ = rates(thresholds, dist, same)
    if np.max(far) < far_target:
        return 0.0
    # FAR is non-decreasing in the threshold; interpolate on its strictly increasing part.
    unique_far, first = np.unique(far, return_index=True)
    if len(unique_far) < 2:
        return float(thresholds[first[0]])
    return float(interp1d(unique_far, thresholds[first], kind="slinear")(far_target))


def fold_splits(same: np.ndarray, folds: int, fold_of_pair: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs: the given folds (pairs.txt's own), else ``folds`` contiguous blocks.

    Without given folds, pairs are split in order within each class (StratifiedKFold without
    shuffling), which on the whole of pairs.txt gives exactly its ten folds and on a subset
    (one fold of 300 same and 300 different pairs) still gives folds holding both classes.
    """
    index = np.arange(len(same))
    if fold_of_pair is not None and len(np.unique(fold_of_pair)) >= 2:
        return list(PredefinedSplit(np.asarray(fold_of_pair)).split(index))
    if np.all(same) or not np.any(same):
        return list(KFold(n_splits=folds, shuffle=False).split(index))
    return list(StratifiedKFold(n_splits=folds, shuffle=False).split(index, same))


def evaluate(e1: np.ndarray, e2: np.ndarray, same: np.ndarray, options: ProtocolOptions = ProtocolOptions(),
             fold_of_pair: np.ndarray | None = None) -> VerificationResult:
    """Run the k-fold protocol on pair embeddings ``e1[i]``, ``e2[i]`` with labels ``same[i]``."""
    same = np.asarray(same, bool)
    if not (len(e1) == len(e2) == len(same)):
        raise ValueError(f"need one label per pair: {len(e1)}, {len(e2)}, {len(same)}")
    if len(same) < options.folds:
        raise ValueError(f"{len(same)} pairs cannot be split into {options.folds} folds")
    splits = fold_splits(same, options.folds, fold_of_pair)
    n, k_folds = len(THRESHOLDS), len(splits)
    tprs, fprs = np.zeros((k_folds, n)), np.zeros((k_folds, n))
    acc, chosen, val, far = (np.zeros(k_folds) for _ in range(4))
    dist_seen, predictions = np.zeros(len(same)), np.zeros(len(same), bool)
    for k, (train, test) in enumerate(splits):
        dist = _fold_distances(e1, e2, train, options)
        chosen[k] = THRESHOLDS[int(np.argmax(rates(THRESHOLDS, dist[train], same[train])[2]))]
        tprs[k], fprs[k], _ = rates(THRESHOLDS, dist[test], same[test])
        _, _, acc[k] = accuracy_at(chosen[k], dist[test], same[test])
        val_threshold = threshold_for_far(dist[train], same[train], options.far_target)
        val[k], far[k] = val_far_at(val_threshold, dist[test], same[test])
        dist_seen[test], predictions[test] = dist[test], dist[test] < chosen[k]
    tpr, fpr = tprs.mean(0), fprs.mean(0)
    return VerificationResult(acc, chosen, val, far, tpr, fpr, float(area_under_curve(fpr, tpr)),
                              equal_error_rate(fpr, tpr), dist_seen, predictions, options)


def equal_error_rate(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """The FPR at which FPR equals the miss rate (1 - TPR), on the interpolated ROC."""
    unique_fpr, inverse = np.unique(fpr, return_inverse=True)
    best_tpr = np.zeros(len(unique_fpr))
    np.maximum.at(best_tpr, inverse, tpr)  # the ROC's upper envelope: best TPR at each FPR
    if len(unique_fpr) == 1:
        return float(1.0 - best_tpr[0])
    curve = interp1d(unique_fpr, best_tpr, bounds_error=False, fill_value=(best_tpr[0], best_tpr[-1]))
    return float(brentq(lambda x: 1.0 - x - curve(x), 0.0, 1.0))
