"""The arithmetic a model does, counted from its torch module: what a measured rate is set against
the machine's GEMM ceiling with.

FLOPs count 2 per multiply-add of every convolution and fully connected layer; activations, pools
and softmaxes are left out (a small share, and not what the ceiling measures).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..models.inception_resnet_v1 import InceptionResnetV1
from ..models.mtcnn import NETS, PackedPNet


def module_flops(net: torch.nn.Module, shape: Sequence[int]) -> float:
    """FLOPs of one run of ``net`` on an input of ``shape`` (batch included)."""
    total = [0]

    def conv_hook(module, inputs, output):
        total[0] += 2 * output.numel() * module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups

    def linear_hook(module, inputs, output):
        total[0] += 2 * output.numel() * module.in_features

    handles = []
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, torch.nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            net(torch.zeros(tuple(shape)))
    finally:
        for h in handles:
            h.remove()
    return float(total[0])


def facenet_flops(size: int = 160) -> float:
    """FLOPs of one FaceNet image."""
    return module_flops(InceptionResnetV1(folded=True).eval(), (1, 3, size, size))


class MTCNNFlops:
    """FLOPs of MTCNN's nets on any input, counted once per input shape (a row's count times the rows).

    The nets are built untrained: the count depends on shapes only, so no weights are read.
    """

    def __init__(self):

        self._nets = {name: cls().eval() for name, cls in NETS.items()}
        self._nets["packed_pnet"] = PackedPNet(self._nets["pnet"]).eval()
        self._per_row: dict[tuple[str, tuple[int, ...]], float] = {}

    def __call__(self, net: str, shape: Sequence[int]) -> float:
        """FLOPs of ``net`` ("pnet", "packed_pnet", "rnet" or "onet") on an N x C x H x W input."""
        key = (net, tuple(shape[1:]))
        if key not in self._per_row:
            self._per_row[key] = module_flops(self._nets[net], (1, *key[1]))
        return shape[0] * self._per_row[key]
