"""Build ready networks from verified weights: FaceNet from a registered model, MTCNN's three nets."""

from __future__ import annotations

import logging
import os

import torch

from ..models.inception_resnet_v1 import InceptionResnetV1
from ..models.mtcnn import NETS
from .keras_h5 import load_keras_h5
from .onnx_initializers import state_dict_from_onnx
from .registry import DEFAULT_MODEL, MTCNN, DetectorSpec, ModelSpec, WeightFormat, get_spec
from .sources import ResolvedWeights, resolve_detector_weights, resolve_weights
from .tf_graph import load_tf_graph
from .torch_state import check_keys, load_plain_state, load_torch_state

log = logging.getLogger(__name__)


def load_state(weights: ResolvedWeights, spec: ModelSpec) -> dict:
    """Folded FaceNet state dict of a resolved weights file, whatever its format."""
    if weights.format is WeightFormat.TF_GRAPH:
        return load_tf_graph(weights.path)
    if weights.format is WeightFormat.KERAS_H5:
        return load_keras_h5(weights.path, spec.embedding_dim)
    return load_torch_state(weights.path)


def load_facenet(model: str | ModelSpec = DEFAULT_MODEL, weights_path: str | os.PathLike | None = None) -> InceptionResnetV1:
    """Folded, eval-mode FaceNet with ``.spec`` and ``.weights`` (path, format, sha256) attached."""
    spec = get_spec(model) if isinstance(model, str) else model
    weights = resolve_weights(spec, weights_path)
    log.info("loading %s weights from %s (sha256 %s)", spec.name, weights.path, weights.sha256[:12])
    state = load_state(weights, spec)
    net = InceptionResnetV1(folded=True, embedding_dim=spec.embedding_dim)
    check_keys(set(net.state_dict()), set(state), str(weights.path))
    net.load_state_dict(state, strict=True)
    net.spec, net.weights = spec, weights
    return net.eval()


def load_mtcnn(folder: str | os.PathLike | None = None, spec: DetectorSpec = MTCNN) -> dict[str, torch.nn.Module]:
    """Eval-mode ``{"pnet": PNet, "rnet": RNet, "onet": ONet}``, each with ``.weights`` attached."""
    nets: dict[str, torch.nn.Module] = {}
    for name, weights in resolve_detector_weights(spec, folder).items():
        net = NETS[name]()
        if weights.format is WeightFormat.ONNX_KERAS:
            state = state_dict_from_onnx(weights.path, name)
        else:
            state = load_plain_state(weights.path)
        check_keys(set(net.state_dict()), set(state), str(weights.path))
        net.load_state_dict(state, strict=True)
        net.weights = weights
        nets[name] = net.eval()
    return nets
