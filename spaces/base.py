"""The contracts every search space honours.

A *space* turns architecture values into networks; a *benchmark* is a pure table lookup of
trained accuracies.  Everything space-specific lives behind these two interfaces, so the harness
never branches on the name of a space.
"""
from __future__ import annotations

import hashlib
from typing import Any, Callable, Hashable, Iterator, Protocol, TypeVar, runtime_checkable

import numpy as np
import torch
from torch import nn

from .vocabulary import (ArchKey, Convention, DataFileError, InvalidArchitectureError, MissingDataFileError,  # noqa: F401
                         ResponsePoint, UnknownNameError)

T = TypeVar("T")


def seeded(seed: int | None, make: Callable[[], T]) -> T:
    """``make()`` — with ``seed``, inside a forked CPU RNG seeded with it, so a network's
    initialisation depends on the seed alone and the caller's global RNG state is untouched."""
    if seed is None:
        return make()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return make()


def seed_for(seed: int, arch: Any) -> int:
    """A stable per-architecture initialisation seed derived from a run seed (no global RNG)."""
    digest = hashlib.sha256(f"{int(seed)}:{arch}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@runtime_checkable
class Space(Protocol):
    """A search space: architecture values, their networks and their ground truth."""

    name: str

    def parse(self, arch: Any) -> Hashable:
        """The architecture value for ``arch`` (a value, or a plain form such as the official string)."""

    def to_str(self, arch: Any) -> str:
        """The canonical string of an architecture (its key in stores and tables)."""

    def enumerate(self) -> Iterator[Hashable]:
        """Every architecture, in the benchmark's official index order."""

    def __len__(self) -> int: ...

    def sample(self, rng: np.random.Generator) -> Hashable: ...

    def mutate(self, arch: Any, rng: np.random.Generator) -> Hashable: ...

    def build(self, arch: Any, num_classes: int, *, seed: int | None = None) -> nn.Module: ...

    def response_modules(self, net: nn.Module, convention: Convention = "paper") -> list[ResponsePoint]: ...

    def num_layers(self, net: nn.Module) -> int:
        """Number of weighting layers (the largest ``ResponsePoint.layer`` is at most this)."""

    @property
    def benchmark(self) -> "Benchmark": ...


@runtime_checkable
class Benchmark(Protocol):
    """Ground truth: pure lookups of trained accuracy with an explicit protocol."""

    def lookup(self, arch: Any, dataset: str, split: str) -> float: ...

    def protocol(self, dataset: str, split: str) -> str:
        """A one-line statement of what the number is (epochs, seeds, split)."""
