"""Tests for harness.reports.scores on synthetic records (no scoring, no networks)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.reports import scores as report
from harness.reports.scores import (
    METRICS_COLUMNS,
    SCORES_COLUMNS,
    build,
    latex_escape,
    load_records,
    parse_truth_column,
    summarise,
    truth_column,
)

PROXIES = ("wrcor", "grad_norm")
SEEDS = (0, 1, 2)
N_ARCHS = 50
TARGETS = (("cifar10-valid", "valid"), ("cifar10-valid", "test"))
PROTOCOL = "NB201 cifar10-valid, 200 epochs, mean over trial seeds"

# known per-seed metric values: TAU[proxy][target][seed]
TAU = {
    "wrcor": {TARGETS[0]: [0.61, 0.64, 0.58], TARGETS[1]: [0.55, 0.57, 0.60]},
    "grad_norm": {TARGETS[0]: [0.31, 0.25, 0.28], TARGETS[1]: [0.22, 0.27, 0.20]},
}
RHO = {
    "wrcor": {TARGETS[0]: [0.80, 0.83, 0.79], TARGETS[1]: [0.77, 0.74, 0.81]},
    "grad_norm": {TARGETS[0]: [0.41, 0.45, 0.38], TARGETS[1]: [0.35, 0.33, 0.39]},
}


def _write_job(job_dir: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = {t: 60 + 30 * rng.random(N_ARCHS) for t in TARGETS}
    rows = []
    for proxy in PROXIES:
        for i in range(N_ARCHS):
            score = truth[TARGETS[0]][i] + rng.normal(0, 5 if proxy == "wrcor" else 20)
            status = "ok"
            if proxy == "grad_norm" and i < 3:  # a few non-finite outcomes
                score, status = (float("nan"), "nan") if i < 2 else (float("inf"), "inf")
            row = {
                "space": "nb201", "dataset": "cifar10-valid", "seed": seed, "arch_index": i, "arch": f"arch_{i}",
                "proxy": proxy, "score": score, "status": status, "seconds": 0.01, "n_skipped": 0,
            }
            row.update({truth_column(d, s): truth[(d, s)][i] for d, s in TARGETS})
            rows.append(row)
    job_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(job_dir / report.SCORES_FILE, index=False)
    mrows = []
    for proxy in PROXIES:
        for d, s in TARGETS:
            mrows.append({
                "space": "nb201", "dataset": d, "split": s, "proxy": proxy, "seed": seed,
                "tau": TAU[proxy][(d, s)][seed], "rho": RHO[proxy][(d, s)][seed],
                "n_archs": N_ARCHS - (3 if proxy == "grad_norm" else 0),
                "n_nan": 2 if proxy == "grad_norm" else 0, "n_inf": 1 if proxy == "grad_norm" else 0,
                "sec_per_arch": 0.01 * (1 + seed), "protocol": PROTOCOL,
            })
    pd.DataFrame(mrows, columns=list(METRICS_COLUMNS)).to_csv(job_dir / report.METRICS_FILE, index=False)


@pytest.fixture
def records(tmp_path: Path) -> Path:
    root = tmp_path / "records"
    for seed in SEEDS:
        _write_job(root / "sweep" / f"seed={seed}", seed)
    return root


def _pm(values) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


def _row(md: str, proxy: str) -> list[str]:
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == proxy:
            return cells
    raise AssertionError(f"no row for {proxy} in\n{md}")


def test_truth_column_roundtrip():
    assert parse_truth_column(truth_column("ImageNet16-120", "test")) == ("ImageNet16-120", "test")
    with pytest.raises(ValueError):
        parse_truth_column("score")


def test_load_and_summarise(records):
    scores, metrics = load_records([records])
    assert list(scores.columns[: len(SCORES_COLUMNS)]) == list(SCORES_COLUMNS)
    assert len(scores) == len(PROXIES) * len(SEEDS) * N_ARCHS
    assert len(metrics) == len(PROXIES) * len(SEEDS) * len(TARGETS)
    assert np.isinf(scores["score"]).sum() == len(SEEDS)
    summary = summarise(metrics)
    assert len(summary) == len(PROXIES) * len(TARGETS)
    row = summary[(summary.proxy == "wrcor") & (summary.split == "test")].iloc[0]
    assert row.tau_mean == pytest.approx(np.mean(TAU["wrcor"][TARGETS[1]]))
    assert row.tau_std == pytest.approx(np.std(TAU["wrcor"][TARGETS[1]], ddof=1))
    assert row.rho_std == pytest.approx(np.std(RHO["wrcor"][TARGETS[1]], ddof=1))
    assert row.n_seeds == 3 and row.n_archs == N_ARCHS
    assert row.sec_per_arch == pytest.approx(0.02)
    g = summary[(summary.proxy == "grad_norm") & (summary.split == "valid")].iloc[0]
    assert (g.n_nan, g.n_inf, g.n_archs) == (6, 3, N_ARCHS - 3)
    assert g.protocol == PROTOCOL


def test_build_tables_figures(records, tmp_path):
    out = tmp_path / "results"
    result = build([records], out, "nb201_quick")
    md_path, tex_path = result["tables"]
    assert md_path == out / "tables" / "nb201_quick.md"
    assert tex_path == out / "tables" / "nb201_quick.tex"
    md = md_path.read_text()
    assert PROTOCOL in md and "standard deviation" in md and "over seeds" in md
    for proxy in PROXIES:
        cells = _row(md, proxy)
        expected = []
        for t in TARGETS:
            expected += [_pm(TAU[proxy][t]), _pm(RHO[proxy][t])]
        assert cells[1:5] == expected
        assert cells[5] == "3"  # seeds
    assert _row(md, "wrcor")[6:9] == ["50", "0"] + ["0.02"]
    assert _row(md, "grad_norm")[6:8] == ["47", "9"]
    header = md.splitlines()[2]
    assert "cifar10-valid/valid τ" in header and "cifar10-valid/test ρ" in header

    tex = tex_path.read_text()
    assert "grad\\_norm" in tex and "grad_norm" not in tex.replace("grad\\_norm", "")
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert "\\begin{tabular}" in tex and "\\end{tabular}" in tex
    mean, std = np.mean(TAU["wrcor"][TARGETS[0]]), np.std(TAU["wrcor"][TARGETS[0]], ddof=1)
    assert f"${mean:.3f} \\pm {std:.3f}$" in tex
    assert "±" not in tex and "τ" not in tex  # unicode replaced by math in LaTeX

    figures = result["figures"]
    assert [p.name for p in figures] == ["nb201_quick_scatter.png", "nb201_quick_heatmap.png", "nb201_quick_tau.png"]
    for p in figures:
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(data) > 10_000
        import matplotlib.image as mpimg

        img = mpimg.imread(p)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
        assert img[..., :3].std() > 0.01  # not a blank canvas
    assert result["summary_csv"].is_file()
    assert len(result["summary"]) == len(PROXIES) * len(TARGETS)


def test_duplicates_dropped(records, tmp_path):
    shutil.copytree(records / "sweep" / "seed=1", records / "rerun" / "seed=1")
    shutil.copy(records / "sweep" / "seed=2" / report.METRICS_FILE, records / report.METRICS_FILE)
    scores, metrics = load_records([records, records / "sweep"])  # overlapping paths, too
    assert len(scores) == len(PROXIES) * len(SEEDS) * N_ARCHS
    assert len(metrics) == len(PROXIES) * len(SEEDS) * len(TARGETS)
    assert summarise(metrics)["n_seeds"].eq(3).all()


def test_conflicting_duplicates_warn_and_keep_first(records):
    m = pd.read_csv(records / "sweep" / "seed=0" / report.METRICS_FILE)
    m["sec_per_arch"] = 99.0
    (records / "zz").mkdir()
    m.to_csv(records / "zz" / report.METRICS_FILE, index=False)
    with pytest.warns(UserWarning, match="share a key"):
        _, metrics = load_records([records])
    assert len(metrics) == len(PROXIES) * len(SEEDS) * len(TARGETS)
    assert (metrics["sec_per_arch"] < 1).all()


def test_empty_dir_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no metrics.csv found"):
        load_records([tmp_path / "empty"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_records([tmp_path / "missing"])
    with pytest.raises(SystemExit) as exc:
        report.main(["--records", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert exc.value.code == 2


def test_main_cli(records, tmp_path, capsys):
    out = tmp_path / "cli"
    assert report.main(["--records", str(records), "--out", str(out), "--name", "nb201_quick"]) == 0
    printed = capsys.readouterr().out.split()
    assert str(out / "tables" / "nb201_quick.md") in printed
    assert (out / "figures" / "nb201_quick_tau.png").is_file()


def test_latex_escape_specials():
    assert latex_escape("a_b & 5% #1 {x} ~ ^ \\") == (
        "a\\_b \\& 5\\% \\#1 \\{x\\} \\textasciitilde{} \\textasciicircum{} \\textbackslash{}"
    )


def test_figures_survive_non_finite_and_missing_scores(records, tmp_path):
    scores, metrics = load_records([records])
    summary = summarise(metrics)
    scores.loc[scores["proxy"] == "grad_norm", "score"] = np.nan  # a proxy with no finite score
    paths = report.write_figures(scores, summary, tmp_path / "a", "x", metrics=metrics)
    assert [p.name for p in paths] == ["x_scatter.png", "x_heatmap.png", "x_tau.png"]
    with pytest.warns(UserWarning, match="scatter plot skipped"):
        paths = report.write_figures(scores.iloc[0:0], summary, tmp_path / "b", "x")
    assert [p.name for p in paths] == ["x_heatmap.png", "x_tau.png"]


def test_cross_space_records_get_a_proxies_by_space_table(records, tmp_path):
    # the same records relabelled as a second space (its metrics shifted by 0.1)
    other = tmp_path / "records" / "nb101"
    for seed in SEEDS:
        job = records / "sweep" / f"seed={seed}"
        dst = other / f"seed={seed}"
        dst.mkdir(parents=True)
        s = pd.read_csv(job / report.SCORES_FILE).assign(space="nb101")
        m = pd.read_csv(job / report.METRICS_FILE).assign(space="nb101")
        m["rho"] = m["rho"] - 0.1
        s.to_csv(dst / report.SCORES_FILE, index=False)
        m.to_csv(dst / report.METRICS_FILE, index=False)
    out = build([records], tmp_path / "out", "cross")
    by_space = next(p for p in out["tables"] if p.name == "cross_by_space.md")
    md = by_space.read_text()
    header = _row(md, "proxy")
    assert sorted(header[1:]) == sorted(["nb201 τ", "nb201 ρ", "nb101 τ", "nb101 ρ"])
    row = dict(zip(header, _row(md, "wrcor")))
    first = TARGETS[0]
    assert row["nb201 τ"] == row["nb101 τ"] == _pm(TAU["wrcor"][first])
    assert row["nb201 ρ"] == _pm(RHO["wrcor"][first])
    assert row["nb101 ρ"] == _pm(np.array(RHO["wrcor"][first]) - 0.1)
    single = build([records / "sweep"], tmp_path / "out1", "single")
    assert not any(p.name.endswith("_by_space.md") for p in single["tables"])
