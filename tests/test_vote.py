"""The voting proxies (proxies.vote): pairwise majority, Copeland scores, the released comparator sort."""
from __future__ import annotations

import dataclasses
import doctest
import functools
import itertools

import numpy as np
import pytest
import torch
from scipy import stats

import proxies
import proxies.vote as vote_module
from proxies import aggregators, registry
from proxies.aggregators import VOTES, get_aggregator, register_aggregator
from proxies.vote import comparator_order, comparator_rank_scores, copeland_scores, majority_prefers, replaces_incumbent

CYCLE = np.array([[3.0, 1.0, 2.0],   # 0 beats 1 (components 0, 2)
                  [2.0, 3.0, 1.0],   # 1 beats 2 (components 0, 1)
                  [1.0, 2.0, 3.0]])  # 2 beats 0 (components 1, 2)


def messy_scores(n: int, k: int, seed: int) -> np.ndarray:
    """Small integers (many ties) with NaNs and infinities sprinkled in."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 4, size=(n, k)).astype(float)
    s[rng.random((n, k)) < 0.1] = np.nan
    s[rng.random((n, k)) < 0.04] = np.inf
    s[rng.random((n, k)) < 0.04] = -np.inf
    return s


def brute_copeland(s: np.ndarray, signs, rule: str) -> np.ndarray:
    n = len(s)
    out = np.zeros(n)
    for i in range(n):
        for j in range(n):
            if i != j:
                out[i] += {1: 1.0, 0: 0.5, -1: 0.0}[majority_prefers(s[i], s[j], signs, rule=rule)]
    return out


def released_hard_vote_ranking(s: np.ndarray, signs) -> list[int]:
    """An independent re-implementation of the released notebooks' hard vote, from their
    description: sign-multiplied differences, more than half of all components, ascending
    ``sorted`` with ``cmp_to_key``, the score is the position in the sorted list."""
    k = s.shape[1]

    def cmp(i, j):
        diff = np.array([signs[c] * (s[i, c] - s[j, c]) for c in range(k)])
        if np.sum(diff < 0) > k / 2:
            return -1
        if np.sum(diff > 0) > k / 2:
            return 1
        return 0

    with np.errstate(invalid="ignore"):  # inf - inf
        ordered = sorted(range(len(s)), key=functools.cmp_to_key(cmp))
    return [ordered.index(x) for x in range(len(s))]


@pytest.fixture
def components(monkeypatch):
    """Every vote component registered, higher is better (a stand-in where the family module that
    registers it is not there); returns a setter for a component's direction."""
    def fake():
        raise AssertionError("a vote component is never built here")

    for name in sorted({c for comps in VOTES.values() for c in comps}):
        if name not in registry._REGISTRY:
            monkeypatch.setitem(registry._REGISTRY, name, registry.ProxyInfo(name=name, factory=fake))
        else:
            monkeypatch.setitem(registry._REGISTRY, name, registry._REGISTRY[name])  # restored after

    def set_direction(name: str, higher_is_better: bool) -> None:
        registry._REGISTRY[name] = dataclasses.replace(registry._REGISTRY[name], higher_is_better=higher_is_better)

    return set_direction


# ------------------------------------------------------------------------------------------------
# doctests, registration


def test_doctests_pass():
    result = doctest.testmod(vote_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_the_paper_votes_are_registered_as_aggregators_not_proxies():
    assert VOTES == {"vote_sjw": ("synflow", "jacob_cov", "wrcor"), "vote_spw": ("synflow", "l2_norm", "wrcor")}
    for name, comps in VOTES.items():
        agg = get_aggregator(name)
        assert (agg.components, agg.rule, agg.signs) == (comps, "majority", None)
        assert proxies.components_of(name) == comps and proxies.is_aggregator(name)
        assert name in proxies.list_aggregators("vote_*") and name not in proxies.list_proxies()
        with pytest.raises(registry.UnknownNameError, match="unknown proxy"):
            proxies.get_proxy(name)  # an aggregator has no per-network value
    assert proxies.components_of("wrcor(power=2)") == ("wrcor(power=2)",)
    with pytest.raises(registry.UnknownNameError, match="registered aggregators"):
        get_aggregator("vote_nope")


def test_a_vote_has_no_value_for_one_network():
    with pytest.raises(ValueError, match="aggregates.*no value for one network"):
        proxies.compute_outcomes(["vote_sjw"], torch.nn.Identity(), torch.zeros(2, 3, 8, 8), torch.zeros(2).long())


def test_registering_aggregators_is_checked(monkeypatch):
    monkeypatch.setattr(aggregators, "_AGGREGATORS", dict(aggregators._AGGREGATORS))
    with pytest.raises(ValueError, match="already registered"):
        register_aggregator("vote_sjw", ("synflow", "wrcor"))
    with pytest.raises(ValueError, match="unknown aggregation rule 'borda'"):
        register_aggregator("v2", ("synflow", "wrcor"), rule="borda")
    with pytest.raises(ValueError, match="one sign per component"):
        register_aggregator("v2", ("synflow", "wrcor"), signs=(1,))
    nb101 = register_aggregator("vote_sjw_nb101", VOTES["vote_sjw"], signs=(1, -1, 1))
    s = messy_scores(20, 3, seed=2)
    assert nb101.scores(dict(zip(nb101.components, s.T))).tolist() == copeland_scores(s, [1, -1, 1]).tolist()


def test_an_aggregator_ranks_a_population_and_decides_a_pair(components):
    v = get_aggregator("vote_spw")
    s = {c: np.array([1.0, 3.0, 2.0]) for c in v.components}
    assert v.scores(s).tolist() == [0.0, 2.0, 1.0]
    assert v.orderings == {"": ("copeland", "relative"), "@comparator": ("comparator", "absolute")}
    assert v.prefers([3, 3, 3], [1, 1, 1]) == 1 and v.prefers([1, 1, 1], [3, 3, 3]) == -1
    assert v.prefers([3, 1, 2], [1, 3, 2]) == 0  # one each, one abstains: a tie under the absolute rule
    assert v.prefers([3, 1, 2], [1, 3, 2], rule="relative") == 0


# ------------------------------------------------------------------------------------------------
# pairwise majority


def test_majority_is_antisymmetric_and_nan_abstains():
    s = messy_scores(40, 3, seed=1)
    for rule in ("relative", "absolute"):
        for i, j in itertools.combinations(range(40), 2):
            forward = majority_prefers(s[i], s[j], [1, -1, 1], rule=rule)
            assert forward == -majority_prefers(s[j], s[i], [1, -1, 1], rule=rule)
    nan = float("nan")
    assert majority_prefers([nan, nan, nan], [0, 0, 0], [1, 1, 1]) == 0
    assert majority_prefers([nan, 2, 2], [9, 1, 1], [1, 1, 1]) == 1  # NaN can't win its component
    assert majority_prefers([nan, 2, 0], [9, 1, 1], [1, 1, 1]) == 0
    assert majority_prefers([np.inf, 2, 0], [np.inf, 1, 1], [1, 1, 1]) == 0  # equal infinities abstain
    assert majority_prefers([np.inf, 2, 0], [5, 1, 1], [1, 1, 1]) == 1


def test_relative_and_absolute_rules_differ_only_with_abstentions():
    assert majority_prefers([2, 1, 1], [1, 1, 1], [1, 1, 1], rule="relative") == 1
    assert majority_prefers([2, 1, 1], [1, 1, 1], [1, 1, 1], rule="absolute") == 0
    rng = np.random.default_rng(0)
    s = rng.normal(size=(30, 3))  # no ties, no NaN
    for i, j in itertools.combinations(range(30), 2):
        assert majority_prefers(s[i], s[j], [1, 1, 1]) == majority_prefers(s[i], s[j], [1, 1, 1], rule="absolute")


def test_signs_and_rules_are_validated():
    assert majority_prefers([1, 2], [2, 1], [True, False]) == -1  # comp 0 prefers b, comp 1 prefers b
    with pytest.raises(ValueError, match="signs"):
        majority_prefers([1, 2], [2, 1], [1, 0])
    with pytest.raises(ValueError, match="2 signs"):
        copeland_scores([[1, 2]], [1, 1, 1])
    with pytest.raises(ValueError, match="rule"):
        copeland_scores([[1, 2]], [1, 1], rule="plurality")


# ------------------------------------------------------------------------------------------------
# Copeland


@pytest.mark.parametrize("rule", ["relative", "absolute"])
@pytest.mark.parametrize("k,signs", [(3, [1, -1, 1]), (4, [1, 1, -1, 1]), (1, [-1])])
def test_copeland_matches_a_double_loop(rule, k, signs):
    s = messy_scores(37, k, seed=k)
    expected = brute_copeland(s, signs, rule)
    for chunk in (1, 5, 512):
        got = copeland_scores(s, signs, rule=rule, chunk=chunk)
        assert got.tolist() == expected.tolist()
    assert got.sum() == 37 * 36 / 2 and np.all(np.isfinite(got))


def test_copeland_on_a_condorcet_cycle_is_all_equal():
    assert copeland_scores(CYCLE, [1, 1, 1]).tolist() == [1.0, 1.0, 1.0]
    assert [majority_prefers(CYCLE[i], CYCLE[(i + 1) % 3], [1, 1, 1]) for i in range(3)] == [1, 1, 1]


def test_copeland_is_the_rank_when_the_relation_is_an_order():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 20, size=200).astype(float)  # one component, with ties: average ranks
    assert copeland_scores(x[:, None], [1]).tolist() == (stats.rankdata(x) - 1).tolist()
    assert copeland_scores(x[:, None], [-1]).tolist() == (stats.rankdata(-x) - 1).tolist()
    s = np.stack([x, 2 * x + 1, x ** 3], axis=1)  # three components that agree
    assert copeland_scores(s, [1, 1, 1]).tolist() == (stats.rankdata(x) - 1).tolist()


def test_an_all_nan_architecture_ties_with_everyone():
    s = messy_scores(11, 3, seed=5)
    s[4] = np.nan
    assert copeland_scores(s, [1, 1, 1])[4] == 5.0


def test_copeland_is_permutation_equivariant():
    s = messy_scores(60, 3, seed=7)
    base = copeland_scores(s, [1, 1, 1])
    for seed in range(3):
        p = np.random.default_rng(seed).permutation(60)
        assert copeland_scores(s[p], [1, 1, 1]).tolist() == base[p].tolist()


# ------------------------------------------------------------------------------------------------
# the released comparator sort


@pytest.mark.parametrize("n,seed", [(10, 0), (50, 1), (300, 2)])  # 300 > 64: Timsort's merging path
def test_comparator_rank_scores_reproduce_the_released_hard_vote(n, seed):
    s = messy_scores(n, 3, seed=seed)
    signs = [1, -1, 1]
    assert comparator_rank_scores(s, signs).tolist() == released_hard_vote_ranking(s, signs)
    order = comparator_order(s, signs)
    ranks = comparator_rank_scores(s, signs)
    assert sorted(order.tolist()) == list(range(n))
    assert ranks[order].tolist() == list(range(n - 1, -1, -1))


def test_comparator_order_is_the_sort_when_the_relation_is_an_order():
    x = np.random.default_rng(4).normal(size=100)
    s = np.stack([x, np.exp(x), -x], axis=1)
    assert comparator_order(s, [1, 1, -1]).tolist() == np.argsort(-x).tolist()
    assert comparator_rank_scores(s, [1, 1, -1]).tolist() == copeland_scores(s, [1, 1, -1]).tolist()


def test_on_a_cycle_the_comparator_depends_on_the_input_order_and_copeland_does_not():
    orders = set()
    for p in itertools.permutations(range(3)):
        p = list(p)
        orders.add(tuple(p[i] for i in comparator_order(CYCLE[p], [1, 1, 1])))  # as original indices
        assert copeland_scores(CYCLE[p], [1, 1, 1]).tolist() == copeland_scores(CYCLE, [1, 1, 1])[p].tolist()
    assert len(orders) > 1
    # e.g. listed as given, 0 comes first; listed (0, 2, 1), 1 does
    assert comparator_order(CYCLE, [1, 1, 1]).tolist() == [0, 1, 2]
    assert [[0, 2, 1][i] for i in comparator_order(CYCLE[[0, 2, 1]], [1, 1, 1])] == [1, 2, 0]


def test_replaces_incumbent_is_what_max_over_candidate_and_incumbent_does():
    s = messy_scores(30, 3, seed=9)

    def cmp(x, y):  # the released search's comparator, over (index, scores) pairs
        return majority_prefers(x[1], y[1], [1, 1, 1], rule="absolute")

    seen_tie = False
    for i, j in itertools.permutations(range(30), 2):
        cand, inc = (i, s[i]), (j, s[j])
        kept = max([cand, inc], key=functools.cmp_to_key(cmp))
        assert (kept[0] == i) == replaces_incumbent(s[i], s[j], [1, 1, 1])
        seen_tie |= cmp(cand, inc) == 0
    assert seen_tie  # ties were exercised: they go to the candidate
    assert replaces_incumbent([0, 0, 0], [0, 0, 0], [1, 1, 1])


# ------------------------------------------------------------------------------------------------
# Aggregator.scores (what the harness calls)


def test_scores_read_the_component_directions_at_call_time(components):
    s = messy_scores(25, 3, seed=11)
    cs = dict(zip(VOTES["vote_sjw"], s.T))
    assert get_aggregator("vote_sjw").scores(cs).tolist() == copeland_scores(s, [1, 1, 1]).tolist()
    assert get_aggregator("vote_sjw").scores(cs, "comparator").tolist() == comparator_rank_scores(s, [1, 1, 1]).tolist()
    components("jacob_cov", False)
    assert get_aggregator("vote_sjw").scores(cs).tolist() == copeland_scores(s, [1, -1, 1]).tolist()
    assert get_aggregator("vote_sjw").scores(cs, "comparator", rule="relative").tolist() == \
        comparator_rank_scores(s, [1, -1, 1], rule="relative").tolist()
    extra = {**cs, "l2_norm": np.zeros(25), "acor": np.ones(3)}  # extra keys are ignored
    assert get_aggregator("vote_sjw").scores(extra).tolist() == copeland_scores(s, [1, -1, 1]).tolist()


def test_scores_errors(components):
    ok = {c: np.arange(4.0) for c in VOTES["vote_spw"]}
    with pytest.raises(ValueError, match="missing \\['l2_norm'\\]"):
        get_aggregator("vote_spw").scores({c: v for c, v in ok.items() if c != "l2_norm"})
    with pytest.raises(ValueError, match="one length"):
        get_aggregator("vote_spw").scores({**ok, "wrcor": np.arange(3.0)})
    with pytest.raises(ValueError, match="ordering"):
        get_aggregator("vote_spw").scores(ok, "borda")
    assert get_aggregator("vote_spw").scores({c: np.array([]) for c in ok}).tolist() == []
    assert get_aggregator("vote_spw").scores({c: np.array([1.0]) for c in ok}, "comparator").tolist() == [0.0]


def test_copeland_scales_to_a_full_space_in_blocks():
    s = np.random.default_rng(0).normal(size=(3000, 3))
    got = copeland_scores(s, [1, 1, 1], chunk=512)
    assert got.sum() == 3000 * 2999 / 2
    assert stats.kendalltau(got, s.sum(axis=1))[0] > 0.5
