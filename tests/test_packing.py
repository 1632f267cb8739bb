"""Packed PNet: a lone photo's pyramid levels in one input give the detections of each level run alone."""

import cv2
import numpy as np
import pytest
import torch

from facenet_offline.detect import MTCNNConfig
from facenet_offline.detect import boxes as bx
from facenet_offline.detect.packing import pack, pnet_map_size
from facenet_offline.engines import open_detector
from facenet_offline.models.mtcnn import PackedPNet
from facenet_offline.runtime.onnxruntime import OnnxRuntimeBackend
from facenet_offline.weights.loader import load_mtcnn

LFW_LEVELS = [bx.scaled_size(250, 250, s) for s in bx.pyramid_scales(250, 250)]


@pytest.mark.parametrize("sizes", [LFW_LEVELS, [(7, 300), (40, 41), (13, 13), (12, 12), (39, 5)], [(12, 12)]])
def test_layout_places_levels_apart_on_even_offsets(sizes):
    layout = pack(sizes)
    taken = np.zeros(layout.shape, int)
    for (y, x, h, w), size in zip(layout.places, sizes):
        assert (h, w) == size and y % 2 == 0 and x % 2 == 0
        assert y + h <= layout.shape[0] and x + w <= layout.shape[1]
        taken[y:y + h, x:x + w] += 1
    assert taken.max() == 1  # no overlap
    assert np.array_equal(layout.gaps(), (taken == 0).astype(np.float32))
    for k, (h, w) in enumerate(sizes):
        ys, xs = layout.cells(k)
        assert (ys.stop - ys.start, xs.stop - xs.start) == (pnet_map_size(h), pnet_map_size(w))
    assert layout.packed == (len(sizes) > 1)


def test_lfw_pyramid_packs_into_one_small_input():
    layout = pack(LFW_LEVELS)
    assert len(LFW_LEVELS) == 8 and layout.shape == (150, 372)
    assert layout.shape[0] * layout.shape[1] < 1.25 * sum(h * w for h, w in LFW_LEVELS)


def test_bad_level_sizes_are_refused():
    with pytest.raises(ValueError, match="no levels"):
        pack([])
    with pytest.raises(ValueError, match="positive"):
        pack([(12, 0)])
    with pytest.raises(ValueError, match="pnet_pack_pixels"):
        MTCNNConfig(pnet_pack_pixels=-1)
    with pytest.raises(ValueError, match="small_bucket"):
        MTCNNConfig(small_bucket=0)


@pytest.mark.parametrize("side", [12, 13, 24, 25, 150, 251])
def test_map_size_is_pnets_output_size(side):
    pnet = load_mtcnn()["pnet"].eval()
    with torch.no_grad():
        _, prob = pnet(torch.zeros(1, 3, side, side + 1))
    assert tuple(prob.shape[2:]) == (pnet_map_size(side), pnet_map_size(side + 1))


def _level_inputs(image: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], object]:
    """One LFW photo's packed input and its levels alone, made by the detector's own code."""
    packed, plain = open_detector(), open_detector(config=MTCNNConfig(pnet_pack_pixels=0))
    (_, layout, _), = packed._pnet_plan([image])
    (x,) = packed._pnet_inputs([image], [((True, layout.shape), [(0, layout, None)])])
    alone = [plain._pnet_inputs([image], [((False, lay.shape), [(0, lay, None)])])[0]
             for _, lay, _ in plain._pnet_plan([image])]
    return x, alone, layout


def test_packed_pnet_gives_each_levels_own_maps(built_mtcnn, lfw_images):
    x, alone, layout = _level_inputs(lfw_images[0])
    assert layout.packed and x.shape[1] == 4 and len(alone) == len(layout.places) == 8
    assert any(h % 2 for _, _, h, _ in layout.places)  # odd sides: where the ceil-mode pool would read a gap
    pnet = load_mtcnn()["pnet"].eval()
    runs = {"torch": lambda a: [t.numpy() for t in PackedPNet(pnet)(torch.from_numpy(a))],
            "onnx": OnnxRuntimeBackend(built_mtcnn.files["pnet_packed"]).run}
    plain = OnnxRuntimeBackend(built_mtcnn.files["pnet"]).run
    for name, run in runs.items():
        with torch.no_grad():
            reg, prob = run(x)
        for k, level in enumerate(alone):
            ys, xs = layout.cells(k)
            want_reg, want_prob = plain(level)
            assert np.abs(prob[:, :, ys, xs] - want_prob).max() < 1e-5, (name, k)
            assert np.abs(reg[:, :, ys, xs] - want_reg).max() < 1e-5, (name, k)


def test_packing_changes_no_detection(built_mtcnn, lfw_images):
    # Photos of many sizes (each packs alone, also in a batch) and LFW photos of one size (packed
    # at batch 1, run level by level at batch 16): the same detections as never packing.
    rng = np.random.default_rng(3)
    mixed = [cv2.resize(im, (int(rng.integers(90, 700)), int(rng.integers(90, 700)))) for im in lfw_images[:12]]
    packed = open_detector()
    plain = open_detector(config=MTCNNConfig(pnet_pack_pixels=0))
    assert plain.packed_pnet is None and open_detector("onnxruntime").packed_pnet is None
    calls = []
    real = packed.packed_pnet.run
    packed.packed_pnet.run = lambda batch: calls.append(len(batch)) or real(batch)
    want = plain.detect(mixed) + plain.detect(lfw_images[:16])
    got = [packed.detect([im])[0] for im in mixed[:6]] + packed.detect(mixed[6:])
    assert sum(calls) == 12  # every photo packed: six alone, six of different sizes in one batch
    calls.clear()
    got += packed.detect(lfw_images[:16])
    assert calls == []  # 16 photos of one size: levels of one shape already batch across photos
    for a, b in zip(got, want, strict=True):
        assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.landmarks, b.landmarks)
    assert sum(len(d) > 0 for d in got) >= 0.9 * len(got)  # not an empty comparison (some photos shrink to 90 px)
