"""NAS-Bench-101: cell specs, the benchmark's network, the ground truth.

An architecture is a cell: a DAG of at most 7 vertices given by an upper-triangular 0/1
adjacency matrix and one operation per vertex (``input``, then ``conv3x3-bn-relu``,
``conv1x1-bn-relu`` or ``maxpool3x3`` for each interior vertex, then ``output``), with at most 9
edges.  A spec is *pruned* the way the original benchmark prunes it (nasbench's ``ModelSpec``:
every vertex that is not on some input→output path is removed), and a spec whose input does not
reach its output is invalid.  Two specs that differ only by the numbering of their vertices are
the same cell; the isomorphism-invariant graph hash (nasbench's ``hash_module``) identifies it and
keys the ground truth.

Where the ``nasbench_pytorch`` package is used, and where not:

* pruning (``ModelSpec``), the graph hash (``graph_util.hash_module``) and the channel split of a
  cell (``compute_vertex_channels``) come from it;
* its ``ModelSpec.hash_spec()`` is not used: it hands a torch tensor to ``hash_module``, which
  then breaks; the hash is computed here from the numpy matrix instead;
* an invalid spec: ``ModelSpec`` marks it (``valid_spec=False``) or raises a bare ``ValueError``;
  here every problem raises :class:`~spaces.vocabulary.InvalidArchitectureError` naming it;
* its ``Network`` is not used: each of its cells registers parameters the benchmark's network
  does not have (``Cell.dev_param`` and a scalar ``Placeholder.a`` per unused slot), which would
  change ``params``/``l2_norm``/``synflow`` scores and the state layout.  :class:`NB101Network`
  is the network of the benchmark (and of the released WRCor/zero-cost code): a 3x3 conv-BN-ReLU
  stem, ``num_stacks`` stacks of ``cells_per_stack`` cells with a 2x2 max-pool and channel
  doubling between stacks, each cell's input projected by a 1x1 conv-BN-ReLU to every vertex it
  feeds, interior outputs truncated to the receiving vertex's channels, outputs concatenated,
  global average pooling and a linear classifier.  Its parameters and buffers are registered in
  the reference's order, so a reference ``state_dict`` loads by position.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .base import Convention, InvalidArchitectureError, ResponsePoint, seeded

INPUT, OUTPUT = "input", "output"
#: interior operations, in nasbench's canonical order (their index labels the graph hash)
OPS: tuple[str, ...] = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
MAX_VERTICES = 7
MAX_EDGES = 9
#: the number of distinct (non-isomorphic) valid cells of NAS-Bench-101
NUM_CELLS = 423_624


def _graph_util():
    from nasbench_pytorch.model import graph_util

    return graph_util


def _prune(matrix: np.ndarray, ops: list[str]) -> tuple[np.ndarray, list[str]]:
    """nasbench's pruning (via ``nasbench_pytorch``'s ModelSpec): drop every vertex off all
    input→output paths; raises if the input does not reach the output."""
    from nasbench_pytorch.model.model_spec import ModelSpec

    disconnected = "the input vertex does not reach the output vertex: no path carries data"
    try:
        spec = ModelSpec(matrix.copy(), list(ops))
    except RuntimeError:  # it converts the pruned matrix to a tensor, which is None for such a spec
        raise InvalidArchitectureError(disconnected) from None
    if not spec.valid_spec:
        raise InvalidArchitectureError(disconnected)
    pruned = np.asarray(spec.matrix.numpy() if isinstance(spec.matrix, torch.Tensor) else spec.matrix, dtype=np.int64)
    return pruned, list(spec.ops)


@dataclass(frozen=True, order=True)
class NB101Arch:
    """An immutable, pruned NB-101 cell: ``matrix`` (V x V, 0/1, upper-triangular) and ``ops``
    (V names, ``input`` first, ``output`` last).  Any valid spec may be given; it is pruned on
    construction, so ``NB101Arch(m, o) == NB101Arch(pruned m, pruned o)``."""

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        try:
            m = np.asarray(self.matrix)
        except (TypeError, ValueError) as exc:
            raise InvalidArchitectureError(f"an NB-101 matrix must be a square 0/1 array: {exc}") from None
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise InvalidArchitectureError(f"an NB-101 matrix must be square, got shape {m.shape}")
        if m.dtype == object or not np.isin(m, (0, 1)).all():
            raise InvalidArchitectureError(f"an NB-101 matrix holds only 0 and 1, got {sorted(set(m.ravel().tolist()))}")
        m = m.astype(np.int64)
        v = m.shape[0]
        if isinstance(self.ops, str):
            raise InvalidArchitectureError("NB-101 ops must be a sequence of names, got a str")
        ops = tuple(self.ops)
        if v < 2:
            raise InvalidArchitectureError(f"an NB-101 cell has at least 2 vertices (input, output), got {v}")
        if v > MAX_VERTICES:
            raise InvalidArchitectureError(f"an NB-101 cell has at most {MAX_VERTICES} vertices, got {v}")
        if len(ops) != v:
            raise InvalidArchitectureError(f"{len(ops)} ops for a {v}x{v} matrix: give one op per vertex")
        if np.tril(m).any():
            raise InvalidArchitectureError("an NB-101 matrix must be strictly upper-triangular (a DAG in vertex order)")
        if ops[0] != INPUT or ops[-1] != OUTPUT:
            raise InvalidArchitectureError(f"the first op must be {INPUT!r} and the last {OUTPUT!r}, got {ops[0]!r} "
                                           f"and {ops[-1]!r}")
        bad = [o for o in ops[1:-1] if o not in OPS]
        if bad:
            raise InvalidArchitectureError(f"unknown NB-101 operation(s) {bad}; valid: {list(OPS)}")
        pm, pops = _prune(m, list(ops))
        if int(pm.sum()) > MAX_EDGES:
            raise InvalidArchitectureError(f"an NB-101 cell has at most {MAX_EDGES} edges, this one has {int(pm.sum())} "
                                           "(after pruning)")
        object.__setattr__(self, "matrix", tuple(tuple(int(x) for x in row) for row in pm))
        object.__setattr__(self, "ops", tuple(pops))

    # -- forms
    @classmethod
    def from_spec(cls, matrix: Any, ops: Sequence[str]) -> "NB101Arch":
        return cls(matrix, tuple(ops))

    @classmethod
    def from_rowmajor(cls, bits: str, ops: str | Sequence[str]) -> "NB101Arch":
        """From a row-major 0/1 string (``V*V`` characters) and ``;``-separated ops (the data files' form)."""
        bits = str(bits).strip()
        v = math.isqrt(len(bits))
        if v * v != len(bits) or set(bits) - {"0", "1"}:
            raise InvalidArchitectureError(f"a row-major NB-101 matrix is V*V characters of 0/1, got {bits!r}")
        if isinstance(ops, str):
            ops = [o.strip() for o in ops.split(";")]
        return cls(np.array([int(b) for b in bits]).reshape(v, v), tuple(ops))

    @classmethod
    def from_str(cls, text: str) -> "NB101Arch":
        """Parse :meth:`to_str`'s form ``<row-major bits>:<op;op;...>``."""
        if not isinstance(text, str):
            raise InvalidArchitectureError(f"an NB-101 architecture string must be a str, got {type(text).__name__}")
        bits, sep, ops = text.strip().partition(":")
        if not sep:
            raise InvalidArchitectureError(f"an NB-101 string is '<row-major 0/1 matrix>:<op;op;...>', got {text!r}")
        return cls.from_rowmajor(bits, ops)

    def to_str(self) -> str:
        """``<row-major bits>:<op;...>`` of the pruned spec (round-trips with :meth:`from_str`).

        >>> NB101Arch(((0, 1), (0, 0)), ("input", "output")).to_str()
        '0100:input;output'
        """
        return "".join(str(b) for row in self.matrix for b in row) + ":" + ";".join(self.ops)

    __str__ = to_str

    def to_dict(self) -> dict:
        """The plain form ``{"matrix": [[...]], "ops": [...]}``."""
        return {"matrix": [list(r) for r in self.matrix], "ops": list(self.ops)}

    @property
    def num_vertices(self) -> int:
        return len(self.ops)

    @property
    def num_edges(self) -> int:
        return int(sum(map(sum, self.matrix)))

    @cached_property
    def hash(self) -> str:
        """nasbench's isomorphism-invariant graph hash (the key of the official tables)."""
        labels = [-1] + [OPS.index(o) for o in self.ops[1:-1]] + [-2]
        return _graph_util().hash_module(np.array(self.matrix, dtype=np.int64), labels)


# ---------------------------------------------------------------------------------------------
# network (registration order = the reference's, so states load by position)


class ConvBnRelu(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv_bn_relu = nn.Sequential(
            nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_bn_relu(x)


class _Conv3x3(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv3x3 = ConvBnRelu(c_in, c_out, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3x3(x)


class _Conv1x1(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1x1 = ConvBnRelu(c_in, c_out, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1x1(x)


class _MaxPool3x3(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.maxpool = nn.MaxPool2d(3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(x)


_OP_MODULES = {"conv3x3-bn-relu": _Conv3x3, "conv1x1-bn-relu": _Conv1x1, "maxpool3x3": _MaxPool3x3}


class Cell(nn.Module):
    """One NB-101 cell for a pruned spec."""

    def __init__(self, arch: NB101Arch, c_in: int, c_out: int) -> None:
        super().__init__()
        from nasbench_pytorch.model.model import compute_vertex_channels

        m = np.array(arch.matrix, dtype=np.int64)
        self.matrix = m
        v = self.num_vertices = m.shape[0]
        self.vertex_channels = [int(c) for c in compute_vertex_channels(c_in, c_out, m)]
        # slot 0 (and every unused slot) is a parameter-free placeholder, as the reference's None
        self.vertex_op = nn.ModuleList([nn.Identity()])
        for t in range(1, v - 1):
            self.vertex_op.append(_OP_MODULES[arch.ops[t]](self.vertex_channels[t], self.vertex_channels[t]))
        self.input_op = nn.ModuleList([nn.Identity()])
        for t in range(1, v):
            self.input_op.append(ConvBnRelu(c_in, self.vertex_channels[t], 1) if m[0, t] else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, v = self.matrix, self.num_vertices
        tensors = [x]
        out_concat = []
        for t in range(1, v - 1):
            c = self.vertex_channels[t]
            fan_in = [tensors[s][:, :c] if tensors[s].shape[1] > c else tensors[s] for s in range(1, t) if m[s, t]]
            if m[0, t]:
                fan_in.append(self.input_op[t](x))
            tensors.append(self.vertex_op[t](sum(fan_in)))  # python's sum from 0, as the reference
            if m[t, v - 1]:
                out_concat.append(tensors[t])
        if not out_concat:
            return self.input_op[v - 1](x)
        out = out_concat[0] if len(out_concat) == 1 else torch.cat(out_concat, 1)
        if m[0, v - 1]:
            # the reference adds in place; out of place is the same sum and keeps autograd valid
            # when ``out`` is a ReLU's output
            out = out + self.input_op[v - 1](x)
        return out


class NB101Network(nn.Module):
    """The NB-101 network of one cell (stem 128, 3 stacks x 3 cells by default)."""

    def __init__(self, arch: NB101Arch, num_classes: int, *, stem_channels: int = 128, num_stacks: int = 3,
                 cells_per_stack: int = 3) -> None:
        super().__init__()
        self.arch = arch
        self.layers = nn.ModuleList([ConvBnRelu(3, stem_channels, 3, 1, 1)])
        c_in = c_out = stem_channels
        self.cell_layers: list[int] = []
        for stack in range(num_stacks):
            if stack > 0:
                self.layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                c_out *= 2
            for _ in range(cells_per_stack):
                self.cell_layers.append(len(self.layers))
                self.layers.append(Cell(arch, c_in, c_out))
                c_in = c_out
        self.classifier = nn.Linear(c_out, num_classes)
        self._initialize_weights()

    def _initialize_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / n))
                if m.bias is not None:
                    m.bias.data.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                m.weight.data.normal_(0, 0.01)
                m.bias.data.zero_()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before global pooling."""
        for layer in self.layers:
            x = layer(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.mean(self.forward_features(x), (2, 3)))

    def response_modules(self, convention: Convention = "paper") -> list[ResponsePoint]:
        """Every ``nn.ReLU`` (its input, and the gradient there) in the stem and the cells.

        ``official``: the released WRCor code's layer index — the position in ``layers`` (stem
        0, then cells and max-pool slots alike: cells 1-3, pool 4, cells 5-7, pool 8, cells
        9-11); only ``nn.ReLU`` modules match its "ReLU" class-name test (``ConvBnRelu`` does not).
        ``paper``: the same ReLUs, layer = stem 0 and cells 1, 2, ... consecutively (pooling
        slots are not cells).
        """
        if convention not in ("paper", "official"):
            raise ValueError(f"unknown response convention {convention!r}; valid: ['paper', 'official']")
        points = []
        depth = 0
        for i, layer in enumerate(self.layers):
            relus = [(n, m) for n, m in layer.named_modules() if isinstance(m, nn.ReLU)]
            if not relus and not isinstance(layer, Cell):
                continue  # a pooling slot: counted by the official index only
            index = i if convention == "official" else depth
            points += [ResponsePoint(f"layers.{i}.{n}", m, index) for n, m in relus]
            depth += 1
        return points


# ---------------------------------------------------------------------------------------------
# the space


class NB101Space:
    """NAS-Bench-101: 423,624 cells.  ``enumerate`` lists the cells of the ground-truth table
    (the 500 of the offline table, or every row of a converted full table)."""

    name = "nb101"
    ops = OPS

    #: what each constructor setting means (``harness run --help`` shows it)
    settings_help = {"stem_channels": "stem channels (the benchmark's network: 128; the golden reference and "
                                      "the CPU profile use 16)",
                     "num_stacks": "stacks of cells (the benchmark's network: 3)",
                     "cells_per_stack": "cells per stack (the benchmark's network: 3)",
                     "table": "the ground-truth table under the data dir (null: nb101/naslib_nb101_500.csv)"}

    def __init__(self, *, data_dir: Any = None, stem_channels: int = 128, num_stacks: int = 3,
                 cells_per_stack: int = 3, table: str | None = None) -> None:
        self.data_dir = data_dir
        self.stem_channels = int(stem_channels)
        self.num_stacks = int(num_stacks)
        self.cells_per_stack = int(cells_per_stack)
        self.table = table

    # -- values
    def parse(self, arch: Any) -> NB101Arch:
        """An NB101Arch, its string, a mapping ``{"matrix": V x V 0/1 lists, "ops": [...]}`` or a
        ``(matrix, ops)`` pair."""
        if isinstance(arch, NB101Arch):
            return arch
        if isinstance(arch, str):
            return NB101Arch.from_str(arch)
        if isinstance(arch, Mapping):
            missing = [k for k in ("matrix", "ops") if k not in arch]
            if missing:
                raise InvalidArchitectureError(f"an NB-101 mapping needs the keys 'matrix' and 'ops'; missing {missing}")
            return NB101Arch(arch["matrix"], tuple(arch["ops"]))
        if isinstance(arch, (tuple, list)) and len(arch) == 2 and not isinstance(arch[1], (int, float)):
            return NB101Arch(arch[0], tuple(arch[1]))
        raise InvalidArchitectureError(
            f"cannot read an NB-101 architecture from {type(arch).__name__}: give an NB101Arch, its string "
            "'<row-major bits>:<op;...>', a mapping {'matrix': ..., 'ops': ...} or a (matrix, ops) pair")

    def to_str(self, arch: Any) -> str:
        return self.parse(arch).to_str()

    def hash(self, arch: Any) -> str:
        return self.parse(arch).hash

    def enumerate(self) -> Iterator[NB101Arch]:
        """The distinct cells that have ground truth, in the table's order, each once (as the spec
        of its first row): 292 for the offline 500-row table.  NB-101 is too large to list without
        its full table: convert ``nasbench_only108.tfrecord`` for all of them."""
        return iter(self._table_archs)

    @cached_property
    def _table_archs(self) -> tuple[NB101Arch, ...]:
        bench = self.benchmark
        bits, ops = (bench.column(c, per="key", as_str=True) for c in (bench.key_column, "ops"))
        return tuple(NB101Arch.from_rowmajor(b, o) for b, o in zip(bits, ops))

    def index(self, arch: Any) -> int:
        """The row of ``arch`` (any labelling of the same graph) in the ground-truth table."""
        return self.benchmark.index_of(self.parse(arch))

    @property
    def size(self) -> int:
        """How many architectures the space has."""
        return NUM_CELLS

    def __len__(self) -> int:
        return self.size

    def sample(self, rng: np.random.Generator) -> NB101Arch:
        """A uniformly random 7-vertex spec (each upper-triangular edge a fair coin, interior ops
        uniform), re-drawn until it is valid — nasbench's and NASLib's sampler."""
        while True:
            m = np.triu(rng.integers(0, 2, size=(MAX_VERTICES, MAX_VERTICES)), 1)
            ops = (INPUT, *(OPS[i] for i in rng.integers(0, len(OPS), size=MAX_VERTICES - 2)), OUTPUT)
            try:
                return NB101Arch(m, ops)
            except InvalidArchitectureError:
                continue

    def choices(self) -> tuple[tuple[str, tuple], ...]:
        """The categorical decisions of a 7-vertex spec (for policy-based search): the op of each of
        the 5 interior vertices, then each of the 21 upper-triangular edges (absent/present)."""
        ops = tuple((f"op{v}", OPS) for v in range(1, MAX_VERTICES - 1))
        return ops + tuple((f"edge{i}-{j}", (0, 1)) for i, j in zip(*np.triu_indices(MAX_VERTICES, 1)))

    def from_choices(self, idx: Sequence[int]) -> NB101Arch:
        """The spec of :meth:`choices` indices; raises InvalidArchitectureError when it is not a
        valid cell (disconnected, more than 9 edges after pruning), so a sampler draws again."""
        n_ops = MAX_VERTICES - 2
        n_edges = MAX_VERTICES * (MAX_VERTICES - 1) // 2
        if len(idx) != n_ops + n_edges:
            raise InvalidArchitectureError(f"need {n_ops + n_edges} choice indices, got {len(idx)}")
        m = np.zeros((MAX_VERTICES, MAX_VERTICES), dtype=np.int64)
        m[np.triu_indices(MAX_VERTICES, 1)] = [int(i) for i in idx[n_ops:]]
        return NB101Arch(m, (INPUT, *(OPS[int(i)] for i in idx[:n_ops]), OUTPUT))

    def mutate(self, arch: Any, rng: np.random.Generator, *, rate: float = 1.0) -> NB101Arch:
        """nasbench's mutation (the NB-101 paper's regularised evolution): on the spec padded to 7
        vertices (disconnected interior vertices may be wired in), flip each of the 21 possible
        edges with probability ``rate/7`` and change each interior op with probability ``rate/5``;
        re-drawn until the result is valid and is a different cell (another graph hash)."""
        arch = self.parse(arch)
        v = arch.num_vertices
        base = np.zeros((MAX_VERTICES, MAX_VERTICES), dtype=np.int64)
        base[: v - 1, : v - 1] = np.array(arch.matrix)[: v - 1, : v - 1]
        base[: v - 1, MAX_VERTICES - 1] = np.array(arch.matrix)[: v - 1, v - 1]
        pad = [OPS[int(i)] for i in rng.integers(0, len(OPS), size=MAX_VERTICES - v)]
        base_ops = [*arch.ops[:-1], *pad, OUTPUT]
        upper = np.triu(np.ones((MAX_VERTICES, MAX_VERTICES), dtype=bool), 1)
        for _ in range(10_000):
            flips = (rng.random((MAX_VERTICES, MAX_VERTICES)) < rate / MAX_VERTICES) & upper
            m = np.where(flips, 1 - base, base)
            ops = list(base_ops)
            for k in range(1, MAX_VERTICES - 1):
                if rng.random() < rate / (MAX_VERTICES - 2):
                    ops[k] = [o for o in OPS if o != ops[k]][int(rng.integers(len(OPS) - 1))]
            try:
                child = NB101Arch(m, tuple(ops))
            except InvalidArchitectureError:
                continue
            if child.hash != arch.hash:
                return child
        raise RuntimeError(f"no valid mutation of {arch} found in 10,000 draws")  # pragma: no cover

    # -- networks
    def build(self, arch: Any, num_classes: int, *, seed: int | None = None, stem_channels: int | None = None,
              num_stacks: int | None = None, cells_per_stack: int | None = None) -> NB101Network:
        """The benchmark's network for ``arch``; the width/depth knobs default to the space's
        (stem 128, 3 stacks x 3 cells).  With ``seed``, initialised from that seed in a forked RNG."""
        arch = self.parse(arch)
        kw = dict(stem_channels=self.stem_channels if stem_channels is None else int(stem_channels),
                  num_stacks=self.num_stacks if num_stacks is None else int(num_stacks),
                  cells_per_stack=self.cells_per_stack if cells_per_stack is None else int(cells_per_stack))
        return seeded(seed, lambda: NB101Network(arch, num_classes, **kw))

    def response_modules(self, net: nn.Module, convention: Convention = "paper") -> list[ResponsePoint]:
        if not isinstance(net, NB101Network):
            raise TypeError(f"expected a network built by the nb101 space, got {type(net).__name__}")
        return net.response_modules(convention)

    def num_layers(self, net: nn.Module) -> int:
        return len(net.layers) - 1

    # -- ground truth
    @cached_property
    def benchmark(self):
        return nb101_benchmark(self.data_dir, table=self.table)


NB101_FILE = "nb101/naslib_nb101_500.csv"


def nb101_benchmark(data_dir: str | os.PathLike[str] | None = None, *, table: str | None = None):
    """NB-101 ground truth keyed by the graph hash: the offline 500-row NASLib table (CIFAR-10
    validation accuracy, 108 epochs, one training seed per row; its 500 unpruned specs are 292
    distinct cells, and a cell's rows are averaged), or a full table converted
    from ``nasbench_only108.tfrecord`` by ``harness convert nb101`` (validation and
    test accuracy, mean over the 3 seeds)."""
    from .benchmarks import TableBenchmark

    table = table or NB101_FILE
    columns = {("cifar10", "valid"): "val_accuracy"}
    if table == NB101_FILE:
        protocols = {("cifar10", "valid"): "NB-101 CIFAR-10 validation accuracy after 108 epochs (percent) from "
                                           "NASLib's 500-row table: 292 distinct cells, each row one training "
                                           "seed; a cell listed in several rows gets their mean"}
    else:
        columns[("cifar10", "test")] = "test_accuracy"
        protocols = {("cifar10", "valid"): "NB-101 CIFAR-10 validation accuracy after 108 epochs (percent), "
                                           "mean over the 3 training seeds",
                     ("cifar10", "test"): "NB-101 CIFAR-10 test accuracy after 108 epochs (percent), "
                                          "mean over the 3 training seeds"}

    def row_key(row: Mapping[str, str]) -> str:
        return NB101Arch.from_rowmajor(row["matrix_rowmajor"], row["ops"]).hash

    def arch_key(arch: Any) -> str:
        if isinstance(arch, NB101Arch):
            return arch.hash
        return NB101Space().parse(arch).hash

    return TableBenchmark(table, key_column="matrix_rowmajor", columns=columns, protocols=protocols,
                          index_column=None, data_dir=data_dir, row_key=row_key, arch_key=arch_key,
                          duplicates="mean" if table == NB101_FILE else "error", cite="ying2019nasbench101")
