"""Accelerator exports: every variant runs under ONNX Runtime and matches the generic export; NPU graphs
carry nothing an NPU compiler rejects."""

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from facenet_offline.cli import main
from facenet_offline.export.targets import NPU_OPSET, constant_clips, export_target, graph_problems, prelu_to_relu


@pytest.fixture(scope="module")
def npu(tmp_path_factory, built_default, built_mtcnn):
    return export_target("npu", tmp_path_factory.mktemp("npu"))


def test_npu_variants_match_generic_and_pass_the_graph_checks(npu):
    assert set(npu.files) == {"facenet_bs1", "facenet_bs16", "pnet", "rnet", "onet"}
    for name, path in npu.files.items():
        model = onnx.load(str(path))
        assert graph_problems(model) == [], name
        assert not [n for n in model.graph.node if n.op_type == "PRelu"]
        assert model.opset_import[0].version == NPU_OPSET
        assert npu.parity[name] <= 1e-4, (name, npu.parity[name])
    static = onnx.load(str(npu.files["facenet_bs16"])).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in static] == [16, 3, 160, 160]
    clips = [n for n in onnx.load(str(npu.files["facenet_bs1"])).graph.node if n.op_type == "Clip"]
    assert clips and all(len(n.input) == 3 for n in clips)
    assert "PReLU rewritten" in (npu.folder / "README.md").read_text()


def test_npu_compiler_script_targets_the_reference_chip_with_shapes_it_accepts(npu, tmp_path, built_default,
                                                                               built_mtcnn):
    # Ascend 310 (the NPU reference's chip) takes shape profiles, not --input_shape_range.
    atc = (npu.folder / "atc.sh").read_text()
    assert 'SOC="${SOC_VERSION:-Ascend310}"' in atc and "input_shape_range" not in atc
    assert '--input_shape="input:16,3,-1,-1" --dynamic_image_size="150,150;107,107;76,76;54,54;38,38;27,27;20,20;14,14"' \
        in atc  # PNet: the pyramid of a 250 x 250 LFW photo, at each static batch
    rows = "2,4,6,8,10,12,14,16,18,20,22,24,26,28,30,32,64,96,128,160,192,224,256"
    assert f'--input_shape="input:-1,3,24,24" --dynamic_batch_size="{rows}"' in atc  # every run size RNet sees
    assert '--input_shape="input:16,3,160,160"' in atc
    readme = (npu.folder / "README.md").read_text()
    for contract in ("(x - 127.5) / 128", "`embeddings`: N x 512", "`landmarks`: N x 10", "`prob`: N x 2 softmax",
                     "facenet-offline preprocess", "facenet-offline postprocess", "Ascend 310"):
        assert contract in readme, contract
    # Newer chips: the reference's ranges, by choice, said to be unsupported on Ascend 310.
    assert main(["export", "--target", "npu", "--out", str(tmp_path), "--npu-shapes", "ranges",
                 "--facenet-batches", "1"]) == 0
    ranges = (tmp_path / "atc.sh").read_text()
    assert 'input_shape_range="input:[1~32,3,1~1500,1~1500]"' in ranges and "dynamic_batch_size" not in ranges
    assert "do not support it" in (tmp_path / "README.md").read_text()


def test_pnet_profiles_are_the_shapes_the_detector_runs(lfw_images):
    from facenet_offline.detect.mtcnn import MTCNNConfig
    from facenet_offline.export.targets import mtcnn_row_profiles, pnet_level_sizes

    c = MTCNNConfig()
    assert mtcnn_row_profiles()[0] == c.small_bucket and mtcnn_row_profiles()[-1] == c.rnet_batch
    assert pnet_level_sizes(250, 250)[0] == (150, 150) and pnet_level_sizes(300, 200)[0] == (120, 180)


def test_tensorrt_variant_names_tensors_and_skips_engines_clearly(tmp_path, built_default, built_mtcnn, capsys):
    assert main(["export", "--target", "tensorrt", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "TensorRT engines not built" in printed
    model = onnx.load(str(tmp_path / "facenet.onnx"))
    produced = {o for n in model.graph.node for o in n.output}
    assert {"avgpool", "last_bn", "embeddings"} <= produced
    assert [n.op_type for n in model.graph.node if "avgpool" in n.output] == ["GlobalAveragePool"]
    assert [n.op_type for n in model.graph.node if "last_bn" in n.output] == ["BatchNormalization"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch
    assert (tmp_path / "calibration.bin").stat().st_size == 256 * 3 * 160 * 160 * 4
    assert "--minShapes=input:1x3x160x160" in (tmp_path / "trtexec.sh").read_text()
    for name in ("pnet", "rnet", "onet", "facenet"):
        assert f"{name}.onnx" in printed


def test_generic_export_is_the_runtime_models(tmp_path, built_default, built_mtcnn):
    result = export_target("generic", tmp_path)
    assert set(result.files) == {"facenet", "pnet", "rnet", "onet"} and max(result.parity.values()) == 0.0


def _run(model, x):
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_prelu_rewrite_is_exact_and_clips_get_constant_bounds():
    rng = np.random.default_rng(0)
    slope = rng.normal(size=(4, 1, 1)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("PRelu", ["x", "slope"], ["p"], name="act"),
         helper.make_node("Constant", [], ["lo"], value=numpy_helper.from_array(np.float32(-0.5))),
         helper.make_node("Clip", ["p", "lo"], ["y"], name="clip")],
        "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 4, 3, 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 4, 3, 3])],
        [numpy_helper.from_array(slope, "slope")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", NPU_OPSET)], ir_version=7)
    x = rng.normal(size=(2, 4, 3, 3)).astype(np.float32) * 3
    before = _run(model, x)
    assert prelu_to_relu(model) == 1 and constant_clips(model) == 1
    onnx.checker.check_model(model)
    assert graph_problems(model) == []
    assert np.array_equal(_run(model, x), before)  # bit for bit
    bad = helper.make_model(helper.make_graph(
        [helper.make_node("Clip", ["x", "x"], ["y"], name="dyn")], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])]))
    with pytest.raises(Exception, match="computed at run time"):
        constant_clips(bad)
