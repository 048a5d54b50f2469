"""Ranking metrics for zero-shot NAS: pure functions over 1-D arrays.

Every function here takes array-likes, returns plain Python values, has no side
effects and touches no global state.  The correlation coefficients themselves are
computed by :mod:`scipy.stats` (Kendall's tau-b and Spearman's rho); this module only
fixes one explicit policy for the cases real proxy scores produce:

* **NaN** (in a score or in a ground-truth value) -- the pair is dropped from the
  computation.  NaN scores are *counted* (``RankMetrics.n_nan``) so they can be
  reported; they are never turned into a magic number.
* **+-inf** scores are **kept**: they rank as the extremes (a log-determinant of a
  singular matrix, ``-inf``, is a legitimate "worst" score).  They are counted in
  ``RankMetrics.n_inf``.
* **Undefined coefficients** -- fewer than 2 usable pairs, or a constant scores or
  truth vector after dropping NaNs -- give ``nan``.  No exception is raised and no
  scipy warning (``ConstantInputWarning``) leaks out.
* **Direction** -- scores are "higher is better" unless ``higher_is_better=False``,
  in which case they are negated before ranking.  Ground truth (accuracy) is always
  higher-is-better.

Example
-------
>>> m = rank_metrics([0.1, 0.4, float("nan"), float("-inf"), 0.3],
...                  [70.0, 90.0, 85.0, 10.0, 80.0])
>>> (m.tau, m.rho, m.n, m.n_nan, m.n_inf)
(1.0, 1.0, 4, 1, 1)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
from scipy import stats

__all__ = [
    "RankMetrics",
    "rank_metrics",
    "kendall_tau",
    "spearman_rho",
    "topk_precision",
    "regret",
    "mean_std",
]

ArrayLike = Union[Sequence[float], np.ndarray]

# Warnings scipy emits for the inputs we already map to NaN by policy.
_SCIPY_INPUT_WARNINGS: tuple[type[Warning], ...] = tuple(
    w
    for w in (
        getattr(stats, "ConstantInputWarning", None),
        getattr(stats, "NearConstantInputWarning", None),
    )
    if w is not None
)


@dataclass(frozen=True)
class RankMetrics:
    """Rank correlation between proxy scores and ground truth.

    Attributes
    ----------
    tau:
        Kendall's tau-b (ties handled), ``nan`` if undefined.
    rho:
        Spearman's rho (average ranks for ties), ``nan`` if undefined.
    n:
        Number of (score, truth) pairs used: neither value NaN.
    n_nan:
        Number of NaN scores in the input (dropped).
    n_inf:
        Number of +-inf scores in the input (kept, ranked as extremes).
    """

    tau: float
    rho: float
    n: int
    n_nan: int
    n_inf: int


def _as_1d(x: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def _paired(x: ArrayLike, y: ArrayLike, xname: str = "x", yname: str = "y"):
    """Return (x, y, keep) as float arrays with ``keep`` = neither value is NaN."""
    xa = _as_1d(x, xname)
    ya = _as_1d(y, yname)
    if xa.shape != ya.shape:
        raise ValueError(
            f"{xname} and {yname} must have the same length, got {xa.size} and {ya.size}"
        )
    keep = ~(np.isnan(xa) | np.isnan(ya))
    return xa, ya, keep


def _undefined(x: np.ndarray, y: np.ndarray) -> bool:
    """True when a rank correlation of the (NaN-free) pairs is not defined."""
    if x.size < 2:
        return True
    # Equality (not a spread) so that an all -inf vector also counts as constant.
    return bool(np.all(x == x[0]) or np.all(y == y[0]))


def _coefficient(statistic, x: np.ndarray, y: np.ndarray) -> float:
    """``statistic(x, y).statistic`` (a scipy rank correlation) under the module's policy: ``nan``
    when undefined, no scipy input warning."""
    if _undefined(x, y):
        return math.nan
    with warnings.catch_warnings():
        for w in _SCIPY_INPUT_WARNINGS:
            warnings.simplefilter("ignore", w)
        return float(statistic(x, y).statistic)


def _kendall(x: np.ndarray, y: np.ndarray) -> float:
    return _coefficient(lambda a, b: stats.kendalltau(a, b, variant="b"), x, y)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    return _coefficient(stats.spearmanr, x, y)


def rank_metrics(
    scores: ArrayLike, truth: ArrayLike, *, higher_is_better: bool = True
) -> RankMetrics:
    """Kendall's tau-b and Spearman's rho of ``scores`` against ``truth``.

    Pairs with a NaN score or a NaN truth are dropped (NaN scores are counted in
    ``n_nan``); +-inf scores are kept and counted in ``n_inf``.  If
    ``higher_is_better`` is False the scores are negated before ranking.  With fewer
    than 2 usable pairs, or a constant scores/truth vector, ``tau`` and ``rho`` are
    ``nan`` (no exception, no warning).

    >>> m = rank_metrics([3.0, 1.0, 2.0], [0.9, 0.1, 0.5])
    >>> m.tau, m.rho, m.n
    (1.0, 1.0, 3)
    >>> rank_metrics([3.0, 1.0, 2.0], [0.9, 0.1, 0.5], higher_is_better=False).tau
    -1.0
    >>> m = rank_metrics([1.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0])  # ties: tau-b
    >>> round(m.tau, 6), round(m.rho, 6)
    (0.912871, 0.948683)
    >>> m = rank_metrics([float("nan"), 2.0], [1.0, 2.0])   # one usable pair
    >>> m.tau, m.n, m.n_nan
    (nan, 1, 1)
    >>> rank_metrics([5.0, 5.0, 5.0], [1.0, 2.0, 3.0]).rho  # constant input
    nan
    """
    s, t, keep = _paired(scores, truth, "scores", "truth")
    n_nan = int(np.isnan(s).sum())
    n_inf = int(np.isinf(s).sum())
    s, t = s[keep], t[keep]
    if not higher_is_better:
        s = -s
    return RankMetrics(
        tau=_kendall(s, t),
        rho=_spearman(s, t),
        n=int(s.size),
        n_nan=n_nan,
        n_inf=n_inf,
    )


def kendall_tau(x: ArrayLike, y: ArrayLike) -> float:
    """Kendall's tau-b of ``x`` and ``y`` (scipy), with the module's NaN policy.

    Pairs containing a NaN are dropped, +-inf is kept; ``nan`` when fewer than 2
    pairs remain or either side is constant.

    >>> round(kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]), 6)
    0.666667
    >>> kendall_tau([1.0, float("nan"), 3.0], [3.0, 2.0, 1.0])
    -1.0
    >>> kendall_tau([float("-inf"), 0.0, 1.0], [0.1, 0.2, 0.3])
    1.0
    >>> kendall_tau([1.0], [2.0])
    nan
    """
    xa, ya, keep = _paired(x, y)
    return _kendall(xa[keep], ya[keep])


def spearman_rho(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman's rho of ``x`` and ``y`` (scipy), with the module's NaN policy.

    Pairs containing a NaN are dropped, +-inf is kept; ``nan`` when fewer than 2
    pairs remain or either side is constant.

    >>> round(spearman_rho([1, 2, 3, 4], [1, 3, 2, 4]), 6)
    0.8
    >>> spearman_rho([1.0, 2.0, float("inf")], [0.0, 5.0, 1.0])
    0.5
    >>> spearman_rho([2.0, 2.0], [1.0, 3.0])
    nan
    """
    xa, ya, keep = _paired(x, y)
    return _spearman(xa[keep], ya[keep])


def _order_desc(values: np.ndarray) -> np.ndarray:
    """Indices sorting ``values`` best (largest) first, NaN last, ties by position."""
    nan = np.isnan(values)
    neg = np.where(nan, 0.0, -values)
    # lexsort: last key is primary.  Stable, so ties keep their input order.
    return np.lexsort((np.arange(values.size), neg, nan))


def topk_precision(
    scores: ArrayLike, truth: ArrayLike, frac: float, *, higher_is_better: bool = True
) -> float:
    """Fraction of the true top-``frac`` architectures found in the score's top-``frac``.

    ``k = max(1, round(frac * n))`` where ``n`` is the number of architectures with a
    non-NaN truth (entries with a NaN truth are dropped).  NaN scores rank last; +-inf
    rank as extremes.  Ties are broken by input position (stable sort), so the result
    is deterministic.  Truth is higher-is-better; scores too unless
    ``higher_is_better=False``.  Returns ``nan`` for an empty input.

    >>> topk_precision([0.9, 0.8, 0.1, 0.2], [90, 80, 70, 60], 0.5)
    1.0
    >>> topk_precision([0.1, 0.9, 0.8, 0.2], [90, 80, 70, 60], 0.5)
    0.5
    >>> topk_precision([float("nan"), 0.9, 0.1, 0.2], [90, 80, 70, 60], 0.25)
    0.0
    >>> topk_precision([0.1, 0.2, 0.3, 0.4], [90, 80, 70, 60], 0.5, higher_is_better=False)
    1.0
    """
    if not (0.0 < float(frac) <= 1.0):
        raise ValueError(f"frac must be in (0, 1], got {frac!r}")
    s = _as_1d(scores, "scores")
    t = _as_1d(truth, "truth")
    if s.shape != t.shape:
        raise ValueError(
            f"scores and truth must have the same length, got {s.size} and {t.size}"
        )
    keep = ~np.isnan(t)
    s, t = s[keep], t[keep]
    n = s.size
    if n == 0:
        return math.nan
    if not higher_is_better:
        s = -s
    k = max(1, int(round(float(frac) * n)))
    top_score = set(_order_desc(s)[:k].tolist())
    top_truth = set(_order_desc(t)[:k].tolist())
    return len(top_score & top_truth) / k


def regret(found_truth: float, best_truth: float) -> float:
    """Regret of a search: ``best_truth - found_truth`` (truth is higher-is-better).

    ``0.0`` means the search found the best architecture; NaN propagates.

    >>> round(regret(93.5, 94.37), 2)
    0.87
    >>> regret(94.37, 94.37)
    0.0
    """
    return float(best_truth) - float(found_truth)


def mean_std(values: ArrayLike) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of ``values``, ignoring NaN.

    One non-NaN value gives a std of ``0.0``; no non-NaN value gives ``(nan, nan)``.

    >>> mean_std([1.0, 2.0, 3.0, float("nan")])
    (2.0, 1.0)
    >>> mean_std([4.0])
    (4.0, 0.0)
    >>> mean_std([float("nan")])
    (nan, nan)
    """
    v = _as_1d(values, "values")
    v = v[~np.isnan(v)]
    if v.size == 0:
        return math.nan, math.nan
    with np.errstate(invalid="ignore"):  # inf values give a nan std, not a warning
        mean = float(np.mean(v))
        std = float(np.std(v, ddof=1)) if v.size > 1 else 0.0
    return mean, std
