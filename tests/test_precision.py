"""FP16 and INT8 models: numerically close to float32 on real faces; the calibration set is disjoint from LFW pairs."""

import json
from pathlib import Path

import numpy as np
import pytest

from facenet_offline.choices import CalibrationMethod, Precision
from facenet_offline.data.lfw_dataset import images_in_pairs, read_pairs
from facenet_offline.data.tensors import InputNorm, resize_face, standardise
from facenet_offline.distance import row_cosine
from facenet_offline.errors import FacenetOfflineError
from facenet_offline.model_cache import BuildOptions, build_facenet
from facenet_offline.model_cache.calibration import CalibrationSet, check_disjoint
from facenet_offline.runtime.onnxruntime import OnnxRuntimeBackend


@pytest.fixture(scope="module")
def faces(lfw_faces):
    return standardise(np.stack([resize_face(f, 160) for f in lfw_faces]), InputNorm())


def test_fp16_matches_fp32_closely(built_default, faces):
    fp16 = build_facenet(BuildOptions(precision="fp16"))
    assert fp16.record["precision"] == "fp16" and fp16.path != built_default.path
    (ref,), (low,) = OnnxRuntimeBackend(built_default.path).run(faces), OnnxRuntimeBackend(fp16.path).run(faces)
    assert low.dtype == np.float32 and low.shape == ref.shape  # float32 in and out
    assert row_cosine(ref, low).min() >= 0.9999 and np.abs(ref - low).max() <= 2e-3


def test_int8_embeddings_stay_close_to_fp32_on_real_faces(built_default, built_mtcnn, faces):
    # Tolerance: cosine similarity at least 0.995 for every face (INT8 costs 0.03 LFW points; docs/precision.md).
    int8 = build_facenet(BuildOptions(precision="int8", calibration_images=32))
    cal = int8.record["calibration"]
    assert cal["set"] == "lfw-outside-pairs-32" and cal["images"] == 32 and cal["method"] == "percentile"
    (ref,), (low,) = OnnxRuntimeBackend(built_default.path).run(faces), OnnxRuntimeBackend(int8.path).run(faces)
    cos = row_cosine(ref, low)
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


def _tiny_net(tmp_path) -> Path:
    """A one-convolution ONNX net with dynamic batch, height and width, seeded."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    source = tmp_path / "tiny.onnx"
    torch.onnx.export(net, torch.zeros(1, 3, 8, 8), str(source), input_names=["x"],
                      dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}}, dynamo=False)
    return source


@pytest.mark.parametrize("count", [20, 13])
def test_int8_calibrates_on_any_number_of_inputs(tmp_path, count):
    """Histogram calibration stacks every batch of a tensor; a short last batch must not break it."""
    from facenet_offline.convert.quantize import Int8Config, to_int8

    source = _tiny_net(tmp_path)
    data = np.random.default_rng(0).normal(size=(count, 3, 8, 8)).astype(np.float32)
    out = to_int8(source, tmp_path / "tiny8.onnx", data, Int8Config(method="percentile"))
    (ref,), (low,) = OnnxRuntimeBackend(source).run(data), OnnxRuntimeBackend(out).run(data)
    assert np.abs(ref - low).max() <= 0.05 * np.abs(ref).max()


def _scalar_scales(path) -> dict:
    import onnx
    from onnx import numpy_helper

    return {t.name: float(numpy_helper.to_array(t)) for t in onnx.load(str(path)).graph.initializer
            if t.name.endswith("_scale") and not t.dims}


def test_entropy_calibration_is_not_minmax_under_another_name(tmp_path):
    """ONNX Runtime's entropy default (128 bins for 128 quantized bins) searches one range, the full one;
    with our settings it clips a long tail, so the activation scales come out smaller than minmax's."""
    from facenet_offline.convert.quantize import Int8Config, to_int8

    source = _tiny_net(tmp_path)
    rng = np.random.default_rng(0)
    data = rng.normal(size=(32, 3, 8, 8)).astype(np.float32)
    data.flat[rng.choice(data.size, 8, replace=False)] *= 40  # a few outliers: the tail minmax must cover
    scales = {m: _scalar_scales(to_int8(source, tmp_path / f"{m}.onnx", data, Int8Config(method=m)))
              for m in ("minmax", "entropy")}
    assert scales["minmax"].keys() == scales["entropy"].keys() and scales["minmax"]
    ratios = [scales["entropy"][k] / scales["minmax"][k] for k in scales["minmax"]]
    assert min(ratios) < 0.5 and max(ratios) <= 1.0 + 1e-6, ratios


def test_int8_calibrates_on_batches_of_different_sizes_with_minmax(tmp_path):
    """A detector's pyramid levels differ in height and width; minmax pools them, histograms refuse."""
    from facenet_offline.convert.quantize import Int8Config, to_int8

    source, rng = _tiny_net(tmp_path), np.random.default_rng(0)
    batches = [rng.normal(size=(2, 3, side, side + 4)).astype(np.float32) for side in (8, 12, 20)]
    out = to_int8(source, tmp_path / "tiny8.onnx", batches, Int8Config(method="minmax"))
    for batch in batches:
        (ref,), (low,) = OnnxRuntimeBackend(source).run(batch), OnnxRuntimeBackend(out).run(batch)
        assert ref.shape == low.shape and np.abs(ref - low).max() <= 0.05 * np.abs(ref).max()
    with pytest.raises(ValueError, match="percentile cannot pool batches of different shapes; calibrate with minmax"):
        to_int8(source, tmp_path / "tiny8p.onnx", batches, Int8Config(method="percentile"))


def test_int8_without_calibration_inputs_is_a_clear_error(tmp_path):
    from facenet_offline.convert.quantize import to_int8

    with pytest.raises(ValueError, match="no inputs; calibrate on at least one image"):
        to_int8(tmp_path / "model.onnx", tmp_path / "model8.onnx", np.zeros((0, 3, 8, 8), np.float32))


def test_held_out_faces_are_outside_the_calibration_set_and_the_pairs(lfw_dir):
    from facenet_offline.model_cache.calibration import HELD_OUT

    held, calibration = HELD_OUT.paths(lfw_dir), CalibrationSet().paths(lfw_dir)
    assert len(set(held)) == HELD_OUT.count == 256 and held == HELD_OUT.paths(lfw_dir)
    assert not set(held) & set(calibration)
    check_disjoint(held, lfw_dir / "pairs.txt", lfw_dir)
    assert HELD_OUT.label == "lfw-held-out-256-not-lfw-outside-pairs-256"


def _precision_row(precision, calibration, cosine_mean, cosine_min, accuracy):
    speed = {"rate_median": 100.0, "runs_s": [0.64] * 7, "noisy": False}
    return {"precision": precision, "calibration": calibration, "batch_size": 64,
            "speed": {"onnxruntime": speed, "openvino": speed}, "vs_fp32": {"onnxruntime": 1.0, "openvino": 1.0}, "accuracy_mean": accuracy, "accuracy_std": 0.004,
            "auc": 0.9987, "val_mean": 0.95, "val_std": 0.01, "far_mean": 0.001,
            "fidelity": {"set": "held-out", "faces": 256, "cosine_mean": cosine_mean, "cosine_min": cosine_min}}


def test_the_calibration_default_is_chosen_on_fidelity_never_on_lfw():
    from facenet_offline.bench.precision import closest_calibration, precision_markdown
    from facenet_offline.choices import DEFAULT_CALIBRATION

    others = [m.value for m in CalibrationMethod if m is not DEFAULT_CALIBRATION]
    rows = [_precision_row("fp32", None, 1.0, 1.0, 0.990),
            _precision_row("int8", others[0], 0.9990, 0.990, 0.999),  # best LFW accuracy, worst fidelity
            _precision_row("int8", DEFAULT_CALIBRATION.value, 0.9995, 0.991, 0.980),
            _precision_row("int8", others[1], 0.9995, 0.995, 0.970)]  # ties on the mean, better worst face
    assert closest_calibration(rows)["calibration"] == others[1]
    md = precision_markdown(rows, "2026-12-03")
    assert f"INT8 with {others[1]} calibration, **not** the default" in md
    rows[3]["fidelity"]["cosine_min"] = 0.9
    assert f"INT8 with {DEFAULT_CALIBRATION.value} calibration, the default" in precision_markdown(rows, "2026-12-03")
    assert "| 0.999500 | 0.99100 |" in precision_markdown(rows, "2026-12-03")


def test_the_precision_page_sets_fp32_against_the_runs_own_ceiling():
    from facenet_offline.bench.precision import precision_markdown

    rows = [_precision_row("fp32", None, 1.0, 1.0, 0.990), _precision_row("fp16", None, 1.0, 1.0, 0.990)]
    assert "ceiling" not in precision_markdown(rows, "2026-12-03")  # older rows: no ceiling recorded, none claimed
    for row in rows:
        row.update(ceiling_gflops=400.0, gflop_per_image=2.0)
    md = precision_markdown(rows, "2026-12-03")
    assert "float32 GEMM at 400.0 GFLOP/s" in md and "reaches 200 GFLOP/s, 50% of it" in md


def test_the_bf16_row_is_timed_and_shown_on_openvino_only():
    from facenet_offline.bench.precision import VARIANTS, Variant, precision_markdown

    bf16 = Variant("fp32", backend="openvino-bf16")
    assert bf16 in VARIANTS and bf16.label == "bf16"
    assert bf16.timed_on(("onnxruntime", "openvino")) == {"openvino": "openvino-bf16"}
    assert Variant("int8").timed_on(("onnxruntime", "openvino")) == {"onnxruntime": "onnxruntime", "openvino": "openvino"}
    row = _precision_row("bf16", None, 0.99995, 0.9998, 0.990)
    del row["speed"]["onnxruntime"], row["vs_fp32"]["onnxruntime"]
    row["vs_fp32"]["openvino"] = 2.5
    md = precision_markdown([_precision_row("fp32", None, 1.0, 1.0, 0.990), row], "2026-12-03")
    assert "| bf16 | - | 64 | - | - | 100.0 | 2.50x | 0.999950 |" in md


def test_openvino_bf16_arithmetic_stays_close_to_float32_on_real_faces(built_default, faces):
    from facenet_offline.runtime.openvino import OpenVinoBackend, has_bf16

    with pytest.raises(ValueError, match="arithmetic 'fp8': use f32 or bf16"):
        OpenVinoBackend(built_default.path, 2, arithmetic="fp8")
    if not has_bf16():
        with pytest.raises(ValueError, match="no native bfloat16 arithmetic"):
            OpenVinoBackend(built_default.path, 2, arithmetic="bf16")
        return
    (ref,), (low,) = (OpenVinoBackend(built_default.path, 2, arithmetic=a).run(faces) for a in ("f32", "bf16"))
    cosine = row_cosine(ref, low)
    assert not np.array_equal(ref, low)  # bf16 really ran
    assert cosine.min() > 0.999, cosine.min()


def test_a_run_without_the_precision_suite_keeps_the_precision_page(tmp_path):
    from facenet_offline.bench.report import write_report

    fresh = {"date": "2026-12-03", "machine": {"cpu": "test", "cores": 2, "python": "3.11", "versions": {}},
             "precision": [_precision_row("fp32", None, 1.0, 1.0, 0.99)]}
    write_report(fresh, tmp_path)
    page = (tmp_path / "precision.md").read_text()
    assert "on 2026-12-03" in page
    # A later run of other suites keeps the precision rows in benchmarks.json but must not redate their page.
    write_report({"date": "2027-01-01", "machine": fresh["machine"]}, tmp_path)
    assert (tmp_path / "precision.md").read_text() == page
    assert json.loads((tmp_path / "results" / "benchmarks.json").read_text())["precision"] == fresh["precision"]
