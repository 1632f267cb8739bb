"""The LFW protocol on synthetic embeddings whose answers are known."""

import numpy as np
import pytest

from facenet_offline.evaluate.verification import (
    Distance,
    ProtocolOptions,
    accuracy_at,
    equal_error_rate,
    evaluate,
    pair_distance,
    threshold_for_far,
    val_far_at,
)


def _pairs_with_distances(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors e1, e2 whose squared euclidean distances are ``d``."""
    angles = np.arccos(1 - np.asarray(d) / 2)  # |a - b|^2 = 2 - 2 cos
    e1 = np.tile([1.0, 0.0], (len(d), 1))
    e2 = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return e1, e2


def test_perfectly_separable_pairs_give_accuracy_one():
    same = np.array([True] * 300 + [False] * 300)
    d = np.where(same, 0.505, 2.0)
    e1, e2 = _pairs_with_distances(d)
    r = evaluate(e1, e2, same)
    assert np.all(r.accuracy == 1.0) and r.auc == pytest.approx(1.0) and r.eer == pytest.approx(0.0, abs=1e-6)
    assert np.allclose(r.thresholds, 0.51)  # the first threshold above every same-pair distance


def test_threshold_is_chosen_on_the_training_folds():
    same = np.array([True] * 5 + [False] * 5 + [True] * 5 + [False] * 5)
    d = np.array([0.1, 0.2, 0.3, 0.37, 1.53, 1.03, 1.23, 1.43, 1.63, 1.83,  # fold 1
                  0.27, 0.33, 0.45, 0.57, 0.87, 0.35, 1.13, 1.33, 1.53, 2.03])  # fold 2
    e1, e2 = _pairs_with_distances(d)
    r = evaluate(e1, e2, same, ProtocolOptions(folds=2), fold_of_pair=np.repeat([0, 1], 10))
    # Testing fold 1: trained on fold 2, best is (0.87, 1.13] -> 0.88; fold 1 then scores 9/10.
    # Testing fold 2: trained on fold 1, best is (0.37, 1.03] -> 0.38; fold 2 then scores 6/10.
    assert r.thresholds == pytest.approx([0.88, 0.38])
    assert r.accuracy == pytest.approx([0.9, 0.6])
    assert r.accuracy_mean == pytest.approx(0.75) and r.accuracy_std == pytest.approx(0.15)


def test_val_far_and_threshold_for_far():
    same = np.array([True] * 4 + [False] * 1000)
    d = np.concatenate([[0.2, 0.5, 0.9, 1.5], np.linspace(1.0, 2.0, 1000)])
    assert val_far_at(1.0, d, same) == (0.75, 0.0)
    assert val_far_at(1.0015, d, same) == (0.75, 0.002)
    # FAR reaches 1/1000 once the threshold passes the smallest different-pair distance (1.0)
    assert threshold_for_far(d, same, 1e-3) == pytest.approx(1.001, abs=1e-9)
    assert threshold_for_far(d, same, 2.0) == 0.0  # unreachable FAR


def test_accuracy_at_counts_by_hand():
    same = np.array([True, True, False, False])
    d = np.array([0.5, 1.5, 1.0, 2.0])
    assert accuracy_at(1.2, d, same) == (0.5, 0.5, 0.5)
    assert accuracy_at(1.6, d, same) == (1.0, 0.5, 0.75)


def test_equal_error_rate_by_hand():
    fpr = np.array([0.0, 0.1, 0.2, 1.0])
    tpr = np.array([0.0, 0.8, 0.9, 1.0])
    assert equal_error_rate(fpr, tpr) == pytest.approx(0.15)


def test_distances():
    a, b = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    assert pair_distance(a, b, Distance.EUCLIDEAN) == pytest.approx([2.0])
    assert pair_distance(a, b, "angular") == pytest.approx([0.5])
    assert pair_distance(a, -a, "angular") == pytest.approx([1.0])


def test_mean_subtraction_removes_a_shared_offset():
    rng = np.random.default_rng(0)
    same = np.array(([True] * 30 + [False] * 30) * 10)
    offset = np.full(8, 200.0)  # shared by all embeddings: every angle shrinks below the 0.01 grid
    e1 = rng.normal(size=(600, 8)) + offset
    e2 = np.where(same[:, None], e1 + 0.1 * rng.normal(size=(600, 8)), rng.normal(size=(600, 8)) + offset)
    plain = evaluate(e1, e2, same, ProtocolOptions(distance="angular"))
    centred = evaluate(e1, e2, same, ProtocolOptions(distance="angular", subtract_mean=True))
    assert plain.accuracy_mean < 0.6 and centred.accuracy_mean > 0.99


def test_bad_inputs():
    with pytest.raises(ValueError):
        evaluate(np.zeros((5, 2)), np.zeros((4, 2)), np.ones(5, bool))
    with pytest.raises(ValueError):
        ProtocolOptions(distance="manhattan")


def test_variants_are_ranked_on_view1_alone():
    from facenet_offline.evaluate.variants import rank_on_view1

    rows = [
        {"name": "a", "view1_accuracy": 0.990, "view1_auc": 0.9985, "view2_accuracy": 0.995, "view2_auc": 0.9999},
        {"name": "b", "view1_accuracy": 0.991, "view1_auc": 0.9980, "view2_accuracy": 0.980, "view2_auc": 0.9900},
        {"name": "c", "view1_accuracy": 0.990, "view1_auc": 0.9990, "view2_accuracy": 0.970, "view2_auc": 0.9800},
        {"name": "d", "view1_accuracy": 0.990, "view1_auc": 0.9990, "view2_accuracy": 0.999, "view2_auc": 0.9999},
    ]
    # b leads on View 1 accuracy; a/c/d tie on it and c/d on View 1 AUC too, which keeps their given
    # order whatever View 2 says (d's View 2 is the best of all and does not lift it).
    assert [r["name"] for r in rank_on_view1(rows)] == ["b", "c", "d", "a"]
