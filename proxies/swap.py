"""SWAP-Score (Peng et al., "SWAP-NAS: Sample-Wise Activation Patterns for Ultra-fast NAS",
ICLR 2024), as the authors' released code (github.com/pym1024/SWAP, ``src/metrics/swap.py`` and
``correlation.py``) computes it.

Definition.  Feed one batch of B real images through the network, with fresh Gaussian weights and
BatchNorm on batch statistics.  At every ``nn.ReLU`` whose input is 4-D, take its output, flatten
it per sample, and concatenate these over all such ReLUs: a B x N matrix A, binarised to
``A > 0`` (the released code takes ``sign``; a ReLU output is >= 0, so the two agree).  Each of
the N neurons then has a B-bit pattern (a column of A); SWAP is the number of *distinct*
patterns, i.e. the number of distinct rows of A^T.  The score is its mean over ``repeats``
re-initialisations::

    swap     = mean over repeats of |{ distinct rows of (A > 0)^T }|
    swap_reg = swap * exp(-(P - mu)^2 / sigma),   P = number of parameters / 1000

Conventions of the released code that are kept here (all random numbers come from the session's
generator, ``seed`` of :func:`proxies.compute`, never from the global RNG):

- batch: the first ``batch`` (16, as released) images of the batch given to the proxy; a smaller
  batch is used whole.  The released loader takes the first 16 CIFAR training images in file
  order (no shuffling); its train transform's random 32-crop without padding of a 32x32 image and
  its random choice of 3 of 3 channels (kept in sorted order) change nothing;
- ``init="normal"`` (as released): before every repeat the network is re-initialised by
  ``net.apply(f)`` where ``f(m)`` walks ``m.modules()`` and sets every ``Conv2d`` / ``Linear``
  weight ~ N(0, 1) (std 1, not Kaiming), their biases 0, and every ``BatchNorm2d`` / ``GroupNorm``
  weight 1, bias 0.  Because ``apply`` calls ``f`` on every module (children first) and ``f``
  re-draws its whole subtree, a conv whose module path is d deep is drawn d + 1 times per repeat
  (the last draw, the root's, is the one kept).  The draws are reproduced in that order, so on the
  CPU seed ``s`` gives exactly what the released loop gives after ``torch.manual_seed(s)`` (the
  released script itself never seeds: ``SWAP(seed=...)`` only reseeds when the seed changes).
  Conv1d/Conv3d and other norms are left alone, as released; a norm without affine weights is
  skipped (the released code would fail on it).  ``init="none"`` keeps the network's own weights:
  the pass is deterministic, so it is computed once whatever ``repeats`` says;
- BN in train mode (batch statistics), no labels, no backward, under ``no_grad``;
- a ReLU used several times counts once per call (forward hooks fire per call), as released;
- the parameter count of ``swap_reg`` is over ``named_parameters()`` whose name does not contain
  ``"auxiliary"``, divided by 1000 (the released ``count_parameters``).

``mu`` and ``sigma`` are free parameters: neither the paper nor the repository gives the values used
for NAS-Bench-201.  The defaults here, ``mu=1000`` (thousand parameters: ~1 M, the size of the
larger, better NB201 C=16 cells, whose sizes span 73-1,531 k) and ``sigma=1e6`` (a width of
sqrt(sigma) = 1,000 k), are this project's choice; state them with every ``swap_reg`` number
(``swap_reg(mu=..., sigma=...)`` for others).

Saturation.  SWAP <= min(N, 2**B): with B = 16 a C=16 NB201 network with at least one conv edge
has N >= 184,320 ReLU outputs per sample, far above 2**16 = 65,536, so conv-heavy networks crowd
just below 65,536 and nearly tie (the regulariser then does much of the ranking); the
all-non-parametric cells (N = 40,960) cannot reach it.  :func:`capacity` gives a network's bound (one forward pass, no
init), :func:`saturation` the fraction of it a score reaches; report ``saturation >= 0.99``
(say) as saturated.  A registered ``swap_saturated`` value would cost a second full computation
(proxies with a private pass share nothing), so the bound is a helper instead.

Implementation.  Each ReLU output is packed at once, per neuron, into int64 words of 63 pattern
bits (B <= 63: one word), so the count is one ``torch.unique`` over N integers instead of the
released ``torch.unique(dim=0)`` over an N x B float matrix: the same count, far faster (see the
costs below).  A network with no
``nn.ReLU``, or none with a 4-D input, is an error outcome (the released code would return None).

Measured cost (this machine's 2 contended CPU cores, 1 thread, B = 16, C=16 NB201, seconds per
repeat, from the golden run in ``tests/fixtures/swap_official.json``; the released code's per
repeat in brackets, its ``unique(dim=0)`` dominating)::

    optimum |nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|
                                          0.58 (6.4)   32 repeats: 18.3 s measured
    |none~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|none~1|skip_connect~2|
                                          0.08-0.16 (0.34)   32 repeats: 2.4 s measured
    one-conv cells (3 archs)              0.18-0.58 (1.4-1.8)  32 repeats: ~6-19 s

The forward pass is most of it (optimum: forward ~0.4 s, re-initialisation with the nested draws
0.15 s, packing 0.1 s, unique 0.08 s).  ``swap`` and ``swap_reg`` each run their own pass, so
asking for both costs twice.

Observed saturation (B = 16, 2 repeats, 14 random NB201 archs + the golden 5): the optimum reaches
0.96-0.97 of 65,536 (63,058 over 32 repeats, seed 0); random archs with 1-4 conv edges span
0.25-0.99 of it; the all-non-parametric cells ~0.2 of their 40,960 bound.
"""
from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn

from .probe import Session
from .registry import register

INITS = ("normal", "none")
_WORD_BITS = 63  # pattern bits packed per int64 word (the sign bit stays clear)

__all__ = ["SWAP", "RegularisedSWAP", "INITS", "official_init_", "capacity", "saturation", "count_parameters_k",
           "distinct_patterns", "pack_patterns"]


def _official_init_one(m: nn.Module, generator: torch.Generator) -> None:
    """The released ``network_weight_gaussian_init`` for one module's subtree, drawing from
    ``generator``."""
    with torch.no_grad():
        for sub in m.modules():
            if isinstance(sub, (nn.Conv2d, nn.Linear)):
                sub.weight.normal_(0.0, 1.0, generator=generator)
                if sub.bias is not None:
                    sub.bias.zero_()
            elif isinstance(sub, (nn.BatchNorm2d, nn.GroupNorm)):
                if sub.weight is not None:
                    sub.weight.fill_(1.0)
                if sub.bias is not None:
                    sub.bias.zero_()


def official_init_(net: nn.Module, generator: torch.Generator) -> nn.Module:
    """``net.apply(network_weight_gaussian_init)`` as the released loop does it (every module
    re-draws its subtree, children first), in place, from ``generator`` only."""
    return net.apply(partial(_official_init_one, generator=generator))


def count_parameters_k(net: nn.Module) -> float:
    """Parameters in thousands, as the released ``count_parameters`` (names containing
    ``auxiliary`` left out)."""
    return sum(p.numel() for name, p in net.named_parameters() if "auxiliary" not in name) / 1e3


def pack_patterns(codes: torch.Tensor) -> torch.Tensor:
    """(B, n) bool -> (n, ceil(B / 63)) int64: each neuron's B-bit pattern packed into words.

    >>> pack_patterns(torch.tensor([[True, False], [True, True]])).flatten().tolist()
    [3, 2]
    """
    b, n = codes.shape
    words = []
    for start in range(0, b, _WORD_BITS):
        word = torch.zeros(n, dtype=torch.int64, device=codes.device)
        for bit, row in enumerate(codes[start:start + _WORD_BITS]):
            word |= row.to(torch.int64) << bit
        words.append(word)
    return torch.stack(words, dim=1)


def distinct_patterns(packed: torch.Tensor) -> int:
    """The number of distinct rows of a packed (n, words) pattern matrix."""
    if packed.shape[1] == 1:
        return int(torch.unique(packed[:, 0]).numel())
    return int(torch.unique(packed, dim=0).shape[0])


def _relus(net: nn.Module) -> list[nn.Module]:
    relus = [m for m in net.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ValueError(f"swap reads nn.ReLU outputs: {type(net).__name__} has no nn.ReLU module")
    return relus


def capacity(net: nn.Module, inputs: torch.Tensor, *, batch: int = 16) -> dict[str, int]:
    """SWAP's upper bound for ``net`` on ``inputs`` (its first ``batch`` samples):
    ``{"neurons": N, "batch": B, "bound": min(N, 2**B)}``, from one forward pass of a copy of the
    network in train mode (weights as given: N depends on shapes only).

    >>> net = nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU())
    >>> capacity(net, torch.zeros(4, 3, 5, 5))
    {'neurons': 50, 'batch': 4, 'bound': 16}
    """
    x = inputs[:batch]
    n = x.shape[0]
    session = Session(net, x, None, pass_kind="swap")  # a private copy; hooks are the probe's
    seen: list[int] = []

    def count(module, args, output):
        if args and isinstance(args[0], torch.Tensor) and args[0].dim() == 4:
            seen.append(output.numel() // n)

    for m in _relus(session.net):
        session.on_module(m, forward=count)
    session.net.train()
    session.forward(x)
    if not seen:
        raise ValueError(f"swap reads nn.ReLU outputs of 4-D inputs: no nn.ReLU of {type(net).__name__} "
                         "ran on a 4-D input")
    neurons = sum(seen)
    return {"neurons": neurons, "batch": n, "bound": min(neurons, 2 ** n)}


def saturation(value: float, bound: int) -> float:
    """The fraction of its bound (:func:`capacity`) a SWAP score reaches: 1.0 = every possible
    pattern seen (saturated: such networks tie).

    >>> saturation(65_000.0, 2 ** 16)
    0.9918212890625
    """
    return float(value) / float(bound)


class SWAP:
    """SWAP-Score: see the module docstring."""

    regular = False

    def __init__(self, *, repeats: int = 32, init: str = "normal", batch: int = 16) -> None:
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; valid: {list(INITS)}")
        for key, value in (("repeats", repeats), ("batch", batch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        self.repeats, self.init, self.batch = repeats, init, batch
        self.counts: list[int] = []  # the last computation's count per repeat

    def attach(self, session) -> None:  # a private pass: everything happens in finish
        pass

    def finish(self, session):
        net = session.net
        x = session.inputs[:self.batch]
        n = x.shape[0]
        patterns: list[torch.Tensor] = []

        def keep(module, args, output):
            if args and isinstance(args[0], torch.Tensor) and args[0].dim() == 4:
                patterns.append(pack_patterns(output.reshape(n, -1) > 0))

        for m in _relus(net):
            session.on_module(m, forward=keep)
        net.train()
        gen = session.generator()
        self.counts = []
        for _ in range(self.repeats if self.init == "normal" else 1):
            if self.init == "normal":
                official_init_(net, gen)
            patterns.clear()
            session.forward(x)
            if not patterns:
                raise ValueError(f"swap reads nn.ReLU outputs of 4-D inputs: no nn.ReLU of {type(net).__name__} "
                                 "ran on a 4-D input")
            self.counts.append(distinct_patterns(torch.cat(patterns, dim=0)))
            patterns.clear()
        score = sum(self.counts) / len(self.counts)
        return score * self.factor(net), 0

    def factor(self, net: nn.Module) -> float:
        """The regularisation factor (1 for plain SWAP)."""
        return 1.0


class RegularisedSWAP(SWAP):
    """Regularised SWAP: ``swap * exp(-(P - mu)^2 / sigma)``, P = parameters / 1000."""

    regular = True

    def __init__(self, *, repeats: int = 32, init: str = "normal", batch: int = 16, mu: float = 1000.0,
                 sigma: float = 1e6) -> None:
        super().__init__(repeats=repeats, init=init, batch=batch)
        if not float(sigma) > 0:
            raise ValueError(f"sigma must be > 0, got {sigma!r}")
        self.mu, self.sigma = float(mu), float(sigma)

    def factor(self, net: nn.Module) -> float:
        return math.exp(-((count_parameters_k(net) - self.mu) ** 2) / self.sigma)


register("swap", params={"repeats": 32, "init": "normal", "batch": 16}, higher_is_better=True,
         needs_labels=False, bn=True, pass_kind="swap",
         description="SWAP: distinct per-neuron ReLU sign patterns over 16 real images, N(0,1) re-init, "
                     "mean of 32 repeats")(SWAP)
register("swap_reg", params={"repeats": 32, "init": "normal", "batch": 16, "mu": 1000.0, "sigma": 1e6},
         higher_is_better=True, needs_labels=False, bn=True, pass_kind="swap",
         description="regularised SWAP: swap * exp(-(P - mu)^2 / sigma), P = params / 1000 "
                     "(mu, sigma: free, project defaults)")(RegularisedSWAP)
