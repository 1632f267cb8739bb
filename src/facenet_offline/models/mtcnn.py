"""MTCNN's three networks (Zhang et al. 2016) as torch modules, on natural NCHW images.

Module names follow facenet-pytorch (``conv1``, ``prelu1``, ``conv4_1`` ...) so its
``pnet.pt``/``rnet.pt``/``onet.pt`` load strictly. Inputs: RGB, ``(x - 127.5) / 128``, not
transposed (the original Caffe nets saw W and H swapped; the importers transpose the kernels).
Outputs keep facenet-pytorch's order: box regression first, face probability last.
"""

from __future__ import annotations

import torch
from torch import nn


class PNet(nn.Module):
    """Proposal net: fully convolutional, any input size; a 12x12 window per output cell, stride 2."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.softmax4_1 = nn.Conv2d(32, 2, 1), nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class RNet(nn.Module):
    """Refinement net on 24x24 candidates."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.softmax5_1 = nn.Linear(128, 2), nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = x.permute(0, 3, 2, 1).flatten(1)  # (W, H, C) order, as the Caffe weights were trained
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))


class ONet(nn.Module):
    """Output net on 48x48 candidates: box, five landmarks (x1..x5, y1..y5 in box units), probability."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.softmax6_1 = nn.Linear(256, 2), nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).flatten(1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


class PackedPNet(nn.Module):
    """PNet over several pyramid levels packed into one input, the way they would run alone.

    One run instead of one per level: at batch 1 each run has a fixed cost that small levels do not
    amortise. Input channel 3 marks the pixels between levels (1) and channels 0-2 hold the image.
    Convolutions are local, so a level's cells come out as on their own, except on the last row or
    column of a level with an odd side: there the ceil-mode pool's half window would reach past the
    level. So every first-layer output that reads a marked pixel is set to ``gap``, below anything a
    real pixel (standardised into [-1, 1]) can give, and the pool takes the level's own value.
    The caller keeps each level's cells and drops the rest.
    """

    def __init__(self, pnet: PNet):
        super().__init__()
        self.pnet = pnet
        w, b = pnet.conv1.weight.detach(), pnet.conv1.bias.detach()
        reach = w.abs().sum(dim=(1, 2, 3)) + b.abs()  # |conv1| on inputs in [-1, 1]
        low = (pnet.prelu1.weight.detach().clamp(min=1) * reach).max()  # |prelu1| at most this
        self.register_buffer("gap", -2 * low.reshape(1, 1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.pnet
        y = p.prelu1(p.conv1(x[:, :3]))
        marked = nn.functional.max_pool2d(x[:, 3:], 3, 1) > 0  # a 3x3 window holding a gap pixel
        x = p.pool1(torch.where(marked, self.gap, y))
        x = p.prelu3(p.conv3(p.prelu2(p.conv2(x))))
        return p.conv4_2(x), p.softmax4_1(p.conv4_1(x))


NETS: dict[str, type[nn.Module]] = {"pnet": PNet, "rnet": RNet, "onet": ONet}
