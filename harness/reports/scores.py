"""Tables and figures from saved records only (re-runnable; nothing is recomputed).

Records written by a score job into its output directory
    ``scores.csv`` (:data:`SCORES_FILE`), one row per (seed, architecture, proxy):

    ==============  ============================================================
    space           search space name (``nb201``, ``nb101``, ...)
    dataset         dataset the proxy batch was drawn from
    seed            int, the job seed (init + batch)
    arch_index      int, index of the architecture in its benchmark
    arch            ``space.to_str(arch)``
    proxy           registered proxy name
    score           float, sign already applied by the runner (higher = better);
                    ``nan`` / ``inf`` / ``-inf`` are kept as they came out
    status          ``ok`` or why not (``nan``, ``inf``, ``error: ...``), runner-defined
    seconds         float, wall seconds spent on this proxy for this arch
    n_skipped       int, items the proxy skipped (e.g. probed modules without signal)
    truth__D__S     one float column per ground-truth target, accuracy in percent,
                    named by :func:`truth_column` (dataset ``D``, split ``S``)
    ==============  ============================================================

    ``metrics.csv`` (:data:`METRICS_FILE`), one row per (dataset, split, proxy, seed):
    space, dataset, split (the ground-truth target), proxy, seed, tau (Kendall tau-b),
    rho (Spearman), n_archs (architectures in the correlation), n_nan / n_inf (scores that
    were NaN / infinite), sec_per_arch, protocol (the ground-truth protocol in words, e.g.
    ``NB201 cifar10-valid/valid, 200 epochs, mean over trial seeds``).

Loading
    :func:`load_records` collects every ``scores.csv`` / ``metrics.csv`` below the given
    paths (sorted, so the result does not depend on file-system order), concatenates them
    and drops duplicate rows (the same record copied into two job dirs, or the same score
    read by two jobs: rows that differ only in their timing columns, ``seconds`` and
    ``sec_per_arch``, keep the first). Rows that share a key -- scores (space, dataset,
    seed, arch_index, proxy), metrics (space, dataset, split, proxy, seed) -- but differ
    elsewhere are reduced to the first one (path order) with a warning naming how many
    conflicted.

Summary statistics
    Per (space, dataset, split, proxy): mean and sample standard deviation (ddof=1) over
    seeds of tau and rho (NaN values skipped, as pandas does; ``std`` is NaN for one seed),
    number of seeds, mean n_archs, summed n_nan and n_inf, mean sec_per_arch, and the
    distinct protocol strings joined by ``"; "``. Group order is order of first appearance.

Tables (``tables/{name}.md`` and ``.tex``): one row per proxy (per space and proxy when
several spaces are present), columns ``τ`` and ``ρ`` per dataset/split as ``mean ± std``
to 3 decimals, then seeds, archs, NaN/inf (non-finite scores, n_nan + n_inf summed over
seeds) and s/arch. Seeds/archs/NaN-inf show one value when all targets agree, else the
values per target joined by ``/``; s/arch is the mean over targets. Written by the reports' one
table writer (:mod:`harness.reports.tables`).

Figures (in the reports' one style, :mod:`harness.reports.style`: each a PNG of 200 dpi and a
vector PDF): ``figures/{name}_scatter`` score vs ground truth, one panel per proxy, for the first
space/dataset/split of the summary and the lowest seed, each panel titled with that seed's rho
(from metrics.csv) and the count of non-finite scores left out, its score axis logarithmic
(``log``, or ``symlog`` with zeros or negative scores) where the scores span more than three
orders of magnitude; ``figures/{name}_heatmap`` Spearman rho per proxy and target;
``figures/{name}_tau`` Kendall tau per proxy and target, bars = mean, error bars = std over seeds
(a single seed has none, and the axis says so), the key beside the panel.

CLI: ``harness report --records DIR [DIR ...] --out results --name nb201_quick``; a report whose
records are gone is redrawn from its summary: ``harness report --summary
results/tables/nb201_1000_summary.csv --out results --name nb201_1000`` (the tables, the heat map
and the tau bars; the scatter needs the records).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .style import (DIVERGING, ERROR_BAR, MISSING_CELL, ZERO_LINE, colours, figure_style, label_width,
                    legend_outside,
                    pyplot, save, seeds_note, set_scale, wrap_label)
from .tables import MISSING, MeanStd, Table, Tex, latex_escape
from .tables import write as write_table

__all__ = [
    "SCORES_FILE",
    "METRICS_FILE",
    "SCORES_COLUMNS",
    "METRICS_COLUMNS",
    "TRUTH_PREFIX",
    "SUMMARY_COLUMNS",
    "truth_column",
    "parse_truth_column",
    "latex_escape",
    "load_records",
    "summarise",
    "scores_table",
    "by_space_table",
    "write_tables",
    "write_figures",
    "build",
    "build_from_summary",
    "read_summary",
    "main",
]

SCORES_FILE = "scores.csv"
METRICS_FILE = "metrics.csv"
SCORES_COLUMNS: tuple[str, ...] = (
    "space", "dataset", "seed", "arch_index", "arch", "proxy", "score", "status", "seconds", "n_skipped",
)
METRICS_COLUMNS: tuple[str, ...] = (
    "space", "dataset", "split", "proxy", "seed", "tau", "rho", "n_archs", "n_nan", "n_inf",
    "sec_per_arch", "protocol",
)
TRUTH_PREFIX = "truth__"
SCORES_KEY = ("space", "dataset", "seed", "arch_index", "proxy")
METRICS_KEY = ("space", "dataset", "split", "proxy", "seed")
GROUP_KEY = ["space", "dataset", "split", "proxy"]
SUMMARY_COLUMNS: tuple[str, ...] = (
    "space", "dataset", "split", "proxy", "tau_mean", "tau_std", "rho_mean", "rho_std", "n_seeds",
    "n_archs", "n_nan", "n_inf", "sec_per_arch", "protocol",
)


def truth_column(dataset: str, split: str) -> str:
    """Name of the ground-truth column for a target in ``scores.csv``.

    >>> truth_column("cifar10-valid", "valid")
    'truth__cifar10-valid__valid'
    """
    return f"{TRUTH_PREFIX}{dataset}__{split}"


def parse_truth_column(name: str) -> tuple[str, str]:
    """Inverse of :func:`truth_column`.

    >>> parse_truth_column("truth__ImageNet16-120__test")
    ('ImageNet16-120', 'test')
    """
    if not name.startswith(TRUTH_PREFIX):
        raise ValueError(f"{name!r} is not a ground-truth column (prefix {TRUTH_PREFIX!r})")
    dataset, sep, split = name[len(TRUTH_PREFIX) :].rpartition("__")
    if not sep or not dataset or not split:
        raise ValueError(f"{name!r} is not of the form {TRUTH_PREFIX}<dataset>__<split>")
    return dataset, split


# --------------------------------------------------------------------------- loading
def _find(paths: Iterable[Path | str], filename: str) -> list[Path]:
    found: set[Path] = set()
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"records path {p} does not exist")
        if p.is_file():
            if p.name == filename:
                found.add(p.resolve())
        else:
            found.update(f.resolve() for f in p.rglob(filename) if f.is_file())
    return sorted(found)


def _read(files: list[Path], required: Sequence[str], kind: str) -> pd.DataFrame:
    frames = []
    for f in files:
        df = pd.read_csv(f)
        missing = [c for c in required if c not in df.columns]
        if missing:
            raise ValueError(f"{f}: {kind} record lacks columns {missing}")
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=list(required))
    df = pd.concat(frames, ignore_index=True, sort=False)
    extra = [c for c in df.columns if c not in required]
    return df[list(required) + extra]


#: columns that measure how long a record took, not what it says: two records of the same score
#: that differ only here (the same job's scores read by two jobs) are one record, the first kept
TIMING_COLUMNS = ("seconds", "sec_per_arch")


def _dedupe(df: pd.DataFrame, key: Sequence[str], kind: str) -> pd.DataFrame:
    content = [c for c in df.columns if c not in TIMING_COLUMNS]
    df = df.loc[~df.duplicated(subset=content, keep="first")].reset_index(drop=True)
    clash = df.duplicated(subset=list(key), keep="first")
    if clash.any():
        warnings.warn(
            f"{int(clash.sum())} {kind} rows share a key {tuple(key)} with an earlier row but differ "
            "in other columns; keeping the first (in path order)",
            stacklevel=3,
        )
        df = df.loc[~clash].reset_index(drop=True)
    return df


def load_records(paths: Iterable[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load and concatenate every ``scores.csv`` and ``metrics.csv`` found below ``paths``.

    Returns ``(scores, metrics)``. Raises :class:`FileNotFoundError` when no metrics.csv is
    found (scores.csv files are optional: without them there is no scatter plot).
    """
    paths = list(paths)
    if not paths:
        raise FileNotFoundError("no records directories given")
    metric_files = _find(paths, METRICS_FILE)
    score_files = _find(paths, SCORES_FILE)
    if not metric_files:
        where = ", ".join(str(p) for p in paths)
        raise FileNotFoundError(
            f"no {METRICS_FILE} found under {where} ({len(score_files)} {SCORES_FILE}); "
            "point --records at the output directories of score jobs"
        )
    scores = _dedupe(_read(score_files, SCORES_COLUMNS, "scores"), SCORES_KEY, "scores")
    metrics = _dedupe(_read(metric_files, METRICS_COLUMNS, "metrics"), METRICS_KEY, "metrics")
    for col in ("score", "seconds"):
        scores[col] = pd.to_numeric(scores[col], errors="coerce")
    for col in ("tau", "rho", "n_archs", "n_nan", "n_inf", "sec_per_arch"):
        metrics[col] = pd.to_numeric(metrics[col], errors="coerce")
    return scores, metrics


# --------------------------------------------------------------------------- summary
def summarise(metrics: pd.DataFrame) -> pd.DataFrame:
    """Aggregate per-seed metrics over seeds per (space, dataset, split, proxy)."""
    if metrics.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    grouped = metrics.groupby(GROUP_KEY, sort=False, dropna=False)
    summary = grouped.agg(
        tau_mean=("tau", "mean"),
        tau_std=("tau", "std"),
        rho_mean=("rho", "mean"),
        rho_std=("rho", "std"),
        n_seeds=("seed", "nunique"),
        n_archs=("n_archs", "mean"),
        n_nan=("n_nan", "sum"),
        n_inf=("n_inf", "sum"),
        sec_per_arch=("sec_per_arch", "mean"),
        protocol=("protocol", lambda s: "; ".join(dict.fromkeys(str(v) for v in s.dropna()))),
    ).reset_index()
    for col in ("n_seeds", "n_nan", "n_inf"):
        summary[col] = summary[col].astype(int)
    return summary[list(SUMMARY_COLUMNS)]


# --------------------------------------------------------------------------- tables
def _targets(summary: pd.DataFrame) -> list[tuple[str, str]]:
    return list(dict.fromkeys(zip(summary["dataset"].astype(str), summary["split"].astype(str))))


def _rows(summary: pd.DataFrame) -> list[tuple[str, str]]:
    return list(dict.fromkeys(zip(summary["space"].astype(str), summary["proxy"].astype(str))))


def _num(x: float) -> str:
    if x is None or not math.isfinite(x):
        return MISSING
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


def _joined(values: list[float]) -> str:
    texts = [_num(v) for v in values]
    unique = list(dict.fromkeys(texts))
    return unique[0] if len(unique) == 1 else "/".join(texts)


def _header_line(protocols: list[str]) -> str:
    proto = "; ".join(protocols) if protocols else "not recorded"
    label = "protocols" if len(protocols) > 1 else "protocol"
    return (
        f"Ground-truth {label}: {proto}. τ = Kendall tau-b, ρ = Spearman rho against ground-truth "
        "accuracy; ± is the sample standard deviation (ddof=1) over seeds. NaN/inf = non-finite "
        "proxy scores summed over seeds; s/arch = proxy seconds per architecture."
    )


def scores_table(summary: pd.DataFrame) -> Table:
    """One row per proxy (per space and proxy when the summary spans several spaces): τ and ρ per
    target as mean ± std, then seeds, archs, NaN/inf and s/arch."""
    targets = _targets(summary)
    rows = _rows(summary)
    multi_space = len({s for s, _ in rows}) > 1
    typed = summary.astype({"space": str, "proxy": str, "dataset": str, "split": str})
    index = {(r.space, r.proxy, r.dataset, r.split): r for r in typed.itertuples()}
    body = []
    for space, proxy in rows:
        cells: list[Any] = [space, proxy] if multi_space else [proxy]
        seeds, archs, bad, secs = [], [], [], []
        for dataset, split in targets:
            r = index.get((space, proxy, dataset, split))
            if r is None:
                cells += [MISSING, MISSING]
                continue
            cells += [MeanStd(r.tau_mean, r.tau_std), MeanStd(r.rho_mean, r.rho_std)]
            seeds.append(float(r.n_seeds))
            archs.append(float(r.n_archs))
            bad.append(float(r.n_nan + r.n_inf))
            secs.append(float(r.sec_per_arch))
        finite_secs = [s for s in secs if math.isfinite(s)]
        sec = f"{np.mean(finite_secs):.3g}" if finite_secs else MISSING
        body.append(cells + [_joined(seeds), _joined(archs), _joined(bad), sec])
    protocols = list(dict.fromkeys(p for ps in summary["protocol"].astype(str) for p in ps.split("; ") if p))
    lead = ["space", "proxy"] if multi_space else ["proxy"]
    tail = ["seeds", "archs", "NaN/inf", "s/arch"]
    nl, nt = len(lead), len(targets)
    header = lead + [f"{d}/{s} {g}" for d, s in targets for g in ("τ", "ρ")] + tail
    caption = _header_line(protocols)
    return Table(
        header, body, align="l" * nl + "r" * (len(header) - nl), notes=[caption],
        latex_header=[c.capitalize() for c in lead] + ["τ", "ρ"] * nt + ["Seeds", "Archs", "NaN/inf", "s/arch"],
        groups=[("", nl)] + [(f"{d}/{s}", 2) for d, s in targets] + [("", len(tail))],
        latex_spec="l" * nl + " " + " ".join(["cc"] * nt) + " rrrr",
        comments=["Generated by harness.report from saved records; do not edit by hand.",
                  Tex("Needs \\usepackage{booktabs}. Suggested caption text:"), caption],
        # a short note row (the full explanation is in the comment above, for the caption)
        footnote=f"Ground truth: {'; '.join(protocols) or 'not recorded'}. Mean ± std over seeds.",
    )


def by_space_table(summary: pd.DataFrame) -> Table:
    """Proxies (rows) x spaces (columns: τ and ρ against each space's first target)."""
    df = summary.astype({"space": str, "proxy": str, "dataset": str, "split": str})
    firsts = {sp: next(iter(zip(g["dataset"], g["split"]))) for sp, g in df.groupby("space", sort=False)}
    pick = df[[firsts[sp] == (d, s) for sp, d, s in zip(df["space"], df["dataset"], df["split"])]]
    index = {(r.space, r.proxy): r for r in pick.itertuples()}
    spaces = list(firsts)
    rows = []
    for proxy in dict.fromkeys(df["proxy"]):
        cells: list[Any] = [proxy]
        for sp in spaces:
            r = index.get((sp, proxy))
            cells += [MISSING, MISSING] if r is None else [MeanStd(r.tau_mean, r.tau_std), MeanStd(r.rho_mean, r.rho_std)]
        rows.append(cells)
    caption = ("Cross-space view: each proxy's Kendall τ and Spearman ρ (mean ± std over seeds) against each "
               "space's first ground-truth target: " + "; ".join(f"{sp}: {d}/{s}" for sp, (d, s) in firsts.items())
               + ". Protocols are in the main table's header.")
    header = ["proxy"] + [f"{sp} {g}" for sp in spaces for g in ("τ", "ρ")]
    return Table(header, rows, align="l" + "r" * (2 * len(spaces)), notes=[caption])


def write_tables(summary: pd.DataFrame, out_dir: Path, name: str) -> list[Path]:
    """Write ``out_dir/tables/{name}.md`` and ``.tex`` (and, when the records span several spaces,
    ``{name}_by_space.md``: proxies x spaces); return their paths."""
    if summary.empty:
        raise ValueError("empty summary: nothing to tabulate")
    tables = Path(out_dir) / "tables"
    written = write_table(scores_table(summary), tables, name, ("md", "tex"))
    if summary["space"].astype(str).nunique() > 1:
        written += write_table(by_space_table(summary), tables, f"{name}_by_space", ("md",))
    return written


# --------------------------------------------------------------------------- figures
def _target_labels(df: pd.DataFrame) -> list[str]:
    multi_space = df["space"].astype(str).nunique() > 1
    return [(f"{sp}: " if multi_space else "") + f"{d}/{s}"
            for sp, d, s in zip(df["space"].astype(str), df["dataset"].astype(str), df["split"].astype(str))]


def _scatter(scores: pd.DataFrame, summary: pd.DataFrame, metrics: pd.DataFrame | None, path: Path) -> list[Path]:
    plt = pyplot()
    first = summary.iloc[0]
    space, dataset, split = str(first["space"]), str(first["dataset"]), str(first["split"])
    col = truth_column(dataset, split)
    if scores.empty or col not in scores.columns:
        warnings.warn(f"no {col} column in scores records; scatter plot skipped", stacklevel=3)
        return []
    sel = scores[(scores["space"].astype(str) == space) & scores[col].notna()]
    same_data = sel[sel["dataset"].astype(str) == dataset]
    if not same_data.empty:  # the proxy data set is named like the target (else: any data set)
        sel = same_data
    if sel.empty:
        warnings.warn(f"no scores with ground truth {col}; scatter plot skipped", stacklevel=3)
        return []
    seed = sel["seed"].min()
    sel = sel[sel["seed"] == seed]
    proxies = [str(p) for p in dict.fromkeys(summary.loc[summary["space"].astype(str) == space, "proxy"])]
    proxies += [p for p in dict.fromkeys(sel["proxy"].astype(str)) if p not in proxies]
    names = sel["proxy"].astype(str).to_numpy()
    score = sel["score"].to_numpy(dtype=float)
    accuracy = sel[col].to_numpy(dtype=float)
    finite = np.isfinite(score)

    def rho_of(proxy: str) -> float:
        if metrics is not None and not metrics.empty:
            m = metrics[
                (metrics["space"].astype(str) == space) & (metrics["dataset"].astype(str) == dataset)
                & (metrics["split"].astype(str) == split) & (metrics["proxy"].astype(str) == proxy)
                & (metrics["seed"] == seed)
            ]
            if not m.empty:
                return float(m["rho"].iloc[0])
        s = summary[(summary["space"].astype(str) == space) & (summary["dataset"].astype(str) == dataset)
                    & (summary["split"].astype(str) == split) & (summary["proxy"].astype(str) == proxy)]
        return float(s["rho_mean"].iloc[0]) if not s.empty else float("nan")

    ncol = min(4, len(proxies))
    nrow = math.ceil(len(proxies) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(0.4 + 2.05 * ncol, 0.5 + 1.95 * nrow), sharey=True,
                             squeeze=False)
    for ax in axes.flat[len(proxies):]:
        ax.set_visible(False)
    for ax, proxy in zip(axes.flat, proxies):
        mine = names == proxy
        x, y = score[mine & finite], accuracy[mine & finite]
        ax.scatter(x, y, s=6, alpha=0.6, linewidths=0)
        rho = rho_of(proxy)
        rho_txt = f"{rho:.3f}" if math.isfinite(rho) else "n/a"
        bad = int((mine & ~finite).sum())
        ax.set_title(f"{proxy}\nρ = {rho_txt}" + (f", {bad} non-finite omitted" if bad else ""))
        set_scale(ax, "x", x, "proxy score")
    for row in axes:
        row[0].set_ylabel(f"{dataset}/{split} acc. (%)")
    fig.suptitle(f"{space} · {dataset}/{split} · seed {seed} · {int(finite.sum())} scores"
                 f" of {len(set(sel['arch_index']))} architectures")
    return save(fig, path)


def _tau_bars(plt: Any, summary: pd.DataFrame, path: Path) -> list[Path]:
    """Grouped bars: one group per target, one bar per proxy, height = mean Kendall tau, error bar
    = std over seeds (none where a single seed was run: the axis says so); the key beside the
    panel."""
    df = summary.copy()
    df["target"] = _target_labels(df)
    df["proxy"] = df["proxy"].astype(str)
    targets = list(dict.fromkeys(df["target"]))
    proxies = list(dict.fromkeys(df["proxy"]))
    index = {(t, p): r for t, p, r in zip(df["target"], df["proxy"], df.itertuples())}
    width = 0.8 / len(proxies)
    labels = [wrap_label(t) for t in targets]
    group = max(0.22 * len(proxies), label_width(labels))
    fig, ax = plt.subplots(figsize=(max(3.2, 1.0 + group * len(targets)) + 1.3, 2.8))
    for j, (proxy, colour) in enumerate(zip(proxies, colours() * (1 + len(proxies) // len(colours())))):
        xs, heights, errs = [], [], []
        for i, target in enumerate(targets):
            r = index.get((target, proxy))
            if r is None or not math.isfinite(r.tau_mean):
                continue
            xs.append(i - 0.4 + width * (j + 0.5))
            heights.append(float(r.tau_mean))
            errs.append(float(r.tau_std) if math.isfinite(r.tau_std) else np.nan)
        errs_arr = np.asarray(errs, dtype=float)
        ax.bar(xs, heights, width, color=colour, label=proxy,
               yerr=errs_arr if np.isfinite(errs_arr).any() else None, error_kw=ERROR_BAR)
    ax.axhline(0.0, **ZERO_LINE)
    ax.set_xticks(range(len(targets)), labels)
    ax.set_xlim(-0.5, len(targets) - 0.5)
    ax.grid(axis="x", visible=False)
    ax.set_ylabel(f"Kendall τ\n({seeds_note(df['n_seeds'])})")
    handles, labels = ax.get_legend_handles_labels()
    legend_outside(fig, handles, labels, title="proxy")
    return save(fig, path)


#: the heat map's colour-bar label
CBAR_LABEL = "Spearman ρ (mean over seeds)"


def _heatmap(plt: Any, summary: pd.DataFrame, path: Path) -> list[Path]:
    """Proxies (rows) x targets (columns), cells = Spearman rho mean over seeds; a grey cell: the
    proxy was not scored on that target."""
    import seaborn as sns

    df = summary.copy()
    df["target"] = _target_labels(df)
    df["proxy"] = df["proxy"].astype(str)
    grid = df.pivot_table(index="proxy", columns="target", values="rho_mean", aggfunc="first", dropna=False)
    grid = grid.reindex(index=list(dict.fromkeys(df["proxy"])), columns=list(dict.fromkeys(df["target"])))
    missing = bool(grid.isna().to_numpy().any())
    columns = [wrap_label(str(t)) for t in grid.columns]
    rows = max(len(str(c).splitlines()) for c in columns)
    fig, ax = plt.subplots(figsize=(1.4 + label_width(grid.index) + max(0.55, label_width(columns)) * grid.shape[1],
                                    max(0.8 + 0.12 * rows + 0.22 * grid.shape[0] + 0.25 * missing,
                                        label_width([CBAR_LABEL], 8) + 0.3)))  # room for the colour bar's label
    sns.heatmap(grid, annot=True, fmt=".2f", cmap=DIVERGING, vmin=-1, vmax=1, center=0, linewidths=0.5,
                cbar_kws={"label": CBAR_LABEL}, annot_kws={"fontsize": 6}, ax=ax)
    ax.set_facecolor(MISSING_CELL)
    ax.grid(False)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_xticks(np.arange(grid.shape[1]) + 0.5, columns, rotation=0)
    ax.tick_params(axis="y", rotation=0)
    if missing:
        ax.set_title("grey: no correlation (not scored on that target, or the scores are constant)", loc="left", fontsize=7)
    return save(fig, path)


#: above this many proxies the per-proxy bar chart is unreadable: the heat map carries the numbers
MAX_BAR_PROXIES = 8


def write_figures(
    scores: pd.DataFrame | None,
    summary: pd.DataFrame,
    out_dir: Path,
    name: str,
    *,
    metrics: pd.DataFrame | None = None,
) -> list[Path]:
    """Write ``figures/{name}_scatter``, ``figures/{name}_heatmap`` (proxies x targets, Spearman
    rho) and, for at most ``MAX_BAR_PROXIES`` proxies, ``figures/{name}_tau`` (each a PNG and a PDF,
    :data:`harness.reports.style.OUTPUTS`); return the paths written.

    ``metrics`` (optional) supplies the per-seed rho shown in the scatter titles; without it
    the titles show the mean rho over seeds from ``summary``. The scatter is skipped, with a
    warning, when the records hold no scores with ground truth for the first target, and without
    one when ``scores`` is None (a report redrawn from its summary alone).
    """
    if summary.empty:
        raise ValueError("empty summary: nothing to plot")
    figures = Path(out_dir) / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    written = []
    with figure_style() as plt:
        if scores is not None:
            written += _scatter(scores, summary, metrics, figures / f"{name}_scatter.png")
        written += _heatmap(plt, summary, figures / f"{name}_heatmap.png")
        if summary["proxy"].nunique() <= MAX_BAR_PROXIES:
            written += _tau_bars(plt, summary, figures / f"{name}_tau.png")
    return written


def read_summary(path: Path | str) -> pd.DataFrame:
    """A summary written by :func:`build` (``tables/{name}_summary.csv``), typed as
    :func:`summarise` returns it."""
    df = pd.read_csv(path)
    missing = [c for c in SUMMARY_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a report summary (lacks columns {missing})")
    df = df[list(SUMMARY_COLUMNS)].astype({"space": str, "dataset": str, "split": str, "proxy": str})
    df["protocol"] = df["protocol"].fillna("").astype(str)
    return df


# --------------------------------------------------------------------------- entry points
def build(record_dirs: Iterable[Path | str], out_dir: Path | str, name: str) -> dict[str, Any]:
    """Load -> summarise -> tables -> figures. Returns paths and the summary records.

    Also writes ``tables/{name}_summary.csv`` (the summary frame, full precision).
    """
    scores, metrics = load_records([Path(p) for p in record_dirs])
    summary = summarise(metrics)
    out = Path(out_dir)
    tables = write_tables(summary, out, name)
    summary_csv = out / "tables" / f"{name}_summary.csv"
    summary.to_csv(summary_csv, index=False)
    figures = write_figures(scores, summary, out, name, metrics=metrics)
    return {
        "name": name,
        "tables": tables,
        "summary_csv": summary_csv,
        "figures": figures,
        "n_scores": int(len(scores)),
        "n_metrics": int(len(metrics)),
        "summary": summary.to_dict(orient="records"),
    }


def build_from_summary(summary_csv: Path | str, out_dir: Path | str, name: str) -> dict[str, Any]:
    """Tables and the figures that need only the summary (heat map, tau bars; no scatter) from a
    committed ``tables/{name}_summary.csv``: a report redrawn without its records.  The summary
    file itself is read, not rewritten."""
    summary = read_summary(summary_csv)
    out = Path(out_dir)
    return {"name": name, "tables": write_tables(summary, out, name), "summary_csv": Path(summary_csv),
            "figures": write_figures(None, summary, out, name), "n_scores": 0, "n_metrics": 0,
            "summary": summary.to_dict(orient="records")}


def main(argv: Sequence[str] | None = None) -> int:
    from ..commands import command_parser, output_name

    parser = command_parser("report")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--records", nargs="+", type=Path, help="job output dirs (searched recursively)")
    source.add_argument("--summary", type=Path, help="redraw from a report's tables/{name}_summary.csv alone "
                                                     "(tables, heat map, tau bars; no scatter)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="output root (tables/, figures/)")
    parser.add_argument("--name", default="report", type=output_name, help="base name of the generated files")
    args = parser.parse_args(argv)
    try:
        if args.summary is not None:
            result = build_from_summary(args.summary, args.out, args.name)
        else:
            result = build(args.records, args.out, args.name)
    except (FileNotFoundError, ValueError) as exc:
        parser.exit(2, f"error: {exc}\n")
    from ..progress import print_written

    written = [*result["tables"], result["summary_csv"], *result["figures"]]
    print_written(written)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
