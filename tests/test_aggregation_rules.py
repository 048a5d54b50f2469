"""Rank aggregation rules (proxies.aggregators): logrank, ranksum and lexicographic against
independent references (scipy's ranks, Python's tuple sort), the peers' registered aggregates,
aggregate specs written in a config without code, and a scoring job that reports one."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import needs_data
from scipy.stats import rankdata

import proxies
from harness.config import ConfigError, compose, load
from proxies.aggregators import get_aggregator, list_rules, register_aggregator

TINY = ["space.channels=4", "space.cells_per_stage=1", "batch.size=8", "batch.kind=noise", "device=cpu"]


def messy(n: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 5, size=(n, k)).astype(float)
    s[rng.random((n, k)) < 0.1] = np.nan
    s[rng.random((n, k)) < 0.05] = -np.inf
    s[rng.random((n, k)) < 0.05] = np.inf
    return s


def reference_ranks(s: np.ndarray, signs) -> np.ndarray:
    """Column by column: NaN and -inf (after the sign) lowest, then scipy's average ranks."""
    cols = []
    for c in range(s.shape[1]):
        x = s[:, c] * signs[c]
        x = np.array([-math.inf if math.isnan(v) else v for v in x])
        cols.append(rankdata(x, method="average"))
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("seed", range(4))
def test_logrank_and_ranksum_against_scipy(seed):
    s, signs = messy(40, 4, seed), (1.0, -1.0, 1.0, 1.0)
    agg_log = register_aggregator(f"_t_log{seed}", ["a", "b", "c", "d"], rule="logrank", signs=signs)
    agg_sum = register_aggregator(f"_t_sum{seed}", ["a", "b", "c", "d"], rule="ranksum", signs=signs)
    cols = dict(zip("abcd", s.T))
    ranks = reference_ranks(s, signs)
    np.testing.assert_allclose(agg_log.scores(cols), np.log(ranks / len(s)).sum(axis=1), rtol=1e-12)
    np.testing.assert_array_equal(agg_sum.scores(cols), ranks.sum(axis=1))
    # the best architecture of every component scores 0 under logrank (finite scores here)
    finite = {k: np.append(np.nan_to_num(v, nan=1.0, posinf=2.0, neginf=3.0), b)
              for (k, v), b in zip(cols.items(), (9.0, -9.0, 9.0, 9.0))}
    assert agg_log.scores(finite)[-1] == 0.0 and (agg_log.scores(finite)[:-1] < 0).all()


@pytest.mark.parametrize("seed", range(4))
def test_lexicographic_is_the_dense_rank_of_the_tuples(seed):
    s, signs = messy(50, 2, seed), (1.0, -1.0)
    agg = register_aggregator(f"_t_lex{seed}", ["a", "b"], rule="lexicographic", signs=signs)
    got = agg.scores({"a": s[:, 0], "b": s[:, 1]})
    keys = [tuple(-math.inf if math.isnan(v * g) else v * g for v, g in zip(row, signs)) for row in s]
    order = sorted(set(keys))
    assert got.tolist() == [order.index(k) + 1.0 for k in keys]


def test_the_peers_aggregates_are_registered_with_their_rules():
    expect = {"az_nas": ("logrank", ("az_expressivity", "az_progressivity", "az_trainability", "flops")),
              "te_nas": ("ranksum", ("ntk_cond", "linear_regions")),
              "vkdnw_single": ("lexicographic", ("vkdnw_dim", "vkdnw")),
              "vkdnw_agg": ("logrank", ("vkdnw_single", "az_expressivity", "az_trainability", "jacob_cov", "flops"))}
    for name, (rule, comps) in expect.items():
        agg = get_aggregator(name)
        assert (agg.rule, agg.components) == (rule, comps)
    assert proxies.components_of("vkdnw_agg") == ("vkdnw_dim", "vkdnw", "az_expressivity", "az_trainability",
                                                  "jacob_cov", "flops")
    assert set(list_rules()) >= {"majority", "logrank", "ranksum", "lexicographic"}


def test_a_nested_aggregate_ranks_with_its_inner_aggregate_first():
    rng = np.random.default_rng(0)
    cols = {c: rng.normal(size=30) for c in ("x", "y", "z")}
    cols["y"][:10] = 1.0  # ties in the first lexicographic key
    inner = register_aggregator("_t_inner", ["y", "z"], rule="lexicographic", signs=(1.0, 1.0))
    outer = register_aggregator("_t_outer", ["_t_inner", "x"], rule="logrank", signs=(1.0, 1.0))
    manual = np.log(rankdata(inner.scores(cols)) / 30) + np.log(rankdata(cols["x"]) / 30)
    np.testing.assert_allclose(outer.scores(cols), manual)
    assert outer.leaves == ("y", "z", "x")
    with pytest.raises(ValueError, match="a majority compares proxies pair by pair"):
        register_aggregator("_t_bad", ["_t_inner", "x"])


def test_specs_compose_an_aggregate_without_code():
    agg = get_aggregator("logrank( wrcor , -jacob_cov, flops )")
    assert agg.name == "logrank(wrcor,-jacob_cov,flops)" and agg.rule == "logrank"
    assert agg.components == ("wrcor", "jacob_cov", "flops") and agg.directions().tolist() == [1.0, -1.0, 1.0]
    assert proxies.canonical("ranksum(wrcor( power=2 ),synflow)") == "ranksum(wrcor(power=2),synflow)"
    assert proxies.is_aggregator("logrank(wrcor,-jacob_cov,flops)") and not proxies.is_aggregator("wrcor(power=2)")
    assert "logrank(wrcor,-jacob_cov,flops)" in proxies.list_aggregators("logrank(*")
    with pytest.raises(KeyError, match="unknown proxy 'nope'"):
        get_aggregator("logrank(wrcor,nope)")
    for bad, message in [("ranksum()", "needs one or more components"), ("ranksum(wrcor,wrcor)", "named twice"),
                         ("logrank(wrcor,(flops)", "unbalanced parentheses")]:
        with pytest.raises(ValueError, match=message):
            get_aggregator(bad)
    with pytest.raises(ValueError, match="ranks a population and has no pairwise form"):
        get_aggregator("logrank(wrcor,flops)").prefers([1, 2], [2, 1])


def test_a_spec_nests_specs_and_registered_aggregates():
    """A rank rule's component may be another aggregate: a registered name (vkdnw_single) or a
    spec written inline, parameterised proxies included; it counts higher-is-better unless '-'."""
    inline = "logrank( lexicographic(vkdnw_dim, vkdnw(jacobian=per_class)), az_trainability, -az_nas )"
    agg = get_aggregator(inline)
    assert agg.name == "logrank(lexicographic(vkdnw_dim,vkdnw(jacobian=per_class)),az_trainability,-az_nas)"
    inner = get_aggregator("lexicographic(vkdnw_dim,vkdnw(jacobian=per_class))")
    assert agg.components == (inner.name, "az_trainability", "az_nas")
    assert agg.directions().tolist() == [1.0, 1.0, -1.0]
    assert agg.leaves == ("vkdnw_dim", "vkdnw(jacobian=per_class)", "az_trainability", "az_expressivity",
                          "az_progressivity", "flops")
    assert proxies.components_of(inline) == agg.leaves
    # against a hand computation over a small population (ties and a NaN included)
    rng = np.random.default_rng(3)
    cols = {leaf: rng.integers(0, 4, size=12).astype(float) for leaf in agg.leaves}
    cols["az_trainability"][2] = np.nan
    pairs = list(zip(cols["vkdnw_dim"], cols["vkdnw(jacobian=per_class)"]))
    dense = np.array([sorted(set(pairs)).index(t) + 1 for t in pairs])  # Python's tuple order
    nested = get_aggregator("az_nas").scores(cols)

    def logr(x):
        return np.log(rankdata(np.where(np.isnan(x), -np.inf, x)) / 12)

    manual = logr(dense.astype(float)) + logr(cols["az_trainability"]) + logr(-nested)
    np.testing.assert_allclose(agg.scores(cols), manual)
    # the same aggregate as a registered peer: logrank over vkdnw_single's spelling equals vkdnw_agg
    assert get_aggregator("logrank(vkdnw_single,az_expressivity,az_trainability,jacob_cov,flops)").leaves == \
        get_aggregator("vkdnw_agg").leaves
    with pytest.raises(ValueError, match="a majority compares proxies pair by pair"):
        get_aggregator("majority(wrcor,logrank(synflow,flops))")
    with pytest.raises(KeyError, match="unknown proxy 'nope'"):
        get_aggregator("logrank(wrcor,ranksum(flops,nope))")


def test_config_refuses_what_it_cannot_aggregate():
    with pytest.raises(ConfigError) as err:
        load(compose("config", ["proxies=[params]", 'aggregates=["params","ranksum(params,nope)"]']))
    text = str(err.value)
    assert "aggregates: 'params' is not allowed: not an aggregation" in text
    assert "aggregates: 'ranksum(params,nope)' is not allowed: unknown proxy 'nope'" in text
    with pytest.raises(ConfigError, match="its rule logrank ranks a whole population .* add vote.rule=rank_sum"):
        load(compose("search_run", ["objective=az_nas"]))
    cfg = load(compose("search_run", ['objective="logrank(synflow,-flops)"', "vote.rule=rank_sum"]))
    from harness import search as hs
    objective = hs.objective_from_cfg(cfg)
    assert (objective.name, objective.components, objective.signs) == \
        ("logrank(synflow,-flops)", ("synflow", "flops"), (1.0, -1.0))


@needs_data
def test_a_scoring_job_reports_a_configured_aggregate(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ZSNAS_PROGRESS": "lines"}
    env.pop("ZSNAS_STORE", None)
    args = ["run", "space=nb201", "archs.n=6", *TINY, "proxies=[params,flops]", "tracking=none",
            'aggregates=["logrank(params, -flops)", "ranksum(params,flops)"]', f"store.path={tmp_path}/s.sqlite",
            f"hydra.run.dir={tmp_path}/run"]
    done = subprocess.run([sys.executable, "-m", "harness", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    long = pd.read_csv(next(Path(tmp_path / "run").rglob("scores.csv")))
    scores = long.pivot(index="arch_index", columns="proxy", values="score")
    p, f = scores["params"].to_numpy(), scores["flops"].to_numpy()
    np.testing.assert_allclose(scores["logrank(params,-flops)"],
                               np.log(rankdata(p) / 6) + np.log(rankdata(-f) / 6))
    np.testing.assert_array_equal(scores["ranksum(params,flops)"], rankdata(p) + rankdata(f))
    metrics = json.loads(next(Path(tmp_path / "run").rglob("summary.json")).read_text())
    assert "ranksum(params,flops)" in json.dumps(metrics)
