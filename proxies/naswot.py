"""NASWOT (Mellor et al., "Neural Architecture Search without Training", ICML 2021, v2 of the
paper): the log-determinant of the Hamming-similarity kernel of ReLU activation codes.

At every response point the binary code of each sample is ``c = (x > 0)`` (``x`` flattened per
sample, ``x`` being the ReLU's input); the kernel counts, for every pair of samples, the units on
which their codes agree::

    K = sum_points (c c^T + (1 - c)(1 - c)^T)          score = slogdet(K)[1]

Which points.  The released NASWOT code (and NASLib's ``nwot``, which NAS-Bench-Suite-Zero
ran) hooks every module whose type string contains ``'ReLU'`` and reads its input.  In an NB201
network that is every ``nn.ReLU`` AND every ``ReLUConvBN`` wrapper (a conv edge, or a branch of a
reduction block), whose input is the same tensor as its inner ReLU's, so the code of a conv edge
counts twice; plus the final ReLU.  That is exactly the ``official`` response convention of
:meth:`spaces.nb201.NB201Network.response_modules` (the one the WRCor code hooks too), and it is
what reproduces the reference ``act_hamming`` scores (to ~4e-16 on the 10 golden architectures;
the ``paper`` convention, each ReLU once, is 5-7% lower there).  So ``naswot`` is registered with
``convention="official"``: the original NASWOT definition as its authors' code computes it.
``naswot(convention=paper)`` is the "each ReLU once" variant — which is also what NASLib's later
``nwot`` computes (it skips modules whose type string contains ``'naslib'``, i.e. its own
``ReLUConvBN`` wrappers): its NAS-Bench-Suite-Zero ``nwot`` column sits at the ``paper`` level
(mean difference -0.5 on C=16 NB201 nets, against +43 ~ 64 log 2 for ``official``), with the
same ranking either way (Spearman 0.994 for both on 60 archs).  The final ReLU is in-place in
the reference network, so it reads the post-ReLU output there; ``x > 0`` is the same either
side of a ReLU.

Cost.  The codes are read by forward hooks in the ``standard`` pass, so next to the correlation
family (wrcor, ...) NASWOT costs no pass of its own (it needs the labels only because that pass
computes the loss).  Hooks stay on the device and never sync: ``c c^T`` is one float32 matmul
(exact: 0/1 entries and integer sums < 2**24), ``(1-c)(1-c)^T = D - a_i - a_j + c c^T`` with
``a`` the row sums, and K is accumulated in float64.  A tensor seen by several points (a ReLU and
its wrapper, edges leaving the same node) is multiplied once and added as often as it is seen.
An all-``none`` NB201 cell gives a rank-one K, hence ``-inf``, as the reference does.
"""
from __future__ import annotations


import torch

from .probe import TensorCache
from .registry import register

_EXACT_FLOAT32 = 2 ** 24  # float32 sums of 0/1 products are exact below this many units


def hamming_kernel(x: torch.Tensor) -> torch.Tensor:
    """``c c^T + (1-c)(1-c)^T`` (float64) of the codes ``c = x > 0``, rows = samples."""
    c = (x.reshape(x.shape[0], -1) > 0)
    d = c.shape[1]
    mm_dtype = torch.float32 if d < _EXACT_FLOAT32 else torch.float64
    cf = c.to(mm_dtype)
    same_on = (cf @ cf.T).to(torch.float64)
    a = c.sum(dim=1, dtype=torch.float64)
    return same_on + (d - a[:, None] - a[None, :] + same_on)


class NASWOT:
    """log det of the Hamming kernel of ReLU codes: see the module docstring."""

    def __init__(self, *, convention: str = "official") -> None:
        if convention not in ("paper", "official"):
            raise ValueError(f"unknown convention {convention!r}; valid: ['paper', 'official']")
        self.convention = convention
        self.K: torch.Tensor | None = None

    def attach(self, session) -> None:
        n = session.inputs.shape[0]
        self.K = torch.zeros(n, n, dtype=torch.float64, device=session.device)
        cache = TensorCache()  # c c^T + (1-c)(1-c)^T of tensors already seen in this pass
        self._cache = cache

        def make(point):
            def forward(module, args, output):
                t = args[0] if point.activation == "input" else output
                self.K.add_(cache.get(t, hamming_kernel))

            return forward

        for point in session.response_points(self.convention):
            session.on_module(point.module, forward=make(point))

    def finish(self, session):
        self._cache.clear()
        return torch.linalg.slogdet(self.K)[1], 0


register("naswot", params={"convention": "official"}, higher_is_better=True, needs_labels=True, bn=True,
         pass_kind="standard",
         description="NASWOT: log det of the Hamming kernel of ReLU codes (every module named *ReLU*, as "
                     "released)")(NASWOT)
