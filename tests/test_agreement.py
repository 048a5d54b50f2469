"""Rank agreement with published (Suite-Zero) scores."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import REAL, needs_data
from harness.reports.agreement import SUITE_ZERO_COLUMNS, agreement, markdown


def _frames(n=30, seed=0):
    rng = np.random.default_rng(seed)
    archs = [f"a{i}" for i in range(n)]
    theirs = rng.normal(size=n)
    ours = theirs + 0.3 * rng.normal(size=n)
    ours[3] = np.nan  # a NaN score is dropped and counted
    scores = pd.DataFrame({"arch": archs, "proxy": "synflow", "seed": 0, "score": ours})
    other = pd.DataFrame({"arch": archs, "proxy": "wrcor", "seed": 0, "score": ours})  # no Suite-Zero column
    reference = pd.DataFrame({"net_str": archs[::-1] + ["extra"], "synflow": list(theirs[::-1]) + [1.0]})
    return pd.concat([scores, other]), reference, ours, theirs


def test_agreement_matches_scipy_and_counts_dropped_rows():
    scores, reference, ours, theirs = _frames()
    table = agreement(scores, reference)
    assert table["proxy"].tolist() == ["synflow"]  # wrcor has no Suite-Zero counterpart
    row = table.iloc[0]
    ok = np.isfinite(ours)
    assert row.n_archs == ok.sum() == 29 and row.n_dropped == 1
    assert row.spearman == pytest.approx(stats.spearmanr(ours[ok], theirs[ok])[0], abs=1e-12)
    assert row.kendall == pytest.approx(stats.kendalltau(ours[ok], theirs[ok])[0], abs=1e-12)
    text = markdown(table, dataset="cifar10")
    assert "| synflow | synflow | 0 | 29 | 1 |" in text
    assert row.truth == "" and math.isnan(row.rho_truth_ours)  # no ground truth in these records


def test_agreement_reports_both_proxies_rho_against_the_truth():
    scores, reference, ours, theirs = _frames()
    acc = np.arange(len(ours), dtype=float)
    scores["truth__cifar10-valid__valid"] = np.tile(acc, 2)
    row = agreement(scores, reference).iloc[0]
    ok = np.isfinite(ours)
    assert row.truth == "cifar10-valid/valid"
    assert row.rho_truth_ours == pytest.approx(stats.spearmanr(ours[ok], acc[ok])[0], abs=1e-12)
    assert row.rho_truth_suite_zero == pytest.approx(stats.spearmanr(theirs[ok], acc[ok])[0], abs=1e-12)


def test_agreement_joins_by_architecture_not_by_row_order():
    scores, reference, _, _ = _frames()
    shuffled = reference.sample(frac=1.0, random_state=3)
    assert agreement(scores, shuffled).equals(agreement(scores, reference))


def test_disagreeing_proxy_is_flagged():
    scores, reference, ours, _ = _frames()
    scores.loc[scores["proxy"] == "synflow", "score"] = -scores.loc[scores["proxy"] == "synflow", "score"]
    table = agreement(scores, reference)
    assert table.iloc[0].spearman < -0.8
    assert "| below |" in markdown(table, dataset="cifar10")


@needs_data
def test_every_mapped_column_exists_in_the_suite_zero_file():
    header = pd.read_csv(REAL / "nb201" / "suite_zero_proxies_cifar10.csv", nrows=1).columns
    assert set(SUITE_ZERO_COLUMNS.values()) <= set(header)


@needs_data
def test_nb101_reference_comes_from_the_benchmark_table_keyed_by_cell():
    from harness.reports.agreement import suite_zero_reference

    ref, key_of = suite_zero_reference("nb101", "cifar10")
    import spaces

    space = spaces.get_space("nb101")
    archs = list(space.enumerate())
    assert len(ref) == len(archs) == 292 and {"synflow", "jacov", "params"} <= set(ref.columns)
    # keyed by graph hash: any labelling of a cell finds its row; the value is the first row's
    first = pd.read_csv(REAL / "nb101" / "naslib_nb101_500.csv", dtype={"matrix_rowmajor": str}).iloc[0]
    key = key_of(space.to_str(archs[0]))
    assert ref.set_index("key").loc[key, "synflow"] == pytest.approx(first["synflow"])
    assert suite_zero_reference("nb101", "cifar100") is None
    ref201, key201 = suite_zero_reference("nb201", "cifar10")
    assert len(ref201) == 9445 and key201(ref201["key"][0]) == ref201["key"][0]


def test_truth_column_is_the_first_one_this_space_has():
    rng = np.random.default_rng(0)
    archs = [f"a{i}" for i in range(30)]
    acc = rng.random(30)
    ref = pd.DataFrame({"net_str": archs, "synflow": acc + 0.01 * rng.random(30)})
    scores = pd.DataFrame({"arch": archs, "proxy": "synflow", "seed": 0, "score": acc,
                           "truth__cifar10__valid": np.nan,            # another space's target
                           "truth__cifar10-valid__valid": acc})
    row = agreement(scores, ref).iloc[0]
    assert row.truth == "cifar10-valid/valid" and row.rho_truth_ours == pytest.approx(1.0)
