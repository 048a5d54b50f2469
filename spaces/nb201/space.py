"""The NAS-Bench-201 space: values, sampling, mutation, networks, the stacked formulation and the
benchmark (see :mod:`spaces.nb201.network` for the cell and the network)."""
from __future__ import annotations

from functools import cached_property
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..base import seeded
from ..vocabulary import Convention, InvalidArchitectureError, ResponsePoint
from .network import EDGES, NUM_EDGES, OPS, NB201Arch, NB201Network
from .stacked import forward_backward, pack_group


class NB201Space:
    """NAS-Bench-201: 15,625 cells; ``enumerate`` follows the official index order."""

    name = "nb201"
    ops = OPS

    #: what each constructor setting means (``harness run --help`` shows it)
    settings_help = {"channels": "C: stem/first-stage channels (the benchmark's network: 16)",
                     "cells_per_stage": "N: cells per stage (the benchmark's network: 5)"}

    def __init__(self, *, data_dir: Any = None, channels: int = 16, cells_per_stage: int = 5) -> None:
        self.data_dir = data_dir
        self.channels = channels
        self.cells_per_stage = cells_per_stage

    # -- values
    def parse(self, arch: Any) -> NB201Arch:
        if isinstance(arch, NB201Arch):
            return arch
        if isinstance(arch, str):
            return NB201Arch.from_str(arch)
        if isinstance(arch, (tuple, list)) and all(isinstance(o, str) for o in arch):
            return NB201Arch(tuple(arch))
        raise InvalidArchitectureError(
            f"cannot read an NB201 architecture from {type(arch).__name__}: give the official string, "
            "an NB201Arch, or a sequence of 6 operation names")

    def to_str(self, arch: Any) -> str:
        return self.parse(arch).to_str()

    def product_order(self) -> Iterator[NB201Arch]:
        """All 5**6 cells in lexicographic order of :data:`OPS` (needs no data file)."""
        for code in range(len(OPS) ** NUM_EDGES):
            ops = []
            for _ in range(NUM_EDGES):
                code, r = divmod(code, len(OPS))
                ops.append(OPS[r])
            yield NB201Arch(tuple(reversed(ops)))

    @cached_property
    def _official_order(self) -> tuple[NB201Arch, ...]:
        keys = self.benchmark.keys()
        return tuple(NB201Arch.from_str(k) for k in keys)

    def enumerate(self) -> Iterator[NB201Arch]:
        """Every cell in the official NB201/NATS index order (read from the ground-truth table)."""
        return iter(self._official_order)

    def index(self, arch: Any) -> int:
        """The official NB201 index of an architecture."""
        return self.benchmark.index_of(self.parse(arch))

    @property
    def size(self) -> int:
        """How many architectures the space has."""
        return len(OPS) ** NUM_EDGES

    def __len__(self) -> int:
        return self.size

    def sample(self, rng: np.random.Generator) -> NB201Arch:
        return NB201Arch(tuple(OPS[i] for i in rng.integers(0, len(OPS), size=NUM_EDGES)))

    def mutate(self, arch: Any, rng: np.random.Generator) -> NB201Arch:
        """Change the operation of one uniformly chosen edge to a different operation."""
        arch = self.parse(arch)
        edge = int(rng.integers(NUM_EDGES))
        choices = [o for o in OPS if o != arch.ops[edge]]
        return arch.replace(edge, choices[int(rng.integers(len(choices)))])

    def choices(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The categorical decisions of a cell (for policy-based search): one per edge, 5 ops each."""
        return tuple((f"edge{t}<-{f}", OPS) for t, f in EDGES)

    def from_choices(self, idx: Sequence[int]) -> NB201Arch:
        """The cell choosing ``OPS[idx[k]]`` on edge ``k`` (the order of :meth:`choices`)."""
        if len(idx) != NUM_EDGES or not all(0 <= int(i) < len(OPS) for i in idx):
            raise InvalidArchitectureError(f"need {NUM_EDGES} op indices in 0..{len(OPS) - 1}, got {tuple(idx)}")
        return NB201Arch(tuple(OPS[int(i)] for i in idx))

    # -- networks
    def build(self, arch: Any, num_classes: int, *, seed: int | None = None) -> NB201Network:
        """The network for ``arch`` (string or value).  With ``seed`` its initialisation is drawn
        from that seed inside a forked RNG, leaving the caller's global RNG state untouched."""
        arch = self.parse(arch)
        return seeded(seed, lambda: NB201Network(arch, num_classes, channels=self.channels,
                                                 cells_per_stage=self.cells_per_stage))

    def response_modules(self, net: nn.Module, convention: Convention = "paper") -> list[ResponsePoint]:
        if not isinstance(net, NB201Network):
            raise TypeError(f"expected a network built by the nb201 space, got {type(net).__name__}")
        return net.response_modules(convention)

    def num_layers(self, net: nn.Module) -> int:
        return len(net.cells)  # the final ReLU sits at layer len(cells)

    # -- the scoring engine's stacked formulation (spaces/nb201/stacked.py)
    def stacked_group(self, nets: Sequence[nn.Module]):
        """Freshly built networks of this space, stacked into one group for the engine."""
        return pack_group(nets)

    def stacked_top(self, group) -> int:
        """The deepest weighting layer of a stacked group (its final ReLU's)."""
        return group.n_cells

    def stacked_pass(self, group, x: torch.Tensor, y: torch.Tensor, sink) -> torch.Tensor:
        """One forward+backward of a stacked group, reporting its responses to ``sink``."""
        return forward_backward(group, x, y, sink)

    # -- ground truth
    @cached_property
    def benchmark(self):
        from ..benchmarks import nb201_benchmark

        return nb201_benchmark(self.data_dir)
