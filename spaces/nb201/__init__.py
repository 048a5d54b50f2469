"""NAS-Bench-201 (and the NATS-Bench topology space's networks).

- :mod:`spaces.nb201.network`: the architecture value (a cell of 6 edges) and the network;
- :mod:`spaces.nb201.stacked`: a group of networks run as one (the scoring engine's formulation);
- :mod:`spaces.nb201.space`: :class:`NB201Space`, the space that ties them to the benchmark.
"""
from __future__ import annotations

from .network import (EDGES, NUM_EDGES, OPS, Identity, NB201Arch, NB201Network, NormalCell, Pooling, ReductionCell,
                      ReLUConvBN, Zero, load_state_by_position)
from .space import NB201Space

__all__ = ["EDGES", "NUM_EDGES", "OPS", "Identity", "NB201Arch", "NB201Network", "NormalCell", "Pooling",
           "ReductionCell", "ReLUConvBN", "Zero", "load_state_by_position", "NB201Space"]
