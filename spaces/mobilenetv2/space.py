"""The MobileNetV2-like ImageNet space of the WRCor paper (``search.py --search_space MobileNetV2``):
parsing, sampling and mutation as released, the networks, the resource accounting, and a
benchmark with no targets (there is no ImageNet ground truth offline)."""
from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Sequence
from functools import cached_property
from itertools import combinations
from typing import Any, ClassVar, NamedTuple

import numpy as np
from torch import nn

from ..base import seeded
from ..benchmarks import ArchitectureNotFoundError
from ..vocabulary import (
    Convention,
    InvalidArchitectureError,
    ResponsePoint,
    UnknownNameError,
)
from .arch import (
    B_RANGES,
    C_RANGES,
    EXPANSIONS,
    KERNELS,
    L_RANGES,
    NUM_BLOCKS,
    NUM_STRIDE2,
    RESOLUTION_RANGE,
    RESOLUTIONS,
    MBBlock,
    MobileNetV2Arch,
    check_member,
    grid,
    smart_round,
)
from .cost import conv_linear_macs, num_params, official_flops, official_model_size
from .genotype import genotype_source, training_command
from .network import MobileNetV2Network

__all__ = ["RELEASED_FLOPS_LIMIT", "Draw", "FlopsLimitError", "MobileNetV2Space", "NoBenchmarkTableError", "NoGroundTruth"]

#: the released search's FLOPs limit (``search.py --flops_limit``, default 600e6)
RELEASED_FLOPS_LIMIT = 600e6


class NoBenchmarkTableError(ArchitectureNotFoundError):
    """The space has no benchmark table: no architecture has an index (a ``KeyError``, so the
    harness's "index where the space has one" falls back to the population's own order)."""


class FlopsLimitError(RuntimeError):
    """No architecture under a FLOPs limit was found within the bounded number of redraws (or the
    limit is below the smallest FLOPs of the space)."""


class Draw(NamedTuple):
    """An architecture drawn under a FLOPs limit and how many draws were rejected before it."""

    arch: MobileNetV2Arch
    rejections: int


_NO_TRUTH = ("the mobilenetv2 space has no ground truth offline (its architectures are ImageNet networks "
             "trained 480 epochs by the WRCor authors; no table of trained accuracies exists)")


class NoGroundTruth:
    """The benchmark of a space without a table: it answers no ``(dataset, split)`` target
    (:meth:`available` is empty; a lookup raises :class:`~spaces.vocabulary.UnknownNameError`
    saying why), has no rows and publishes nothing.  ``key_of`` is the canonical string."""

    relpath = ""
    cite = ""
    #: why a search in the space records no accuracy (the search's summary quotes it)
    accuracy_note = ("no ground truth offline: the accuracy needs ImageNet training with the released "
                     "train_MobileNetV2_on_ImageNet.py (kunjing96/ZSNAS-WRCor: 480 epochs on ImageNet-1k, "
                     "distilled from a ResNet-152)")

    def __init__(self, key_of) -> None:
        self._key_of = key_of

    def __repr__(self) -> str:
        return "NoGroundTruth(mobilenetv2)"

    def available(self) -> list[tuple[str, str]]:
        return []

    def _no(self, dataset: str, split: str) -> UnknownNameError:
        return UnknownNameError(f"no ground truth for dataset={dataset!r}, split={split!r}: {_NO_TRUTH}; "
                                "valid (dataset, split) pairs: [] (none)")

    def protocol(self, dataset: str, split: str) -> str:
        raise self._no(dataset, split)

    def lookup(self, arch: Any, dataset: str, split: str) -> float:
        raise self._no(dataset, split)

    def lookup_many(self, archs, dataset: str, split: str) -> np.ndarray:
        raise self._no(dataset, split)

    def optimum(self, dataset: str, split: str) -> tuple[float, int]:
        raise self._no(dataset, split)

    def key_of(self, arch: Any) -> str:
        return self._key_of(arch)

    def index_of(self, arch: Any) -> int:
        raise NoBenchmarkTableError(f"architecture {self._key_of(arch)!r} has no index: {_NO_TRUTH}")

    def keys(self) -> list[str]:
        return []

    def column_names(self) -> list[str]:
        return []

    def column(self, name: str, *, per: str = "row", as_str: bool = False) -> np.ndarray:
        raise UnknownNameError(f"the mobilenetv2 benchmark has no column {name!r}: {_NO_TRUTH}; columns: []")

    def suite_zero_reference(self, dataset: str) -> None:
        return None

    def published_search(self, dataset: str) -> list:
        return []

    def published_correlations(self, dataset: str) -> list:
        return []

    def __contains__(self, arch: Any) -> bool:
        return False

    def __len__(self) -> int:
        return 0


def _c_grids() -> tuple[tuple[int, ...], ...]:
    return tuple(grid(lo, hi) for lo, hi in C_RANGES)


C_GRIDS = _c_grids()
B_GRIDS = C_GRIDS[:NUM_BLOCKS]
L_OPTIONS = tuple(tuple(range(lo, hi + 1)) for lo, hi in L_RANGES)


class MobileNetV2Space:
    """The WRCor MobileNetV2-like ImageNet space (a cut-down Zen-NAS PlainNet, SE on).

    Values (:class:`~spaces.mobilenetv2.arch.MobileNetV2Arch`; string ``<structure>@<resolution>``):

    - :meth:`parse` -- a *member* of the search space, from a value, the canonical string, or the
      released pair ``(structure string, resolution)`` as in ``genotypes.py``; anything outside the
      space raises :class:`InvalidArchitectureError` saying what is wrong and what is allowed.
    - :meth:`read` -- the same forms, checked for *structure* only (a stem, blocks, a head, the
      widths chained): it reads every released genotype, the Zen-NAS ones outside the space
      included.  :meth:`build`, :meth:`flops`, :meth:`model_size`, :meth:`params` and
      :meth:`macs` take anything :meth:`read` takes; the search methods and :meth:`to_str` take
      members only.

    Search as released: :meth:`sample` and :meth:`mutate` draw with the released ranges, rounding
    and rules; with ``flops_max`` they redraw as ``search.py`` does until the official FLOPs are at
    most the limit (at most :attr:`max_redraws` rejections, then :class:`FlopsLimitError`), and
    :attr:`last_rejections` says how many draws were rejected (:meth:`sample_counted` /
    :meth:`mutate_counted` return it with the architecture).  Without ``flops_max`` (the default)
    they are the space's own distribution: the released search's limit is
    :data:`RELEASED_FLOPS_LIMIT` (600e6), which the caller passes.

    Ground truth: none (see :class:`NoGroundTruth`); :meth:`enumerate` and :meth:`index` raise.
    """

    name = "mobilenetv2"

    #: what each constructor setting means (``harness run --help`` shows it)
    settings_help: ClassVar[dict[str, str]] = {
        "resize": "resize the input bilinearly to the architecture's resolution (the released network); "
                  "false = run at the input's size (cheap tests only)",
        "num_classes": "the classifier's outputs: null = the image dataset's classes; 1000 = ImageNet-1k, as the "
                       "released search and training build every network (conf/space/mobilenetv2.yaml)"}

    #: the most draws ``sample``/``mutate`` reject under a FLOPs limit before giving up
    max_redraws: int = 100_000

    def __init__(self, *, data_dir: Any = None, resize: bool = True, num_classes: int | None = None) -> None:
        self.data_dir = data_dir
        self.resize = bool(resize)
        if num_classes is not None and (isinstance(num_classes, bool) or int(num_classes) != num_classes
                                        or num_classes < 1):
            raise ValueError(f"num_classes must be a positive integer or None (the dataset's), got {num_classes!r}")
        #: the classifier's outputs of every built network (None: what :meth:`build` is given)
        self.num_classes = None if num_classes is None else int(num_classes)
        #: the number of draws the last :meth:`sample` / :meth:`mutate` rejected (0 without a limit)
        self.last_rejections = 0

    # ------------------------------------------------------------------ values
    @staticmethod
    def read(arch: Any) -> MobileNetV2Arch:
        """An architecture value from a value, the string ``<structure>@<resolution>`` or the pair
        ``(structure, resolution)``, checked for structure only (not for membership of the space)."""
        if isinstance(arch, MobileNetV2Arch):
            return arch
        if isinstance(arch, str):
            return MobileNetV2Arch.from_str(arch)
        if isinstance(arch, (tuple, list)) and len(arch) == 2 and isinstance(arch[0], str):
            return MobileNetV2Arch.from_official(arch[0], arch[1])
        raise InvalidArchitectureError(
            f"cannot read a MobileNetV2 architecture from {type(arch).__name__}: give a MobileNetV2Arch, the string "
            "'<structure>@<resolution>', or the released pair (structure string, resolution)")

    def parse(self, arch: Any) -> MobileNetV2Arch:
        """A member of the space (see :meth:`read` for the forms); outside the space raises
        :class:`InvalidArchitectureError` saying what is wrong and what is allowed."""
        return check_member(self.read(arch))

    def to_str(self, arch: Any) -> str:
        return self.parse(arch).to_str()

    # ------------------------------------------------------------------ size, enumeration
    @property
    def size(self) -> int:
        """The exact number of distinct architectures (distinct strings): the product over the
        choices of :meth:`choices` with the 4 stride-2 blocks unordered, C(7, 4) = 35 placements:
        ``Π|C grid| * Π|B grid| * Π|L options| * (4*3)**7 * 35 * 5``
        = 349,562,488,387,202,496,000,000,000,000 (about 3.5e29; too many for ``len()``)."""
        return (math.prod(map(len, C_GRIDS)) * math.prod(map(len, B_GRIDS)) * math.prod(map(len, L_OPTIONS))
                * (len(EXPANSIONS) * len(KERNELS)) ** NUM_BLOCKS * math.comb(NUM_BLOCKS, NUM_STRIDE2)
                * len(RESOLUTIONS))

    def __len__(self) -> int:
        """Always raises: :attr:`size` is more than ``len()`` can return."""
        raise OverflowError(f"the mobilenetv2 space has {self.size:,} architectures, more than len() can return "
                            f"(sys.maxsize = {sys.maxsize:,}); use MobileNetV2Space.size")

    def enumerate(self) -> Iterator[MobileNetV2Arch]:
        """Always raises :class:`NoBenchmarkTableError`: the space has no benchmark table to list (and
        about 3.5e29 architectures); draw with :meth:`sample`, or give the architectures (e.g. a file)."""
        raise NoBenchmarkTableError(
            f"the mobilenetv2 space has no benchmark table to enumerate: {_NO_TRUTH}; the space itself has "
            f"{self.size:.2e} architectures.  Draw them (sample) or list them (archs.file)")

    def index(self, arch: Any) -> int:
        """Always raises :class:`NoBenchmarkTableError` (a ``KeyError``): no benchmark, no index."""
        return self.benchmark.index_of(self.parse(arch))

    # ------------------------------------------------------------------ resource accounting
    def flops(self, arch: Any, num_classes: int = 1000) -> float:
        """The released ``get_FLOPs()``: multiply-accumulates with the released quirks (the
        projection term counted on the already-strided resolution, so 4x too low at stride 2; a
        float); what ``search.py`` compares with its FLOPs limit.  See :mod:`spaces.mobilenetv2.cost`."""
        return official_flops(self.read(arch), num_classes)

    def model_size(self, arch: Any, num_classes: int = 1000) -> int:
        """The released ``get_model_size()`` (not the number of parameters: BN counted once outside SE,
        the projection's BN not at all, the Linear as ``Cin*Cout + 1``)."""
        return official_model_size(self.read(arch), num_classes)

    def params(self, arch: Any, num_classes: int = 1000) -> int:
        """The true number of parameters (Σ numel of the built network's parameters)."""
        return num_params(self.read(arch), num_classes)

    def macs(self, arch: Any, num_classes: int = 1000) -> int:
        """The geometrically correct Conv2d + Linear multiply-accumulates per sample at the
        architecture's resolution (fvcore's count for those layers)."""
        return conv_linear_macs(self.read(arch), num_classes)

    @cached_property
    def min_flops(self) -> float:
        """The smallest official FLOPs of any member (every width, L, e, k and the resolution at its
        minimum; the best of the 35 stride placements): a limit below it cannot be met."""
        best = math.inf
        for twos in combinations(range(NUM_BLOCKS), NUM_STRIDE2):
            best = min(best, official_flops(self._assemble(
                [g[0] for g in C_GRIDS], [g[0] for g in B_GRIDS], [o[0] for o in L_OPTIONS],
                [EXPANSIONS[0]] * NUM_BLOCKS, [KERNELS[0]] * NUM_BLOCKS, set(twos), RESOLUTIONS[0])))
        return best

    # ------------------------------------------------------------------ search
    @staticmethod
    def _assemble(c: Sequence[int], b: Sequence[int], l: Sequence[int], e: Sequence[int],
                  k: Sequence[int], twos: set[int], resolution: int) -> MobileNetV2Arch:
        blocks = tuple(MBBlock(e[i], k[i], c[i], c[i + 1], 2 if i in twos else 1, b[i], l[i])
                       for i in range(NUM_BLOCKS))
        return MobileNetV2Arch(c[0], blocks, c[NUM_BLOCKS + 1], resolution)

    @staticmethod
    def _width(rng: np.random.Generator, lo: int, hi: int) -> int:
        # random.choice(range(lo, hi + 1)), then smart_round(., base=8)
        return smart_round(int(rng.integers(lo, hi + 1)), 8)

    def _draw(self, rng: np.random.Generator) -> MobileNetV2Arch:
        """One raw draw of ``NAS.sample_arch`` (in its order: C, B, L, e, k, the stride-2 blocks, R)."""
        c = [self._width(rng, lo, hi) for lo, hi in C_RANGES]
        b = [self._width(rng, lo, hi) for lo, hi in B_RANGES]
        l = [int(rng.integers(lo, hi + 1)) for lo, hi in L_RANGES]
        e = [EXPANSIONS[int(rng.integers(len(EXPANSIONS)))] for _ in range(NUM_BLOCKS)]
        k = [KERNELS[int(rng.integers(len(KERNELS)))] for _ in range(NUM_BLOCKS)]
        twos = {int(i) for i in rng.choice(NUM_BLOCKS, size=NUM_STRIDE2, replace=False)}
        resolution = smart_round(int(rng.integers(RESOLUTION_RANGE[0], RESOLUTION_RANGE[1] + 1)), 32)
        return self._assemble(c, b, l, e, k, twos, resolution)

    def _check_limit(self, flops_max: float | None) -> float | None:
        if flops_max is None:
            return None
        if isinstance(flops_max, bool) or not isinstance(flops_max, (int, float, np.integer, np.floating)) \
                or math.isnan(float(flops_max)):
            raise ValueError(f"flops_max must be a number or None, got {flops_max!r}")
        flops_max = float(flops_max)
        if flops_max < self.min_flops:
            raise FlopsLimitError(f"flops_max={flops_max:,.0f} is below the smallest official FLOPs of the space "
                                  f"({self.min_flops:,.0f}): no architecture meets it")
        return flops_max

    def _give_up(self, what: str, flops_max: float) -> FlopsLimitError:
        return FlopsLimitError(f"{what}: no architecture with official FLOPs <= {flops_max:,.0f} in "
                               f"{self.max_redraws + 1:,} draws (max_redraws={self.max_redraws:,})")

    def sample_counted(self, rng: np.random.Generator, *, flops_max: float | None = None) -> Draw:
        """:meth:`sample` and the number of rejected draws."""
        limit = self._check_limit(flops_max)
        for rejected in range(self.max_redraws + 1):
            arch = self._draw(rng)
            if limit is None or official_flops(arch) <= limit:
                return Draw(arch, rejected)
        raise self._give_up("sample", limit)

    def sample(self, rng: np.random.Generator, *, flops_max: float | None = None) -> MobileNetV2Arch:
        """One architecture as the released ``NAS.sample_arch`` draws it: each width C0..C8 and
        bottleneck B1..B7 uniform on its integer range, then rounded to a multiple of 8 (halves to
        even: a non-uniform grid), each L uniform on its range, each e and k uniform, 4 of the 7
        blocks (uniformly, without replacement) with stride 2, the resolution uniform on 192..320
        rounded to a multiple of 32.  With ``flops_max``, everything is redrawn until the official
        FLOPs (1000 classes) are at most ``flops_max``; :attr:`last_rejections` counts the redraws."""
        self.last_rejections = 0
        arch, self.last_rejections = self.sample_counted(rng, flops_max=flops_max)
        return arch

    def mutate_counted(self, arch: Any, rng: np.random.Generator, *, flops_max: float | None = None) -> Draw:
        """:meth:`mutate` and the number of rejected children."""
        parent = self.parse(arch)
        limit = self._check_limit(flops_max)
        for rejected in range(self.max_redraws + 1):
            child = self._mutation(parent, rng)
            if limit is None or official_flops(child) <= limit:
                return Draw(child, rejected)
        raise self._give_up(f"mutate {parent.to_str()}", limit)

    def _mutation(self, parent: MobileNetV2Arch, rng: np.random.Generator) -> MobileNetV2Arch:
        i = int(rng.integers(NUM_BLOCKS))
        old = parent.blocks[i]
        while True:  # p = 1.0 in the released run: the (e, k) pair always changes
            e = EXPANSIONS[int(rng.integers(len(EXPANSIONS)))]
            k = KERNELS[int(rng.integers(len(KERNELS)))]
            if (e, k) != (old.expansion, old.kernel):
                break
        c_in = self._width(rng, *C_RANGES[i])
        bottleneck = self._width(rng, *B_RANGES[i])
        sub_layers = int(rng.integers(L_RANGES[i][0], L_RANGES[i][1] + 1))
        resolution = smart_round(int(rng.integers(RESOLUTION_RANGE[0], RESOLUTION_RANGE[1] + 1)), 32)
        child = parent.replace_block(i, expansion=e, kernel=k, in_channels=c_in, bottleneck=bottleneck,
                                     sub_layers=sub_layers)
        return child.with_resolution(resolution)

    def mutate(self, arch: Any, rng: np.random.Generator, *, flops_max: float | None = None) -> MobileNetV2Arch:
        """The released ``Evolved_NAS.mutate`` (p = 1.0): pick a block i uniformly; redraw its (e, k)
        until the pair changes; redraw its input width Ci (which rewrites the previous element's
        output width: the stem's for block 1), its B and its L from their ranges (rounded as in
        :meth:`sample`), and the resolution.  Strides, C7 and C8 never change.  With ``flops_max``,
        the mutation is redone from the same parent until the child's official FLOPs are at most
        ``flops_max``; :attr:`last_rejections` counts the rejected children."""
        self.last_rejections = 0
        child, self.last_rejections = self.mutate_counted(arch, rng, flops_max=flops_max)
        return child

    def choices(self) -> tuple[tuple[str, tuple], ...]:
        """The categorical decisions (the released REINFORCE's policy, in its order): the widths
        ``C0``..``C8`` and bottlenecks ``B1``..``B7`` (their multiple-of-8 grids), ``L1``..``L7``,
        ``e1``..``e7``, ``k1``..``k7``, the resolution, and ``stride2.1``..``stride2.4``: the blocks
        (1..7) with stride 2, which must be distinct (a repeated block is an invalid combination)."""
        out: list[tuple[str, tuple]] = [(f"C{i}", g) for i, g in enumerate(C_GRIDS)]
        out += [(f"B{i}", g) for i, g in enumerate(B_GRIDS, 1)]
        out += [(f"L{i}", o) for i, o in enumerate(L_OPTIONS, 1)]
        out += [(f"e{i}", EXPANSIONS) for i in range(1, NUM_BLOCKS + 1)]
        out += [(f"k{i}", KERNELS) for i in range(1, NUM_BLOCKS + 1)]
        out.append(("resolution", RESOLUTIONS))
        out += [(f"stride2.{j}", tuple(range(1, NUM_BLOCKS + 1))) for j in range(1, NUM_STRIDE2 + 1)]
        return tuple(out)

    def from_choices(self, idx: Sequence[int], *, flops_max: float | None = None) -> MobileNetV2Arch:
        """The architecture of :meth:`choices` indices.  Raises :class:`InvalidArchitectureError` for
        a wrong number of indices, an index out of range, a block chosen twice for stride 2, or
        (with ``flops_max``) official FLOPs above the limit -- as the released REINFORCE redraws."""
        decisions = self.choices()
        if len(idx) != len(decisions):
            raise InvalidArchitectureError(f"need {len(decisions)} choice indices (one per decision of choices()), "
                                           f"got {len(idx)}")
        values = []
        for (name, options), i in zip(decisions, idx):
            if isinstance(i, bool) or not 0 <= int(i) < len(options) or int(i) != i:
                raise InvalidArchitectureError(f"choice {name}: index {i!r} out of range 0..{len(options) - 1}")
            values.append(options[int(i)])
        n = NUM_BLOCKS
        c, b, l = values[:n + 2], values[n + 2:2 * n + 2], values[2 * n + 2:3 * n + 2]
        e, k = values[3 * n + 2:4 * n + 2], values[4 * n + 2:5 * n + 2]
        resolution, twos = values[5 * n + 2], values[5 * n + 3:]
        if len(set(twos)) != NUM_STRIDE2:
            raise InvalidArchitectureError(f"the {NUM_STRIDE2} stride-2 blocks must be distinct, got {list(twos)}")
        arch = self._assemble(c, b, l, e, k, {t - 1 for t in twos}, resolution)
        if flops_max is not None and official_flops(arch) > float(flops_max):
            raise InvalidArchitectureError(
                f"official FLOPs {official_flops(arch):,.0f} above flops_max={float(flops_max):,.0f}")
        return arch

    def to_choices(self, arch: Any) -> tuple[int, ...]:
        """The :meth:`choices` indices of a member (the stride-2 blocks in increasing order)."""
        a = self.parse(arch)
        idx = [g.index(w) for g, w in zip(C_GRIDS, a.widths)]
        idx += [g.index(blk.bottleneck) for g, blk in zip(B_GRIDS, a.blocks)]
        idx += [o.index(blk.sub_layers) for o, blk in zip(L_OPTIONS, a.blocks)]
        idx += [EXPANSIONS.index(blk.expansion) for blk in a.blocks]
        idx += [KERNELS.index(blk.kernel) for blk in a.blocks]
        idx.append(RESOLUTIONS.index(a.resolution))
        idx += [i for i, s in enumerate(a.strides) if s == 2]  # block i+1 is option i of 1..7
        return tuple(idx)

    def genotype_source(self, arch: Any, name: str, comment: Sequence[str] = ()) -> tuple[str, str]:
        """(a Python file defining ``name = (structure string, resolution)`` for ``arch``, as the
        released ``genotypes.py`` does, how to train it with the released script); see
        :mod:`spaces.mobilenetv2.genotype` (``read_genotypes`` reads it back)."""
        return (genotype_source(self.read(arch), name, comment),
                f"append it to ZSNAS-WRCor's genotypes.py, then {training_command(name)}")

    # ------------------------------------------------------------------ networks
    def build(self, arch: Any, num_classes: int, *, seed: int | None = None) -> MobileNetV2Network:
        """The released network of ``arch`` (anything :meth:`read` takes: members, and the released
        genotypes outside the space).  With ``seed`` its initialisation (PyTorch's default, as the
        released search: ``init_w_type none``) depends on the seed alone.  A space made with
        ``num_classes`` builds that many outputs whatever ``num_classes`` is given here (the
        batch's labels must be below it: fewer outputs than the dataset's classes is an error)."""
        arch = self.read(arch)
        if self.num_classes is not None:
            if self.num_classes < num_classes:
                raise ValueError(f"space.num_classes={self.num_classes} is fewer than the {num_classes} classes of "
                                 "the batch's images: labels would be out of range")
            num_classes = self.num_classes
        return seeded(seed, lambda: MobileNetV2Network(arch, num_classes, resize=self.resize))

    def response_modules(self, net: nn.Module, convention: Convention = "paper") -> list[ResponsePoint]:
        """See :meth:`MobileNetV2Network.response_modules`: ``official`` = the ``nn.ReLU`` of each
        SE (Σ L points), ``paper`` = every ReLU; block i (1..7) is weighting layer i."""
        if not isinstance(net, MobileNetV2Network):
            raise TypeError(f"expected a network built by the mobilenetv2 space, got {type(net).__name__}")
        return net.response_modules(convention)

    def num_layers(self, net: nn.Module) -> int:
        """The number of weighting layers: the stem, the blocks and the head (layers 0..8)."""
        if not isinstance(net, MobileNetV2Network):
            raise TypeError(f"expected a network built by the mobilenetv2 space, got {type(net).__name__}")
        return len(net.blocks)

    # ------------------------------------------------------------------ ground truth
    @cached_property
    def benchmark(self) -> NoGroundTruth:
        """No ground truth: a benchmark with no targets (see :class:`NoGroundTruth`)."""
        return NoGroundTruth(self.to_str)
