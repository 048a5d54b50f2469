"""MeCo (Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum
Eigenvalue of Correlation", NeurIPS 2023)::

    forward ONE sample X (train mode, no gradients); for every hooked module i with output f_i
    F_i   = f_i(X) as a (channels, rest) matrix: row c is channel c's H x W map, flattened
    P_i   = the Pearson correlation matrix between the rows of F_i (channels x channels)
    score = sum_i lambda_min(P_i)

Higher is better.  The choices below follow the released code (HamsterMimi/MeCo,
``correlation/NAS_Bench_201.py``, the script behind the paper's NAS-Bench-201 numbers):

- the sample: that script loads real training images with ``batch_size = 1`` and forwards that
  one image alone, in train mode.  Here sample ``sample`` (default 0) of the real batch is
  forwarded alone (``batch="single"``), so BN normalises with that sample's own statistics and
  the score does not depend on the rest of the batch.  ``batch="full"`` instead forwards the
  whole batch and reads sample ``sample`` of each output, as the ``zero-cost-nas`` copy of the
  measure does (train-mode BN then mixes in the batch's statistics).  ``samples=k`` averages the
  score over samples ``sample .. sample+k-1`` (k forwards with ``batch="single"``); the paper
  uses one.  (Another copy in the repository, ``correlation/foresight/.../meco.py``, ignores the
  data and draws one 1x3x64x64 Gaussian input; not reproduced.)
- the hooked modules: the code registers a forward hook on EVERY module of
  ``net.named_modules()`` -- the network itself (its logits), containers (``nn.Sequential``, a
  cell, an edge wrapper) and leaves alike -- so a tensor that is the output of several nested
  modules (a conv edge's BN output is also the output of its ``Sequential`` and of its wrapper)
  counts once per module, and a module called twice counts twice.  That is ``modules="all"``
  (the default); ``modules="leaves"`` hooks only modules without children (each layer's output
  once, the paper's "feature map of each layer").  Only tensor outputs with a batch dimension are
  read (``ndim >= 2``); a 2-D output (logits, a flattened vector) gives a (features, 1) matrix
  whose rows are constant, so it contributes 0, as in the code.
- NaN: a constant channel (zero variance: the output of a ``none`` edge, a dead ReLU, a 1x1 map)
  makes its row and column of P NaN; the code sets every NaN (and inf) entry of P to 0, diagonal
  included, and takes the eigenvalues of that matrix (so lambda_min <= 0 up to rounding: the
  zeroed row gives an eigenvalue 0).  Same here; ``n_skipped`` counts the hooked outputs whose P
  had such entries (nothing is left out).  A non-finite lambda_min would be dropped, as the code
  drops NaN/inf results.
- ``channels`` (default ``None``: all) is MeCo_opt: P of ``min(channels, C)`` channels drawn at
  random (the session's generator, a fresh draw per hooked output), its lambda_min scaled by
  C / channels (the code draws 8 with Python's ``random.sample``, which fails when C < 8).

Arithmetic differs from the code on purpose: the correlation matrices are computed in float64
from the float32 features, and their eigenvalues with ``torch.linalg.eigvalsh`` (symmetric, float64)
where the code uses float32 ``torch.corrcoef`` and the general ``torch.linalg.eig`` (real part).
For a rank-deficient P (more channels than spatial positions: NB201's 64-channel 8x8 stage)
lambda_min is 0 up to rounding, about 1e-16 here instead of about 1e-7.

Hooks only compute the correlation matrices (on the device, each distinct tensor once); the
eigenvalues are taken after the forward, batched by matrix size.

Why a private pass (``pass_kind="meco"``) and not the shared ``forward`` pass: the shared pass
forwards the whole batch in train mode, where BN couples the samples; forwarding the one sample
alone is what the paper's script does, and costs 1/N of the batch forward.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .probe import TensorCache, corrcoef
from .registry import register

BATCH = ("single", "full")
MODULES = ("all", "leaves")


def channel_correlation(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pearson correlation between the rows of ``f`` (C, L), in float64, with NaN/inf entries set
    to 0 (the MeCo code's rule), and a 0-dim bool flag: whether any entry was set."""
    c, _ = corrcoef(f, torch.float64)
    finite = torch.isfinite(c)
    return torch.where(finite, c, 0.0), ~finite.all()


class MeCo:
    """MeCo: see the module docstring."""

    def __init__(self, *, sample: int = 0, samples: int = 1, batch: str = "single", modules: str = "all",
                 channels: int | None = None) -> None:
        if int(sample) != sample or sample < 0:
            raise ValueError(f"sample must be an index >= 0, got {sample!r}")
        if int(samples) != samples or samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples!r}")
        if batch not in BATCH:
            raise ValueError(f"unknown batch {batch!r}; valid: {list(BATCH)}")
        if modules not in MODULES:
            raise ValueError(f"unknown modules {modules!r}; valid: {list(MODULES)}")
        if channels is not None and (int(channels) != channels or channels < 2):
            raise ValueError(f"channels must be none or >= 2, got {channels!r}")
        self.sample = int(sample)
        self.samples = int(samples)
        self.batch = batch
        self.modules = modules
        self.channels = None if channels is None else int(channels)

    def attach(self, session) -> None:  # a private pass: everything happens in finish
        pass

    def _hooked(self, net: nn.Module) -> list[nn.Module]:
        if self.modules == "all":
            return list(net.modules())
        return [m for m in net.modules() if next(m.children(), None) is None]

    def finish(self, session):
        net, x = session.net, session.inputs
        first, count = self.sample, self.samples
        if first + count > x.shape[0]:
            raise ValueError(f"meco reads samples {first}..{first + count - 1}: the batch has {x.shape[0]}")
        gen = session.generator() if self.channels is not None else None
        # distinct correlation matrices, grouped by size; every hooked output refers to one of them
        matrices: dict[int, list[torch.Tensor]] = {}
        calls: list[tuple[int, int, float]] = []  # (size, index in matrices[size], weight)
        bad: list[torch.Tensor] = []  # per call
        cache = TensorCache()
        rows: list[int] = []  # the batch positions to read in the current forward

        def add(f: torch.Tensor) -> tuple[int, int, torch.Tensor]:
            c, flag = channel_correlation(f)
            group = matrices.setdefault(c.shape[0], [])
            group.append(c)
            return c.shape[0], len(group) - 1, flag

        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor) or output.dim() < 2 or not output.is_floating_point():
                return
            t = output.detach()
            if self.channels is None:
                # a tensor that several nested modules return is correlated once
                entries = cache.get(output, lambda t: [add(t[r].reshape(t.shape[1], -1)) for r in rows], tuple(rows))
                for size, index, flag in entries:
                    calls.append((size, index, 1.0))
                    bad.append(flag)
            else:
                n_ch = t.shape[1]
                k = min(self.channels, n_ch)
                for r in rows:
                    pick = torch.randperm(n_ch, generator=gen, device=gen.device)[:k].to(t.device)
                    size, index, flag = add(t[r].reshape(n_ch, -1).index_select(0, pick))
                    calls.append((size, index, n_ch / k))
                    bad.append(flag)

        net.train()
        for m in self._hooked(net):
            session.on_module(m, forward=hook)
        try:
            if self.batch == "single":
                for i in range(first, first + count):
                    rows[:] = [0]
                    session.forward(x[i:i + 1])
                    cache.clear()
            else:
                rows[:] = list(range(first, first + count))
                session.forward(x)
        finally:
            cache.clear()
        score = torch.zeros((), dtype=torch.float64, device=session.device)
        for size, group in matrices.items():
            lam_min = torch.linalg.eigvalsh(torch.stack(group))[:, 0]
            picked = [(index, weight) for s, index, weight in calls if s == size]
            index = torch.tensor([i for i, _ in picked], device=lam_min.device)
            weight = torch.tensor([w for _, w in picked], dtype=torch.float64, device=lam_min.device)
            lam = lam_min[index] * weight
            score = score + torch.where(torch.isfinite(lam), lam, 0.0).sum()
        n_bad = torch.stack(bad).sum() if bad else 0
        return score / count, n_bad


register("meco", params={"sample": 0, "samples": 1, "batch": "single", "modules": "all", "channels": None},
         higher_is_better=True, needs_labels=False, bn=True, pass_kind="meco",
         description="MeCo: sum over every module's output of the minimum eigenvalue of the channel "
                     "correlation matrix, for one sample forwarded alone (train mode)")(MeCo)
