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
    and drops exact duplicate rows (the same record copied into two job dirs). Rows that
    share a key -- scores (space, dataset, seed, arch_index, proxy), metrics (space,
    dataset, split, proxy, seed) -- but differ elsewhere are reduced to the first one
    (path order) with a warning naming how many conflicted.

Summary statistics
    Per (space, dataset, split, proxy): mean and sample standard deviation (ddof=1) over
    seeds of tau and rho (NaN values skipped, as pandas does; ``std`` is NaN for one seed),
    number of seeds, mean n_archs, summed n_nan and n_inf, mean sec_per_arch, and the
    distinct protocol strings joined by ``"; "``. Group order is order of first appearance.

Tables (``tables/{name}.md`` and ``.tex``): one row per proxy (per space and proxy when
several spaces are present), columns ``τ`` and ``ρ`` per dataset/split as ``mean ± std``
to 3 decimals, then seeds, archs, NaN/inf (non-finite scores, n_nan + n_inf summed over
seeds) and s/arch. Seeds/archs/NaN-inf show one value when all targets agree, else the
values per target joined by ``/``; s/arch is the mean over targets.

Figures (seaborn, Agg backend): ``figures/{name}_scatter.png`` score vs ground truth, one
facet per proxy, for the first space/dataset/split of the summary and the lowest seed, each
facet titled with that seed's rho (from metrics.csv) and the count of non-finite scores
left out; ``figures/{name}_tau.png`` Kendall tau per proxy and target, bars = mean, error
bars = std over seeds.

CLI: ``harness report --records DIR [DIR ...] --out results --name nb201_quick``.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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
    "write_tables",
    "write_figures",
    "build",
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


def _dedupe(df: pd.DataFrame, key: Sequence[str], kind: str) -> pd.DataFrame:
    df = df.drop_duplicates(ignore_index=True)
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


def _pm(mean: float, std: float, latex: bool, digits: int = 3) -> str:
    if mean is None or not math.isfinite(mean):
        return "--" if latex else "–"
    m = f"{mean:.{digits}f}"
    if std is None or not math.isfinite(std):
        return f"${m}$" if latex else m
    return f"${m} \\pm {std:.{digits}f}$" if latex else f"{m} ± {std:.{digits}f}"


def _num(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


def _joined(values: list[float]) -> str:
    texts = [_num(v) for v in values]
    unique = list(dict.fromkeys(texts))
    return unique[0] if len(unique) == 1 else "/".join(texts)


def _table_model(summary: pd.DataFrame) -> dict[str, Any]:
    """Rows of cells (plain and LaTeX) shared by the Markdown and LaTeX writers."""
    targets = _targets(summary)
    rows = _rows(summary)
    multi_space = len({s for s, _ in rows}) > 1
    index = {(r.space, r.proxy, r.dataset, r.split): r for r in summary.astype({"space": str, "proxy": str,
                                                                                "dataset": str, "split": str}).itertuples()}
    body = []
    for space, proxy in rows:
        cells_md, cells_tex = [], []
        seeds, archs, bad, secs = [], [], [], []
        for dataset, split in targets:
            r = index.get((space, proxy, dataset, split))
            if r is None:
                cells_md += ["–", "–"]
                cells_tex += ["--", "--"]
                continue
            cells_md += [_pm(r.tau_mean, r.tau_std, False), _pm(r.rho_mean, r.rho_std, False)]
            cells_tex += [_pm(r.tau_mean, r.tau_std, True), _pm(r.rho_mean, r.rho_std, True)]
            seeds.append(float(r.n_seeds))
            archs.append(float(r.n_archs))
            bad.append(float(r.n_nan + r.n_inf))
            secs.append(float(r.sec_per_arch))
        finite_secs = [s for s in secs if math.isfinite(s)]
        sec = f"{np.mean(finite_secs):.3g}" if finite_secs else "–"
        tail = [_joined(seeds), _joined(archs), _joined(bad), sec]
        body.append({"space": space, "proxy": proxy, "md": cells_md + tail, "tex": cells_tex + tail})
    protocols = list(dict.fromkeys(p for ps in summary["protocol"].astype(str) for p in ps.split("; ") if p))
    return {"targets": targets, "multi_space": multi_space, "body": body, "protocols": protocols}


def _header_line(protocols: list[str]) -> str:
    proto = "; ".join(protocols) if protocols else "not recorded"
    label = "protocols" if len(protocols) > 1 else "protocol"
    return (
        f"Ground-truth {label}: {proto}. τ = Kendall tau-b, ρ = Spearman rho against ground-truth "
        "accuracy; ± is the sample standard deviation (ddof=1) over seeds. NaN/inf = non-finite "
        "proxy scores summed over seeds; s/arch = proxy seconds per architecture."
    )


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


_TEX_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "–": "--", "±": r"$\pm$", "τ": r"$\tau$", "ρ": r"$\rho$",
}


def latex_escape(text: str) -> str:
    r"""Escape LaTeX special characters in plain text.

    >>> latex_escape("grad_norm 50% & $x$")
    'grad\\_norm 50\\% \\& \\$x\\$'
    """
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(text))


def _markdown(model: dict[str, Any]) -> str:
    lead = ["space", "proxy"] if model["multi_space"] else ["proxy"]
    cols = lead + [f"{d}/{s} {g}" for d, s in model["targets"] for g in ("τ", "ρ")]
    cols += ["seeds", "archs", "NaN/inf", "s/arch"]
    lines = [_header_line(model["protocols"]), ""]
    lines.append("| " + " | ".join(_md_escape(c) for c in cols) + " |")
    lines.append("|" + "|".join([":---"] * len(lead) + ["---:"] * (len(cols) - len(lead))) + "|")
    for row in model["body"]:
        first = [row["space"], row["proxy"]] if model["multi_space"] else [row["proxy"]]
        lines.append("| " + " | ".join(_md_escape(c) for c in first + row["md"]) + " |")
    return "\n".join(lines) + "\n"


def _latex(model: dict[str, Any]) -> str:
    lead = ["Space", "Proxy"] if model["multi_space"] else ["Proxy"]
    nl, nt = len(lead), len(model["targets"])
    ncols = nl + 2 * nt + 4
    spec = "l" * nl + " " + " ".join(["cc"] * nt) + " rrrr"
    out = [
        "% Generated by harness.report from saved records; do not edit by hand.",
        "% Needs \\usepackage{booktabs}. Suggested caption text:",
        *(f"% {line}" for line in textwrap.wrap(latex_escape(_header_line(model["protocols"])), 96)),
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
    ]
    groups = " & ".join(f"\\multicolumn{{2}}{{c}}{{{latex_escape(f'{d}/{s}')}}}" for d, s in model["targets"])
    out.append(" & " * (nl - 1) + " & " + groups + " & & & & \\\\")
    rules = " ".join(f"\\cmidrule(lr){{{nl + 1 + 2 * i}-{nl + 2 + 2 * i}}}" for i in range(nt))
    out.append(rules)
    sub = lead + ["$\\tau$", "$\\rho$"] * nt + ["Seeds", "Archs", "NaN/inf", "s/arch"]
    out.append(" & ".join(sub) + " \\\\")
    out.append("\\midrule")
    for row in model["body"]:
        first = [row["space"], row["proxy"]] if model["multi_space"] else [row["proxy"]]
        cells = [latex_escape(c) for c in first] + [
            c if c.startswith("$") else latex_escape(c) for c in row["tex"]
        ]
        out.append(" & ".join(cells) + " \\\\")
    out.append("\\bottomrule")
    # Short note row (the full explanation is in the comment above, for the caption).
    proto = latex_escape("; ".join(model["protocols"]) or "not recorded")
    note = f"Ground truth: {proto}. Mean $\\pm$ std over seeds."
    out.append(f"\\multicolumn{{{ncols}}}{{l}}{{\\footnotesize {note}}} \\\\")
    out.append("\\end{tabular}")
    return "\n".join(out) + "\n"


def _by_space_markdown(summary: pd.DataFrame) -> str:
    """Proxies (rows) x spaces (columns: τ and ρ against each space's first target)."""
    df = summary.astype({"space": str, "proxy": str, "dataset": str, "split": str})
    firsts = {sp: next(iter(zip(g["dataset"], g["split"]))) for sp, g in df.groupby("space", sort=False)}
    pick = df[[firsts[sp] == (d, s) for sp, d, s in zip(df["space"], df["dataset"], df["split"])]]
    index = {(r.space, r.proxy): r for r in pick.itertuples()}
    spaces = list(firsts)
    lines = ["Cross-space view: each proxy's Kendall τ and Spearman ρ (mean ± std over seeds) against each "
             "space's first ground-truth target: " + "; ".join(f"{sp}: {d}/{s}" for sp, (d, s) in firsts.items())
             + ". Protocols are in the main table's header.", "",
             "| proxy | " + " | ".join(f"{sp} τ | {sp} ρ" for sp in spaces) + " |",
             "|:---|" + "---:|" * (2 * len(spaces))]
    for proxy in dict.fromkeys(df["proxy"]):
        cells = []
        for sp in spaces:
            r = index.get((sp, proxy))
            cells += ["–", "–"] if r is None else [_pm(r.tau_mean, r.tau_std, False), _pm(r.rho_mean, r.rho_std, False)]
        lines.append(f"| {_md_escape(proxy)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(summary: pd.DataFrame, out_dir: Path, name: str) -> list[Path]:
    """Write ``out_dir/tables/{name}.md`` and ``.tex`` (and, when the records span several spaces,
    ``{name}_by_space.md``: proxies x spaces); return their paths."""
    if summary.empty:
        raise ValueError("empty summary: nothing to tabulate")
    tables = Path(out_dir) / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    model = _table_model(summary)
    md, tex = tables / f"{name}.md", tables / f"{name}.tex"
    md.write_text(_markdown(model), encoding="utf-8")
    tex.write_text(_latex(model), encoding="utf-8")
    written = [md, tex]
    if model["multi_space"]:
        by_space = tables / f"{name}_by_space.md"
        by_space.write_text(_by_space_markdown(summary), encoding="utf-8")
        written.append(by_space)
    return written


# --------------------------------------------------------------------------- figures
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _facets(sns: Any, plot_df: pd.DataFrame, proxies: list[str], ncol: int) -> Any:
    grid = sns.FacetGrid(
        plot_df, col="proxy", col_order=proxies, col_wrap=ncol if len(proxies) > 1 else None,
        height=2.8, aspect=1.1, sharex=False, sharey=True,
    )
    if not plot_df.empty:
        grid.map_dataframe(sns.scatterplot, x="score", y="accuracy", s=10, alpha=0.6, linewidth=0)
    return grid


def _scatter(scores: pd.DataFrame, summary: pd.DataFrame, metrics: pd.DataFrame | None, path: Path) -> bool:
    import seaborn as sns

    plt = _pyplot()
    first = summary.iloc[0]
    space, dataset, split = str(first["space"]), str(first["dataset"]), str(first["split"])
    col = truth_column(dataset, split)
    if scores.empty or col not in scores.columns:
        warnings.warn(f"no {col} column in scores records; scatter plot skipped", stacklevel=3)
        return False
    sel = scores[(scores["space"].astype(str) == space) & scores[col].notna()]
    same_data = sel[sel["dataset"].astype(str) == dataset]
    if not same_data.empty:  # the proxy data set is named like the target (else: any data set)
        sel = same_data
    if sel.empty:
        warnings.warn(f"no scores with ground truth {col}; scatter plot skipped", stacklevel=3)
        return False
    seed = sel["seed"].min()
    sel = sel[sel["seed"] == seed]
    proxies = [str(p) for p in dict.fromkeys(summary.loc[summary["space"].astype(str) == space, "proxy"])]
    proxies += [p for p in dict.fromkeys(sel["proxy"].astype(str)) if p not in proxies]
    finite = np.isfinite(sel["score"].to_numpy(dtype=float))
    plot_df = pd.DataFrame(
        {"proxy": sel["proxy"].astype(str).to_numpy()[finite], "score": sel["score"].to_numpy(dtype=float)[finite],
         "accuracy": sel[col].to_numpy(dtype=float)[finite]}
    )
    n_bad = pd.Series(~finite).groupby(sel["proxy"].astype(str).to_numpy()).sum()

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
    grid = _facets(sns, plot_df, proxies, ncol)
    for proxy in proxies:
        ax = grid.axes_dict[proxy]
        rho = rho_of(proxy)
        rho_txt = f"{rho:.3f}" if math.isfinite(rho) else "n/a"
        bad = int(n_bad.get(proxy, 0))
        ax.set_title(f"{proxy}: ρ = {rho_txt}" + (f" ({bad} non-finite omitted)" if bad else ""), fontsize=8)
        ax.set_xlabel("proxy score")
    grid.set_ylabels(f"{dataset}/{split} accuracy (%)")
    grid.figure.suptitle(f"{space} · {dataset}/{split} · seed {seed}", y=1.02)
    grid.figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(grid.figure)
    return True


def _tau_bars(summary: pd.DataFrame, path: Path) -> None:
    import seaborn as sns

    plt = _pyplot()
    df = summary.copy()
    multi_space = df["space"].nunique() > 1
    df["target"] = [
        (f"{sp}: " if multi_space else "") + f"{d}/{s}" for sp, d, s in zip(df["space"], df["dataset"], df["split"])
    ]
    df["proxy"] = df["proxy"].astype(str)
    order = list(dict.fromkeys(df["target"]))
    hue_order = list(dict.fromkeys(df["proxy"]))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 + 0.45 * len(order) * len(hue_order)), 3.4))
    plot_df = df[np.isfinite(df["tau_mean"].to_numpy(dtype=float))]
    sns.barplot(data=plot_df, x="target", y="tau_mean", hue="proxy", order=order, hue_order=hue_order,
                errorbar=None, ax=ax)
    lookup = {(t, p): s for t, p, s in zip(df["target"], df["proxy"], df["tau_std"])}
    for container, proxy in zip(ax.containers, hue_order):
        for bar in container:
            centre = bar.get_x() + bar.get_width() / 2
            target = order[int(round(centre))]
            std = lookup.get((target, proxy), float("nan"))
            if std is not None and math.isfinite(std):
                ax.errorbar(centre, bar.get_height(), yerr=std, color="black", capsize=3, linewidth=1)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("")
    ax.set_ylabel("Kendall τ (mean ± std over seeds)")
    ax.legend(title="proxy", fontsize=7, title_fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _heatmap(summary: pd.DataFrame, path: Path) -> None:
    """Proxies (rows) x targets (columns), cells = Spearman rho mean over seeds."""
    import seaborn as sns

    plt = _pyplot()
    df = summary.copy()
    multi_space = df["space"].nunique() > 1
    df["target"] = [(f"{sp}: " if multi_space else "") + f"{d}/{s}"
                    for sp, d, s in zip(df["space"], df["dataset"], df["split"])]
    df["proxy"] = df["proxy"].astype(str)
    grid = df.pivot_table(index="proxy", columns="target", values="rho_mean", aggfunc="first", dropna=False)
    grid = grid.reindex(index=list(dict.fromkeys(df["proxy"])), columns=list(dict.fromkeys(df["target"])))
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * grid.shape[1], 0.9 + 0.32 * grid.shape[0]))
    sns.heatmap(grid, annot=True, fmt=".2f", cmap="RdBu_r", vmin=-1, vmax=1, center=0, linewidths=0.5,
                cbar_kws={"label": "Spearman ρ (mean over seeds)"}, annot_kws={"fontsize": 7}, ax=ax)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


#: above this many proxies the per-proxy bar chart is unreadable: the heat map carries the numbers
MAX_BAR_PROXIES = 8


def write_figures(
    scores: pd.DataFrame,
    summary: pd.DataFrame,
    out_dir: Path,
    name: str,
    *,
    metrics: pd.DataFrame | None = None,
) -> list[Path]:
    """Write ``figures/{name}_scatter.png``, ``figures/{name}_heatmap.png`` (proxies x targets,
    Spearman rho) and, for at most ``MAX_BAR_PROXIES`` proxies, ``figures/{name}_tau.png``;
    return the paths written.

    ``metrics`` (optional) supplies the per-seed rho shown in the scatter titles; without it
    the titles show the mean rho over seeds from ``summary``. The scatter is skipped, with a
    warning, when the records hold no scores with ground truth for the first target.
    """
    if summary.empty:
        raise ValueError("empty summary: nothing to plot")
    figures = Path(out_dir) / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    import seaborn as sns

    _pyplot()  # select the Agg backend before seaborn draws anything
    written = []
    # Style as context managers: no global rcParams change leaks out of this function.
    with sns.axes_style("whitegrid"), sns.plotting_context("paper"):
        scatter = figures / f"{name}_scatter.png"
        if _scatter(scores, summary, metrics, scatter):
            written.append(scatter)
        heat = figures / f"{name}_heatmap.png"
        _heatmap(summary, heat)
        written.append(heat)
        if summary["proxy"].nunique() <= MAX_BAR_PROXIES:
            tau = figures / f"{name}_tau.png"
            _tau_bars(summary, tau)
            written.append(tau)
    return written


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


def main(argv: Sequence[str] | None = None) -> int:
    from ..cli import command_parser, output_name

    parser = command_parser("report")
    parser.add_argument("--records", nargs="+", required=True, type=Path, help="job output dirs (searched recursively)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="output root (tables/, figures/)")
    parser.add_argument("--name", default="report", type=output_name, help="base name of the generated files")
    args = parser.parse_args(argv)
    try:
        result = build(args.records, args.out, args.name)
    except (FileNotFoundError, ValueError) as exc:
        parser.exit(2, f"error: {exc}\n")
    for p in [*result["tables"], result["summary_csv"], *result["figures"]]:
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
