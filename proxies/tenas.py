"""TE-NAS's two training-free indicators (Chen, Gong & Wang, "Neural Architecture Search on
ImageNet in Four GPU Hours: A Theoretically Inspired Perspective", ICLR 2021), in the
per-architecture form of the AZ-NAS re-implementation (``NB201/ZeroShotProxy/
compute_te_nas_score.py`` of github.com/cvlab-yonsei/AZ-NAS, itself adapted from ZenNAS), which is
what produces the per-architecture NB201 numbers in the literature.  TE-NAS proper prunes a
supernet; its per-network score is the rank sum of these two values over an architecture set
(the ``te_nas`` aggregator of :mod:`proxies.aggregators`).

**ntk_cond** — the condition number of the empirical neural tangent kernel, negated::

    the network as given (PyTorch's default init: the weights are NOT re-initialised), train-mode
    BN, ONE forward of the real batch x (n images);
    for each sample i: backward of sum_c logits[i, c] (the graph of the whole batch is kept, so BN's
        batch statistics couple the samples);
        g_i = concatenation of the gradients of every parameter whose NAME contains "weight"
              (conv / linear weights AND BN gammas; biases and BN betas are left out), in
              ``named_parameters()`` order, skipping those that get no gradient;
    K = G G^T  (n x n, float32, G = rows g_i);   eigenvalues of K by ``torch.linalg.eigh`` (ascending)
    cond = lambda_max / lambda_min  (float32);   score = -cond   (higher is better)

Official conventions kept: the kernel and its eigenvalues are float32, as released; a NaN
condition number (0/0: every gradient zero, e.g. the all-``none`` NB201 cell) becomes 1e5 (the
AZ-NAS value of ``np.nan_to_num(..., nan=...)``), so the score is -1e5; ``nan_to_num`` also turns
+-inf (lambda_min exactly 0 with lambda_max > 0) into +-1.797e308 (float64 max), kept too.  A
slightly negative float32 lambda_min (K is only positive semi-definite in exact arithmetic) gives
a negative condition number and a POSITIVE score, as the released code would.  TE-NAS's original
code took the eigenvalues with ``torch.symeig``, which torch >= 2 no longer has; the AZ-NAS code
already uses ``torch.linalg.eigh`` (same ascending eigenvalues), and so does this module.  A
network returning a tuple is read as the released code reads NB201 networks: ``output[1]`` are
the logits.

**linear_regions** — the number of distinct ReLU activation patterns on a Gaussian-noise batch::

    z ~ N(0, 1) of shape (n, C, H, W) (the real batch's shape; the real images are not used);
    train-mode BN, ONE forward under no_grad with a hook on every ``nn.ReLU`` whose input is 4-D:
    the ReLU's output, flattened per sample, concatenated in call order -> A (n x D), a = sign(A)
    (0/1 after a ReLU);
    M = a (1 - a)^T  computed in float16;  M = M + M^T   (M_ij = #units where codes i and j differ)
    k_i = #{j : M_ij == 0}   (samples sharing i's code, itself included)
    #LR = sum_i 1 / k_i      (float32)   = the number of distinct codes    (higher is better)

Noise.  The official collector draws ``torch.randn(n, 3, H, W)`` from the global RNG; here it comes
from the session's generator (``seed`` of :func:`proxies.compute`), so on the CPU seed ``s``
draws exactly what the released code draws after ``torch.manual_seed(s)``.

**Saturation.**  On whole images the codes have hundreds of thousands of units (~9e5 for a
conv-heavy C=16 NB201 net), so every noise sample has its own pattern and #LR equals the batch
size (64) for essentially every architecture that lets the input through; an architecture whose
ReLUs never see the input (the all-``none`` cell) scores 1.  The value is then nearly constant
and TE-NAS's ranking is carried by the NTK alone.  This is the released per-architecture
behaviour, kept; the original TE-NAS counted regions on 3x3 single-channel patches of a thin
one-cell net, where counts do not saturate.

**The float16 matmul.**  float16 holds integers exactly only up to 2048 and overflows above
65,504, so on a wide net (more than 65,504 differing units between two codes — every conv-heavy
NB201 architecture) the entries of M become ``inf``.  The count only asks whether an entry is
zero, and a sum of non-negative 0/1 products can neither round to zero nor turn into NaN, so on
the CPU the overflow does NOT change #LR (tested: ``inf`` entries, same count as the exact
one); what float16 can get wrong is only the row sums k_i beyond 2048 samples (batch > 2048).
``count="exact"`` counts without float16 (M in float64, exact below 2**53 units; #LR = number of
samples with no identical earlier sample, an exact integer rather than a float32 sum of
reciprocals); ``count="fp16"`` (default) is the released arithmetic.

Parameters.  ``batch_size`` (0: the whole batch given; else the first ``batch_size`` real images
for the NTK, a noise batch of that size for the regions; the AZ-NAS setup is 64);
``linear_regions(count=fp16|exact)``; ``linear_regions(inputs=noise|real)`` (``real``: the real
batch instead of noise, not the released setup); ``linear_regions(relus=4d|all)`` (``all``: also
ReLUs on 2-D inputs, e.g. an MLP's, which the released hook ignores).

Errors (an ``error`` outcome, with the reason): a network with no parameter named "*weight*"
that receives a gradient (ntk_cond); a network with no ``nn.ReLU`` on a 4-D input — e.g. one
using ``ReLU6`` or functional ReLUs — (linear_regions, unless ``relus=all`` finds one);
``batch_size`` larger than the batch given (ntk_cond).

Cost (measured here: CPU, 1 thread, contended 2-core machine; golden NB201 states, C=16, batch
64 — harness / released code run the same way; per-case numbers in
``tests/fixtures/tenas_official.json``): ntk_cond 5.7 / 10.0 s (all-``none``), 3.2 / 14.0 s
(all-skip), 48 / 101 s (all-avg-pool), 39 / 77 s (arch 1, conv-heavy), 42 / 90 s (arch 6111,
the most convs); at batch 16 (the cost grows ~ n^2: n backward passes through the whole batch's
graph) 1.5-2.9 s.  linear_regions 0.1-1.2 s (released 0.2-3.3 s).  The NTK also holds
n x (#weight parameters) float32 gradients (~0.3 GB for 1.3 M parameters at n = 64).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .registry import register

#: the released code's replacement for a NaN condition number
NAN_COND = 1e5
COUNTS = ("fp16", "exact")
INPUTS = ("noise", "real")
RELUS = ("4d", "all")


def _logits(output):
    """The logits of a network's output: ``output[1]`` for a tuple (NB201's (features, logits))."""
    return output[1] if isinstance(output, (tuple, list)) else output


def _check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
        raise ValueError(f"batch_size must be an integer >= 0 (0: the whole batch), got {batch_size!r}")
    return batch_size


def ntk_gradients(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """G (n x P): row i = the gradients of ``sum_c logits[i, c]`` w.r.t. every parameter whose name
    contains "weight", concatenated in ``named_parameters()`` order (the released loop)."""
    net.zero_grad(set_to_none=True)
    logits = _logits(net(x.clone()))
    rows = []
    for i in range(len(x)):
        logits[i:i + 1].backward(torch.ones_like(logits[i:i + 1]), retain_graph=True)
        grads = [w.grad.view(-1).detach() for name, w in net.named_parameters()
                 if "weight" in name and w.grad is not None]
        if not grads:
            raise ValueError(f"ntk_cond: no parameter whose name contains 'weight' gets a gradient in "
                             f"{type(net).__name__} (the NTK is built from those gradients)")
        rows.append(torch.cat(grads, -1))
        net.zero_grad(set_to_none=True)
    return torch.stack(rows, 0)


def condition_number(G: torch.Tensor) -> torch.Tensor:
    """The released condition number of ``K = G G^T`` (0-dim float64 tensor, no host sync):
    lambda_max / lambda_min in G's dtype from ``eigh``, NaN -> 1e5, +-inf -> +-float64 max."""
    ntk = torch.einsum("nc,mc->nm", [G, G])
    eigenvalues, _ = torch.linalg.eigh(ntk)  # ascending
    cond = (eigenvalues[-1] / eigenvalues[0]).to(torch.float64)
    big = float(np.finfo(np.float64).max)
    return torch.nan_to_num(cond, nan=NAN_COND, posinf=big, neginf=-big)


class NTKCondition:
    """-cond(NTK) on the real batch: see the module docstring."""

    def __init__(self, *, batch_size: int = 0) -> None:
        self.batch_size = _check_batch_size(batch_size)

    def attach(self, session) -> None:  # a private pass: everything happens in finish
        pass

    def finish(self, session):
        x = session.inputs
        n = self.batch_size or len(x)
        if n > len(x):
            raise ValueError(f"ntk_cond: batch_size={n} but the batch has {len(x)} images")
        net = session.net
        net.train()
        return -condition_number(ntk_gradients(net, x[:n])), 0

    def cause(self, value: float, n_skipped: int) -> str:
        return f"the NTK's condition number is {-value}"


def count_linear_regions(codes: torch.Tensor, count: str = "fp16") -> torch.Tensor:
    """The number of distinct rows of the 0/1 matrix ``codes`` (samples x units), 0-dim tensor.

    ``fp16``: the released arithmetic (float16 matmul, float32 sum of 1 / #identical);
    ``exact``: float64 mismatch counts, and the number of rows with no identical earlier row.

    >>> a = torch.tensor([[1., 0., 1.], [1., 0., 1.], [0., 0., 1.]])
    >>> float(count_linear_regions(a)), float(count_linear_regions(a, "exact"))
    (2.0, 2.0)
    """
    if count == "fp16":
        res = torch.matmul(codes.half(), (1 - codes).T.half())
        res += res.clone().T
        res = 1 - torch.sign(res)
        res = res.sum(1)
        res = 1. / res.float()
        return res.sum()
    if count == "exact":
        a = codes.to(torch.float64)
        differ = a @ (1 - a).T
        same = (differ + differ.T) == 0
        repeated = torch.tril(same, diagonal=-1).any(1)  # an identical sample comes earlier
        return (~repeated).sum().to(torch.float64)
    raise ValueError(f"unknown count {count!r}; valid: {list(COUNTS)}")


class LinearRegions:
    """The number of distinct ReLU patterns on a noise batch: see the module docstring."""

    def __init__(self, *, batch_size: int = 0, count: str = "fp16", inputs: str = "noise", relus: str = "4d") -> None:
        self.batch_size = _check_batch_size(batch_size)
        for key, value, valid in (("count", count, COUNTS), ("inputs", inputs, INPUTS), ("relus", relus, RELUS)):
            if value not in valid:
                raise ValueError(f"unknown {key} {value!r}; valid: {list(valid)}")
        self.count, self.inputs, self.relus = count, inputs, relus

    def attach(self, session) -> None:
        self._features: list[torch.Tensor] = []
        relus = [m for m in session.net.modules() if isinstance(m, nn.ReLU)]
        if not relus:
            raise ValueError(f"linear_regions: {type(session.net).__name__} has no nn.ReLU module "
                             "(the regions are read from nn.ReLU outputs; ReLU6 and functional ReLUs are not seen)")

        def hook(module, args, output):
            if isinstance(args, tuple) and (args[0].dim() == 4 or self.relus == "all"):
                self._features.append(output.detach())

        for m in relus:
            session.on_module(m, forward=hook)

    def finish(self, session):
        x = session.inputs
        n = self.batch_size or len(x)
        if self.inputs == "noise":
            z = torch.randn((n, *x.shape[1:]), generator=session.generator(), device=x.device, dtype=x.dtype)
        else:
            if n > len(x):
                raise ValueError(f"linear_regions: batch_size={n} but the batch has {len(x)} images")
            z = x[:n]
        session.net.train()
        self._features.clear()
        session.forward(z)
        if not self._features:
            where = "a 4-D input" if self.relus == "4d" else "any input"
            raise ValueError(f"linear_regions: no nn.ReLU of {type(session.net).__name__} ran on {where} "
                             "(the released counter reads only ReLUs on 4-D inputs; relus=all reads every one)")
        codes = torch.sign(torch.cat([f.reshape(n, -1) for f in self._features], 1))
        self._features.clear()
        return count_linear_regions(codes.to(torch.float32), self.count), 0


register("ntk_cond", params={"batch_size": 0}, higher_is_better=True, needs_labels=False, bn=True,
         pass_kind="tenas_ntk",
         description="TE-NAS (AZ-NAS port): -cond of the NTK of per-sample weight gradients on the real batch, "
                     "default init, train-mode BN (NaN -> -1e5)")(NTKCondition)
register("linear_regions", params={"batch_size": 0, "count": "fp16", "inputs": "noise", "relus": "4d"},
         higher_is_better=True, needs_labels=False, bn=True, pass_kind="tenas_lr",
         description="TE-NAS (AZ-NAS port): distinct ReLU patterns on a Gaussian-noise batch (float16 count, "
                     "saturates at the batch size on whole images)")(LinearRegions)
