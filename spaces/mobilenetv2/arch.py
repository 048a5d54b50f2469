"""The architecture value of the MobileNetV2-like space: its string forms, the structure reader and
the space's membership rules.

An architecture is the released WRCor pair ``(structure string, input resolution)``.  The structure
string is a Zen-NAS PlainNet string of three kinds of elements::

    SuperConvK3BNRELU(3,C0,s0,1)                       the stem: conv 3x3 stride s0, BN, ReLU
    SuperResIDWE{e}K{k}(Cin,Cout,s,B,L)                 a block of L inverted-residual sub-layers
    SuperConvK1BNRELU(Cin,C,1,1)                       the head: conv 1x1, BN, ReLU

The canonical string of a value (:meth:`MobileNetV2Arch.to_str`, the key in stores and tables) is
the official structure string followed by ``@<resolution>``, e.g.
``SuperConvK3BNRELU(3,32,2,1)SuperResIDWE1K3(32,16,1,32,1)...SuperConvK1BNRELU(320,1280,1,1)@224``.

Two levels of checking:

- *structure* (:class:`MobileNetV2Arch` itself, :meth:`MobileNetV2Arch.from_str`,
  :meth:`MobileNetV2Arch.from_official`): a stem, one or more blocks and a head, each well formed,
  positive integers, ``e`` in {1, 2, 4, 6}, ``k`` in {3, 5, 7}, strides 1 or 2, and every block's
  input width equal to the previous element's output width -- what it takes to build the network
  and count its cost.  The released Zen-NAS genotypes of ``genotypes.py`` (``zennet_*``: a
  10-sub-layer block, widths off the grid) pass this level.
- *membership* (:func:`check_member`, used by ``MobileNetV2Space.parse``): the search space of the
  released ``search.py`` (:data:`C_RANGES` ...: 7 blocks, widths multiples of 8 in their ranges,
  4 stride-2 blocks, a stem of stride 2, a resolution in :data:`RESOLUTIONS`).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..vocabulary import InvalidArchitectureError

__all__ = ["B_RANGES", "C_RANGES", "EXPANSIONS", "HEAD", "KERNELS", "L_RANGES", "NUM_BLOCKS", "NUM_STRIDE2",
           "RESOLUTIONS", "RESOLUTION_RANGE", "STEM", "MBBlock", "MobileNetV2Arch", "check_member", "grid",
           "mid_channels", "se_channels", "smart_round"]

#: the widths C0..C8 (stem output, the 7 blocks' outputs, the head's output): ``search.py``'s
#: ``c_range``, inclusive bounds; a drawn value is rounded to a multiple of 8 (:func:`smart_round`)
C_RANGES: tuple[tuple[int, int], ...] = ((16, 48), (16, 48), (16, 48), (32, 64), (48, 96), (80, 256), (80, 256),
                                         (128, 512), (128, 1536))
#: the bottleneck widths B1..B7 (``b_range``: the first 7 of :data:`C_RANGES`)
B_RANGES: tuple[tuple[int, int], ...] = C_RANGES[:7]
#: the sub-layer counts L1..L7 (``l_range``), inclusive
L_RANGES: tuple[tuple[int, int], ...] = ((1, 2), (2, 3), (2, 3), (2, 4), (2, 6), (2, 6), (1, 2))
#: the expansion ratios e and depthwise kernel sizes k of a block
EXPANSIONS: tuple[int, ...] = (1, 2, 4, 6)
KERNELS: tuple[int, ...] = (3, 5, 7)
#: the input resolution is drawn from this range (inclusive) and rounded to a multiple of 32
RESOLUTION_RANGE: tuple[int, int] = (192, 320)
RESOLUTIONS: tuple[int, ...] = (192, 224, 256, 288, 320)
NUM_BLOCKS = 7
NUM_STRIDE2 = 4
#: the stem's and the head's element names
STEM, HEAD = "SuperConvK3BNRELU", "SuperConvK1BNRELU"

_BLOCK_NAME = re.compile(r"SuperResIDWE(\d+)K(\d+)\Z")
_ELEMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\(([^()]*)\)")
_INT = re.compile(r"\s*([0-9]+)\s*\Z")


def smart_round(x: float, base: int = 8) -> int:
    """The released ``global_utils.smart_round(x, base)``: ``x`` to the nearest multiple of ``base``
    (Python ``round``: halves to even), at least ``base``."""
    return max(base, round(x / float(base)) * base)


def grid(lo: int, hi: int, base: int = 8) -> tuple[int, ...]:
    """The values :func:`smart_round` gives for a draw from ``lo..hi`` (all the space's bounds are
    multiples of ``base``: every multiple of ``base`` in ``[lo, hi]``)."""
    return tuple(sorted({smart_round(x, base) for x in range(lo, hi + 1)}))


def mid_channels(bottleneck: int, expansion: int) -> int:
    """M, the width inside every sub-layer of a block: ``smart_round(B * e, 8)`` (the released code
    multiplies by the float expansion)."""
    return smart_round(bottleneck * float(expansion), 8)


def se_channels(mid: int) -> int:
    """The squeeze width of SE(M): ``max(1, int(round(M * 0.25)))``."""
    return max(1, round(mid * 0.25))


def _positive_ints(value: Any, fields: tuple[str, ...], where: str) -> None:
    """Coerce the integer-valued ``fields`` of a frozen dataclass ``value`` to ``int`` (2.0 -> 2),
    refusing non-integers, booleans and values below 1 with a message prefixed by ``where``."""
    for field in fields:
        v = getattr(value, field)
        if isinstance(v, bool) or not isinstance(v, int):
            try:
                ok = not isinstance(v, bool) and int(v) == v
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise InvalidArchitectureError(f"{where}{field} must be an integer, got {v!r}")
            object.__setattr__(value, field, int(v))
        if getattr(value, field) < 1:
            raise InvalidArchitectureError(f"{where}{field} must be positive, got {v!r}")



@dataclass(frozen=True, order=True)
class MBBlock:
    """One ``SuperResIDWE{e}K{k}(Cin,Cout,s,B,L)`` block: L inverted-residual sub-layers of width
    ``M = smart_round(B * e, 8)``, the first with stride ``s`` and a projection shortcut."""

    expansion: int
    kernel: int
    in_channels: int
    out_channels: int
    stride: int
    bottleneck: int
    sub_layers: int

    def __post_init__(self) -> None:
        _positive_ints(self, ("expansion", "kernel", "in_channels", "out_channels", "stride", "bottleneck",
                              "sub_layers"), f"{self.name_of(self.expansion, self.kernel)}: ")
        if self.expansion not in EXPANSIONS or self.kernel not in KERNELS:
            raise InvalidArchitectureError(
                f"unknown block type {self.name!r}; allowed: SuperResIDWE{{e}}K{{k}} with e in {list(EXPANSIONS)} "
                f"and k in {list(KERNELS)}")
        if self.stride not in (1, 2):
            raise InvalidArchitectureError(f"{self.to_str()}: stride {self.stride} is not allowed: 1 or 2")

    @staticmethod
    def name_of(expansion: Any, kernel: Any) -> str:
        return f"SuperResIDWE{expansion}K{kernel}"

    @property
    def name(self) -> str:
        """The element's class name, ``SuperResIDWE{e}K{k}``."""
        return self.name_of(self.expansion, self.kernel)

    @property
    def mid_channels(self) -> int:
        """M: the expanded width of every sub-layer (:func:`mid_channels`)."""
        return mid_channels(self.bottleneck, self.expansion)

    def to_str(self) -> str:
        return (f"{self.name}({self.in_channels},{self.out_channels},{self.stride},{self.bottleneck},"
                f"{self.sub_layers})")


@dataclass(frozen=True, order=True)
class MobileNetV2Arch:
    """An immutable, hashable architecture: the stem's width (and stride), the blocks, the head's
    width and the input resolution.  Constructing one checks the *structure* only (see the module
    docstring); ``MobileNetV2Space.parse`` also checks membership of the search space.

    >>> a = MobileNetV2Arch.from_str("SuperConvK3BNRELU(3,16,2,1)SuperResIDWE6K5(16,24,2,16,2)"
    ...                              "SuperConvK1BNRELU(24,128,1,1)@192")
    >>> a.widths, a.strides, a.resolution, a.blocks[0].mid_channels
    ((16, 24, 128), (2,), 192, 96)
    """

    stem_channels: int
    blocks: tuple[MBBlock, ...]
    head_channels: int
    resolution: int
    stem_stride: int = 2

    def __post_init__(self) -> None:
        _positive_ints(self, ("stem_channels", "head_channels", "resolution", "stem_stride"), "")
        if self.stem_stride not in (1, 2):
            raise InvalidArchitectureError(f"the stem's stride {self.stem_stride} is not allowed: 1 or 2")
        blocks = self.blocks
        if isinstance(blocks, (str, bytes)) or not isinstance(blocks, Sequence) or \
                not all(isinstance(b, MBBlock) for b in blocks):
            raise InvalidArchitectureError(f"blocks must be a sequence of MBBlock, got {blocks!r}")
        blocks = tuple(blocks)
        if not blocks:
            raise InvalidArchitectureError("an architecture needs at least one SuperResIDWE block between the stem "
                                           "and the head")
        object.__setattr__(self, "blocks", blocks)
        previous = ("the stem", self.stem_channels)
        for i, b in enumerate(blocks, 1):
            if b.in_channels != previous[1]:
                raise InvalidArchitectureError(
                    f"block {i} ({b.to_str()}) has input width {b.in_channels}, but {previous[0]} outputs "
                    f"{previous[1]}: each block's Cin must equal the previous Cout")
            previous = (f"block {i}", b.out_channels)

    # ------------------------------------------------------------------ views
    @property
    def widths(self) -> tuple[int, ...]:
        """C0..C8: the stem's output, each block's output, the head's output."""
        return (self.stem_channels, *(b.out_channels for b in self.blocks), self.head_channels)

    @property
    def strides(self) -> tuple[int, ...]:
        """Each block's stride (the stem's is :attr:`stem_stride`)."""
        return tuple(b.stride for b in self.blocks)

    @property
    def sub_layers(self) -> int:
        """Σ L: the number of inverted-residual sub-layers (the official ``get_num_layers`` less the
        stem and the head)."""
        return sum(b.sub_layers for b in self.blocks)

    @property
    def structure(self) -> str:
        """The official structure string (without the resolution)."""
        last = self.blocks[-1].out_channels
        return (f"{STEM}(3,{self.stem_channels},{self.stem_stride},1)" + "".join(b.to_str() for b in self.blocks)
                + f"{HEAD}({last},{self.head_channels},1,1)")

    def to_official(self) -> tuple[str, int]:
        """The released pair ``(structure string, resolution)`` (as in ``genotypes.py``)."""
        return self.structure, self.resolution

    def to_str(self) -> str:
        """The canonical string: the structure string, ``@``, the resolution (:meth:`from_str` reads it)."""
        return f"{self.structure}@{self.resolution}"

    __str__ = to_str

    def replace_block(self, i: int, **changes: int) -> MobileNetV2Arch:
        """A copy with block ``i`` (0-based) changed; a new ``in_channels`` also rewrites the output
        width of the element before it (the stem for ``i == 0``), as the released mutation does."""
        blocks = list(self.blocks)
        old = blocks[i]
        fields = {f: getattr(old, f) for f in ("expansion", "kernel", "in_channels", "out_channels", "stride",
                                               "bottleneck", "sub_layers")}
        fields.update(changes)
        blocks[i] = MBBlock(**fields)
        stem = self.stem_channels
        if blocks[i].in_channels != old.in_channels:
            if i == 0:
                stem = blocks[i].in_channels
            else:
                prev = blocks[i - 1]
                blocks[i - 1] = MBBlock(prev.expansion, prev.kernel, prev.in_channels, blocks[i].in_channels,
                                        prev.stride, prev.bottleneck, prev.sub_layers)
        return MobileNetV2Arch(stem, tuple(blocks), self.head_channels, self.resolution, self.stem_stride)

    def with_resolution(self, resolution: int) -> MobileNetV2Arch:
        return MobileNetV2Arch(self.stem_channels, self.blocks, self.head_channels, resolution, self.stem_stride)

    # ------------------------------------------------------------------ reading
    @classmethod
    def from_str(cls, text: str) -> MobileNetV2Arch:
        """Read the canonical string ``<structure>@<resolution>`` (structure checks only)."""
        if not isinstance(text, str):
            raise InvalidArchitectureError(
                f"a MobileNetV2 architecture string must be a str, got {type(text).__name__}")
        structure, at, res = text.strip().rpartition("@")
        if not at:
            raise InvalidArchitectureError(
                f"no resolution in {_short(text)!r}: the string form is '<structure>@<resolution>' "
                "(e.g. 'SuperConvK3BNRELU(3,32,2,1)...SuperConvK1BNRELU(320,1280,1,1)@224'); or give the pair "
                "(structure, resolution)")
        m = _INT.match(res)
        if not m:
            raise InvalidArchitectureError(f"the resolution after '@' must be a positive integer, got {res!r}")
        return cls.from_official(structure, int(m.group(1)))

    @classmethod
    def from_official(cls, structure: str, resolution: Any) -> MobileNetV2Arch:
        """Read the released pair ``(structure string, resolution)`` (structure checks only)."""
        if not isinstance(structure, str):
            raise InvalidArchitectureError(f"the structure must be a str, got {type(structure).__name__}")
        if isinstance(resolution, bool) or not isinstance(resolution, int):
            try:
                ok = not isinstance(resolution, bool) and int(resolution) == resolution
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise InvalidArchitectureError(f"the resolution must be an integer, got {resolution!r}")
            resolution = int(resolution)
        elements = _elements(structure)
        if len(elements) < 3:
            raise InvalidArchitectureError(
                f"a structure needs a stem, at least one block and a head, got {len(elements)} element(s): "
                f"{_short(structure)!r}")
        (stem_name, stem_args), *middle, (head_name, head_args) = elements
        if stem_name != STEM:
            raise InvalidArchitectureError(f"the structure must start with the stem {STEM}(3,C0,2,1), got "
                                           f"{stem_name}(...)")
        if head_name != HEAD:
            raise InvalidArchitectureError(f"the structure must end with the head {HEAD}(C7,C8,1,1), got "
                                           f"{head_name}(...)")
        _arity(stem_name, stem_args, 4, "(in=3, out, stride, sub_layers=1)")
        _arity(head_name, head_args, 4, "(in, out, stride=1, sub_layers=1)")
        if stem_args[0] != 3 or stem_args[3] != 1:
            raise InvalidArchitectureError(
                f"the stem must be {STEM}(3,C0,s,1) (3 input channels, 1 sub-layer), got "
                f"{STEM}({','.join(map(str, stem_args))})")
        if head_args[2] != 1 or head_args[3] != 1:
            raise InvalidArchitectureError(
                f"the head must be {HEAD}(C7,C8,1,1) (stride 1, 1 sub-layer), got "
                f"{HEAD}({','.join(map(str, head_args))})")
        blocks = []
        for i, (name, args) in enumerate(middle, 1):
            m = _BLOCK_NAME.match(name)
            if not m:
                raise InvalidArchitectureError(
                    f"unknown block type {name!r} at element {i + 1}; allowed between the stem and the head: "
                    f"SuperResIDWE{{e}}K{{k}} with e in {list(EXPANSIONS)} and k in {list(KERNELS)}")
            _arity(name, args, 5, "(Cin, Cout, stride, B, L)")
            blocks.append(MBBlock(int(m.group(1)), int(m.group(2)), *args))
        if head_args[0] != blocks[-1].out_channels:
            raise InvalidArchitectureError(
                f"the head's input width {head_args[0]} differs from the last block's output width "
                f"{blocks[-1].out_channels}")
        return cls(stem_args[1], tuple(blocks), head_args[1], resolution, stem_args[2])


def _short(text: str) -> str:
    return text if len(text) <= 120 else text[:117] + "..."


def _elements(structure: str) -> list[tuple[str, tuple[int, ...]]]:
    """``[(name, int args), ...]`` of a PlainNet string; malformed text raises, saying where."""
    s = structure.strip()
    out: list[tuple[str, tuple[int, ...]]] = []
    pos = 0
    while pos < len(s):
        m = _ELEMENT.match(s, pos)
        if not m:
            raise InvalidArchitectureError(
                f"malformed structure string at position {pos} ({_short(s[pos:])!r}): expected Name(int,...,int) "
                f"elements, e.g. 'SuperResIDWE6K3(16,24,2,16,2)'")
        args = []
        for a in m.group(2).split(","):
            im = _INT.match(a)
            if not im:
                raise InvalidArchitectureError(
                    f"malformed arguments in {m.group(0)!r}: expected non-negative integers separated by commas")
            args.append(int(im.group(1)))
        out.append((m.group(1), tuple(args)))
        pos = m.end()
    if not out:
        raise InvalidArchitectureError("empty structure string")
    return out


def _arity(name: str, args: tuple[int, ...], n: int, what: str) -> None:
    if len(args) != n:
        raise InvalidArchitectureError(f"{name} takes {n} integers {what}, got {len(args)}: "
                                       f"{name}({','.join(map(str, args))})")


def _check_grid(label: str, value: int, lo: int, hi: int) -> None:
    allowed = grid(lo, hi)
    if value not in allowed:
        raise InvalidArchitectureError(
            f"{label} = {value} is not allowed: a multiple of 8 in [{lo}, {hi}] ({', '.join(map(str, allowed))})")


def check_member(arch: MobileNetV2Arch) -> MobileNetV2Arch:
    """``arch`` if it is a member of the released search space, else an
    :class:`InvalidArchitectureError` saying what is wrong and what is allowed."""
    if len(arch.blocks) != NUM_BLOCKS:
        raise InvalidArchitectureError(
            f"the space has {NUM_BLOCKS} SuperResIDWE blocks between the stem and the head, got {len(arch.blocks)}")
    if arch.stem_stride != 2:
        raise InvalidArchitectureError(f"the stem's stride must be 2 ({STEM}(3,C0,2,1)), got {arch.stem_stride}")
    for i, (w, (lo, hi)) in enumerate(zip(arch.widths, C_RANGES)):
        what = "the stem's output" if i == 0 else "the head's output" if i == 8 else f"block {i}'s output"
        _check_grid(f"C{i} ({what} width)", w, lo, hi)
    for i, (b, (blo, bhi), (llo, lhi)) in enumerate(zip(arch.blocks, B_RANGES, L_RANGES), 1):
        _check_grid(f"B{i} (block {i}'s bottleneck width)", b.bottleneck, blo, bhi)
        if not llo <= b.sub_layers <= lhi:
            raise InvalidArchitectureError(
                f"L{i} (block {i}'s sub-layers) = {b.sub_layers} is not allowed: {llo}..{lhi}")
    twos = [i for i, s in enumerate(arch.strides, 1) if s == 2]
    if len(twos) != NUM_STRIDE2:
        raise InvalidArchitectureError(
            f"the space has exactly {NUM_STRIDE2} stride-2 blocks (output stride 32 with the stem), got {len(twos)} "
            f"(blocks {twos})")
    if arch.resolution not in RESOLUTIONS:
        raise InvalidArchitectureError(
            f"resolution {arch.resolution} is not allowed: one of {list(RESOLUTIONS)} (a multiple of 32 in "
            f"[{RESOLUTION_RANGE[0]}, {RESOLUTION_RANGE[1]}])")
    return arch
