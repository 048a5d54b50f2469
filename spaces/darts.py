"""The DARTS search space (the NAS-Bench-301 space): genotype values, the network, the benchmark.

An architecture is a *genotype*: a normal cell and a reduction cell, each with 4 intermediate
nodes.  Node ``k`` (``k = 0..3``) sums two operations applied to two *different* earlier states;
input ``0`` is the output of the cell before the previous one, ``1`` the previous cell's output and
``j >= 2`` intermediate node ``j - 2`` of the same cell, so node ``k`` may read inputs ``0..k+1``.
The cell output concatenates nodes 2..5 (``concat = [2, 3, 4, 5]``).  Operations are the 7 of
DARTS / NAS-Bench-301 without ``none``, in NASLib's order (:data:`OPS`).  The string form is the
DARTS ``Genotype`` namedtuple's repr, as NASLib and the ground-truth table write it::

    Genotype(normal=[('max_pool_3x3', 0), ('dil_conv_3x3', 1), ...], normal_concat=[2, 3, 4, 5],
             reduce=[('max_pool_3x3', 1), ('skip_connect', 0), ...], reduce_concat=[2, 3, 4, 5])

(one line).  The order of the two pairs of a node is part of the value: the strings distinguish
them, and so do the networks' parameter order and initialisation.

The network is the DARTS CIFAR *evaluation* network (``NetworkCIFAR`` of the DARTS code, also used
to train NAS-Bench-301's architectures): a 3x3 stem conv to ``3*C`` channels + BN; ``layers`` cells,
the ones at ``layers//3`` and ``2*layers//3`` reduction cells (channels doubled, stride 2 on the
edges from the two cell inputs); each cell preprocesses its two inputs (``FactorizedReduce`` on the
older one after a reduction cell, else ``ReLUConvBN`` 1x1; ``ReLUConvBN`` 1x1 on the newer one);
the discrete operations of ``operations.py`` (``SepConv`` = two stacked ReLU-depthwise-pointwise-BN,
``DilConv`` = one dilated ReLU-depthwise-pointwise-BN, 3x3 max/avg pooling with
``count_include_pad=False``, ``skip_connect`` = identity, or ``FactorizedReduce`` on a stride-2
edge); global average pooling and a linear classifier.  The defaults ``init_channels=32``,
``layers=8`` are NAS-Bench-301's evaluation setting; drop path is not implemented (probability
0) and the auxiliary head is off by default (if built, ``forward`` still returns only the logits).
``affine_ops=False`` makes the BNs inside the edge operations non-affine, as in NASLib's NB301
graph (and DARTS' search model): the parameter count then equals the table's ``params`` column
(NASLib's zero-cost networks); the default ``True`` is ``NetworkCIFAR``.
The spatial size of the input must be divisible by 4 (two stride-2 ``FactorizedReduce``).

The ground truth (:func:`darts_benchmark`) is the 725 genotypes of NASLib's NAS-Bench-301
zero-cost table: their ``val_accuracy`` is the NAS-Bench-301 *surrogate-predicted* CIFAR-10
validation accuracy (percent), not the accuracy of a trained network.  The space itself has about
2.8e20 genotypes (:attr:`DartsSpace.size`; too many for ``len()``), so :meth:`DartsSpace.enumerate` lists only
those 725, in file order.

Only torch, numpy and the standard library are imported.
"""
from __future__ import annotations

import ast
import math
import sys
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .base import Convention, InvalidArchitectureError, ResponsePoint, seeded
from .nb201 import ReLUConvBN  # ReLU -> conv -> BN: the 1x1 input preprocessing of a cell

__all__ = ["OPS", "CONCAT", "DartsGenotype", "DartsNetwork", "DartsSpace", "darts_benchmark", "DARTS_FILE"]

#: the operations, in NASLib's order (the op index of its compact encoding)
OPS: tuple[str, ...] = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                        "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
NUM_NODES = 4
NUM_PAIRS = 2 * NUM_NODES
#: the only allowed ``normal_concat`` / ``reduce_concat``
CONCAT: tuple[int, ...] = (2, 3, 4, 5)
_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")

DARTS_FILE = "darts/naslib_nb301_725.csv"


def _check_pairs(cell: str, pairs: Any) -> tuple[tuple[str, int], ...]:
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
        raise InvalidArchitectureError(
            f"the {cell} cell must be a sequence of {NUM_PAIRS} (op, input) pairs, got {type(pairs).__name__}")
    if len(pairs) != NUM_PAIRS:
        raise InvalidArchitectureError(
            f"the {cell} cell must have {NUM_PAIRS} (op, input) pairs (2 per node, {NUM_NODES} nodes), "
            f"got {len(pairs)}")
    out: list[tuple[str, int]] = []
    for i, pair in enumerate(pairs):
        node = i // 2
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise InvalidArchitectureError(f"pair {i} of the {cell} cell must be an (op, input) pair, got {pair!r}")
        op, inp = pair
        if op not in OPS:
            raise InvalidArchitectureError(
                f"unknown DARTS operation {op!r} in pair {i} of the {cell} cell; valid: {list(OPS)}")
        if isinstance(inp, bool) or not isinstance(inp, (int, np.integer)):
            raise InvalidArchitectureError(
                f"the input of pair {i} of the {cell} cell must be an int, got {inp!r}")
        inp = int(inp)
        if not 0 <= inp <= node + 1:
            raise InvalidArchitectureError(
                f"input {inp} of pair {i} of the {cell} cell is out of range: node {node} may read inputs "
                f"0..{node + 1}")
        out.append((str(op), inp))
    for node in range(NUM_NODES):
        a, b = out[2 * node][1], out[2 * node + 1][1]
        if a == b:
            raise InvalidArchitectureError(
                f"the two inputs of node {node} of the {cell} cell must differ, both are {a}")
    return tuple(out)


def _check_concat(name: str, concat: Any) -> tuple[int, ...]:
    try:
        values = tuple(concat)
    except TypeError:
        raise InvalidArchitectureError(f"{name} must be [2, 3, 4, 5], got {concat!r}") from None
    if values != CONCAT or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise InvalidArchitectureError(f"{name} must be [2, 3, 4, 5], got {list(values)!r}")
    return CONCAT


@dataclass(frozen=True, order=True)
class DartsGenotype:
    """An immutable DARTS genotype: 8 ``(op, input)`` pairs per cell (2 per node, 4 nodes).

    >>> g = DartsGenotype(normal=[("skip_connect", 0), ("sep_conv_3x3", 1)] * 4,
    ...                   reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 4)
    >>> g.normal[1], g.normal_concat
    (('sep_conv_3x3', 1), (2, 3, 4, 5))
    """

    normal: tuple[tuple[str, int], ...]
    reduce: tuple[tuple[str, int], ...]
    normal_concat: tuple[int, ...] = CONCAT
    reduce_concat: tuple[int, ...] = CONCAT

    def __post_init__(self) -> None:
        object.__setattr__(self, "normal", _check_pairs("normal", self.normal))
        object.__setattr__(self, "reduce", _check_pairs("reduce", self.reduce))
        object.__setattr__(self, "normal_concat", _check_concat("normal_concat", self.normal_concat))
        object.__setattr__(self, "reduce_concat", _check_concat("reduce_concat", self.reduce_concat))

    # ------------------------------------------------------------------ strings
    @classmethod
    def from_str(cls, text: str) -> "DartsGenotype":
        """Parse the ``Genotype(normal=[...], normal_concat=[...], reduce=[...], reduce_concat=[...])``
        string (whitespace-insensitive; ``range(2, 6)`` is accepted for a concat; the four fields
        may also be given positionally in that order).  The text is parsed, never evaluated."""
        if not isinstance(text, str):
            raise InvalidArchitectureError(f"a DARTS genotype string must be a str, got {type(text).__name__}")
        short = text if len(text) <= 120 else text[:117] + "..."
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            msg = getattr(exc, "msg", None) or str(exc)
            raise InvalidArchitectureError(
                f"not a Genotype(...) expression ({msg}): {short!r}") from None
        call = tree.body
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Genotype"):
            raise InvalidArchitectureError(
                f"a DARTS genotype string must be a call 'Genotype(normal=..., normal_concat=..., reduce=..., "
                f"reduce_concat=...)': {short!r}")
        if len(call.args) > len(_FIELDS):
            raise InvalidArchitectureError(
                f"Genotype takes at most {len(_FIELDS)} fields, got {len(call.args)} positional: {short!r}")
        nodes: dict[str, ast.expr] = dict(zip(_FIELDS, call.args))
        for kw in call.keywords:
            if kw.arg is None:
                raise InvalidArchitectureError(f"'**' is not allowed in a genotype string: {short!r}")
            if kw.arg not in _FIELDS:
                raise InvalidArchitectureError(
                    f"unknown Genotype field {kw.arg!r}; valid: {list(_FIELDS)}: {short!r}")
            if kw.arg in nodes:
                raise InvalidArchitectureError(f"Genotype field {kw.arg!r} is given twice: {short!r}")
            nodes[kw.arg] = kw.value
        missing = [f for f in _FIELDS if f not in nodes]
        if missing:
            raise InvalidArchitectureError(f"Genotype field(s) {missing} missing: {short!r}")
        values = {name: _literal(name, node, short) for name, node in nodes.items()}
        return cls(normal=values["normal"], reduce=values["reduce"],
                   normal_concat=values["normal_concat"], reduce_concat=values["reduce_concat"])

    def to_str(self) -> str:
        """The canonical string, exactly as the DARTS namedtuple prints (round-trips with :meth:`from_str`)."""
        return (f"Genotype(normal={list(self.normal)!r}, normal_concat={list(self.normal_concat)!r}, "
                f"reduce={list(self.reduce)!r}, reduce_concat={list(self.reduce_concat)!r})")

    __str__ = to_str

    # ------------------------------------------------------------------ other forms
    def to_dict(self) -> dict[str, list]:
        """The plain mapping form accepted by :meth:`DartsSpace.parse`."""
        return {"normal": [list(p) for p in self.normal], "normal_concat": list(self.normal_concat),
                "reduce": [list(p) for p in self.reduce], "reduce_concat": list(self.reduce_concat)}

    def to_compact(self) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
        """NASLib's compact encoding: per cell, 8 ``(input, op index in OPS)`` pairs."""
        return tuple(tuple((inp, OPS.index(op)) for op, inp in cell)  # type: ignore[return-value]
                     for cell in (self.normal, self.reduce))

    @classmethod
    def from_compact(cls, compact: Sequence[Sequence[Sequence[int]]]) -> "DartsGenotype":
        """The inverse of :meth:`to_compact`."""
        try:
            normal, reduce = compact
            cells = [[(OPS[int(o)], i) for i, o in cell] for cell in (normal, reduce)]
        except (TypeError, ValueError, IndexError) as exc:
            raise InvalidArchitectureError(f"not a NASLib compact DARTS encoding ({exc}): {compact!r}") from None
        return cls(normal=cells[0], reduce=cells[1])

    def replace(self, cell: str, pair: int, op: str | None = None, inp: int | None = None) -> "DartsGenotype":
        """A copy with pair ``pair`` of ``cell`` ('normal' or 'reduce') given a new op and/or input."""
        if cell not in ("normal", "reduce"):
            raise ValueError(f"cell must be 'normal' or 'reduce', got {cell!r}")
        pairs = list(getattr(self, cell))
        old_op, old_in = pairs[pair]
        pairs[pair] = (old_op if op is None else op, old_in if inp is None else inp)
        other = "reduce" if cell == "normal" else "normal"
        return DartsGenotype(**{cell: pairs, other: getattr(self, other)})


def _literal(name: str, node: ast.expr, short: str) -> Any:
    if name.endswith("_concat") and isinstance(node, ast.Call):
        # range(2, 6), as DARTS' own genotypes.py writes it
        if not (isinstance(node.func, ast.Name) and node.func.id == "range" and not node.keywords
                and 1 <= len(node.args) <= 3):
            raise InvalidArchitectureError(f"{name} must be a list of ints or range(2, 6): {short!r}")
        try:
            args = [ast.literal_eval(a) for a in node.args]
        except (ValueError, TypeError, SyntaxError, RecursionError):
            args = None
        if args is None or not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
            raise InvalidArchitectureError(f"{name}: range(...) takes int literals: {short!r}")
        if len(args) == 3 and args[2] == 0:
            raise InvalidArchitectureError(f"{name}: range(...) step must not be zero: {short!r}")
        return list(range(*args))
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        raise InvalidArchitectureError(f"field {name} must be a literal (list of pairs / ints): {short!r}") from None


# ---------------------------------------------------------------------------------------------
# network: DARTS' operations.py and model.py (NetworkCIFAR), discrete ops, no drop path


class DilConv(nn.Module):
    """ReLU -> dilated depthwise conv -> pointwise conv -> BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int,
                 affine: bool = True) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, dilation=dilation, groups=c_in,
                      bias=False),
            nn.Conv2d(c_in, c_out, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class SepConv(nn.Module):
    """Two stacked ReLU -> depthwise conv -> pointwise conv -> BN (stride on the first only)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_in, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(c_in, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=1, padding=padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class FactorizedReduce(nn.Module):
    """ReLU, then two 1x1 stride-2 convs on the map and on the map shifted by one pixel, concat, BN."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


def _make_op(op: str, c: int, stride: int, affine: bool) -> nn.Module:
    if op == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if op == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine)
    if op == "sep_conv_3x3":
        return SepConv(c, c, 3, stride, 1, affine)
    if op == "sep_conv_5x5":
        return SepConv(c, c, 5, stride, 2, affine)
    if op == "dil_conv_3x3":
        return DilConv(c, c, 3, stride, 2, 2, affine)
    if op == "dil_conv_5x5":
        return DilConv(c, c, 5, stride, 4, 2, affine)
    raise InvalidArchitectureError(f"unknown DARTS operation {op!r}; valid: {list(OPS)}")


class DartsCell(nn.Module):
    """One normal or reduction cell of the evaluation network (DARTS ``model.Cell``)."""

    def __init__(self, genotype: DartsGenotype, c_prev_prev: int, c_prev: int, c: int,
                 reduction: bool, reduction_prev: bool, affine_ops: bool = True) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(c_prev_prev, c) if reduction_prev else ReLUConvBN(c_prev_prev, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0)
        pairs = genotype.reduce if reduction else genotype.normal
        concat = genotype.reduce_concat if reduction else genotype.normal_concat
        self.ops = nn.ModuleList(_make_op(op, c, 2 if reduction and inp < 2 else 1, affine_ops) for op, inp in pairs)
        self._indices = tuple(inp for _, inp in pairs)
        self._concat = tuple(concat)
        self.multiplier = len(concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(len(self._indices) // 2):
            a, b = 2 * node, 2 * node + 1
            states.append(self.ops[a](states[self._indices[a]]) + self.ops[b](states[self._indices[b]]))
        return torch.cat([states[i] for i in self._concat], dim=1)


class AuxiliaryHeadCIFAR(nn.Module):
    """DARTS' auxiliary head (assumes an 8x8 input); its ReLUs are not in-place here (the next cells
    start with a ReLU, so the in-place original gives them the same values)."""

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=False),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class DartsNetwork(nn.Module):
    """The DARTS CIFAR evaluation network (``NetworkCIFAR``) for one genotype; ``forward`` -> logits."""

    def __init__(self, genotype: DartsGenotype, num_classes: int, *, init_channels: int = 32, layers: int = 8,
                 auxiliary: bool = False, affine_ops: bool = True) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        if init_channels < 1:
            raise ValueError(f"init_channels must be >= 1, got {init_channels}")
        self.genotype = genotype
        self._aux_at = 2 * layers // 3
        c_curr = 3 * init_channels
        self.stem = nn.Sequential(nn.Conv2d(3, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, init_channels
        cells: list[DartsCell] = []
        reduction_prev = False
        c_aux = c_prev
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            cell = DartsCell(genotype, c_prev_prev, c_prev, c_curr, reduction, reduction_prev, affine_ops)
            cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if i == self._aux_at:
                c_aux = c_prev
        self.cells = nn.ModuleList(cells)
        self.auxiliary_head = AuxiliaryHeadCIFAR(c_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def _run(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        s0 = s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if with_aux and i == self._aux_at:
                aux = self.auxiliary_head(s1)
        return s1, aux

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map just before global pooling (the last cell's output; DARTS has no final
        BN/ReLU), as NASLib's ``forward_before_global_avg_pool``."""
        return self._run(x, False)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.global_pooling(self.forward_features(x)).flatten(1))

    def forward_with_auxiliary(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(logits, auxiliary logits)`` as DARTS' ``NetworkCIFAR.forward``: the auxiliary logits are
        ``None`` unless the head was built and the network is in training mode."""
        features, aux = self._run(x, self.auxiliary_head is not None and self.training)
        return self.classifier(self.global_pooling(features).flatten(1)), aux

    def response_modules(self, convention: Convention = "paper") -> list[ResponsePoint]:
        """Where the correlation proxies read responses; the weighting layer is the cell index.

        ``paper``: every ``nn.ReLU`` inside each cell (preprocessing, conv edges, ``FactorizedReduce``),
        its input (pre-activation) and the gradient there.

        ``official``: the released WRCor code's rule, every module inside each cell whose class
        name contains "ReLU": the ReLUs above and each ``ReLUConvBN`` preprocessing wrapper (its
        gradient response is the one at its BN's input).  No module outside the cells is hooked
        (the stem, pooling and classifier have no ReLU; the auxiliary head is never probed).
        """
        if convention not in ("paper", "official"):
            raise ValueError(f"unknown response convention {convention!r}; valid: ['paper', 'official']")
        points: list[ResponsePoint] = []
        for layer, cell in enumerate(self.cells):
            for name, module in cell.named_modules():
                if isinstance(module, nn.ReLU) or (convention == "official" and isinstance(module, ReLUConvBN)):
                    points.append(ResponsePoint(f"cells.{layer}.{name}", module, layer))
        return points


# ---------------------------------------------------------------------------------------------
# the space


def _canonical_key(arch: Any) -> str:
    return DartsSpace.parse(arch).to_str()  # type: ignore[arg-type]


def darts_benchmark(data_dir: Any = None):
    """NAS-Bench-301 surrogate accuracy for the 725 genotypes of NASLib's NB301 zero-cost table.

    Keyed by the canonical genotype string (rows and lookups are both normalised, so any accepted
    form of a genotype finds its row); ``index_of`` gives the 0-based row number.  The Suite-Zero
    proxy columns (``synflow``, ``nwot`` ...) and ``naslib_compact`` are available via ``column``.
    """
    from .benchmarks import TableBenchmark

    return TableBenchmark(
        DARTS_FILE,
        key_column="genotype",
        columns={("cifar10", "valid"): "val_accuracy"},
        protocols={("cifar10", "valid"): (
            "NAS-Bench-301 surrogate-predicted CIFAR-10 validation accuracy (percent), not a trained network")},
        index_column=None,
        data_dir=data_dir,
        cite="siems2020nb301",
        row_key=lambda row: DartsGenotype.from_str(row["genotype"]).to_str(),
        arch_key=_canonical_key,
    )


def _count_cells() -> int:
    # node k: an ordered pair of distinct inputs among k+2 states, and an op for each
    return math.prod((k + 2) * (k + 1) * len(OPS) ** 2 for k in range(NUM_NODES))


class DartsSpace:
    """The DARTS / NAS-Bench-301 space; ground truth for 725 genotypes (NB301 surrogate)."""

    name = "darts"
    ops = OPS

    #: what each constructor setting means (``harness run --help`` shows it)
    settings_help = {"init_channels": "C: initial channels (the NB-301 evaluation network: 32)",
                     "layers": "cells (the NB-301 evaluation network: 8)",
                     "auxiliary": "an auxiliary head in the scoring network",
                     "affine_ops": "false = NASLib's network (no BN affine inside cell ops; its params column)"}

    def __init__(self, *, data_dir: Any = None, init_channels: int = 32, layers: int = 8,
                 auxiliary: bool = False, affine_ops: bool = True) -> None:
        self.data_dir = data_dir
        self.init_channels = init_channels
        self.layers = layers
        self.auxiliary = auxiliary
        self.affine_ops = affine_ops

    # -- values
    @staticmethod
    def parse(arch: Any) -> DartsGenotype:
        """A :class:`DartsGenotype` from a genotype, its string, or a mapping with keys ``normal``,
        ``reduce`` (8 ``[op, input]`` pairs each) and optionally ``normal_concat``/``reduce_concat``."""
        if isinstance(arch, DartsGenotype):
            return arch
        if isinstance(arch, str):
            return DartsGenotype.from_str(arch)
        if isinstance(arch, Mapping):
            unknown = sorted(map(str, set(arch) - set(_FIELDS)))
            if unknown:
                raise InvalidArchitectureError(f"unknown DARTS genotype key(s) {unknown}; valid: {list(_FIELDS)}")
            missing = [k for k in ("normal", "reduce") if k not in arch]
            if missing:
                raise InvalidArchitectureError(f"a DARTS genotype mapping needs the key(s) {missing}")
            return DartsGenotype(normal=arch["normal"], reduce=arch["reduce"],
                                 normal_concat=arch.get("normal_concat", CONCAT),
                                 reduce_concat=arch.get("reduce_concat", CONCAT))
        raise InvalidArchitectureError(
            f"cannot read a DARTS architecture from {type(arch).__name__}: give a DartsGenotype, the "
            "'Genotype(normal=[...], ...)' string, or a mapping with 'normal' and 'reduce'")

    def to_str(self, arch: Any) -> str:
        return self.parse(arch).to_str()

    #: The exact number of distinct genotypes: ``(prod_{k=0..3} (k+2)(k+1) * 7**2) ** 2``
    #: = ``(2880 * 7**8) ** 2`` = 275,647,219,316,498,534,400 (about 2.8e20).  Within a node the two
    #: pairs are ordered (``(a, i), (b, j)`` differs from ``(b, j), (a, i)``), as the strings are;
    #: unordered it would be 16**2 times fewer, about 1.1e18 (the count usually quoted for NB301).
    size: int = _count_cells() ** 2

    def __len__(self) -> int:
        """Always raises: :attr:`size` (about 2.8e20) is more than ``len()`` can return
        (``sys.maxsize``, about 9.2e18); read ``DartsSpace.size`` instead."""
        raise OverflowError(
            f"the DARTS space has {self.size:,} genotypes, more than len() can return "
            f"(sys.maxsize = {sys.maxsize:,}); use DartsSpace.size")

    @cached_property
    def _ground_truth_order(self) -> tuple[DartsGenotype, ...]:
        return tuple(DartsGenotype.from_str(k) for k in self.benchmark.keys())

    def enumerate(self) -> Iterator[DartsGenotype]:
        """The 725 genotypes that have ground truth, in file order (the space, ~2.8e20 genotypes,
        is too large to list)."""
        return iter(self._ground_truth_order)

    def index(self, arch: Any) -> int:
        """The row number of ``arch`` in the ground-truth table."""
        return self.benchmark.index_of(self.parse(arch))

    def sample(self, rng: np.random.Generator) -> DartsGenotype:
        """NASLib's sampling: each node draws 2 distinct inputs among its predecessors and 2 ops,
        all uniformly; the normal cell first, then the reduction cell."""
        cells = []
        for _ in range(2):
            pairs: list[tuple[str, int]] = []
            for node in range(NUM_NODES):
                inputs = rng.choice(node + 2, size=2, replace=False)
                ops = rng.integers(0, len(OPS), size=2)
                pairs += [(OPS[int(ops[0])], int(inputs[0])), (OPS[int(ops[1])], int(inputs[1]))]
            cells.append(pairs)
        return DartsGenotype(normal=cells[0], reduce=cells[1])

    def choices(self) -> tuple[tuple[str, tuple], ...]:
        """The categorical decisions (for policy-based search): per cell (normal, then reduce) and
        per pair, its input (node k: 0..k+1) and its op."""
        out: list[tuple[str, tuple]] = []
        for cell in ("normal", "reduce"):
            for pair in range(NUM_PAIRS):
                out += [(f"{cell}{pair}.input", tuple(range(pair // 2 + 2))), (f"{cell}{pair}.op", OPS)]
        return tuple(out)

    def from_choices(self, idx: Sequence[int]) -> DartsGenotype:
        """The genotype of :meth:`choices` indices; raises InvalidArchitectureError when a node's two
        inputs coincide (a sampler then draws again)."""
        if len(idx) != 4 * NUM_PAIRS:
            raise InvalidArchitectureError(f"need {4 * NUM_PAIRS} choice indices, got {len(idx)}")
        cells = []
        for c in range(2):
            part = [int(i) for i in idx[2 * NUM_PAIRS * c: 2 * NUM_PAIRS * (c + 1)]]
            if not all(0 <= o < len(OPS) for o in part[1::2]):
                raise InvalidArchitectureError(f"op indices must be in 0..{len(OPS) - 1}, got {part[1::2]}")
            cells.append([(OPS[o], i) for i, o in zip(part[0::2], part[1::2])])
        return DartsGenotype(normal=cells[0], reduce=cells[1])

    def mutate(self, arch: Any, rng: np.random.Generator) -> DartsGenotype:
        """NASLib-style mutation that always changes something: pick a cell and one of its 8 pairs,
        then change either its op (to one of the 6 others) or its input (to another valid input
        distinct from the node's other input), each with probability 1/2.  Node 0 has no other
        input to move to (its inputs are 0 and 1), so its pairs always change op."""
        arch = self.parse(arch)
        cell = ("normal", "reduce")[int(rng.integers(2))]
        pair = int(rng.integers(NUM_PAIRS))
        pairs = getattr(arch, cell)
        node = pair // 2
        op, inp = pairs[pair]
        sibling = pairs[pair ^ 1][1]
        inputs = [i for i in range(node + 2) if i not in (inp, sibling)]
        if inputs and int(rng.integers(2)) == 1:
            return arch.replace(cell, pair, inp=inputs[int(rng.integers(len(inputs)))])
        ops = [o for o in OPS if o != op]
        return arch.replace(cell, pair, op=ops[int(rng.integers(len(ops)))])

    # -- networks
    def build(self, arch: Any, num_classes: int, *, seed: int | None = None) -> DartsNetwork:
        """The evaluation network for ``arch``.  With ``seed`` its initialisation is drawn from that
        seed inside a forked RNG, leaving the caller's global RNG state untouched."""
        arch = self.parse(arch)
        kwargs = dict(init_channels=self.init_channels, layers=self.layers, auxiliary=self.auxiliary,
                      affine_ops=self.affine_ops)
        return seeded(seed, lambda: DartsNetwork(arch, num_classes, **kwargs))

    def response_modules(self, net: nn.Module, convention: Convention = "paper") -> list[ResponsePoint]:
        if not isinstance(net, DartsNetwork):
            raise TypeError(f"expected a network built by the darts space, got {type(net).__name__}")
        return net.response_modules(convention)

    def num_layers(self, net: nn.Module) -> int:
        if not isinstance(net, DartsNetwork):
            raise TypeError(f"expected a network built by the darts space, got {type(net).__name__}")
        return len(net.cells)

    # -- ground truth
    @cached_property
    def benchmark(self):
        return darts_benchmark(self.data_dir)
