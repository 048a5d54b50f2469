"""NATS-Bench: the topology space (TSS, = NAS-Bench-201) and the size space (SSS).

``nats_tss`` is NAS-Bench-201 under its NATS-Bench name: the same 15,625 cells, the same official
indices, the same network and the same ground truth (:class:`spaces.nb201.NB201Space`).

``nats_sss`` fixes the cell to NATS-Bench's choice,
``|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|``,
and searches the widths: an architecture is a channel string such as ``8:16:24:32:40``, one width
from {8, 16, ..., 64} for each of the 5 layers (32,768 networks).  The network is NATS-Bench's
size-search network (xautodl's ``DynamicShapeTinyNet``, written here: ``xautodl`` pins
numpy<=1.19.5): a 3x3 stem to the first width, then cell, residual reduction block, cell,
residual reduction block, cell, each to its own width (a cell whose input width differs projects
on its input edges: a conv edge maps ``c_in -> c_out``, a skip edge becomes a 1x1 conv + BN),
a final BN+ReLU, global pooling and a linear classifier.

No SSS ground truth exists offline.  Its benchmark reads ``nats/nats_sss_ground_truth.csv``, a
table converted from the official ``NATS-sss-v1_0-50262-simple`` archive with
``harness convert nats-sss <archive>`` (90-epoch schedule, seed mean); without it a
lookup fails with a message that says so.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from .base import Convention, InvalidArchitectureError, MissingDataFileError, ResponsePoint, seeded
from .benchmarks import _NB201_COLUMNS
from .nb201 import EDGES, NB201Arch, NB201Space, Pooling, ReductionCell, ReLUConvBN, Zero

#: the cell every NATS-SSS network uses
SSS_CELL = NB201Arch.from_str(
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
CHANNELS: tuple[int, ...] = (8, 16, 24, 32, 40, 48, 56, 64)
NUM_LAYERS = 5
#: which of the 5 layers are residual reduction blocks (stride 2)
REDUCTION = (False, True, False, True, False)


class NATSTopologySpace(NB201Space):
    """NATS-Bench TSS: NAS-Bench-201 under its NATS name (same cells, indices and ground truth)."""

    name = "nats_tss"


@dataclass(frozen=True, order=True)
class SizeArch:
    """An immutable NATS-SSS architecture: the width of each of the 5 layers."""

    channels: tuple[int, ...]

    def __post_init__(self) -> None:
        try:
            ch = tuple(self.channels)
        except TypeError:
            raise InvalidArchitectureError(f"NATS-SSS channels must be a sequence, got {self.channels!r}") from None
        if len(ch) != NUM_LAYERS:
            raise InvalidArchitectureError(f"a NATS-SSS architecture has {NUM_LAYERS} widths, got {len(ch)}: {ch!r}")
        bad = [c for c in ch if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c not in CHANNELS]
        if bad:
            raise InvalidArchitectureError(f"NATS-SSS width(s) {bad} not allowed; each is one of {list(CHANNELS)}")
        object.__setattr__(self, "channels", tuple(int(c) for c in ch))

    @classmethod
    def from_str(cls, text: str) -> "SizeArch":
        """Parse ``"8:16:24:32:40"``.

        >>> SizeArch.from_str("8:16:24:32:40").channels
        (8, 16, 24, 32, 40)
        """
        if not isinstance(text, str):
            raise InvalidArchitectureError(f"a NATS-SSS channel string must be a str, got {type(text).__name__}")
        parts = text.strip().split(":")
        if not all(p.strip().isascii() and p.strip().isdigit() for p in parts):
            raise InvalidArchitectureError(f"a NATS-SSS channel string is {NUM_LAYERS} integers joined by ':', "
                                           f"got {text!r}")
        return cls(tuple(int(p) for p in parts))

    def to_str(self) -> str:
        return ":".join(map(str, self.channels))

    __str__ = to_str


class FactorizedReduce(nn.Module):
    """A skip edge between different widths at stride 1 (NATS/xautodl): 1x1 conv + BN."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class _ProjectedPooling(nn.Module):
    """avg-pool on an edge between different widths: 1x1 ReLUConvBN, then pooling (xautodl)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.preprocess = ReLUConvBN(c_in, c_out, 1, 1, 0)
        self.op = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(self.preprocess(x))


class _ZeroTo(nn.Module):
    def __init__(self, c_out: int) -> None:
        super().__init__()
        self.c_out = c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], self.c_out, *x.shape[2:])


def _edge_op(op: str, c_in: int, c_out: int) -> nn.Module:
    same = c_in == c_out
    if op == "none":
        return Zero() if same else _ZeroTo(c_out)
    if op == "skip_connect":
        return nn.Identity() if same else FactorizedReduce(c_in, c_out)
    if op == "nor_conv_1x1":
        return ReLUConvBN(c_in, c_out, 1, 1, 0)
    if op == "nor_conv_3x3":
        return ReLUConvBN(c_in, c_out, 3, 1, 1)
    if op == "avg_pool_3x3":
        return Pooling() if same else _ProjectedPooling(c_in, c_out)
    raise InvalidArchitectureError(f"unknown cell operation {op!r}")


class InferCell(nn.Module):
    """An NB201 cell whose input edges map ``c_in -> c_out`` (edges between inner nodes keep c_out)."""

    def __init__(self, cell: NB201Arch, c_in: int, c_out: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(_edge_op(op, c_in if src == 0 else c_out, c_out)
                                    for (_, src), op in zip(EDGES, cell.ops))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in range(1, 4):
            nodes.append(sum(self.layers[e](nodes[src]) for e, (t, src) in enumerate(EDGES) if t == target))
        return nodes[-1]


class SizeNetwork(nn.Module):
    """NATS-Bench's size-search network for one channel configuration."""

    def __init__(self, arch: SizeArch, num_classes: int, *, cell: NB201Arch = SSS_CELL) -> None:
        super().__init__()
        self.arch = arch
        ch = arch.channels
        self.stem = nn.Sequential(nn.Conv2d(3, ch[0], kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(ch[0]))
        cells: list[nn.Module] = []
        c_prev = ch[0]
        for c, reduction in zip(ch, REDUCTION):
            cells.append(ReductionCell(c_prev, c) if reduction else InferCell(cell, c_prev, c))
            c_prev = c
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for c in self.cells:
            x = c(x)
        return self.lastact(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.global_pooling(self.forward_features(x)).flatten(1))

    def response_modules(self, convention: Convention = "paper") -> list[ResponsePoint]:
        """As NB201's (:meth:`spaces.nb201.NB201Network.response_modules`): cell ``l`` is layer
        ``l``, the final ReLU layer ``len(cells)``; ``official`` adds each ``ReLUConvBN`` wrapper."""
        if convention not in ("paper", "official"):
            raise ValueError(f"unknown response convention {convention!r}; valid: ['paper', 'official']")
        points: list[ResponsePoint] = []
        for layer, c in enumerate(self.cells):
            for name, module in c.named_modules():
                if isinstance(module, nn.ReLU) or (convention == "official" and isinstance(module, ReLUConvBN)):
                    points.append(ResponsePoint(f"cells.{layer}.{name}", module, layer))
        points.append(ResponsePoint("lastact.1", self.lastact[1], len(self.cells),
                                    "output" if convention == "official" else "input"))
        return points


class NATSSizeSpace:
    """NATS-Bench SSS: 8**5 = 32,768 width configurations of one fixed cell."""

    name = "nats_sss"

    #: what each constructor setting means (``harness run --help`` shows it)
    settings_help = {"table": "the converted ground-truth table under the data dir "
                              "(null: nats/nats_sss_ground_truth.csv)"}

    def __init__(self, *, data_dir: Any = None, table: str | None = None) -> None:
        self.data_dir = data_dir
        self.table = table

    def parse(self, arch: Any) -> SizeArch:
        if isinstance(arch, SizeArch):
            return arch
        if isinstance(arch, str):
            return SizeArch.from_str(arch)
        if isinstance(arch, (tuple, list)):
            return SizeArch(tuple(arch))
        raise InvalidArchitectureError(f"cannot read a NATS-SSS architecture from {type(arch).__name__}: give the "
                                       "channel string (e.g. '8:16:24:32:40') or a sequence of 5 widths")

    def to_str(self, arch: Any) -> str:
        return self.parse(arch).to_str()

    def product_order(self) -> Iterator[SizeArch]:
        """Every configuration, the first layer's width varying slowest (needs no data file)."""
        return (SizeArch(c) for c in itertools.product(CHANNELS, repeat=NUM_LAYERS))

    def enumerate(self) -> Iterator[SizeArch]:
        """Every configuration: in the official index order of the converted table when there is
        one, else in :meth:`product_order`."""
        try:
            keys = self.benchmark.keys()
        except MissingDataFileError:  # a corrupt table is still an error
            return self.product_order()
        return (SizeArch.from_str(k) for k in keys)

    def index(self, arch: Any) -> int:
        return self.benchmark.index_of(self.parse(arch))

    @property
    def size(self) -> int:
        """How many architectures the space has."""
        return len(CHANNELS) ** NUM_LAYERS

    def __len__(self) -> int:
        return self.size

    def sample(self, rng: np.random.Generator) -> SizeArch:
        return SizeArch(tuple(CHANNELS[i] for i in rng.integers(0, len(CHANNELS), size=NUM_LAYERS)))

    def mutate(self, arch: Any, rng: np.random.Generator) -> SizeArch:
        """Change the width of one uniformly chosen layer to a different width."""
        ch = list(self.parse(arch).channels)
        k = int(rng.integers(NUM_LAYERS))
        choices = [c for c in CHANNELS if c != ch[k]]
        ch[k] = choices[int(rng.integers(len(choices)))]
        return SizeArch(tuple(ch))

    def choices(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """The categorical decisions (for policy-based search): one width per layer."""
        return tuple((f"layer{k}", CHANNELS) for k in range(NUM_LAYERS))

    def from_choices(self, idx: Sequence[int]) -> SizeArch:
        """The network with width ``CHANNELS[idx[k]]`` at layer ``k``."""
        if len(idx) != NUM_LAYERS or not all(0 <= int(i) < len(CHANNELS) for i in idx):
            raise InvalidArchitectureError(f"need {NUM_LAYERS} width indices in 0..{len(CHANNELS) - 1}, got {tuple(idx)}")
        return SizeArch(tuple(CHANNELS[int(i)] for i in idx))

    def build(self, arch: Any, num_classes: int, *, seed: int | None = None) -> SizeNetwork:
        arch = self.parse(arch)
        return seeded(seed, lambda: SizeNetwork(arch, num_classes))

    def response_modules(self, net: nn.Module, convention: Convention = "paper") -> list[ResponsePoint]:
        if not isinstance(net, SizeNetwork):
            raise TypeError(f"expected a network built by the nats_sss space, got {type(net).__name__}")
        return net.response_modules(convention)

    def num_layers(self, net: nn.Module) -> int:
        return len(net.cells)

    @cached_property
    def benchmark(self):
        return nats_sss_benchmark(self.data_dir, table=self.table)


NATS_SSS_FILE = "nats/nats_sss_ground_truth.csv"
#: NB201's columns with the 90-epoch suffix (what ``harness convert nats-sss`` writes); the
#: cifar10-valid/test target (the WRCor notebook's, on NB201's table) is not one of its targets
_SSS_COLUMNS = {pair: column.replace("_200", "_90") for pair, column in _NB201_COLUMNS.items()
                if isinstance(column, str)}


def nats_sss_benchmark(data_dir: str | os.PathLike[str] | None = None, *, table: str | None = None):
    """NATS-Bench SSS ground truth (90-epoch schedule, seed mean) from a converted table."""
    from .benchmarks import TableBenchmark

    protocols = {pair: f"NATS-SSS {pair[0]}/{pair[1]}: 90 epochs, mean over the training seeds (percent)"
                 for pair in _SSS_COLUMNS}
    return TableBenchmark(
        table or NATS_SSS_FILE, key_column="arch_str", columns=_SSS_COLUMNS, protocols=protocols,
        index_column="index", data_dir=data_dir, cite="dong2021natsbench",
        missing_hint=("NATS-Bench SSS has no ground truth offline: convert the official NATS-sss-v1_0-50262-simple "
                      f"archive with `harness convert nats-sss <archive>` (writes {NATS_SSS_FILE})"))
