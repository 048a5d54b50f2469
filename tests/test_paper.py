"""The paper's protocol (make reproduce-paper): the proxy sets it sweeps, the NB-101 notebook's
vote, and the search accounting the paper's experiment uses."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

import proxies
from harness.config import compose
from harness.search.run import objective_from_cfg
from proxies.vote import copeland_scores

CONF = Path(__file__).resolve().parents[1] / "conf"


def _proxy_set(name: str) -> list[str]:
    return yaml.safe_load((CONF / "proxy_set" / f"{name}.yaml").read_text())["proxies"]


def test_paper_proxy_set_is_every_proxy_and_the_ablation():
    paper, every, ablation = _proxy_set("paper"), _proxy_set("all"), _proxy_set("wrcor_ablation")
    assert len(paper) == len(set(paper))
    assert set(paper) == set(every) | set(ablation)


def test_nb101_proxy_set_is_every_proxy_and_the_notebook_vote():
    assert _proxy_set("all_nb101") == _proxy_set("all") + ["vote_sjw_notebook"]


def test_notebook_vote_counts_jacob_cov_lower_is_better():
    agg = proxies.get_aggregator("vote_sjw_notebook")
    assert agg.components == proxies.get_aggregator("vote_sjw").components == ("synflow", "jacob_cov", "wrcor")
    rng = np.random.default_rng(0)
    comps = {c: rng.normal(size=30) for c in agg.components}
    flipped = dict(comps, jacob_cov=-comps["jacob_cov"])
    # the notebook's vote on the scores = the harness's vote with jacob_cov's scores negated
    assert np.array_equal(agg.scores(comps), proxies.get_aggregator("vote_sjw").scores(flipped))
    expected = copeland_scores(np.stack([comps[c] for c in agg.components], axis=1), np.array([1.0, -1.0, 1.0]))
    assert np.array_equal(agg.scores(comps), expected)
    assert not np.array_equal(agg.scores(comps), proxies.get_aggregator("vote_sjw").scores(comps))


def test_a_search_for_the_notebook_vote_takes_its_directions():
    cfg = compose("search_run", ["experiment=search_nb101", "objective=vote_sjw_notebook", "tracking=none"])
    assert objective_from_cfg(cfg).signs == (1.0, -1.0, 1.0)
    assert objective_from_cfg(compose("search_run", ["objective=vote_sjw", "tracking=none"])).signs == (1.0, 1.0, 1.0)


def test_the_paper_search_uses_the_released_accounting_and_tournament():
    cfg = compose("search_run", ["experiment=search_nb201", "search=evolution_released", "tracking=none"])
    assert cfg.accounting == "released" and cfg.budget == 1000
    assert cfg.search.name == "evolution" and cfg.search.replace is False and cfg.search.population == 64
    sweep = yaml.safe_load((CONF / "experiment" / "search_nb201.yaml").read_text())["hydra"]["sweeper"]["params"]
    assert sweep["search"] == "random,evolution_released,reinforce"
    assert set(sweep["objective"].split(",")) == {"wrcor", "vote_sjw", "vote_spw", "naswot", "synflow", "jacob_cov",
                                                  "valacc12"}


# ------------------------------------------------------------------ the paper report
import csv  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from conftest import needs_data  # noqa: E402
from figure_checks import capture, problems  # noqa: E402
from harness.reports import paper  # noqa: E402
from harness.reports.scores import METRICS_COLUMNS  # noqa: E402

TARGETS = {"cifar10": [("cifar10-valid", "valid"), ("cifar10-valid", "test"), ("cifar10", "test")],
           "cifar100": [("cifar100", "valid"), ("cifar100", "test")],
           "ImageNet16-120": [("ImageNet16-120", "valid"), ("ImageNet16-120", "test")]}
RHO = {"wrcor": 0.80, "synflow": 0.70, "meco": 0.85, "wrcor(weighting=none)": 0.78, "acor": 0.75}


def _metrics(root: Path, seeds=(0, 1, 2), rhos: dict[str, float] = RHO) -> Path:
    rows = []
    for images, targets in TARGETS.items():
        for d, s in targets:
            for proxy, rho in rhos.items():
                for seed in seeds:
                    rows.append({"space": "nb201", "dataset": d, "split": s, "proxy": proxy, "seed": seed,
                                 "tau": rho - 0.2 + 0.01 * seed, "rho": rho + 0.01 * seed, "n_archs": 1000,
                                 "n_nan": 1 if proxy == "synflow" else 0, "n_inf": 0, "sec_per_arch": 0.5,
                                 "protocol": f"NB201 {d}/{s}"})
    job = root / "job0"
    job.mkdir(parents=True)
    pd.DataFrame(rows, columns=list(METRICS_COLUMNS)).to_csv(job / "metrics.csv", index=False)
    return root


@needs_data
def test_paper_report_places_published_values_beside_ours(tmp_path, monkeypatch):
    with capture(monkeypatch) as figs:
        paper.build([_metrics(tmp_path / "runs")], tmp_path / "out", "p")
    tables = tmp_path / "out" / "tables"
    c10 = (tables / "p_proxies_cifar10.md").read_text()
    # ours: mean ± std over the three seeds; WRCor's published 0.812 is on the notebook's target
    assert "cifar10-valid/test ρ" in c10
    assert "| wrcor | 0.610 ± 0.010 | 0.810 ± 0.010 |" in c10
    assert "| 0.812 | first 1000 | Jing et al. 2025 [jing2025wrcor] | -0.002 (cifar10-valid/test) |" in c10
    # synflow: the zero-cost paper's all-15,625 value, compared on the first target; NaN counted
    assert "| 0.740 | all 15,625 | Abdelfattah et al. 2021 [abdelfattah2021zerocost] | -0.030 (cifar10-valid/valid) |" in c10
    assert "| synflow | " in c10 and "| 3 | 1000 | 3 | 0.5 |" in c10
    assert "| 0.890 | all 15,625 | Jiang et al. 2023 [jiang2023meco] | -0.030 (cifar10-valid/valid) |" in c10
    assert "wrcor(weighting=none)" not in c10  # ablation variants have their own table
    c100 = (tables / "p_proxies_cifar100.md").read_text()
    assert "| 0.760 | all 15,625 |" in c100 and "STAND-IN" not in c100
    assert "STAND-IN" in (tables / "p_proxies_ImageNet16-120.md").read_text()
    assert "| 0.750 | all 15,625 |" in (tables / "p_proxies_ImageNet16-120.md").read_text()
    # the ablation table: the variant's settings and its difference to wrcor on each dataset
    abl = (tables / "p_ablation.md").read_text()
    assert "| wrcor(weighting=none) | both | none | 1 | paper | 0.790 ± 0.010 | -0.020 |" in abl
    assert "| acor | act | none | 1 | official |" in abl and "synflow" not in abl
    # CSV for every table, parseable; LaTeX with booktabs rules
    with open(tables / "p_proxies_cifar10.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][0] == "proxy" and len({len(r) for r in rows}) == 1
    assert "\\bottomrule" in (tables / "p_ablation.tex").read_text()
    assert set(figs) == {"p_proxies", "p_ablation"}
    for stem, fig in figs.items():
        assert problems(fig) == [], stem
        assert (tmp_path / "out" / "figures" / f"{stem}.pdf").stat().st_size > 0
    # redrawn from the summary alone: the same tables
    again = paper.build_from_summary(tables / "p_summary.csv", tmp_path / "again", "p")
    assert (tmp_path / "again" / "tables" / "p_proxies_cifar10.md").read_text() == c10
    assert any(p.name == "p_ablation.csv" for p in again["paths"])


@needs_data
def test_only_wrcor_variants_are_ablation_rows(tmp_path, monkeypatch):
    """The peers' table: a proxy spec of another proxy (VKDNW's per-class path) and an aggregate
    spec are rows of the proxy table; with no WRCor variant there is no ablation table."""
    spec = "logrank(lexicographic(vkdnw_dim,vkdnw(jacobian=per_class)),az_trainability,flops)"
    rhos = {"wrcor": 0.80, "vkdnw(jacobian=per_class)": 0.60, spec: 0.9}
    with capture(monkeypatch) as figs:
        out = paper.build([_metrics(tmp_path / "runs", rhos=rhos)], tmp_path / "out", "p")
    c10 = (tmp_path / "out" / "tables" / "p_proxies_cifar10.md").read_text()
    assert "| vkdnw(jacobian=per_class) | 0.410 ± 0.010 | 0.610 ± 0.010 |" in c10
    assert f"| {spec} | 0.710 ± 0.010 | 0.910 ± 0.010 |" in c10
    assert not any("ablation" in p.name for p in out["paths"]) and set(figs) == {"p_proxies"}


def test_paper_report_cli_without_records_is_a_clear_error(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "harness", "paper-report", "--records", str(tmp_path), "--out",
                        str(tmp_path / "o")], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and "no metrics.csv found" in r.stderr


COMMITTED = Path(__file__).resolve().parents[1] / "results" / "tables"


@pytest.mark.parametrize("summary_csv", sorted(p for pattern in ("paper_*_summary.csv", "peers_*_summary.csv")
                                               for p in COMMITTED.glob(pattern) if "search" not in p.stem),
                         ids=lambda p: p.stem)
def test_committed_paper_tables_are_redrawn_from_their_summary(summary_csv, tmp_path):
    name = summary_csv.name[: -len("_summary.csv")]
    out = paper.build_from_summary(summary_csv, tmp_path, name)
    tables = [p for p in out["paths"] if p.parent.name == "tables"]
    assert tables, "the summary draws no table"
    for p in tables:
        assert p.read_bytes() == (COMMITTED / p.name).read_bytes(), p.name
