"""The Keras HDF5 importer: synthetic files of every layer kind, strictness, and the shipped facenet_keras.h5
checked against an independent numpy reading of its own graph."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from facenet_offline.data.tensors import InputNorm, standardise
from facenet_offline.errors import ChecksumError, WeightsLayoutError
from facenet_offline.models.inception_resnet_v1 import InceptionResnetV1
from facenet_offline.samples import load_sample_faces
from facenet_offline.weights.keras_h5 import keras_name, load_keras_h5
from tests.keras_files import run_keras_graph, write_keras_h5


def _random_net(dim: int = 128, seed: int = 0) -> InceptionResnetV1:
    """An unfolded network with batch norms far from the identity, so that folding errors show."""
    torch.manual_seed(seed)
    net = InceptionResnetV1(folded=False, embedding_dim=dim)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
            elif isinstance(m, torch.nn.Conv2d):
                m.weight.mul_(0.7)
    return net.eval()


@pytest.fixture(scope="module")
def random_net():
    return _random_net()


@pytest.fixture(scope="module")
def faces():
    return standardise(load_sample_faces(160)[:2], InputNorm())


def _imported(path, dim=128) -> InceptionResnetV1:
    net = InceptionResnetV1(folded=True, embedding_dim=dim)
    net.load_state_dict(load_keras_h5(path), strict=True)
    return net.eval()


def test_keras_names_follow_the_slim_scopes():
    assert keras_name("InceptionResnetV1/Conv2d_1a_3x3") == "Conv2d_1a_3x3"
    assert keras_name("InceptionResnetV1/Repeat_1/block17_10/Branch_0/Conv2d_1x1") == "Block17_10_Branch_0_Conv2d_1x1"
    assert keras_name("InceptionResnetV1/Block8/Branch_1/Conv2d_0c_3x1") == "Block8_6_Branch_1_Conv2d_0c_3x1"
    assert keras_name("InceptionResnetV1/Mixed_7a/Branch_2/Conv2d_1a_3x3") == "Mixed_7a_Branch_2_Conv2d_1a_3x3"


@pytest.mark.parametrize("gamma", [False, True], ids=["bn-without-gamma", "bn-with-gamma"])
def test_a_synthetic_file_of_every_layer_kind_imports_to_the_same_network(tmp_path, random_net, faces, gamma):
    """Conv2D with and without bias, batch norm with and without gamma, Dense, and the weightless layers
    (input, activation, concatenation, scaled sum, pooling, dropout) as the file's graph: the imported,
    folded network gives the unfolded original's embeddings, and so does the numpy reading of the file."""
    net = random_net
    if not gamma:  # Keras' scale=False: gamma is 1
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
                    m.weight.fill_(1.0)
    path = write_keras_h5(tmp_path / "synthetic.h5", net, gamma=gamma)
    with h5py.File(path) as f:
        kinds = {layer["class_name"] for layer in json.loads(f.attrs["model_config"])["config"]["layers"]}
    assert kinds == {"InputLayer", "Conv2D", "BatchNormalization", "Activation", "Concatenate", "Lambda",
                     "MaxPooling2D", "GlobalAveragePooling2D", "Dropout", "Dense"}
    x = torch.from_numpy(faces)
    with torch.no_grad():
        want = net(x).numpy()
        got = _imported(path)(x).numpy()
    assert np.abs(got - want).max() < 1e-5
    numpy_out = run_keras_graph(path, faces.transpose(0, 2, 3, 1))["Bottleneck_BatchNorm"]
    numpy_out /= np.linalg.norm(numpy_out, axis=1, keepdims=True)
    assert np.abs(numpy_out - want).max() < 1e-5


def test_the_importer_names_missing_and_unexpected_layers(tmp_path, random_net):
    path = write_keras_h5(tmp_path / "odd.h5", random_net, drop=("Block17_3_Branch_1_Conv2d_0b_1x7_BatchNorm",
                                                                 "Bottleneck"),
                          extra={"Logits": {"kernel": np.zeros((128, 10), np.float32)}})
    with pytest.raises(WeightsLayoutError) as err:
        load_keras_h5(path)
    msg = str(err.value)
    assert "odd.h5" in msg and "2 missing layers: Block17_3_Branch_1_Conv2d_0b_1x7_BatchNorm, Bottleneck" in msg
    assert "1 unexpected layers: Logits" in msg


def test_the_importer_checks_the_file_graph_against_the_network(tmp_path, random_net):
    """A weight of the right shape in a wrongly set-up layer would load silently: the config is compared."""
    def edit(layers):
        for layer in layers:
            if layer["name"] == "Block35_2_ScaleSum":
                layer["config"]["arguments"]["scale"] = 0.5
            if layer["name"] == "Conv2d_4a_3x3":
                layer["config"]["padding"] = "same"

    path = write_keras_h5(tmp_path / "edited.h5", random_net, edit=edit)
    with pytest.raises(WeightsLayoutError, match=r"2 layers are set up unlike.*Conv2d_4a_3x3 \(strides \[1, 1\], "
                                                 r"padding 'same'.*Block35_2_ScaleSum \(scale 0.5; the network has 0.17"):
        load_keras_h5(path)


def test_a_weights_only_file_imports_and_a_non_keras_file_is_named(tmp_path, random_net, faces):
    path = write_keras_h5(tmp_path / "weights-only.h5", random_net, config=False)
    with torch.no_grad():
        assert np.abs(_imported(path)(torch.from_numpy(faces)).numpy()
                      - random_net(torch.from_numpy(faces)).numpy()).max() < 1e-5
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(WeightsLayoutError, match="text.h5: not an HDF5 file"):
        load_keras_h5(tmp_path / "text.h5")
    with pytest.raises(WeightsLayoutError, match="512-d bottleneck, but the model expects 128-d"):
        load_keras_h5(write_keras_h5(tmp_path / "wide.h5", _random_net(512)), embedding=128)


def test_the_shipped_file_matches_a_numpy_reading_of_its_own_graph(ms_celeb_weights, faces):
    """The independent check of the conversion: the Keras graph of facenet_keras.h5, run layer by layer
    in numpy from its model_config, against the imported torch network, before and after normalisation."""
    reference = run_keras_graph(ms_celeb_weights, faces.transpose(0, 2, 3, 1))
    net = _imported(ms_celeb_weights)
    x = torch.from_numpy(faces)
    with torch.no_grad():
        block35 = net.repeat_1[0](net.conv2d_4b(net.conv2d_4a(net.conv2d_3b(net.maxpool_3a(
            net.conv2d_2b(net.conv2d_2a(net.conv2d_1a(x))))))))
        raw = net.last_bn(net.last_linear(net.features(x)))
    assert np.abs(block35.numpy().transpose(0, 2, 3, 1) - reference["Block35_1_Activation"]).max() < 1e-4
    assert np.abs(raw.numpy() - reference["Bottleneck_BatchNorm"]).max() < 1e-4
    assert np.abs(raw.numpy()).max() > 0.5  # a real output, not zeros against zeros


def test_the_shipped_file_is_verified_and_a_changed_one_refused(ms_celeb_weights, tmp_path):
    from facenet_offline.weights import get_spec, resolve_weights

    spec = get_spec("msceleb")
    resolved = resolve_weights(spec, ms_celeb_weights)
    assert resolved.sha256 == spec.default_source.sha256 and resolved.format.value == "keras_h5"
    changed = tmp_path / "facenet_keras.h5"
    data = bytearray(ms_celeb_weights.read_bytes())
    data[-1] ^= 0xFF
    changed.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="does not match the published 6acdd8fb"):
        resolve_weights(spec, changed)
