"""Input-Jacobian proxies: jacob_cov (NASWOT v1) and EPE-NAS.

Both read ``J = d sum(y) / dx`` of the real batch, one row per sample (the Probe's
``input_jacobian`` pass: BN on, train mode), so computed together they share ONE pass.  Every
matrix is computed in float64 on the inputs' device; the value is read once, at the end.

**jacob_cov** (Mellor et al., "Neural Architecture Search without Training", v1 of the paper;
``jacob_cov`` in the zero-cost-proxy code, ``jacob_cor`` in the released WRCor code)::

    C = corrcoef(J)                       (rows = samples, as numpy.corrcoef)
    score = -sum_i (log(lambda_i + k) + 1 / (lambda_i + k)),   k = 1e-5

over the eigenvalues ``lambda_i`` of ``C``.  The reference takes them with ``numpy.linalg.eig``;
``C`` is symmetric, so ``eigvalsh`` gives the same values (to ~1e-16 of ||C||).  A sample whose
Jacobian is constant (every entry equal, e.g. all zero when no path links the input to the
output: the all-``none`` NB201 cell) makes ``C`` NaN; the reference's ``eig`` then raises and it
returns NaN, and so does this proxy (without a host sync: the eigenvalues are taken of an
identity in its place and the result replaced by NaN).

**epe_nas** (Lopes et al., "EPE-NAS: Efficient Performance Estimation Without Training for
Neural Architecture Search", ICANN 2021; the authors' ``eval_score_perclass`` as NASLib and
NAS-Bench-Suite-Zero run it).  With the rows of ``J`` grouped by label and ``n`` the network's
number of outputs::

    s_c = sum_{i,j in c} log(|corrcoef(J_c)|_ij + k),   k = 1e-5
    n <= 100:  score = sum_c |s_c|                                   ("B" in the code)
    n  > 100:  s_c /= |c|;  score = sum_c sum_c' |s_c - s_c'| / #classes kept   ("A")

Classes absent from the batch contribute nothing.  The correlation between two rows depends on
those two rows only, so ``corrcoef(J_c)`` is the block of ``corrcoef(J)`` on the class's rows:
one N x N matrix serves every class and no label is read on the host.

A *singleton* class (one sample in the batch) is kept exactly as the definition treats it:
``numpy.corrcoef`` of a single row returns the scalar ``var / var`` = 1 (NaN if the row is
constant), so for ``n <= 100`` it adds ``|log(1 + k)|`` (~1e-5; NaN for a constant row, making
the score NaN); for ``n > 100`` ``len()`` of that scalar raises inside the definition's
``try`` and the class is dropped (not counted in the divisor either).  If no class is kept the
definition divides 0 by 0 (its exception handler returns NaN): NaN here too.  As in the
definition, a constant Jacobian row in a class of two or more makes that class's sum, and the
score, NaN.
"""
from __future__ import annotations

import torch

from .probe import corrcoef
from .registry import register

K_EPS = 1e-5


def jacob_cov_score(jacobian: torch.Tensor, k: float = K_EPS) -> torch.Tensor:
    """The jacob_cov score of a batch Jacobian (0-dim float64 tensor; NaN when C has a NaN)."""
    c, bad = corrcoef(jacobian)
    eye = torch.eye(c.shape[0], dtype=c.dtype, device=c.device)
    lam = torch.linalg.eigvalsh(torch.where(bad, eye, c))
    score = -(torch.log(lam + k) + 1.0 / (lam + k)).sum()
    return torch.where(bad, torch.full_like(score, float("nan")), score)


def epe_nas_score(jacobian: torch.Tensor, labels: torch.Tensor, n_outputs: int, k: float = K_EPS) -> torch.Tensor:
    """The EPE-NAS score of a batch Jacobian with integer ``labels`` in ``[0, n_outputs)``."""
    c, _ = corrcoef(jacobian)
    labels = labels.reshape(-1).to(torch.long)
    log_c = torch.log(c.abs() + k)
    same = labels[:, None] == labels[None, :]
    # where (not a product with a mask): a NaN outside the class's block must not leak in
    row = torch.where(same, log_c, torch.zeros_like(log_c)).sum(dim=1)
    s = torch.zeros(n_outputs, dtype=c.dtype, device=c.device).index_add_(0, labels, row)
    count = torch.zeros(n_outputs, dtype=c.dtype, device=c.device).index_add_(0, labels, torch.ones_like(row))
    if n_outputs <= 100:
        return s.abs().sum()  # an absent class has s = 0
    kept = count >= 2  # a singleton class is dropped by the definition (see the module docstring)
    s = s / count.clamp(min=1.0)
    pair = kept[:, None] & kept[None, :]
    diff = (s[:, None] - s[None, :]).abs()
    return torch.where(pair, diff, torch.zeros_like(diff)).sum() / kept.sum()


class JacobianCovariance:
    """jacob_cov: see the module docstring."""

    def __init__(self, k: float = K_EPS) -> None:
        self.k = float(k)

    def attach(self, session) -> None:  # the input_jacobian pass gives everything needed
        pass

    def finish(self, session):
        return jacob_cov_score(session.input_grad, self.k), 0


class EPENAS:
    """epe_nas: see the module docstring."""

    def __init__(self, k: float = K_EPS) -> None:
        self.k = float(k)

    def attach(self, session) -> None:
        pass

    def finish(self, session):
        return epe_nas_score(session.input_grad, session.targets, session.outputs.shape[-1], self.k), 0


register("jacob_cov", params={"k": K_EPS}, higher_is_better=True, needs_labels=False, bn=True,
         pass_kind="input_jacobian",
         description="NASWOT v1 (jacob_cov): -sum(log(l+k) + 1/(l+k)) over the eigenvalues of corrcoef of the "
                     "input Jacobians")(JacobianCovariance)
register("epe_nas", params={"k": K_EPS}, higher_is_better=True, needs_labels=True, bn=True,
         pass_kind="input_jacobian",
         description="EPE-NAS: per-class correlation of the input Jacobians (eval_score_perclass)")(EPENAS)
