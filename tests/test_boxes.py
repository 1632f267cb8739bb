"""Box math of MTCNN: hand-computed cases and properties (hypothesis)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facenet_offline.detect import boxes as bx


def test_pyramid_scales_follow_min_face_and_factor():
    scales = bx.pyramid_scales(250, 250, 20, 0.709)
    assert scales[0] == pytest.approx(0.6)
    assert np.allclose(np.diff(np.log(scales)), np.log(0.709))
    assert 250 * scales[-1] >= 12 and 250 * scales[-1] * 0.709 < 12
    assert bx.pyramid_scales(10, 10) == []  # smaller than the smallest face
    with pytest.raises(ValueError):
        bx.pyramid_scales(100, 100, 20, 1.5)


def test_pnet_candidates_map_cells_back_to_image_windows():
    prob = np.zeros((1, 5, 6), np.float32)
    prob[0, 2, 3] = 0.9
    reg = np.zeros((1, 4, 5, 6), np.float32)
    reg[0, :, 2, 3] = [0.1, 0.2, 0.3, 0.4]
    boxes, scores, regs, index = bx.pnet_candidates(prob, reg, np.array([0.5]), threshold=0.6)
    # cell (row 2, col 3) -> window at stride 2, size 12, in the half-size image
    assert boxes.tolist() == [[np.floor((2 * 3 + 1) / 0.5), np.floor((2 * 2 + 1) / 0.5), (2 * 3 + 12) / 0.5, (2 * 2 + 12) / 0.5]]
    assert scores.tolist() == pytest.approx([0.9]) and regs.tolist() == [pytest.approx([0.1, 0.2, 0.3, 0.4])]
    assert index.tolist() == [0]


def test_pnet_candidates_of_a_run_are_those_of_its_maps_in_order():
    rng = np.random.default_rng(3)
    prob, reg = rng.random((4, 7, 9)).astype(np.float32), rng.normal(size=(4, 4, 7, 9)).astype(np.float32)
    scales = np.array([0.6, 0.3, 0.6, 0.45])
    whole = bx.pnet_candidates(prob, reg, scales, 0.7)
    alone = [bx.pnet_candidates(prob[k:k + 1], reg[k:k + 1], scales[k:k + 1], 0.7) for k in range(4)]
    for got, want in zip(whole[:3], zip(*alone)):
        assert np.array_equal(got, np.concatenate(want))
    assert whole[3].tolist() == [k for k, part in enumerate(alone) for _ in part[1]]
    assert len(whole[1]) == int((prob >= 0.7).sum()) > 0


def test_nms_union_and_min():
    boxes = np.array([[0, 0, 9, 9], [1, 1, 10, 10], [20, 20, 29, 29], [2, 2, 5, 5]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    # IoU(0,1) = 81/119 = 0.68; box 3 lies inside box 0: IoU 16/100, min-overlap 1.0
    assert bx.nms(boxes, scores, 0.5).tolist() == [3, 0, 2]
    assert bx.nms(boxes, scores, 0.7).tolist() == [3, 0, 1, 2]
    assert bx.nms(boxes, scores, 0.7, "min").tolist() == [3, 2]
    assert bx.nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_grouped_nms_keeps_groups_apart():
    boxes = np.array([[0, 0, 9, 9], [0, 0, 9, 9], [0, 0, 9, 9]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    assert bx.grouped_nms(boxes, scores, np.array([0, 0, 1]), 0.5).tolist() == [0, 2]
    assert bx.grouped_nms(boxes, scores, np.array([0, 0, 1]), 0.5, "min").tolist() == [0, 2]


def test_regress_square_and_landmarks():
    boxes = np.array([[10, 20, 29, 59]], np.float32)  # 20 x 40 pixels inclusive
    assert bx.regress(boxes, np.array([[0.1, -0.1, 0.0, 0.5]], np.float32)).tolist() == [[12, 16, 29, 79]]
    assert bx.regress(boxes, np.array([[0.1, 0, 0, 0]], np.float32), inclusive=False)[0, 0] == pytest.approx(11.9)
    assert bx.square(np.array([[10, 20, 30, 60]], np.float32)).tolist() == [[0, 20, 40, 60]]
    offsets = np.array([[0, 1, 0.5, 0, 1, 0, 0, 0.5, 1, 1]], np.float32)
    marks = bx.landmarks_from_offsets(np.array([[10, 20, 29, 39]], np.float32), offsets)
    assert marks[0].tolist() == [[10, 20], [30, 20], [20, 30], [10, 40], [30, 40]]


def test_pixel_boxes_and_border():
    pixels = bx.pixel_boxes(np.array([[1, 1, 10, 10], [-4.7, 3, 300, 12]]))
    assert pixels.tolist() == [[0, 0, 9, 9], [-5, 2, 299, 11]]
    assert bx.border_needed(pixels, 250, 100) == 50
    assert bx.border_needed(pixels[:1], 250, 100) == 0


box_st = st.tuples(st.floats(-50, 300), st.floats(-50, 300), st.floats(1, 200), st.floats(1, 200)).map(
    lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(box_st, st.floats(0.01, 1.0)), min_size=1, max_size=40), st.floats(0.1, 0.9))
def test_fast_union_nms_equals_the_reference(items, threshold):
    boxes = np.array([b for b, _ in items], np.float32)
    scores = np.array([s for _, s in items], np.float32)
    reference = np.sort(bx.nms(boxes, scores, threshold))
    assert bx.grouped_nms(boxes, scores, np.zeros(len(boxes), int), threshold).tolist() == reference.tolist()
    # in groups (in any order): each group as if alone
    groups = np.arange(len(boxes)) * 7 % 3
    reference = np.sort(np.concatenate([np.flatnonzero(groups == g)[bx.nms(boxes[groups == g], scores[groups == g],
                                                                           threshold)] for g in np.unique(groups)]))
    assert bx.grouped_nms(boxes, scores, groups, threshold).tolist() == reference.tolist()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(box_st, st.floats(0.01, 1.0)), min_size=1, max_size=40), st.floats(0.1, 0.9),
       st.sampled_from(["union", "min"]))
def test_nms_properties(items, threshold, mode):
    boxes = np.array([b for b, _ in items], np.float32)
    scores = np.array([s for _, s in items], np.float32)
    keep = bx.nms(boxes, scores, threshold, mode)
    assert len(set(keep.tolist())) == len(keep) >= 1
    assert keep[0] == int(np.argmax(scores))  # the best box always survives
    assert np.all(np.diff(scores[keep]) <= 0)  # best first


@settings(max_examples=60, deadline=None)
@given(st.lists(box_st, min_size=1, max_size=20))
def test_square_properties(items):
    boxes = np.array(items, np.float32)
    sq = bx.square(boxes)
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    assert np.allclose(sq[:, 2] - sq[:, 0], side, atol=1e-3) and np.allclose(sq[:, 3] - sq[:, 1], side, atol=1e-3)
    assert np.allclose(sq[:, :2] + sq[:, 2:], boxes[:, :2] + boxes[:, 2:], atol=1e-2)  # same centre


@settings(max_examples=60, deadline=None)
@given(st.lists(box_st, min_size=1, max_size=20), st.integers(20, 400), st.integers(20, 400))
def test_border_puts_every_box_inside(items, width, height):
    pixels = bx.pixel_boxes(np.array(items))
    pad = bx.border_needed(pixels, width, height)
    shifted = pixels + pad
    assert shifted.min() >= 0
    assert np.all(shifted[:, 2] < width + 2 * pad) and np.all(shifted[:, 3] < height + 2 * pad)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(box_st, st.tuples(*[st.floats(-0.5, 0.5)] * 4)), min_size=1, max_size=20), st.booleans())
def test_regression_properties(items, inclusive):
    boxes = np.array([b for b, _ in items], np.float32)
    reg = np.array([r for _, r in items], np.float32)
    assert np.array_equal(bx.regress(boxes, np.zeros_like(reg), inclusive), boxes)  # no offset: no change
    out = bx.regress(boxes, reg, inclusive)
    extra = 1.0 if inclusive else 0.0
    w = boxes[:, 2] - boxes[:, 0] + extra
    # Each edge moves by its offset times the box size, independently of the others.
    assert np.allclose(out[:, 0] - boxes[:, 0], reg[:, 0] * w, atol=1e-3)
    assert np.allclose((out[:, 2] - out[:, 0]) - (boxes[:, 2] - boxes[:, 0]), (reg[:, 2] - reg[:, 0]) * w, atol=1e-3)
    shifted = bx.regress(boxes + 7.0, reg, inclusive)  # translating the box translates the result
    assert np.allclose(shifted - 7.0, out, atol=1e-3)
