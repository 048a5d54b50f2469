"""CI regression bands: a reduced re-run of each profile with a ``reduced`` section must land inside
its ``results/reference/<profile>.json`` (regenerate one only when a change of numbers is intended)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import harness.scoring.run as hrun
from conftest import needs_data
from harness.reports.reference import check, compare
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


REFERENCES = sorted((REF.parent).glob("*.json"))


@needs_data
@pytest.mark.parametrize("path", [p for p in REFERENCES if "reduced" in json.loads(p.read_text())],
                         ids=lambda p: p.stem)
def test_reduced_profile_stays_in_its_reference_band(path, tmp_path):
    ref = json.loads(path.read_text())
    overrides = ref["reduced"]["overrides"]
    cfg = make_cfg(f"experiment={ref['profile']}", "tracking=none", f"store.path={tmp_path}/s.sqlite", *overrides)
    hrun.run(cfg, output_dir=tmp_path)
    problems = check(path, tmp_path, part="reduced")
    assert not problems, "\n".join(problems)
    n_proxies = len(hrun.split_proxies(cfg.proxies)[0]) + 2 * len(hrun.split_proxies(cfg.proxies)[1])
    assert len(ref["reduced"]["values"]) == len(cfg.dataset.targets) * n_proxies
