"""Tests for harness.reports.metrics: against scipy and against independent brute-force
definitions, with ties, NaN, +-inf, lower-is-better and degenerate inputs."""

from __future__ import annotations

import doctest
import itertools
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from harness.reports import metrics
from harness.reports.metrics import (
    RankMetrics,
    kendall_tau,
    mean_std,
    rank_metrics,
    regret,
    spearman_rho,
    topk_precision,
)

INF = math.inf
NAN = math.nan


# ----------------------------------------------------------------- references
def brute_tau_b(x, y) -> float:
    """Kendall's tau-b by its O(n^2) definition (independent of scipy)."""
    conc = disc = tx = ty = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx = np.sign(x[i] - x[j]) if x[i] != x[j] else 0
        dy = np.sign(y[i] - y[j]) if y[i] != y[j] else 0
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            tx += 1
        elif dy == 0:
            ty += 1
        elif dx == dy:
            conc += 1
        else:
            disc += 1
    return (conc - disc) / math.sqrt((conc + disc + tx) * (conc + disc + ty))


def brute_rho(x, y) -> float:
    """Spearman's rho = Pearson correlation of average ranks."""
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    return float(np.corrcoef(rx, ry)[0, 1])


@pytest.fixture(autouse=True)
def _no_warnings():
    """No warning (scipy's ConstantInputWarning, numpy's RuntimeWarning) may leak."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ------------------------------------------------------------------- doctests
def test_doctests_pass():
    result = doctest.testmod(metrics, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 10
    assert result.failed == 0


# --------------------------------------------------------------- rank metrics
@pytest.mark.parametrize("seed", range(5))
def test_matches_scipy_on_random_data(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=60)
    y = 0.5 * x + rng.normal(size=60)
    m = rank_metrics(x, y)
    assert m.tau == pytest.approx(stats.kendalltau(x, y, variant="b").statistic, abs=1e-12)
    assert m.rho == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert m.tau == pytest.approx(brute_tau_b(x, y), abs=1e-12)
    assert m.rho == pytest.approx(brute_rho(x, y), abs=1e-12)
    assert (m.n, m.n_nan, m.n_inf) == (60, 0, 0)
    assert kendall_tau(x, y) == m.tau
    assert spearman_rho(x, y) == m.rho


@pytest.mark.parametrize("seed", range(5))
def test_heavy_ties(seed):
    rng = np.random.default_rng(100 + seed)
    x = rng.integers(0, 4, size=50).astype(float)  # 4 distinct values
    y = (x + rng.integers(0, 3, size=50)).astype(float)
    m = rank_metrics(x, y)
    assert m.tau == pytest.approx(brute_tau_b(x, y), abs=1e-12)
    assert m.tau == pytest.approx(stats.kendalltau(x, y, variant="b").statistic, abs=1e-12)
    assert m.rho == pytest.approx(brute_rho(x, y), abs=1e-12)
    # tau-b, not tau-a: ties shrink the denominator.
    n = len(x)
    tau_a_num = sum(
        np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])
        for i, j in itertools.combinations(range(n), 2)
    )
    assert abs(m.tau) >= abs(tau_a_num / (n * (n - 1) / 2)) - 1e-12


def test_nan_scores_dropped_and_counted():
    rng = np.random.default_rng(7)
    x = rng.normal(size=40)
    y = rng.normal(size=40) + x
    x[[3, 10, 11]] = NAN
    y[20] = NAN  # a NaN truth also drops its pair, but is not a NaN score
    keep = ~(np.isnan(x) | np.isnan(y))
    m = rank_metrics(x, y)
    assert (m.n, m.n_nan, m.n_inf) == (36, 3, 0)
    assert m.tau == pytest.approx(stats.kendalltau(x[keep], y[keep], variant="b").statistic)
    assert m.rho == pytest.approx(stats.spearmanr(x[keep], y[keep]).statistic)
    assert kendall_tau(x, y) == m.tau
    assert spearman_rho(x, y) == m.rho


def test_inf_scores_kept_as_extremes():
    rng = np.random.default_rng(8)
    x = rng.normal(size=30)
    y = rng.normal(size=30) + x
    x[[0, 1]] = -INF
    x[2] = INF
    x[3] = NAN
    m = rank_metrics(x, y)
    assert (m.n, m.n_nan, m.n_inf) == (29, 1, 3)
    # Same ranks as replacing +-inf by finite extremes.
    finite = x.copy()
    finite[[0, 1]] = -1e6
    finite[2] = 1e6
    keep = ~np.isnan(x)
    assert m.tau == pytest.approx(brute_tau_b(finite[keep], y[keep]), abs=1e-12)
    assert m.rho == pytest.approx(brute_rho(finite[keep], y[keep]), abs=1e-12)


def test_minus_inf_is_worst():
    # A -inf score for the worst architecture keeps a perfect ranking.
    m = rank_metrics([-INF, 1.0, 2.0, 3.0], [10.0, 20.0, 30.0, 40.0])
    assert m.tau == pytest.approx(1.0) and m.rho == pytest.approx(1.0)
    assert m.n_inf == 1


def test_lower_is_better():
    rng = np.random.default_rng(9)
    x = rng.normal(size=25)
    y = rng.normal(size=25) - x
    x[4] = INF  # worst when lower is better
    hi = rank_metrics(x, y)
    lo = rank_metrics(x, y, higher_is_better=False)
    assert lo.tau == pytest.approx(-hi.tau, abs=1e-12)
    assert lo.rho == pytest.approx(-hi.rho, abs=1e-12)
    assert lo.tau == pytest.approx(stats.kendalltau(-x, y, variant="b").statistic)
    assert (lo.n, lo.n_nan, lo.n_inf) == (hi.n, hi.n_nan, hi.n_inf)


@pytest.mark.parametrize(
    "scores,truth,n",
    [
        ([], [], 0),
        ([1.0], [2.0], 1),
        ([NAN, NAN, 1.0], [1.0, 2.0, 3.0], 1),
        ([1.0, 2.0, 3.0], [NAN, NAN, 3.0], 1),
    ],
)
def test_fewer_than_two_pairs_is_nan(scores, truth, n):
    m = rank_metrics(scores, truth)
    assert math.isnan(m.tau) and math.isnan(m.rho)
    assert m.n == n
    assert math.isnan(kendall_tau(scores, truth))
    assert math.isnan(spearman_rho(scores, truth))


@pytest.mark.parametrize(
    "scores,truth",
    [
        ([5.0, 5.0, 5.0, 5.0], [1.0, 2.0, 3.0, 4.0]),
        ([1.0, 2.0, 3.0, 4.0], [7.0, 7.0, 7.0, 7.0]),
        ([-INF, -INF, -INF], [1.0, 2.0, 3.0]),
        ([2.0, 2.0, NAN], [1.0, 2.0, 3.0]),  # constant after dropping NaN
    ],
)
def test_constant_input_is_nan(scores, truth):
    m = rank_metrics(scores, truth)
    assert math.isnan(m.tau) and math.isnan(m.rho)
    assert math.isnan(kendall_tau(scores, truth))
    assert math.isnan(spearman_rho(scores, truth))


def test_two_pairs_defined():
    assert rank_metrics([1.0, 2.0], [3.0, 4.0]).tau == pytest.approx(1.0)
    assert rank_metrics([1.0, 2.0], [4.0, 3.0]).rho == pytest.approx(-1.0)


def test_shape_errors():
    with pytest.raises(ValueError, match="same length"):
        rank_metrics([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="1-D"):
        rank_metrics(np.zeros((2, 2)), np.zeros((2, 2)))


def test_rank_metrics_is_frozen_and_pure():
    x = np.array([1.0, NAN, 3.0, -INF])
    y = np.array([1.0, 2.0, 3.0, 4.0])
    x0, y0 = x.copy(), y.copy()
    m = rank_metrics(x, y, higher_is_better=False)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    assert isinstance(m, RankMetrics)
    with pytest.raises(AttributeError):
        m.tau = 0.0  # type: ignore[misc]
    assert isinstance(m.tau, float) and isinstance(m.n, int)


# ----------------------------------------------------------------- top-k etc.
def brute_topk(scores, truth, frac):
    """Top-k overlap by plain sorting: NaN scores last, ties by position."""
    n = len(scores)
    k = max(1, int(round(frac * n)))

    def score_key(i):
        v = scores[i]
        return (math.isnan(v), 0.0 if math.isnan(v) else -v, i)

    by_score = sorted(range(n), key=score_key)
    by_truth = sorted(range(n), key=lambda i: (-truth[i], i))
    return len(set(by_score[:k]) & set(by_truth[:k])) / k


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("frac", [0.01, 0.05, 0.1, 0.5, 1.0])
def test_topk_matches_bruteforce(seed, frac):
    rng = np.random.default_rng(seed)
    truth = rng.permutation(200).astype(float)
    scores = truth + rng.normal(scale=30.0, size=200)
    scores[rng.choice(200, 10, replace=False)] = NAN
    got = topk_precision(scores, truth, frac)
    assert got == pytest.approx(brute_topk(list(scores), list(truth), frac))
    assert 0.0 <= got <= 1.0


def test_topk_edge_cases():
    truth = [4.0, 3.0, 2.0, 1.0]
    assert topk_precision([4.0, 3.0, 2.0, 1.0], truth, 1.0) == 1.0
    assert topk_precision([1.0, 2.0, 3.0, 4.0], truth, 0.25) == 0.0
    assert topk_precision([1.0, 2.0, 3.0, 4.0], truth, 0.25, higher_is_better=False) == 1.0
    # NaN ranks after -inf.
    assert topk_precision([NAN, -INF, 0.0, 1.0], [0.0, 1.0, 2.0, 3.0], 0.75) == 1.0
    assert topk_precision([INF, NAN, NAN, NAN], truth, 0.25) == 1.0
    assert math.isnan(topk_precision([], [], 0.5))
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError):
            topk_precision([1.0], [1.0], bad)


def test_regret():
    assert regret(94.37, 94.37) == 0.0
    assert regret(90.0, 94.0) == pytest.approx(4.0)
    assert math.isnan(regret(NAN, 94.0))
    assert isinstance(regret(1, 2), float)


def test_mean_std():
    vals = [1.0, 2.0, 4.0, NAN]
    mean, std = mean_std(vals)
    assert mean == pytest.approx(np.mean([1.0, 2.0, 4.0]))
    assert std == pytest.approx(np.std([1.0, 2.0, 4.0], ddof=1))
    assert mean_std([3.0]) == (3.0, 0.0)
    assert mean_std([3.0, NAN]) == (3.0, 0.0)
    m, s = mean_std([])
    assert math.isnan(m) and math.isnan(s)
    m, s = mean_std([INF, 1.0])
    assert m == INF and math.isnan(s)
    assert all(isinstance(v, float) for v in mean_std(np.arange(5)))
