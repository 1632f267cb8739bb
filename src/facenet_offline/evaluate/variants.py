"""Choosing LFW defaults among variants (alignments x protocol options) without looking at the benchmark.

View 1 (pairsDevTrain + pairsDevTest) is LFW's development set and View 2 (pairs.txt) its
benchmark. A variant's rank may depend on View 1 alone, ties included: breaking a View 1 tie by
a View 2 figure would choose on the test folds.
"""

from __future__ import annotations

from collections.abc import Iterable


def rank_on_view1(rows: Iterable[dict]) -> list[dict]:
    """``rows`` best first: by View 1 accuracy, then View 1 AUC; still tied, in the order given.

    Each row needs ``view1_accuracy`` and ``view1_auc``; every other key is carried, never read.
    """
    return sorted(rows, key=lambda r: (-r["view1_accuracy"], -r["view1_auc"]))
