"""The contracts every search space honours.

A *space* turns architecture values into networks; a *benchmark* is a pure table lookup of
trained accuracies.  Everything space-specific lives behind these two interfaces, so the harness
never branches on the name of a space.
"""
from __future__ import annotations

import hashlib
from typing import Any, Callable, Hashable, Iterable, Iterator, Protocol, Sequence, TypeVar, runtime_checkable

import numpy as np
import torch
from torch import nn

from .vocabulary import (ArchKey, Convention, DataFileError, InvalidArchitectureError, MissingDataFileError,  # noqa: F401
                         ResponsePoint, StackedSink, UnknownNameError)

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
    """A search space: architecture values, their networks, where their responses are, and their
    ground truth.  Everything the harness, the proxies and the search strategies ask of a space is
    declared here (``tests/test_architecture.py`` checks every registered space against it,
    signatures included); a space may add keyword arguments with defaults.

    A space's constructor takes keyword-only arguments with defaults (``data_dir`` and its network
    knobs); they become its ``space.*`` settings on the command line.
    """

    #: the registered name (stores, tables and trackers label results with it)
    name: str

    # -- values
    def parse(self, arch: Any) -> Hashable:
        """The architecture value for ``arch`` (a value, or a plain form such as the official
        string); anything else raises :class:`InvalidArchitectureError` saying why."""

    def to_str(self, arch: Any) -> ArchKey:
        """The canonical string of an architecture (its key in stores and tables); ``parse``
        reads it back."""

    @property
    def size(self) -> int:
        """How many architectures the space has (an exact integer, however large).  ``len()`` is
        defined only where it fits; a space too large for it raises, pointing here."""

    def enumerate(self) -> Iterator[Hashable]:
        """Every architecture the benchmark has, in its official index order."""

    def index(self, arch: Any) -> int:
        """The benchmark's index of ``arch`` (its position in :meth:`enumerate`)."""

    # -- search
    def sample(self, rng: np.random.Generator) -> Hashable:
        """One architecture drawn with ``rng`` (the space's own sampling distribution)."""

    def mutate(self, arch: Any, rng: np.random.Generator) -> Hashable:
        """A neighbour of ``arch`` (regularised evolution's mutation), drawn with ``rng``."""

    def choices(self) -> tuple[tuple[str, tuple], ...]:
        """The categorical decisions that make an architecture: (name, options) each, in order
        (policy-based search, e.g. REINFORCE)."""

    def from_choices(self, idx: Sequence[int]) -> Hashable:
        """The architecture choosing option ``idx[k]`` for decision ``k`` of :meth:`choices`; an
        invalid combination raises :class:`InvalidArchitectureError`."""

    # -- networks
    def build(self, arch: Any, num_classes: int, *, seed: int | None = None) -> nn.Module:
        """The network of ``arch``; with ``seed`` its initialisation depends on the seed alone
        (the caller's global RNG untouched)."""

    def response_modules(self, net: nn.Module, convention: Convention = "paper") -> list[ResponsePoint]:
        """Where the correlation proxies read the responses of ``net`` (a network this space
        built) under ``convention``: the space states them, the probe hooks them."""

    def num_layers(self, net: nn.Module) -> int:
        """Number of weighting layers (the largest ``ResponsePoint.layer`` is at most this)."""

    # -- ground truth
    @property
    def benchmark(self) -> "Benchmark":
        """The trained accuracies of this space's architectures (loaded on first use)."""


@runtime_checkable
class StackedSpace(Protocol):
    """The optional capability of a :class:`Space` with a stacked formulation: a group of its
    networks runs as one network, so the scoring engine (:mod:`proxies.engine`) scores many
    architectures per pass.  A space without it is scored one network at a time.  (Only these
    methods: ``isinstance(space, StackedSpace)`` must not touch a space's lazy properties.)"""

    def stacked_group(self, nets: Sequence[nn.Module]) -> Any:
        """Freshly built networks of this space, packed into one group (``len``, ``archs``,
        ``to(device, dtype)``, ``subset(positions)``, ``pin_memory()``)."""

    def stacked_top(self, group: Any) -> int:
        """The deepest weighting layer of a group."""

    def stacked_pass(self, group: Any, x: torch.Tensor, y: torch.Tensor, sink: StackedSink) -> torch.Tensor:
        """One forward+backward of ``group`` on ``(x, y)``, reporting every response to ``sink``;
        returns the per-architecture losses."""


@runtime_checkable
class Benchmark(Protocol):
    """Ground truth: pure lookups of trained accuracy, each with an explicit protocol, and the
    published numbers this benchmark's literature reports.  ``dataset`` and ``split`` name a
    target (e.g. ``cifar10-valid``, ``valid``); an unknown one raises, listing the valid ones."""

    #: the table's path relative to the data directory (provenance: its checksum is recorded)
    relpath: str

    def available(self) -> list[tuple[str, str]]:
        """The ``(dataset, split)`` targets this benchmark answers."""

    def protocol(self, dataset: str, split: str) -> str:
        """A one-line statement of what the number is (epochs, seeds, split)."""

    def lookup(self, arch: Any, dataset: str, split: str) -> float:
        """The trained accuracy of ``arch`` (NaN where the benchmark has none)."""

    def lookup_many(self, archs: Iterable[Any], dataset: str, split: str) -> np.ndarray:
        """:meth:`lookup` for many architectures, as a float64 array."""

    def optimum(self, dataset: str, split: str) -> tuple[float, int]:
        """(the best accuracy over the benchmark, how many architectures it covers)."""

    def key_of(self, arch: Any) -> str:
        """The benchmark's key of ``arch`` (its row's key column)."""

    def index_of(self, arch: Any) -> int:
        """The benchmark's index of ``arch``."""

    def keys(self) -> list[str]:
        """Every key, in the benchmark's order, each once."""

    def column_names(self) -> list[str]:
        """Every column the benchmark has."""

    def column(self, name: str, *, per: str = "row", as_str: bool = False) -> np.ndarray:
        """Any column, in order (``per="key"``: one value per key, aligned with :meth:`keys`)."""

    def suite_zero_reference(self, dataset: str) -> Any:
        """NAS-Bench-Suite-Zero's published proxy scores of this benchmark's architectures scored
        on the images ``dataset`` (a ``ReferenceScores``), or None when there are none."""

    def published_search(self, dataset: str) -> list[Any]:
        """Published search results whose searches used the images ``dataset`` (``PublishedSearch``
        each: method, setting, source, accuracy); empty when there are none."""

    def published_correlations(self, dataset: str) -> list[Any]:
        """Published rank correlations of proxies scored on the images ``dataset`` with this
        benchmark's accuracy (``PublishedCorrelation`` each: proxy, metric, value, population,
        source); empty when there are none."""

    def __contains__(self, arch: Any) -> bool: ...

    def __len__(self) -> int: ...


@runtime_checkable
class ResourceSpace(Protocol):
    """The optional capability of a :class:`Space` that counts an architecture's resources: what a
    search's resource limits (``constraints.flops_max`` / ``constraints.params_max``) read.  Each
    is a pure function of the architecture (no network is trained; building one to count it is
    allowed) and returns a finite number in the space's own convention, which the space's
    docstring states (e.g. the released WRCor MobileNetV2 space counts FLOPs as multiply-adds).
    A search sets a limit only on a space with the method of that name; it checks each method on
    its own (``callable(getattr(space, "flops", None))``), so a space may offer one without the
    other.  (Only these methods: ``isinstance(space, ResourceSpace)`` must not touch a space's
    lazy properties.)"""

    def flops(self, arch: Any) -> float:
        """The floating-point operations of one forward pass of ``arch``'s network (the space's
        convention, e.g. multiply-adds)."""

    def params(self, arch: Any) -> float:
        """The number of parameters of ``arch``'s network (the space's convention)."""


@runtime_checkable
class LatencySpace(Protocol):
    """The optional capability of a :class:`Space` that measures or predicts an architecture's
    latency (``constraints.latency_max``).  No space offers it yet; a search refuses the limit on
    a space without it."""

    def latency(self, arch: Any) -> float:
        """The latency of ``arch``'s network in seconds, as the space measures or predicts it."""
