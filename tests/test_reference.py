"""CI regression bands: a reduced re-run of each profile with a ``reduced`` section must land inside
its ``results/reference/<profile>.json`` (regenerate one only when a change of numbers is intended)."""
from __future__ import annotations

import csv
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
    # the band covers every row the re-run wrote: each proxy and aggregate (a vote's comparator too) x target
    with open(tmp_path / "metrics.csv") as fh:
        rows = {(r["proxy"], r["dataset"], r["split"]) for r in csv.DictReader(fh)}
    assert {(v["proxy"], v["dataset"], v["split"]) for v in ref["reduced"]["values"]} == rows
    n_proxies = len(hrun.split_proxies(cfg.proxies)[0]) + 2 * len(hrun.split_proxies(cfg.proxies)[1])
    assert len(rows) >= len(cfg.dataset.targets) * n_proxies


def test_a_sweep_directory_is_checked_against_one_seeds_rows(tmp_path):
    """``harness reference check REF SWEEP_DIR``: every job's metrics.csv below the sweep; a reference
    made for one seed (``"seed": 0``) is compared with that seed's rows only."""
    import csv as _csv

    from harness.reports.reference import read_metrics

    header = ["space", "dataset", "split", "proxy", "seed", "tau", "rho"]
    for job, (seed, rho) in enumerate([(0, 0.80), (1, 0.50)]):
        d = tmp_path / "sweep" / f"job{job}"
        d.mkdir(parents=True)
        with open(d / "metrics.csv", "w", newline="") as fh:
            w = _csv.writer(fh)
            w.writerow(header)
            w.writerow(["nb201", "cifar100", "valid", "wrcor", seed, 0.6, rho])
    assert len(read_metrics(tmp_path / "sweep")) == 2 and len(read_metrics(tmp_path / "sweep", seed=1)) == 1
    ref = {"profile": "p", "seed": 0, "tolerance": {"tau": 0.02, "rho": 0.02},
           "values": [{"proxy": "wrcor", "dataset": "cifar100", "split": "valid", "tau": 0.6, "rho": 0.8}]}
    path = tmp_path / "ref.json"
    path.write_text(json.dumps(ref))
    assert check(path, tmp_path / "sweep") == []  # seed 1's 0.50 is not compared
    ref["seed"] = 1
    path.write_text(json.dumps(ref))
    assert "rho: got 0.5000, expected 0.8000" in check(path, tmp_path / "sweep")[0]
