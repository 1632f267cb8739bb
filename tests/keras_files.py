"""Keras HDF5 files for the importer's tests, and a second reading of such a file that shares nothing with it.

``write_keras_h5`` writes a facenet-pytorch state dict as the Keras conversion of davidsandberg/facenet
lays it out (every layer kind of ``facenet_keras.h5``, its model_config included). ``run_keras_graph``
executes a Keras file's model_config in numpy, NHWC, with TensorFlow's padding rule and unfolded
batch norm, taking each weight by the name the file gives it: an interpreter independent of the
importer's unit table, its folding and torch.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import h5py
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from facenet_offline.models.inception_resnet_v1 import InceptionResnetV1
from facenet_offline.weights.keras_h5 import block_prefixes, keras_name
from facenet_offline.weights.slim_scopes import ROOT, conv_bn_scopes

# ---------------------------------------------------------------------------------------------- writer


class _Graph:
    def __init__(self):
        self.layers: list[dict] = []

    def add(self, name: str, kind: str, inputs: list[str], **config) -> str:
        self.layers.append({"name": name, "class_name": kind, "config": {"name": name, **config},
                            "inbound_nodes": [[[i, 0, 0, {}] for i in inputs]] if inputs else []})
        return name

    def unit(self, name: str, conv, x: str, gamma: bool) -> str:
        """Conv (no bias), batch norm, ReLU: one slim conv unit as Keras layers."""
        pad = "valid" if conv.padding == (0, 0) else "same"
        self.add(name, "Conv2D", [x], filters=conv.out_channels, kernel_size=list(conv.kernel_size),
                 strides=list(conv.stride), padding=pad, activation="linear", use_bias=False)
        self.add(f"{name}_BatchNorm", "BatchNormalization", [name], axis=3, epsilon=0.001, center=True, scale=gamma)
        return self.add(f"{name}_Activation", "Activation", [f"{name}_BatchNorm"], activation="relu")

    def pool(self, name: str, x: str) -> str:
        return self.add(name, "MaxPooling2D", [x], pool_size=[3, 3], strides=[2, 2], padding="valid")


def keras_graph(net: InceptionResnetV1, gamma: bool = False) -> list[dict]:
    """The Keras layer list (model_config order) of ``net``, named as ``facenet_keras.h5`` names it."""
    g, x = _Graph(), "input_1"
    g.add("input_1", "InputLayer", [], batch_input_shape=[None, 160, 160, 3])
    branches: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for scope, prefix in conv_bn_scopes():
        parts = scope.removeprefix(ROOT + "/").split("/Branch_")
        conv = net.get_submodule(f"{prefix}.conv")
        if len(parts) == 1:  # the stem
            x = g.unit(keras_name(scope), conv, x, gamma)
            if parts[0] == "Conv2d_2b_3x3":
                x = g.pool("MaxPool_3a_3x3", x)
            continue
        branches[keras_name(f"{ROOT}/{parts[0]}")][parts[1][0]].append((keras_name(scope), conv))
    blocks = block_prefixes()
    for block, by_branch in branches.items():
        ends = []
        for units in by_branch.values():
            y = x
            for name, conv in units:
                y = g.unit(name, conv, y, gamma)
            ends.append(y)
        if block not in blocks:  # Mixed_6a / Mixed_7a: a max-pool branch, then the concatenation is the block
            ends.append(g.pool(f"{block}_Branch_{len(ends)}_MaxPool_1a_3x3", x))
            x = g.add(block, "Concatenate", ends, axis=3)
            continue
        module = net.get_submodule(blocks[block])
        cat = g.add(f"{block}_Concatenate", "Concatenate", ends, axis=3)
        g.add(f"{block}_Conv2d_1x1", "Conv2D", [cat], filters=module.conv2d.out_channels, kernel_size=[1, 1],
              strides=[1, 1], padding="same", activation="linear", use_bias=True)
        x = g.add(f"{block}_ScaleSum", "Lambda", [x, f"{block}_Conv2d_1x1"], arguments={"scale": module.scale})
        if isinstance(module.relu, type(net.conv2d_1a.relu)):
            x = g.add(f"{block}_Activation", "Activation", [x], activation="relu")
    g.add("AvgPool", "GlobalAveragePooling2D", [x])
    g.add("Dropout", "Dropout", ["AvgPool"], rate=0.2)
    g.add("Bottleneck", "Dense", ["Dropout"], units=net.last_linear.out_features, use_bias=False)
    g.add("Bottleneck_BatchNorm", "BatchNormalization", ["Bottleneck"], axis=-1, epsilon=0.001, center=True,
          scale=gamma)
    return g.layers


def keras_weights(net: InceptionResnetV1, gamma: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """Layer -> {weight name: array} of an unfolded ``net``, in Keras's layouts (HWIO kernels)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for layer in keras_graph(net, gamma):
        name, kind = layer["name"], layer["class_name"]
        if kind not in ("Conv2D", "BatchNormalization", "Dense"):
            continue
        prefix = _torch_prefix(net, name)
        module = net.get_submodule(prefix)
        if kind == "Conv2D":
            out[name] = {"kernel": module.weight.detach().numpy().transpose(2, 3, 1, 0)}
            if module.bias is not None:
                out[name]["bias"] = module.bias.detach().numpy()
        elif kind == "Dense":
            out[name] = {"kernel": module.weight.detach().numpy().T}
        else:
            out[name] = {"beta": module.bias.detach().numpy(), "moving_mean": module.running_mean.numpy(),
                         "moving_variance": module.running_var.numpy()}
            if gamma:
                out[name]["gamma"] = module.weight.detach().numpy()
    return out


def _torch_prefix(net: InceptionResnetV1, layer: str) -> str:
    names = {keras_name(s): p for s, p in conv_bn_scopes()}
    names |= {f"{b}_Conv2d_1x1": f"{p}.conv2d" for b, p in block_prefixes().items()}
    if layer in ("Bottleneck", "Bottleneck_BatchNorm"):
        return "last_linear" if layer == "Bottleneck" else "last_bn"
    if layer.endswith("_BatchNorm"):
        return names[layer.removesuffix("_BatchNorm")] + ".bn"
    prefix = names[layer]
    return prefix if prefix.endswith("conv2d") else prefix + ".conv"


def write_keras_h5(path: Path, net: InceptionResnetV1, gamma: bool = False, config: bool = True,
                   drop: tuple[str, ...] = (), extra: dict[str, dict[str, np.ndarray]] | None = None,
                   edit=None) -> Path:
    """``net`` (unfolded) as a Keras HDF5 file; ``drop`` leaves layers out, ``extra`` adds layers,
    ``edit(layers)`` changes the model_config before it is written."""
    weights = {k: v for k, v in keras_weights(net, gamma).items() if k not in drop} | (extra or {})
    layers = keras_graph(net, gamma)
    if edit:
        edit(layers)
    with h5py.File(path, "w") as f:
        if config:
            f.attrs["model_config"] = json.dumps({"class_name": "Model", "config": {
                "name": "inception_resnet_v1", "layers": layers}})
        root = f.create_group("model_weights")
        names = [layer["name"] for layer in layers if layer["name"] not in drop] + [n for n in extra or {}]
        root.attrs["layer_names"] = [n.encode() for n in names]
        for name in names:
            group = root.create_group(name)
            tensors = weights.get(name, {})
            group.attrs["weight_names"] = [f"{name}/{w}:0".encode() for w in tensors]
            for w, array in tensors.items():
                group.create_dataset(f"{name}/{w}:0", data=array.astype(np.float32))
    return path


# --------------------------------------------------------------------------------- numpy interpreter


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same': the output is ceil(size / stride), the extra pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _conv(x: np.ndarray, kernel: np.ndarray, bias, strides, padding: str) -> np.ndarray:
    kh, kw = kernel.shape[:2]
    if padding == "same":
        x = np.pad(x, ((0, 0), _same_padding(x.shape[1], kh, strides[0]), _same_padding(x.shape[2], kw, strides[1]),
                       (0, 0)))
    windows = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::strides[0], ::strides[1]]  # N H W C kh kw
    out = np.tensordot(windows, kernel.transpose(2, 0, 1, 3), axes=([3, 4, 5], [0, 1, 2]))
    return out + bias if bias is not None else out


def run_keras_graph(path: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's output for N x 160 x 160 x 3 float32 ``images`` (already standardised), by layer name."""
    with h5py.File(path, "r") as f:
        layers = json.loads(f.attrs["model_config"])["config"]["layers"]
        root = f["model_weights"]

        def weights(name: str) -> dict[str, np.ndarray]:
            group = root[name]
            names = [w.decode() if isinstance(w, bytes) else str(w) for w in group.attrs["weight_names"]]
            return {w.rsplit("/", 1)[-1].split(":")[0]: np.asarray(group[w], np.float64) for w in names}

        out: dict[str, np.ndarray] = {}
        for layer in layers:
            kind, cfg, name = layer["class_name"], layer["config"], layer["name"]
            ins = [out[node[0]] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
            if kind == "InputLayer":
                y = images.astype(np.float64)
            elif kind == "Conv2D":
                w = weights(name)
                y = _conv(ins[0], w["kernel"], w.get("bias"), cfg["strides"], cfg["padding"])
            elif kind == "BatchNormalization":
                w = weights(name)
                y = (ins[0] - w["moving_mean"]) / np.sqrt(w["moving_variance"] + cfg["epsilon"])
                y = y * w.get("gamma", 1.0) + w["beta"]
            elif kind == "Activation":
                y = np.maximum(ins[0], 0) if cfg["activation"] == "relu" else ins[0]
            elif kind == "Concatenate":
                y = np.concatenate(ins, axis=-1)
            elif kind == "Lambda" and name.endswith("_ScaleSum"):  # inputs[0] + inputs[1] * scale
                y = ins[0] + ins[1] * cfg["arguments"]["scale"]
            elif kind == "MaxPooling2D":
                y = sliding_window_view(ins[0], tuple(cfg["pool_size"]), axis=(1, 2))[
                    :, ::cfg["strides"][0], ::cfg["strides"][1]].max(axis=(-2, -1))
            elif kind == "GlobalAveragePooling2D":
                y = ins[0].mean(axis=(1, 2))
            elif kind == "Dropout":
                y = ins[0]
            elif kind == "Dense":
                w = weights(name)
                y = ins[0] @ w["kernel"] + w.get("bias", 0.0)
            else:
                raise NotImplementedError(f"layer {name}: {kind}")
            out[name] = y
    return out
