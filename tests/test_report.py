"""Tests for harness.reports.scores on synthetic records (no scoring, no networks)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from figure_checks import capture, png_dpi, problems
from harness.reports import scores as report
from harness.reports import style
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
    assert [p.name for p in figures] == [f"nb201_quick_{kind}.{ext}" for kind in ("scatter", "heatmap", "tau")
                                         for ext in ("png", "pdf")]
    for p in figures[1::2]:
        assert p.read_bytes()[:5] == b"%PDF-"  # the vector copy beside each PNG
    for p in figures[::2]:
        assert png_dpi(p) >= 200
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
    m["tau"] = -0.5
    (records / "zz").mkdir()
    m.to_csv(records / "zz" / report.METRICS_FILE, index=False)
    with pytest.warns(UserWarning, match=f"^{len(m)} metrics rows share a key"):
        _, metrics = load_records([records])
    assert len(metrics) == len(PROXIES) * len(SEEDS) * len(TARGETS)
    assert (metrics["tau"] != -0.5).all()


def test_records_that_differ_only_in_their_timing_are_one_record(records, recwarn):
    """Two jobs that read the same stored scores (a proxy in two experiments) write the same
    rows with their own seconds: the first is kept, without a warning."""
    for kind, column in ((report.METRICS_FILE, "sec_per_arch"), (report.SCORES_FILE, "seconds")):
        df = pd.read_csv(records / "sweep" / "seed=0" / kind)
        df[column] = 99.0
        (records / "zz").mkdir(exist_ok=True)
        df.to_csv(records / "zz" / kind, index=False)
    scores, metrics = load_records([records])
    assert not [w for w in recwarn if "share a key" in str(w.message)]
    assert len(metrics) == len(PROXIES) * len(SEEDS) * len(TARGETS)
    assert len(scores) == len(PROXIES) * len(SEEDS) * N_ARCHS
    assert (metrics["sec_per_arch"] < 99).all() and (scores["seconds"] < 99).all()


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
    assert [p.name for p in paths if p.suffix == ".png"] == ["x_scatter.png", "x_heatmap.png", "x_tau.png"]
    with pytest.warns(UserWarning, match="scatter plot skipped"):
        paths = report.write_figures(scores.iloc[0:0], summary, tmp_path / "b", "x")
    assert [p.name for p in paths if p.suffix == ".png"] == ["x_heatmap.png", "x_tau.png"]


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


# ------------------------------------------------------------------------------------------------
# figures fit for a paper: measured with the renderer


def test_report_figures_keep_their_words_apart_and_their_keys_off_the_data(records, tmp_path, monkeypatch):
    with capture(monkeypatch) as figs:
        build([records], tmp_path / "out", "r")
    assert set(figs) == {"r_scatter", "r_heatmap", "r_tau"}
    for stem, fig in figs.items():
        assert problems(fig) == [], stem
    assert figs["r_tau"].legends, "the tau chart has a key"


def _wide_summary(n_proxies: int, spaces=("darts", "nb101", "nb201"), n_seeds: int = 3) -> pd.DataFrame:
    """A cross-space summary with long target names (the labels that collided)."""
    rows = []
    for sp in spaces:
        for d, s in (("cifar10-valid", "valid"), ("ImageNet16-120", "test")):
            for k in range(n_proxies):
                rows.append({"space": sp, "dataset": d, "split": s, "proxy": f"vote_spw@comparator_{k}",
                             "tau_mean": 0.1 * (k % 7) - 0.2, "tau_std": 0.02 if n_seeds > 1 else np.nan,
                             "rho_mean": 0.15 * (k % 7) - 0.3, "rho_std": 0.03 if n_seeds > 1 else np.nan,
                             "n_seeds": n_seeds, "n_archs": 100.0, "n_nan": 0, "n_inf": 0, "sec_per_arch": 0.1,
                             "protocol": "toy"})
    return pd.DataFrame(rows, columns=list(report.SUMMARY_COLUMNS))


def test_wide_charts_have_no_colliding_or_cut_labels(tmp_path, monkeypatch):
    summary = _wide_summary(8)
    summary = summary.drop(index=summary.index[(summary["space"] == "darts") & (summary["proxy"].str.endswith("_3"))])
    with capture(monkeypatch) as figs:
        report.write_figures(None, summary, tmp_path, "wide")
    assert set(figs) == {"wide_heatmap", "wide_tau"}
    for stem, fig in figs.items():
        assert problems(fig) == [], stem
    cbar = figs["wide_heatmap"].axes[-1]
    assert cbar.get_ylabel() == "Spearman ρ (mean over seeds)"  # the colour bar's label, inside the figure (above)


def _errorbar_segments(ax) -> list[int]:
    from matplotlib.container import BarContainer

    return [len(c.errorbar.lines[2][0].get_segments()) if getattr(c, "errorbar", None) is not None else 0
            for c in ax.containers if isinstance(c, BarContainer)]


def test_tau_bars_carry_the_std_over_seeds_or_say_there_is_one_seed(tmp_path, monkeypatch):
    with capture(monkeypatch) as figs:
        report.write_figures(None, _wide_summary(3), tmp_path / "a", "three")
        report.write_figures(None, _wide_summary(3, n_seeds=1), tmp_path / "b", "one")
    ax = figs["three_tau"].axes[0]
    assert _errorbar_segments(ax) == [6, 6, 6]  # one bar per (proxy, target), each with its error bar
    assert "mean ± std over 3 seeds" in ax.get_ylabel()
    ax = figs["one_tau"].axes[0]
    assert _errorbar_segments(ax) == [0, 0, 0]
    assert "one seed: no error bars" in ax.get_ylabel()


def test_a_wide_range_proxy_gets_a_log_axis(records, tmp_path, monkeypatch):
    scores, metrics = load_records([records])
    rng = np.random.default_rng(0)
    wide = scores[scores["proxy"] == "wrcor"].assign(proxy="synflow")
    wide["score"] = 10 ** rng.uniform(0, 49, len(wide))  # synflow-like: 1e0 .. 1e49
    signed = wide.assign(proxy="jacob_cov")
    signed["score"] = np.where(np.arange(len(signed)) % 3 == 0, 0.0, -wide["score"].to_numpy())
    metrics = pd.concat([metrics, metrics[metrics["proxy"] == "wrcor"].assign(proxy="synflow"),
                         metrics[metrics["proxy"] == "wrcor"].assign(proxy="jacob_cov")], ignore_index=True)
    with capture(monkeypatch) as figs:
        report.write_figures(pd.concat([scores, wide, signed], ignore_index=True), summarise(metrics), tmp_path,
                             "w", metrics=metrics)
    fig = figs["w_scatter"]
    panels = {ax.get_title().split("\n")[0]: ax for ax in fig.axes if ax.get_visible()}
    assert panels["synflow"].get_xscale() == "log" and "log scale" in panels["synflow"].get_xlabel()
    assert panels["jacob_cov"].get_xscale() == "symlog" and "symlog scale" in panels["jacob_cov"].get_xlabel()
    assert panels["wrcor"].get_xscale() == "linear" and panels["wrcor"].get_xlabel() == "proxy score"
    assert problems(fig) == []


def test_axis_scale_rule():
    assert style.axis_scale([5.0, 6.0, np.inf, np.nan]) == "linear"
    assert style.axis_scale(np.geomspace(1, 1e49, 100)) == "log"
    assert style.axis_scale(np.r_[np.zeros(10), np.geomspace(1, 1e10, 100)]) == "symlog"
    # a few stragglers near zero among 1,000 scores of 700..900 do not make an axis logarithmic
    assert style.axis_scale(np.r_[np.linspace(700, 900, 995), [0.5, -3, 1, 2, 4]]) == "linear"


# ------------------------------------------------------------------------------------------------
# a report redrawn from its summary alone


def test_report_from_its_summary_matches_the_report_from_records(records, tmp_path):
    full = build([records], tmp_path / "full", "r")
    again = report.build_from_summary(full["summary_csv"], tmp_path / "again", "r")
    for a, b in zip(full["tables"], again["tables"]):
        assert a.name == b.name and a.read_bytes() == b.read_bytes()
    assert [p.name for p in again["figures"] if p.suffix == ".png"] == ["r_heatmap.png", "r_tau.png"]
    assert report.main(["--summary", str(full["summary_csv"]), "--out", str(tmp_path / "cli"), "--name", "r"]) == 0
    assert (tmp_path / "cli" / "figures" / "r_tau.pdf").is_file()
    assert not (tmp_path / "cli" / "tables" / "r_summary.csv").exists()  # the input is read, not copied
    with pytest.raises(SystemExit):  # one source: records or a summary
        report.main(["--summary", str(full["summary_csv"]), "--records", str(records)])


COMMITTED = Path(__file__).resolve().parents[1] / "results" / "tables"


@pytest.mark.parametrize("summary_csv", sorted(p for p in COMMITTED.glob("*_summary.csv")
                                               # search reports: tests/test_search_report.py;
                                               # the paper report's (paper_*, peers_*): tests/test_paper.py
                                               if "search" not in p.stem
                                               and not p.stem.startswith(("paper_", "peers_"))),
                         ids=lambda p: p.stem)
def test_committed_tables_are_redrawn_from_their_summaries(summary_csv, tmp_path):
    name = summary_csv.name[: -len("_summary.csv")]
    paths = report.write_tables(report.read_summary(summary_csv), tmp_path, name)
    for p in paths:
        assert p.read_bytes() == (COMMITTED / p.name).read_bytes(), p.name
