"""Import Inception-ResNet-v1 weights from a Keras HDF5 file (``facenet_keras.h5``), with h5py alone.

The Keras conversion of davidsandberg/facenet names each layer after its slim scope
(``Block17_10_Branch_0_Conv2d_1x1`` for ``Repeat_1/block17_10/Branch_0/Conv2d_1x1``, its
``_BatchNorm`` beside it), so the importer walks the same unit table as the frozen-graph importer.
It is strict: layers the network needs and the file lacks, and layers the file holds and the
network has no place for, are named in one error; the file's own layer configuration (strides,
padding, residual scales, batch-norm epsilon) is checked against the network before a weight is
taken. The result is a folded state dict for ``InceptionResnetV1(folded=True)``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from ..errors import WeightsLayoutError
from ..models.inception_resnet_v1 import BN_EPS, InceptionResnetV1, fold_batchnorm_into_conv
from .mismatch import mismatch_message
from .slim_scopes import REPEATS, ROOT, conv_bn_scopes, residual_scopes

log = logging.getLogger(__name__)

# Layer kinds that hold no weights and compute what the torch network computes between its units.
_PLUMBING = {"InputLayer", "Activation", "Concatenate", "Lambda", "MaxPooling2D", "GlobalAveragePooling2D", "Dropout"}
BOTTLENECK = "Bottleneck"


def keras_name(scope: str) -> str:
    """Keras layer name of a slim scope: ``InceptionResnetV1/Repeat/block35_2/Branch_0/Conv2d_1x1`` is
    ``Block35_2_Branch_0_Conv2d_1x1``; the lone last ``Block8`` is ``Block8_6``, after the five repeated ones."""
    name = scope.removeprefix(ROOT + "/")
    for slim, _, count in REPEATS:
        block = slim.split("/")[1]
        if name.startswith(slim + "_"):
            name = block.capitalize() + name[len(slim):]
        elif block == "block8" and (name == "Block8" or name.startswith("Block8/")):
            name = f"Block8_{count + 1}" + name[len("Block8"):]
    return name.replace("/", "_")


def block_prefixes() -> dict[str, str]:
    """Keras block name (``Block35_1`` ...) -> torch module prefix of every residual block."""
    return {keras_name(scope).removesuffix("_Conv2d_1x1"): prefix.removesuffix(".conv2d")
            for scope, prefix in residual_scopes()}


@dataclass
class KerasFile:
    """The weights of each layer (by Keras name) and the model's layer configurations, read once."""

    weights: dict[str, dict[str, np.ndarray]]  # layer -> {"kernel": ..., "bias": ..., "gamma": ...}
    config: dict[str, dict] | None  # layer -> {"class_name": ..., "config": {...}}; None in weights-only files

    @classmethod
    def read(cls, path: str | Path) -> KerasFile:
        try:
            with h5py.File(path, "r") as f:
                root = f["model_weights"] if "model_weights" in f else f
                if "layer_names" not in root.attrs:
                    raise WeightsLayoutError(f"{path}: an HDF5 file, but not Keras weights (no layer_names).")
                weights = {}
                for layer in map(_text, root.attrs["layer_names"]):
                    group = root[layer]
                    weights[layer] = {_text(w).rsplit("/", 1)[-1].split(":")[0]: np.asarray(group[_text(w)])
                                      for w in group.attrs.get("weight_names", [])}
                raw = f.attrs.get("model_config")
        except OSError as exc:
            raise WeightsLayoutError(f"{path}: not an HDF5 file ({exc}).") from exc
        config = None
        if raw is not None:
            model = json.loads(_text(raw))
            config = {layer["name"]: layer for layer in model["config"]["layers"]}
        return cls(weights, config)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _Taker:
    """Takes layers by name, remembering which were used and which were asked for but absent."""

    def __init__(self, keras: KerasFile):
        self.keras, self.used, self.asked, self.missing = keras, set(), set(), []

    def take(self, layer: str, *names: str, optional: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
        self.asked.add(layer)
        found = self.keras.weights.get(layer)
        if found is None or any(n not in found for n in names):
            self.missing.append(layer if found is None else f"{layer} ({', '.join(n for n in names if n not in found)})")
            return {}
        self.used.add(layer)
        return {n: torch.from_numpy(np.ascontiguousarray(found[n], np.float32))
                for n in (*names, *optional) if n in found}

    def unexpected(self) -> list[str]:
        layers = [n for n, w in self.keras.weights.items() if w and n not in self.used]
        if self.keras.config:
            layers += [f"{n} ({c['class_name']})" for n, c in self.keras.config.items()
                       if c["class_name"] not in _PLUMBING and n not in self.asked and not self.keras.weights.get(n)]
        return sorted(layers)


def _conv_kernel(kernel: torch.Tensor) -> torch.Tensor:
    return kernel.permute(3, 2, 0, 1).contiguous()  # Keras HWIO -> torch OIHW


def _batch_norm(t: _Taker, layer: str) -> tuple[torch.Tensor, ...] | None:
    bn = t.take(layer, "beta", "moving_mean", "moving_variance", optional=("gamma",))
    if not bn:
        return None
    return bn.get("gamma"), bn["beta"], bn["moving_mean"], bn["moving_variance"]


def _epsilon(keras: KerasFile, layer: str) -> float:
    return float(keras.config[layer]["config"]["epsilon"]) if keras.config and layer in keras.config else BN_EPS


def state_dict_from_keras(keras: KerasFile, source: str = "Keras file") -> dict[str, torch.Tensor]:
    """Folded ``InceptionResnetV1`` state dict; raises naming every missing, unexpected or mismatched layer."""
    t = _Taker(keras)
    state: dict[str, torch.Tensor] = {}
    for scope, prefix in conv_bn_scopes():
        name = keras_name(scope)
        conv, bn = t.take(name, "kernel"), _batch_norm(t, f"{name}_BatchNorm")
        if conv and bn:
            gamma, beta, mean, var = bn
            state[f"{prefix}.conv.weight"], state[f"{prefix}.conv.bias"] = fold_batchnorm_into_conv(
                _conv_kernel(conv["kernel"]), mean, var, beta, gamma, _epsilon(keras, f"{name}_BatchNorm"))
    for scope, prefix in residual_scopes():
        conv = t.take(keras_name(scope), "kernel", "bias")
        if conv:
            state[f"{prefix}.weight"], state[f"{prefix}.bias"] = _conv_kernel(conv["kernel"]), conv["bias"]
    dense, bn = t.take(BOTTLENECK, "kernel"), _batch_norm(t, f"{BOTTLENECK}_BatchNorm")
    if dense and bn:
        gamma, beta, mean, var = bn
        state.update({"last_linear.weight": dense["kernel"].T.contiguous(),
                      "last_bn.weight": gamma if gamma is not None else torch.ones_like(beta), "last_bn.bias": beta,
                      "last_bn.running_mean": mean, "last_bn.running_var": var,
                      "last_bn.num_batches_tracked": torch.tensor(0)})
    unexpected = t.unexpected()
    if t.missing or unexpected:
        raise WeightsLayoutError(mismatch_message(
            f"{source}: the Keras layers do not match Inception-ResNet-v1 (the davidsandberg/facenet architecture, "
            "as converted to Keras).", t.missing, unexpected, "layers"))
    return state


def check_config(keras: KerasFile, net: InceptionResnetV1, source: str = "Keras file") -> None:
    """Compare the file's layer settings with the network's: strides and padding of every convolution,
    the scale of every residual sum. A weight of the right shape in the wrong place would pass silently."""
    if keras.config is None:
        log.warning("%s holds weights only (no model_config): strides, padding and residual scales are not checked",
                    source)
        return
    wrong = []
    convs = [(keras_name(s), f"{p}.conv") for s, p in conv_bn_scopes()] + [
        (keras_name(s), p) for s, p in residual_scopes()]
    for layer, prefix in convs:
        cfg = keras.config.get(layer, {}).get("config")
        if cfg is None:
            continue  # named as missing by the weights
        conv = net.get_submodule(prefix)
        padding = tuple((k - 1) // 2 for k in conv.kernel_size) if cfg["padding"] == "same" else (0, 0)
        if tuple(cfg["strides"]) != conv.stride or padding != conv.padding:
            wrong.append(f"{layer} (strides {cfg['strides']}, padding {cfg['padding']!r}; the network has stride "
                         f"{list(conv.stride)}, padding {list(conv.padding)})")
    for block, prefix in block_prefixes().items():
        cfg = keras.config.get(f"{block}_ScaleSum", {}).get("config", {})
        scale = cfg.get("arguments", {}).get("scale")
        if scale is not None and not np.isclose(scale, net.get_submodule(prefix).scale):
            wrong.append(f"{block}_ScaleSum (scale {scale}; the network has {net.get_submodule(prefix).scale})")
    if wrong:
        raise WeightsLayoutError(f"{source}: {len(wrong)} layers are set up unlike Inception-ResNet-v1: "
                                 f"{'; '.join(wrong[:10])}.")


def embedding_dim(keras: KerasFile) -> int | None:
    """Width of the bottleneck (128 for the 2017 models, 512 for the 2018 ones); None without one."""
    kernel = keras.weights.get(BOTTLENECK, {}).get("kernel")
    return None if kernel is None else int(kernel.shape[1])


def load_keras_h5(path: str | Path, embedding: int | None = None) -> dict[str, torch.Tensor]:
    """Folded state dict from a Keras HDF5 file, checked against the network of its bottleneck width."""
    keras = KerasFile.read(path)
    dim = embedding_dim(keras) or embedding or 128
    if embedding is not None and dim != embedding:
        raise WeightsLayoutError(f"{path}: a {dim}-d bottleneck, but the model expects {embedding}-d embeddings; "
                                 "is it the weights of another model?")
    with torch.device("meta"):  # the layer settings only: no memory for a second network's weights
        net = InceptionResnetV1(folded=True, embedding_dim=dim)
    check_config(keras, net, str(path))
    return state_dict_from_keras(keras, str(path))
