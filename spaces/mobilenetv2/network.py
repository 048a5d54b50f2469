"""The network of a MobileNetV2-space architecture: the released ``get_MobileNetV2_model`` (a
Zen-NAS PlainNet with ``use_se=True``), written as plain modules.

- ``forward`` first resizes the input bilinearly to the architecture's resolution
  (``F.interpolate(x, R, mode="bilinear")``, ``align_corners=False``), so any input size works
  (``resize=False`` runs at the input's own size instead: cheap tests, not the released network).
- stem: conv 3x3 stride 2 (no bias), BN, ReLU.  head: conv 1x1, BN, ReLU.  Then global average
  pooling and ``Linear(C8, num_classes)`` with bias.  Every BN has ``eps=1e-3``.
- each sub-layer of a ``SuperResIDWE{e}K{k}(Cin,Cout,s,B,L)`` block: conv 1x1 Cin->M, BN, ReLU;
  depthwise kxk (stride s in the first sub-layer only, padding (k-1)//2), BN, ReLU; SE(M); conv
  1x1 M->Cout, BN; plus the shortcut; then a ReLU *after* the addition.  ``M = smart_round(B*e, 8)``
  in every sub-layer.  The first sub-layer's shortcut is always a projection, conv 1x1 stride s
  *with bias* + BN (even at stride 1 with Cin == Cout); the others are identities.
- SE(M): global average pooling, conv 1x1 M->max(1, round(M/4)) (no bias), BN, ``nn.ReLU``, conv
  1x1 back to M (no bias), BN, Sigmoid, times the input.

The modules are created in the released code's order, so with the same torch seed the parameters
(PyTorch's default initialisation) are the released network's, tensor for tensor.

Module names: ``blocks.0`` is the stem, ``blocks.1`` .. ``blocks.7`` the SuperResIDWE blocks (each
with ``layers.j``, a :class:`InvertedResidual`), ``blocks.8`` the head, ``classifier`` the Linear.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..vocabulary import Convention, ResponsePoint
from .arch import MBBlock, MobileNetV2Arch, se_channels
from .cost import official_flops

__all__ = ["BN_EPS", "ConvBNReLU", "InvertedResidual", "MobileNetV2Network", "SqueezeExcite", "SuperBlock"]

#: every BatchNorm's eps in the released network
BN_EPS = 1e-3


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS)


class ConvBNReLU(nn.Module):
    """The stem (``SuperConvK3BNRELU``) or the head (``SuperConvK1BNRELU``): conv (no bias), BN, ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False)
        self.bn = _bn(c_out)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """SE(M) as released: pool, conv M->se, BN, ReLU, conv se->M, BN, Sigmoid; ``x * gate``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        se = se_channels(channels)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.reduce = nn.Conv2d(channels, se, 1, bias=False)
        self.bn1 = _bn(se)
        self.relu = nn.ReLU()
        self.expand = nn.Conv2d(se, channels, 1, bias=False)
        self.bn2 = _bn(channels)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.bn2(self.expand(self.relu(self.bn1(self.reduce(self.pool(x))))))) * x


class InvertedResidual(nn.Module):
    """One sub-layer: expand 1x1, BN, ReLU, depthwise, BN, ReLU, SE, project 1x1, BN, + shortcut,
    ReLU.  ``project=True``: the shortcut is conv 1x1 (stride ``stride``, with bias) + BN."""

    def __init__(self, c_in: int, c_out: int, mid: int, kernel: int, stride: int, project: bool) -> None:
        super().__init__()
        # created in the released order: expand, depthwise, SE, project, then the shortcut
        self.expand = nn.Conv2d(c_in, mid, 1, bias=False)
        self.bn1 = _bn(mid)
        self.relu1 = nn.ReLU()
        self.depthwise = nn.Conv2d(mid, mid, kernel, stride=stride, padding=(kernel - 1) // 2, groups=mid, bias=False)
        self.bn2 = _bn(mid)
        self.relu2 = nn.ReLU()
        self.se = SqueezeExcite(mid)
        self.project = nn.Conv2d(mid, c_out, 1, bias=False)
        self.bn3 = _bn(c_out)
        self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride), _bn(c_out)) if project else None
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.expand(x)))
        out = self.relu2(self.bn2(self.depthwise(out)))
        out = self.bn3(self.project(self.se(out)))
        return self.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class SuperBlock(nn.Module):
    """A ``SuperResIDWE{e}K{k}`` block: its L sub-layers (``layers``)."""

    def __init__(self, block: MBBlock) -> None:
        super().__init__()
        self.block = block
        m = block.mid_channels
        layers = []
        c_in, stride = block.in_channels, block.stride
        for i in range(block.sub_layers):
            layers.append(InvertedResidual(c_in, block.out_channels, m, block.kernel, stride, project=i == 0))
            c_in, stride = block.out_channels, 1
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MobileNetV2Network(nn.Module):
    """The released MobileNetV2-space network of ``arch``; ``forward`` -> logits."""

    def __init__(self, arch: MobileNetV2Arch, num_classes: int, *, resize: bool = True) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.arch = arch
        self.num_classes = int(num_classes)
        self.resize = bool(resize)
        self.resolution = arch.resolution
        blocks: list[nn.Module] = [ConvBNReLU(3, arch.stem_channels, 3, arch.stem_stride)]
        blocks += [SuperBlock(b) for b in arch.blocks]
        blocks.append(ConvBNReLU(arch.blocks[-1].out_channels, arch.head_channels, 1, 1))
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(arch.head_channels, self.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The head's output (before global pooling), after the resize."""
        if self.resize:
            x = F.interpolate(x, self.resolution, mode="bilinear")
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.forward_features(x)), 1))

    def stated_flops(self) -> float:
        """This network's FLOPs as its space counts them: the released ``get_FLOPs()`` (MACs, with
        its quirks: :func:`spaces.mobilenetv2.cost.official_flops`), at the architecture's
        resolution, for this network's number of classes.  The ``flops`` proxy reports it."""
        return official_flops(self.arch, self.num_classes)

    def response_modules(self, convention: Convention = "paper") -> list[ResponsePoint]:
        """Where the correlation proxies read responses; the weighting layer is the index of the
        element in ``blocks`` (stem 0, block i is layer i for i = 1..7, head 8), so the 2**layer
        weighting gives block i the weight 2**i, as the released code's enumeration of
        ``net.block_list`` does.

        ``official``: what the released WRCor code hooks -- modules whose type name contains
        "ReLU".  The blocks' own activations are the PlainNet ``RELU`` class (no match), so only
        the ``nn.ReLU`` inside each SE is hooked: Σ L points, each an N x M/4 x 1 x 1 input; the
        stem and the head have none.

        ``paper``: the paper's formula, every ReLU's input and the gradient there: the stem's and
        the head's ReLU, and in every sub-layer the two after a BN, the SE's and the one after the
        residual addition (which follows the sum of the last BN and the shortcut).
        """
        if convention not in ("paper", "official"):
            raise ValueError(f"unknown response convention {convention!r}; valid: ['paper', 'official']")
        points: list[ResponsePoint] = []
        for layer, block in enumerate(self.blocks):
            for name, module in block.named_modules():
                if not isinstance(module, nn.ReLU):
                    continue
                if convention == "official" and not name.endswith(".se.relu"):
                    continue
                points.append(ResponsePoint(f"blocks.{layer}.{name}", module, layer))
        return points
