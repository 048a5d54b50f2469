"""The response-correlation family: WRCor and its relatives (RCor, ACor, GCor).

For every response point (see :class:`spaces.vocabulary.ResponsePoint`) the N x N matrix ``C`` of
correlations between the batch's samples is computed for the activations and for the gradients
there; ``K = sum_points w(layer) * (|C_A|^x + |C_G|^x)`` and the score is ``log det K``.  A
matrix with a NaN (a sample whose response is constant) is skipped and counted.

One class, parameters for every variant (the registrations below are the named ones):

- ``convention``: ``paper`` (every ReLU's input and the gradient there — the paper's formula) or
  ``official`` (exactly what the released code hooks, quirks included; see
  ``NB201Network.response_modules``).
- ``weighting``: ``exp_bottom_to_top`` (2**l, WRCor), ``exp_top_to_bottom`` (2**(L-l)),
  ``linear`` (l+1), ``quadratic`` ((l+1)**2), ``none`` (1).
- ``responses``: ``both``, ``act`` (activations only) or ``grad`` (gradients only).
- ``power``: x in |C|^x.
- ``precision``: the dtype of the correlation matrices.  ``float64`` is numpy's arithmetic (the
  released code's); ``float32`` is about 3x cheaper and moves scores by ~1e-7 relative (measured
  on the golden architectures), far below the float32 noise of the forward pass itself.  ``K``
  is always accumulated and its log-determinant taken in float64.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .registry import register

WEIGHTINGS: dict[str, Callable[[int, int], float]] = {
    "none": lambda layer, top: 1.0,
    "linear": lambda layer, top: float(layer + 1),
    "quadratic": lambda layer, top: float((layer + 1) ** 2),
    "exp_bottom_to_top": lambda layer, top: 2.0 ** layer,
    "exp_top_to_bottom": lambda layer, top: 2.0 ** (top - layer),
}
RESPONSES = ("both", "act", "grad")


class ResponseCorrelation:
    """log det of the weighted sum of absolute sample-correlation matrices of responses."""

    def __init__(self, *, convention: str, weighting: str, responses: str, power: float,
                 precision: str) -> None:
        if weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {weighting!r}; valid: {sorted(WEIGHTINGS)}")
        if responses not in RESPONSES:
            raise ValueError(f"unknown responses {responses!r}; valid: {list(RESPONSES)}")
        if convention not in ("paper", "official"):
            raise ValueError(f"unknown convention {convention!r}; valid: ['paper', 'official']")
        self.convention = convention
        self.weight = WEIGHTINGS[weighting]
        self.responses = responses
        self.power = float(power)
        if precision not in ("float32", "float64"):
            raise ValueError(f"unknown precision {precision!r}; valid: ['float32', 'float64']")
        self.dtype = getattr(torch, precision)
        self.acc: Accumulation | None = None

    def attach(self, session) -> None:
        points = session.response_points(self.convention)
        top = max((p.layer for p in points), default=0)
        self.acc = Accumulation(self, 1, session.inputs.shape[0], top, session.device)

        def add(point, kind, c, bad):
            self.acc.add(c[None], bad.reshape(1), point.layer)

        session.on_correlation(self.convention, add, activations=self.responses in ("both", "act"),
                               gradients=self.responses in ("both", "grad"), dtype=self.dtype)

    def wants(self, kind: str) -> bool:
        """Whether this variant reads responses of ``kind`` ("act" or "grad")."""
        return self.responses == "both" or self.responses == kind

    def finish(self, session):
        return self.acc.log_det()[0], self.acc.skipped[0]

    def cause(self, value: float, skipped: int) -> str:
        return non_finite_cause(value, skipped, int(self.acc.total[0]))


class Accumulation:
    """The one arithmetic of the family: ``K`` (G, N, N), the skipped and total matrix counts (G,)
    of one variant for G networks at once, on the device.  The one-network pass (``G = 1``) and
    the scoring engine (a stacked group) both add their matrices here.

    ``add(c, bad, layer, count, idx)``: ``c`` the (m, N, N) |C| of one response of m networks (in
    the variant's dtype), ``bad`` (m,) their NaN flags, ``count`` the response's multiplicity per
    network (None: 1), ``idx`` the m networks' positions in the group (None: all G).  A flagged
    matrix adds nothing to K and ``count`` to ``skipped``; ``K += count * w(layer) * |C|**x``.
    """

    def __init__(self, proxy: ResponseCorrelation, G: int, N: int, top: int, device: torch.device) -> None:
        self.proxy, self.top = proxy, top
        self.K = torch.zeros(G, N, N, dtype=torch.float64, device=device)
        self.skipped = torch.zeros(G, dtype=torch.int64, device=device)
        self.total = torch.zeros(G, dtype=torch.float64, device=device)

    def add(self, c: torch.Tensor, bad: torch.Tensor, layer: int, count: torch.Tensor | float | None = None,
            idx: torch.Tensor | None = None) -> None:
        p = self.proxy
        if p.power != 1.0:
            c = c.pow(p.power)
        if not isinstance(count, torch.Tensor):
            count = torch.full((c.shape[0],), 1.0 if count is None else float(count), dtype=torch.float64,
                               device=c.device)
        contrib = torch.where(bad[:, None, None], 0.0, c).to(torch.float64) \
            * (count * p.weight(layer, self.top))[:, None, None]
        self._add(self.K, idx, contrib)
        self._add(self.skipped, idx, bad.to(torch.int64) * count.to(torch.int64))
        self._add(self.total, idx, count)

    @staticmethod
    def _add(target: torch.Tensor, idx: torch.Tensor | None, value: torch.Tensor) -> None:
        if idx is None:
            target.add_(value)
        else:
            target.index_add_(0, idx, value)

    def log_det(self) -> torch.Tensor:
        """(G,) float64: log det K of each network."""
        return torch.linalg.slogdet(self.K)[1]


def non_finite_cause(value: float, skipped: int, total: int) -> str:
    """Why a response-correlation score is not finite ("" when it is)."""
    if math.isfinite(value):
        return ""
    if value == -math.inf:
        why = "K is singular (log det = -inf)"
    elif math.isinf(value):
        why = "log det = +inf"
    else:
        why = "K has non-finite entries (log det = NaN)"
    return (f"{why}: {skipped} of {total} response matrices were skipped (a sample with a constant "
            f"response gives a NaN correlation)")


def _register(name: str, description: str, **params) -> None:
    register(name, params=params, higher_is_better=True, needs_labels=True, bn=True,
             pass_kind="standard", description=description)(ResponseCorrelation)


_register("wrcor", "WRCor, the paper's formula: every ReLU's input and its gradient, cell l weighted 2**l",
          convention="paper", weighting="exp_bottom_to_top", responses="both", power=1.0, precision="float32")
_register("wrcor_official", "WRCor as released (act_grad_cor_weighted), quirks included",
          convention="official", weighting="exp_bottom_to_top", responses="both", power=1.0, precision="float64")
_register("rcor", "RCor as released (act_grad_cor): unweighted activations + gradients",
          convention="official", weighting="none", responses="both", power=1.0, precision="float64")
_register("acor", "ACor as released (act_cor): unweighted activations",
          convention="official", weighting="none", responses="act", power=1.0, precision="float64")
_register("gcor", "GCor as released (grad_cor): unweighted gradients",
          convention="official", weighting="none", responses="grad", power=1.0, precision="float64")
