"""NAS-Bench-201 (and NATS-Bench topology space): architecture values and the network.

An architecture is a cell with 4 nodes and 6 edges; each edge carries one of 5 operations.  The
official string lists, node by node, the incoming edges as ``op~source``::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|

The network is NB201's inference network: a 3x3 stem, 3 stages of N=5 cells (16, 32, 64 channels)
joined by two residual reduction blocks (17 cells in all), a final BN+ReLU, global pooling and a
linear classifier.  Its parameters and buffers are registered in the same order and shapes as the
reference implementation, so a reference ``state_dict`` loads into it by position.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..vocabulary import Convention, InvalidArchitectureError, ResponsePoint

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (target node, source node) of each edge, in the order the official string lists them.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_EDGES = len(EDGES)

_NODE_RE = re.compile(r"^\|(.*)\|$")


@dataclass(frozen=True, order=True)
class NB201Arch:
    """An immutable NB201 cell: the operation on each of the 6 edges, in official-string order."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        ops = tuple(self.ops)
        if len(ops) != NUM_EDGES:
            raise InvalidArchitectureError(f"an NB201 cell has {NUM_EDGES} edges, got {len(ops)}: {ops!r}")
        bad = [o for o in ops if o not in OPS]
        if bad:
            raise InvalidArchitectureError(f"unknown NB201 operation(s) {bad}; valid: {list(OPS)}")
        object.__setattr__(self, "ops", ops)

    @classmethod
    def from_str(cls, text: str) -> "NB201Arch":
        """Parse the official string, saying exactly what is wrong when it is malformed.

        >>> NB201Arch.from_str("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|").ops[0]
        'nor_conv_3x3'
        """
        if not isinstance(text, str):
            raise InvalidArchitectureError(f"an NB201 architecture string must be a str, got {type(text).__name__}")
        text = text.strip()
        nodes = text.split("+")
        if len(nodes) != 3:
            raise InvalidArchitectureError(
                f"an NB201 string has 3 '+'-separated nodes, got {len(nodes)} in {text!r}")
        ops: list[str] = []
        for target, node in enumerate(nodes, start=1):
            m = _NODE_RE.match(node)
            if not m:
                raise InvalidArchitectureError(f"node {target} {node!r} must be enclosed in '|': in {text!r}")
            edges = m.group(1).split("|")
            if len(edges) != target:
                raise InvalidArchitectureError(
                    f"node {target} must have {target} incoming edge(s), got {len(edges)} ({node!r}) in {text!r}")
            for source, edge in enumerate(edges):
                op, sep, src = edge.partition("~")
                if not sep or not (src.isascii() and src.isdigit()):
                    raise InvalidArchitectureError(f"edge {edge!r} must be 'op~source' in {text!r}")
                if int(src) != source:
                    raise InvalidArchitectureError(
                        f"edge {edge!r} of node {target} must come from node {source}, not {src}, in {text!r}")
                if op not in OPS:
                    raise InvalidArchitectureError(f"unknown NB201 operation {op!r} in {text!r}; valid: {list(OPS)}")
                ops.append(op)
        return cls(tuple(ops))

    def to_str(self) -> str:
        """The official string (round-trips with :meth:`from_str`)."""
        it = iter(self.ops)
        nodes = []
        for target in range(1, 4):
            nodes.append("|" + "|".join(f"{next(it)}~{src}" for src in range(target)) + "|")
        return "+".join(nodes)

    __str__ = to_str

    def edges(self) -> Iterator[tuple[int, int, str]]:
        """(target, source, op) for every edge."""
        for (target, source), op in zip(EDGES, self.ops):
            yield target, source, op

    def replace(self, edge: int, op: str) -> "NB201Arch":
        ops = list(self.ops)
        ops[edge] = op
        return NB201Arch(tuple(ops))


# ---------------------------------------------------------------------------------------------
# network (module names/ordering follow the reference implementation so states load by position)


class ReLUConvBN(nn.Module):
    """ReLU -> conv -> BN, as one edge operation (or a reduction-block branch)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=True, track_running_stats=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Pooling(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.op = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The ``none`` edge: zeros that stay in the autograd graph (as ``x * 0`` in the reference)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def _make_op(op: str, channels: int) -> nn.Module:
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if op == "avg_pool_3x3":
        return Pooling()
    raise InvalidArchitectureError(f"unknown NB201 operation {op!r}; valid: {list(OPS)}")


class NormalCell(nn.Module):
    def __init__(self, arch: NB201Arch, channels: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(_make_op(op, channels) for op in arch.ops)
        self._edges = EDGES

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in range(1, 4):
            # python's sum starts from 0, as the reference does: same additions, same rounding
            nodes.append(sum(self.layers[e](nodes[src]) for e, (t, src) in enumerate(self._edges) if t == target))
        return nodes[-1]


class ReductionCell(nn.Module):
    """The residual block between stages: two 3x3 ReLUConvBN (stride 2, then 1) + pooled 1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """The NB201 inference network for one cell (C=16, N=5 by default)."""

    def __init__(self, arch: NB201Arch, num_classes: int, *, channels: int = 16, cells_per_stage: int = 5) -> None:
        super().__init__()
        self.arch = arch
        c = channels
        self.stem = nn.Sequential(nn.Conv2d(3, c, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(c))
        cells: list[nn.Module] = []
        c_prev = c
        for stage, c_stage in enumerate((c, 2 * c, 4 * c)):
            if stage > 0:
                cells.append(ReductionCell(c_prev, c_stage))
            cells.extend(NormalCell(arch, c_stage) for _ in range(cells_per_stage))
            c_prev = c_stage
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map just before global pooling (after the final BN+ReLU), as Zen-NAS's
        ``forward_pre_GAP`` / NASLib's ``forward_before_global_avg_pool``."""
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.lastact(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.global_pooling(self.forward_features(x)).flatten(1))

    def response_modules(self, convention: Convention = "paper") -> list[ResponsePoint]:
        """Where the correlation proxies read responses; the weighting layer is the cell index.

        ``paper``: every ReLU, its input (pre-activation) and the gradient there; cell ``l`` is
        layer ``l`` and the final ReLU is layer ``len(cells)``.

        ``official``: what the released WRCor code hooks (every module whose class name contains
        "ReLU" inside each cell): each ``ReLUConvBN`` wrapper as well as its inner ReLU — so the
        activation of a conv edge counts twice and the wrapper adds the gradient at its BN's input
        (the conv output) — and the final ReLU, which is in-place there, so its post-ReLU output
        is what the reference reads as its "input".
        """
        if convention not in ("paper", "official"):
            raise ValueError(f"unknown response convention {convention!r}; valid: ['paper', 'official']")
        points: list[ResponsePoint] = []
        for layer, cell in enumerate(self.cells):
            for name, module in cell.named_modules():
                full = f"cells.{layer}.{name}"
                if isinstance(module, nn.ReLU):
                    points.append(ResponsePoint(full, module, layer))
                elif convention == "official" and isinstance(module, ReLUConvBN):
                    points.append(ResponsePoint(full, module, layer))
        final = len(self.cells)
        points.append(ResponsePoint("lastact.1", self.lastact[1], final,
                                    "output" if convention == "official" else "input"))
        return points


def load_state_by_position(net: nn.Module, arrays: Sequence[np.ndarray]) -> None:
    """Copy ``arrays`` into ``net.state_dict()`` entries in registration order (shapes must match)."""
    state = net.state_dict()
    if len(state) != len(arrays):
        raise ValueError(f"state has {len(state)} entries, got {len(arrays)} arrays")
    new = {}
    for (name, tensor), array in zip(state.items(), arrays):
        if tuple(tensor.shape) != tuple(np.shape(array)):
            raise ValueError(f"{name}: shape {tuple(tensor.shape)} != {tuple(np.shape(array))}")
        new[name] = torch.as_tensor(np.asarray(array)).to(tensor.dtype)
    net.load_state_dict(new)
