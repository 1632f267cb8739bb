"""FP16 and INT8 models: numerically close to float32 on real faces; the calibration set is disjoint from LFW pairs."""

import numpy as np
import pytest

from facenet_offline.build import BuildOptions, build_facenet
from facenet_offline.data.calibration import CalibrationSet, check_disjoint
from facenet_offline.data.lfw import images_in_pairs, read_pairs
from facenet_offline.data.tensors import resize_face, standardise
from facenet_offline.errors import FacenetOfflineError
from facenet_offline.export.quantize import Precision
from facenet_offline.runtime.onnxruntime import OnnxRuntimeBackend


def _cosines(a, b):
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def faces(lfw_faces):
    return standardise(np.stack([resize_face(f, 160) for f in lfw_faces]), 127.5, 128.0)


def test_fp16_matches_fp32_closely(built_default, faces):
    fp16 = build_facenet(BuildOptions(precision="fp16"))
    assert fp16.record["precision"] == "fp16" and fp16.path != built_default.path
    (ref,), (low,) = OnnxRuntimeBackend(built_default.path).run(faces), OnnxRuntimeBackend(fp16.path).run(faces)
    assert low.dtype == np.float32 and low.shape == ref.shape  # float32 in and out
    assert _cosines(ref, low).min() >= 0.9999 and np.abs(ref - low).max() <= 2e-3


def test_int8_embeddings_stay_close_to_fp32_on_real_faces(built_default, built_mtcnn, faces):
    # Tolerance: cosine similarity at least 0.995 for every face (INT8 costs 0.03 LFW points; docs/precision.md).
    int8 = build_facenet(BuildOptions(precision="int8", calibration_images=32))
    cal = int8.record["calibration"]
    assert cal["set"] == "lfw-outside-pairs-32" and cal["images"] == 32 and cal["method"] == "percentile"
    (ref,), (low,) = OnnxRuntimeBackend(built_default.path).run(faces), OnnxRuntimeBackend(int8.path).run(faces)
    cos = _cosines(ref, low)
    assert cos.min() >= 0.995, cos.min()
    assert cos.mean() < 0.99999  # really quantized, not a copy of the float model


def test_calibration_set_is_disjoint_from_the_pairs_and_reproducible(lfw_dir):
    a, b = CalibrationSet(64).paths(lfw_dir), CalibrationSet(64).paths(lfw_dir)
    assert a == b and len(set(a)) == 64
    check_disjoint(a, lfw_dir / "pairs.txt", lfw_dir)  # no error
    used = set(images_in_pairs(lfw_dir, read_pairs(lfw_dir / "pairs.txt")))
    assert not used & set(a)


def test_overlapping_calibration_set_is_refused(lfw_dir):
    evaluated = images_in_pairs(lfw_dir, read_pairs(lfw_dir / "pairs.txt"))[:3]
    with pytest.raises(FacenetOfflineError, match="overlaps the evaluated pairs") as err:
        check_disjoint(CalibrationSet(8).paths(lfw_dir) + evaluated, lfw_dir / "pairs.txt", lfw_dir)
    assert str(evaluated[0]) in str(err.value)


def test_unknown_precision_lists_the_valid_ones():
    with pytest.raises(ValueError, match="fp32, fp16, int8"):
        Precision.parse("int4")


@pytest.mark.parametrize("count", [20, 13])
def test_int8_calibrates_on_any_number_of_inputs(tmp_path, count):
    """Histogram calibration stacks every batch of a tensor; a short last batch must not break it."""
    import torch

    from facenet_offline.export.quantize import Int8Config, to_int8

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    source = tmp_path / "tiny.onnx"
    torch.onnx.export(net, torch.zeros(1, 3, 8, 8), str(source), input_names=["x"], dynamic_axes={"x": {0: "n"}},
                      dynamo=False)
    data = np.random.default_rng(0).normal(size=(count, 3, 8, 8)).astype(np.float32)
    out = to_int8(source, tmp_path / "tiny8.onnx", data, Int8Config(method="percentile"))
    (ref,), (low,) = OnnxRuntimeBackend(source).run(data), OnnxRuntimeBackend(out).run(data)
    assert np.abs(ref - low).max() <= 0.05 * np.abs(ref).max()


def test_int8_without_calibration_inputs_is_a_clear_error(tmp_path):
    from facenet_offline.export.quantize import to_int8

    with pytest.raises(ValueError, match="no inputs; calibrate on at least one image"):
        to_int8(tmp_path / "model.onnx", tmp_path / "model8.onnx", np.zeros((0, 3, 8, 8), np.float32))
