"""The contracts every search space honours.

A *space* turns architecture values into networks; a *benchmark* is a pure table lookup of
trained accuracies.  Everything space-specific lives behind these two interfaces, so the harness
never branches on the name of a space.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterator, Literal, Protocol, TypeVar, runtime_checkable

import numpy as np
import torch
from torch import nn

T = TypeVar("T")


class InvalidArchitectureError(ValueError):
    """An architecture (string, mapping or value) is not a member of the space; the message says why."""


class DataFileError(RuntimeError):
    """A benchmark or image file is missing, unreadable or fails its checksum."""


class MissingDataFileError(DataFileError):
    """A data file is not in the data directory (the directory itself exists)."""


class UnknownNameError(KeyError):
    """A name (proxy, space, dataset, split) is not registered; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain sentence
        return str(self.args[0]) if self.args else ""


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


@dataclass(frozen=True)
class ResponsePoint:
    """One place in a network whose responses the correlation proxies read.

    ``module`` is hooked; ``layer`` is the index used by layer weightings (0 = shallowest).
    ``activation`` says which tensor is the activation response: the module's ``input`` (the
    pre-activation of a ReLU) or its ``output``.  The gradient response is always the gradient
    with respect to the first input of the module's *last* autograd node: for a ReLU that is the
    gradient at the ReLU's input; for a wrapper (the released WRCor code hooks ``ReLUConvBN``)
    it is the gradient at the input of its last operation.
    """

    name: str
    module: nn.Module
    layer: int
    activation: Literal["input", "output"] = "input"


Convention = Literal["paper", "official"]


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
