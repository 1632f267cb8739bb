"""Alignment geometry: margin boxes, the similarity transform and its template."""

import numpy as np
import pytest

from facenet_offline.detect.align import (
    TEMPLATE_160,
    AlignConfig,
    AlignMethod,
    align_face,
    dsb_margin_box,
    margin_box,
    similarity_transform,
)


def test_margin_box_is_facenet_pytorch_arithmetic():
    # box 100 px wide, margin 32 at output 160: grow by 32 * 100 / 128 = 25 px, half on each side
    assert margin_box(np.array([50, 40, 150, 140.0]), 32, 160, 300, 300).tolist() == [37, 27, 162, 152]
    assert margin_box(np.array([2, 3, 102, 103.0]), 32, 160, 110, 300).tolist() == [0, 0, 110, 115]


def test_dsb_margin_box_grows_by_source_pixels():
    assert dsb_margin_box(np.array([50, 40, 150, 140.0]), 32, 300, 300).tolist() == [34, 24, 166, 156]


def test_similarity_transform_recovers_a_known_transform():
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = np.random.default_rng(0).uniform(0, 100, (5, 2))
    dst = src @ rot.T + shift
    matrix = similarity_transform(src, dst)
    assert np.allclose(matrix[:, :2], rot) and np.allclose(matrix[:, 2], shift)


def test_template_is_symmetric_and_ordered():
    left, right = TEMPLATE_160[[0, 3]], TEMPLATE_160[[1, 4]]
    assert np.allclose(left[:, 0] + right[:, 0], 160) and np.allclose(left[:, 1], right[:, 1])
    assert TEMPLATE_160[0, 1] < TEMPLATE_160[2, 1] < TEMPLATE_160[3, 1]


@pytest.mark.parametrize("method", list(AlignMethod))
def test_align_face_gives_the_model_input_size(detector, lfw_images, method):
    det = detector.detect(lfw_images[:1])[0].select("largest")
    crop = align_face(lfw_images[0], det.boxes[0], det.landmarks[0], AlignConfig(method=method))
    assert crop.shape == (160, 160, 3) and crop.dtype == np.uint8 and crop.std() > 10


def test_similarity_alignment_puts_landmarks_on_the_template(detector, lfw_images):
    det = detector.detect(lfw_images[:1])[0].select("largest")
    matrix = similarity_transform(det.landmarks[0], TEMPLATE_160)
    moved = det.landmarks[0] @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(moved - TEMPLATE_160).max() < 8  # five points, four degrees of freedom: close, not exact


def test_bad_config_is_refused():
    with pytest.raises(ValueError):
        AlignConfig(method="warp")
    with pytest.raises(ValueError):
        AlignConfig(margin=200)
