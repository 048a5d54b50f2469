"""CI regression bands: a reduced re-run of the quick profile must land inside
``results/reference/nb201_quick.json`` (regenerate it only when a change of numbers is intended)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import harness.run as hrun
from conftest import needs_data
from harness.reference import check, compare
from test_run import make_cfg

REF = Path(__file__).resolve().parents[1] / "results" / "reference" / "nb201_quick.json"


def test_compare_flags_values_outside_their_band():
    exp = [{"proxy": "wrcor", "dataset": "cifar10-valid", "split": "valid", "tau": 0.60, "rho": 0.80}]
    tol = {"tau": 0.02, "rho": 0.02}
    ok = [{"proxy": "wrcor", "dataset": "cifar10-valid", "split": "valid", "tau": 0.61, "rho": 0.79}]
    assert compare(exp, ok, tol) == []
    bad = [{"proxy": "wrcor", "dataset": "cifar10-valid", "split": "valid", "tau": 0.57, "rho": float("nan")}]
    problems = compare(exp, bad, tol)
    assert len(problems) == 2 and "tau" in problems[0] and "rho" in problems[1]
    assert "missing" in compare(exp, [], tol)[0]


@needs_data
def test_reduced_quick_profile_stays_in_its_reference_band(tmp_path):
    ref = json.loads(REF.read_text())
    overrides = ref["reduced"]["overrides"]
    cfg = make_cfg("+experiment=nb201_quick", "tracking=none", f"store.path={tmp_path}/s.sqlite", *overrides)
    hrun.run(cfg, output_dir=tmp_path)
    problems = check(REF, tmp_path, part="reduced")
    assert not problems, "\n".join(problems)
    assert len(ref["reduced"]["values"]) == 2 * len(cfg.proxies)
