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
        self.K: torch.Tensor | None = None
        self.skipped: torch.Tensor | None = None
        self.total = 0  # response matrices seen (skipped ones included)

    def attach(self, session) -> None:
        n = session.inputs.shape[0]
        points = session.response_points(self.convention)
        top = max((p.layer for p in points), default=0)
        self.K = torch.zeros(n, n, dtype=torch.float64, device=session.device)
        self.skipped = torch.zeros((), dtype=torch.int64, device=session.device)
        zero = torch.zeros((), dtype=self.dtype, device=session.device)

        def add(point, kind, c, bad):
            if self.power != 1.0:
                c = c.pow(self.power)
            self.K.add_(torch.where(bad, zero, c), alpha=self.weight(point.layer, top))
            self.skipped += bad
            self.total += 1

        session.on_correlation(self.convention, add, activations=self.responses in ("both", "act"),
                               gradients=self.responses in ("both", "grad"), dtype=self.dtype)

    def finish(self, session):
        return torch.linalg.slogdet(self.K)[1], self.skipped

    def cause(self, value: float, skipped: int) -> str:
        return non_finite_cause(value, skipped, self.total)


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
