"""ONNX export: checked, dynamic, cached, and numerically equal to torch on real faces."""

import numpy as np
import onnx
import pytest
import torch

from facenet_offline.convert.export_config import ExportConfig
from facenet_offline.convert.onnx import check_parity, export_onnx
from facenet_offline.data.tensors import InputNorm, resize_face, standardise
from facenet_offline.errors import ExportParityError
from facenet_offline.model_cache import BuildOptions, build_facenet
from facenet_offline.runtime.onnxruntime import OnnxRuntimeBackend, make_session
from facenet_offline.runtime.torch import TorchBackend


def test_export_has_named_io_dynamic_batch_and_opset(built_default):
    model = onnx.load(str(built_default.path))
    onnx.checker.check_model(model)
    (inp,), (out,) = model.graph.input, model.graph.output
    assert (inp.name, out.name) == ("input", "embeddings")
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["batch", 3, 160, 160]
    assert model.opset_import[0].version == 17
    assert built_default.record["parity_max_abs_diff"] <= 1e-4


def test_torch_and_onnxruntime_agree_on_real_faces(built_default, facenet_torch, lfw_faces):
    batch = standardise(np.stack([resize_face(f, 160) for f in lfw_faces]), InputNorm())
    (ours,) = OnnxRuntimeBackend(built_default.path, threads=2).run(batch)
    (ref,) = TorchBackend(facenet_torch).run(batch)
    assert ours.shape == (len(lfw_faces), 512)
    assert np.max(np.abs(ours - ref)) <= 1e-4
    for n in (1, 5):  # the dynamic batch axis works at other sizes and gives the same rows
        assert np.max(np.abs(OnnxRuntimeBackend(built_default.path).run(batch[:n])[0] - ref[:n])) <= 1e-4


def test_cached_build_is_reused_and_a_corrupt_one_rebuilt(built_default):
    again = build_facenet()
    assert again.path == built_default.path and again.record == built_default.record
    mtime = built_default.path.stat().st_mtime_ns
    data = bytearray(built_default.path.read_bytes())
    data[-100] ^= 0xFF
    built_default.path.write_bytes(bytes(data))
    rebuilt = build_facenet()
    assert rebuilt.path.stat().st_mtime_ns != mtime
    assert rebuilt.record["files"] == built_default.record["files"]  # export is deterministic


def test_cache_key_depends_on_options(built_default):
    from facenet_offline.model_cache import facenet_cache_dir
    from facenet_offline.weights import get_spec

    spec, sha = get_spec("casia-webface"), built_default.record["weights"]["sha256"]
    assert facenet_cache_dir(spec, sha, BuildOptions()) != facenet_cache_dir(spec, sha, BuildOptions(opset=13))
    assert facenet_cache_dir(spec, sha, BuildOptions()) != facenet_cache_dir(spec, "0" * 64, BuildOptions())


def test_an_int8_build_is_keyed_by_the_lfw_copy_it_calibrates_on(tmp_path, monkeypatch, lfw_dir):
    import os
    import shutil

    from facenet_offline.errors import FacenetOfflineError
    from facenet_offline.model_cache import RECORD, facenet_build_dir

    int8 = BuildOptions(precision="int8")
    here = facenet_build_dir(int8)
    assert facenet_build_dir(int8) == here and facenet_build_dir(BuildOptions()) != here
    copy = tmp_path / "lfw"  # the same photos under the same names, elsewhere (linked: quick, and no space)
    shutil.copytree(lfw_dir, copy, copy_function=os.link)
    monkeypatch.setenv("FACENET_OFFLINE_LFW", str(copy))
    there = facenet_build_dir(int8)
    assert there != here and there.parent == here.parent  # not the other copy's model
    # With no LFW at all, the newest complete build of these options is the one, and none is an error.
    monkeypatch.setenv("FACENET_OFFLINE_LFW", str(tmp_path / "nowhere"))
    monkeypatch.setenv("FACENET_OFFLINE_HOME", str(tmp_path / "home"))
    with pytest.raises(FacenetOfflineError, match="nowhere"):
        facenet_build_dir(int8)
    monkeypatch.setenv("FACENET_OFFLINE_LFW", str(copy))
    made = facenet_build_dir(int8)
    made.mkdir(parents=True)
    (made / RECORD).write_text("{}")
    monkeypatch.setenv("FACENET_OFFLINE_LFW", str(tmp_path / "nowhere"))
    assert facenet_build_dir(int8) == made


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


@pytest.mark.parametrize("opset", [13, 17])
def test_opset_is_configurable(tmp_path, opset):
    path = export_onnx(_Tiny(), torch.zeros(1, 3, 8, 8), tmp_path / "tiny.onnx",
                       ExportConfig(output_names=("out",), dynamic_axes={"input": {0: "b"}}, opset=opset))
    assert onnx.load(str(path)).opset_import[0].version == opset


def test_parity_failure_is_reported(tmp_path):
    torch.manual_seed(0)
    exported = _Tiny()
    path = export_onnx(exported, torch.zeros(1, 3, 8, 8), tmp_path / "tiny.onnx", ExportConfig(output_names=("out",)))
    other = _Tiny()  # different random weights: parity must fail
    with pytest.raises(ExportParityError, match="tiny.onnx"):
        check_parity(other, path, [np.random.default_rng(0).normal(size=(1, 3, 8, 8)).astype(np.float32)])


def test_unavailable_provider_lists_available_ones(built_default):
    with pytest.raises(ValueError, match="CPUExecutionProvider"):
        make_session(built_default.path, providers=["NoSuchExecutionProvider"])


def test_openvino_backend_runs_our_onnx_model_with_the_same_result(built_default, lfw_faces):
    from facenet_offline.data.tensors import InputNorm, resize_face, standardise
    from facenet_offline.runtime.openvino import OpenVinoBackend

    batch = standardise(np.stack([resize_face(f, 160) for f in lfw_faces[:6]]), InputNorm())
    (ours,) = OnnxRuntimeBackend(built_default.path).run(batch)
    (theirs,) = OpenVinoBackend(built_default.path, threads=2).run(batch)
    assert np.max(np.abs(ours - theirs)) <= 1e-4
