"""MTCNN nets: the input convention of the shipped files, both importers, and the NCHW exports."""

import numpy as np
import onnx
import pytest
import torch

from facenet_offline.model_cache import MTCNN_INPUT_SIZES, mtcnn_parity_patches, run_shipped_mtcnn
from facenet_offline.models.mtcnn import NETS
from facenet_offline.runtime.onnxruntime import OnnxRuntimeBackend
from facenet_offline.runtime.torch import TorchBackend
from facenet_offline.weights import MTCNN, resolve_detector_weights
from facenet_offline.weights.loader import load_mtcnn

from .conftest import centre_crop


@pytest.fixture(scope="module")
def nets():
    return load_mtcnn()


def test_shipped_onet_expects_transposed_rgb_standardised_input(lfw_images):
    """The experiment behind the spec: on real faces, only transposed RGB input in (x-127.5)/128 is confidently a face."""
    import cv2
    import onnxruntime as ort

    path = resolve_detector_weights(MTCNN)["onet"].path
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    faces = np.stack([cv2.resize(centre_crop(im, 110), (48, 48), interpolation=cv2.INTER_AREA)
                      for im in lfw_images]).astype(np.float32)
    score = {}
    for colour in ("RGB", "BGR"):
        for transposed in (False, True):
            for scaling in ("standardised", "unit"):
                x = faces[..., ::-1] if colour == "BGR" else faces
                x = (x - 127.5) / 128 if scaling == "standardised" else x / 255
                x = x.transpose(0, 2, 1, 3) if transposed else x
                prob = session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(x, np.float32)})[2][:, 1]
                score[(colour, transposed, scaling)] = float(prob.mean())
    best = max(score, key=score.get)
    assert best == (MTCNN.colour, MTCNN.shipped_input_transposed, "standardised"), score
    assert score[best] > 0.99 and score[("RGB", False, "standardised")] < 0.6


@pytest.mark.parametrize("name", list(NETS))
def test_our_nets_match_the_shipped_files_on_real_patches(nets, name):
    x = mtcnn_parity_patches(name)
    shipped = run_shipped_mtcnn(resolve_detector_weights(MTCNN)[name].path, name, x)
    ours = TorchBackend(nets[name]).run(x)
    assert len(shipped) == len(ours)
    for a, b in zip(shipped, ours):
        assert a.shape == b.shape and np.max(np.abs(a - b)) <= 1e-4


@pytest.mark.parametrize("name", list(NETS))
def test_exports_are_nchw_dynamic_and_match_torch(built_mtcnn, nets, name):
    model = onnx.load(str(built_mtcnn.files[name]))
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    size = MTCNN_INPUT_SIZES[name]
    assert dims == (["batch", 3, "height", "width"] if size is None else ["batch", 3, size, size])
    assert built_mtcnn.record["parity_shipped"][name] <= 1e-4 and built_mtcnn.record["parity_torch"][name] <= 1e-4
    rng = np.random.default_rng(1)
    shape = (3, 3, 37, 53) if size is None else (5, 3, size, size)  # odd sizes and another batch
    x = rng.uniform(-1, 1, shape).astype(np.float32)
    for a, b in zip(OnnxRuntimeBackend(built_mtcnn.files[name]).run(x), TorchBackend(nets[name]).run(x)):
        assert np.max(np.abs(a - b)) <= 1e-4


def test_facenet_pytorch_mtcnn_state_dicts_load_strictly(tmp_path, nets):
    for name, net in nets.items():  # our modules use facenet-pytorch's names: its files are our state dicts
        torch.save(net.state_dict(), tmp_path / f"{name}.pt")
    loaded = load_mtcnn(tmp_path)
    x = mtcnn_parity_patches("onet")
    for a, b in zip(TorchBackend(loaded["onet"]).run(x), TorchBackend(nets["onet"]).run(x)):
        assert np.array_equal(a, b)
    state = torch.load(tmp_path / "rnet.pt", weights_only=True)
    state["dense4.weight"] = state.pop("dense4.weight")[:, :100]  # wrong shape is caught by torch...
    del state["prelu4.weight"]  # ...a missing tensor is named by us
    torch.save(state, tmp_path / "rnet.pt")
    with pytest.raises(Exception, match="prelu4.weight"):
        load_mtcnn(tmp_path)


def test_tampered_shipped_net_is_refused(tmp_path):
    from facenet_offline.errors import ChecksumError
    from facenet_offline.weights.sources import verify

    original = resolve_detector_weights(MTCNN)["pnet"].path
    bad = tmp_path / "pnet.onnx"
    data = bytearray(original.read_bytes())
    data[-10] ^= 1
    bad.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="pnet.onnx"):
        verify(bad, MTCNN.sources["pnet"], "mtcnn pnet")
