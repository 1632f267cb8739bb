"""Inception-ResNet-v1's units under their TensorFlow-slim scope names, beside the torch module of each.

davidsandberg/facenet named its scopes this way; the frozen graphs keep the names, and the Keras
conversion of its models (``facenet_keras.h5``) derives its layer names from them, so both importers
walk the same table.
"""

from __future__ import annotations

from collections.abc import Iterator

ROOT = "InceptionResnetV1"
# Residual blocks: (slim scope, torch prefix, count); the last Block8 stands alone, without ReLU.
REPEATS = (("Repeat/block35", "repeat_1", 5), ("Repeat_1/block17", "repeat_2", 10), ("Repeat_2/block8", "repeat_3", 5))

_STEM = {"Conv2d_1a_3x3": "conv2d_1a", "Conv2d_2a_3x3": "conv2d_2a", "Conv2d_2b_3x3": "conv2d_2b",
         "Conv2d_3b_1x1": "conv2d_3b", "Conv2d_4a_3x3": "conv2d_4a", "Conv2d_4b_3x3": "conv2d_4b"}
_BLOCK35 = {"Branch_0/Conv2d_1x1": "branch0", "Branch_1/Conv2d_0a_1x1": "branch1.0",
            "Branch_1/Conv2d_0b_3x3": "branch1.1", "Branch_2/Conv2d_0a_1x1": "branch2.0",
            "Branch_2/Conv2d_0b_3x3": "branch2.1", "Branch_2/Conv2d_0c_3x3": "branch2.2"}
_BLOCK17 = {"Branch_0/Conv2d_1x1": "branch0", "Branch_1/Conv2d_0a_1x1": "branch1.0",
            "Branch_1/Conv2d_0b_1x7": "branch1.1", "Branch_1/Conv2d_0c_7x1": "branch1.2"}
_BLOCK8 = {"Branch_0/Conv2d_1x1": "branch0", "Branch_1/Conv2d_0a_1x1": "branch1.0",
           "Branch_1/Conv2d_0b_1x3": "branch1.1", "Branch_1/Conv2d_0c_3x1": "branch1.2"}
_MIXED_6A = {"Branch_0/Conv2d_1a_3x3": "branch0", "Branch_1/Conv2d_0a_1x1": "branch1.0",
             "Branch_1/Conv2d_0b_3x3": "branch1.1", "Branch_1/Conv2d_1a_3x3": "branch1.2"}
_MIXED_7A = {"Branch_0/Conv2d_0a_1x1": "branch0.0", "Branch_0/Conv2d_1a_3x3": "branch0.1",
             "Branch_1/Conv2d_0a_1x1": "branch1.0", "Branch_1/Conv2d_1a_3x3": "branch1.1",
             "Branch_2/Conv2d_0a_1x1": "branch2.0", "Branch_2/Conv2d_0b_3x3": "branch2.1",
             "Branch_2/Conv2d_1a_3x3": "branch2.2"}


def conv_bn_scopes() -> Iterator[tuple[str, str]]:
    """(TF scope, torch module prefix) of every conv + batch norm unit."""
    for tf, pt in _STEM.items():
        yield f"{ROOT}/{tf}", pt
    (b35, b35_pt, n35), (b17, b17_pt, n17), (b8, b8_pt, n8) = REPEATS
    blocks = [(f"{b35}_{i + 1}", f"{b35_pt}.{i}", _BLOCK35) for i in range(n35)]
    blocks += [("Mixed_6a", "mixed_6a", _MIXED_6A)]
    blocks += [(f"{b17}_{i + 1}", f"{b17_pt}.{i}", _BLOCK17) for i in range(n17)]
    blocks += [("Mixed_7a", "mixed_7a", _MIXED_7A)]
    blocks += [(f"{b8}_{i + 1}", f"{b8_pt}.{i}", _BLOCK8) for i in range(n8)] + [("Block8", "block8", _BLOCK8)]
    for tf_block, pt_block, table in blocks:
        for tf, pt in table.items():
            yield f"{ROOT}/{tf_block}/{tf}", f"{pt_block}.{pt}"


def residual_scopes() -> Iterator[tuple[str, str]]:
    """(TF scope, torch prefix) of the plain 1x1 convolutions (with biases) closing each residual block."""
    for tf_block, pt_block, n in REPEATS:
        for i in range(n):
            yield f"{ROOT}/{tf_block}_{i + 1}/Conv2d_1x1", f"{pt_block}.{i}.conv2d"
    yield f"{ROOT}/Block8/Conv2d_1x1", "block8.conv2d"
