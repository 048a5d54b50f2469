"""ZiCo (Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients",
ICLR 2023): the inverse coefficient of variation of the weight gradients across mini-batches::

    split the batch into k mini-batches (k = 2), forward + cross-entropy + backward on each and
    record, for every Conv2d / Linear layer l, the weight gradient g_l^(s) of each mini-batch s
    per weight element w:   mu_w = mean_s |g_w^(s)|,   sigma_w = std_s g_w^(s)
    S_l   = sum over the elements with sigma_w != 0 of mu_w / sigma_w
    score = sum over layers of log S_l, leaving out the layers with S_l = 0

The network is in train mode (BN on each mini-batch's statistics); higher is better.

The paper defines the statistics over the gradients of independent batches (X_i, y_i) of each
layer's parameters; the released code (``getzico`` in SLDGroup/ZiCo, and the copy in MeCo's
``zero-cost-nas`` that splits one batch in two) differs in places.  The default follows the
released code; each difference is a parameter:

- ``accumulate`` (default ``True``, the code): the code calls ``backward`` on each mini-batch
  without zeroing the gradients in between, so what it records for mini-batch s is the
  *running sum* g^(1) + ... + g^(s) (for k = 2: g1 and g1 + g2, so sigma = |g2| / 2).
  ``accumulate=False`` zeroes the gradients before each mini-batch: the per-batch gradients of
  the paper's definition.
- ``splits`` (default 2): the number of mini-batches; mini-batch s is ``inputs[s*N//k :
  (s+1)*N//k]``, as in the code.  The batch must have at least ``splits`` samples.
- ``ddof`` (default 0): the standard deviation is numpy's ``np.std`` (no Bessel correction) in
  the code; ``ddof=1`` gives the sample standard deviation.  With k = 2 it multiplies every
  sigma by sqrt(2), i.e. shifts each layer's log by -log(2)/2, which changes rankings between
  networks with different numbers of conv layers.
- ``std_of`` (default ``"signed"``, the code): the standard deviation of the signed gradients;
  ``"abs"`` takes it over |g| instead (the reading of the paper's formula with |.| inside Var).
- layers: every ``nn.Conv2d`` and ``nn.Linear`` weight (:func:`proxies.probe.weight_layers`), no
  biases, no BN parameters, as the code does (the paper says "each layer").  A layer whose
  gradient is ``None`` (not used by the forward) counts as zero gradients and is skipped.

Arithmetic: the gradients are float32 (as in the code); the statistics, the ratios and the logs
are taken in float64 here (the code does them in numpy on float32 arrays, whose float32 sums
move the score by 6e-7 and 8e-6 relative on two C=16 NB201 networks, measured).  Everything stays on the inputs' device.

``n_skipped`` is the number of layers left out because S_l = 0 (every sigma zero, e.g. identical
mini-batches with ``accumulate=False``, or a layer without gradient).  With ``accumulate=True``
and two identical mini-batches the recorded gradients are g and 2g, so mu / sigma = 1.5 / 0.5 = 3
for every element with g != 0 and layer l gives log(3 * nnz(g_l)).  If every layer is skipped
the score is 0.
"""
from __future__ import annotations

import torch

from .probe import weight_layers
from .registry import register

STD_OF = ("signed", "abs")


class ZiCo:
    """ZiCo: see the module docstring."""

    def __init__(self, *, splits: int = 2, accumulate: bool = True, ddof: int = 0, std_of: str = "signed") -> None:
        if int(splits) != splits or splits < 2:
            raise ValueError(f"zico needs splits >= 2 mini-batches (a standard deviation), got {splits!r}")
        if ddof not in (0, 1):
            raise ValueError(f"unknown ddof {ddof!r}; valid: [0, 1]")
        if std_of not in STD_OF:
            raise ValueError(f"unknown std_of {std_of!r}; valid: {list(STD_OF)}")
        if not isinstance(accumulate, bool):
            raise ValueError(f"accumulate must be true or false, got {accumulate!r}")
        self.splits = int(splits)
        self.accumulate = accumulate
        self.ddof = int(ddof)
        self.std_of = std_of

    def attach(self, session) -> None:  # a private pass: everything happens in finish
        pass

    def gradients(self, session) -> list[torch.Tensor]:
        """Per layer, the (splits, numel) float64 stack of the recorded weight gradients."""
        net, x, y = session.net, session.inputs, session.targets
        n, k = x.shape[0], self.splits
        if n < k:
            raise ValueError(f"zico splits the batch into {k} mini-batches: it needs at least {k} samples, got {n}")
        layers = weight_layers(net)
        net.train()
        net.zero_grad(set_to_none=True)
        records: list[list[torch.Tensor]] = [[] for _ in layers]
        for s in range(k):
            if not self.accumulate:
                net.zero_grad(set_to_none=True)
            lo, hi = s * n // k, (s + 1) * n // k
            session.loss_fn(net(x[lo:hi]), y[lo:hi]).backward()
            for rec, layer in zip(records, layers):
                g = layer.weight.grad  # .to(float64) copies it: .grad accumulates in place
                rec.append(torch.zeros(layer.weight.numel(), dtype=torch.float64, device=layer.weight.device)
                           if g is None else g.detach().reshape(-1).to(torch.float64))
        net.zero_grad(set_to_none=True)
        return [torch.stack(rec) for rec in records]

    def finish(self, session):
        score = torch.zeros((), dtype=torch.float64, device=session.device)
        skipped = torch.zeros((), dtype=torch.int64, device=session.device)
        for g in self.gradients(session):
            mean_abs = g.abs().mean(dim=0)
            std = (g.abs() if self.std_of == "abs" else g).std(dim=0, correction=self.ddof)
            nonzero = std != 0
            total = torch.where(nonzero, mean_abs / torch.where(nonzero, std, 1.0), 0.0).sum()
            empty = total == 0
            score = score + torch.where(empty, 0.0, torch.log(torch.where(empty, 1.0, total)))
            skipped += empty
        return score, skipped


register("zico", params={"splits": 2, "accumulate": True, "ddof": 0, "std_of": "signed"},
         higher_is_better=True, needs_labels=True, bn=True, pass_kind="zico",
         description="ZiCo: sum over conv/linear layers of log sum |mean| / std of the weight gradients "
                     "over 2 mini-batches (as released: gradients accumulated, population std)")(ZiCo)
