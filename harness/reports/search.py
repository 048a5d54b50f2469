"""The search table and figures, from saved search records only (``search.json`` per job).

Per (space, images, target, strategy, objective, budget): the found architectures' test accuracy
as mean ± sample std over seeds, the mean search cost in seconds (the proxy seconds of the
distinct architectures, see :mod:`harness.search`), the mean number of distinct architectures
scored and the count of seeds.  Reference rows: the benchmark's optimum (from the records) and the
published search results the space's benchmark reports
(:meth:`spaces.benchmarks.TableBenchmark.published_search`; means as published, their stds are
not reproduced here).

Outputs ``tables/{name}.md``, ``tables/{name}.tex`` (the reports' table writer,
:mod:`harness.reports.tables`), ``tables/{name}_summary.csv`` and ``figures/{name}_cost`` (PNG and PDF)
(test accuracy against search cost, one panel per dataset) and ``figures/{name}_trajectory.png``
(the incumbent's accuracy as the search goes, mean over seeds), in the reports' figure style
(:mod:`harness.reports.style`).  A search run's own ``trajectory.png`` is drawn here too
(:func:`trajectory_figure`).

Records of searches without ground truth (``ground_truth: false``: no accuracy offline) get their
own table and figure (:mod:`harness.reports.offline`: the found architectures, their counts, the
cost per candidate and its device); they are never mixed with searches that have an accuracy.

pandas is imported where records are read, not on import: a search run draws its trajectory with
this module without loading it.

CLI: ``harness search-report --records DIR [DIR ...] --out results --name search_nb201_quick``;
without the records, ``harness search-report --summary results/tables/search_nb201_quick_summary.csv
--out results --name search_nb201_quick`` redraws the table and the cost figure.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from .style import (OPTIMUM_LINE, PUBLISHED_LINES, STRATEGY_LINES, STRATEGY_MARKERS, colours, figure_style,
                    legend_outside, save, seeds_note)
from .tables import MISSING, MeanStd, Table, Tex, latex_escape
from .tables import write as write_table

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

STRATEGY_LABELS = {"random": "R", "evolution": "RE", "reinforce": "RL"}
OBJECTIVE_LABELS = {"valacc12": "ValAcc (12 epochs)"}

#: the image datasets in the papers' column order (others follow as they come)
DATASET_ORDER = ("cifar10", "cifar100", "ImageNet16-120")
GROUP = ["space", "images", "target_dataset", "target_split", "strategy", "objective", "budget"]


def load_searches(paths: Iterable[Path | str]) -> pd.DataFrame:
    """Every ``search.json`` below ``paths`` as one row each (sorted paths; a job copied twice
    counts once: rows are unique by (group, seed))."""
    import pandas as pd

    files = sorted({f for p in paths for f in ([Path(p)] if Path(p).is_file() else Path(p).rglob("search.json"))})
    if not files:
        raise FileNotFoundError(f"no search.json below {[str(p) for p in paths]}")
    rows = []
    for f in files:
        d = json.loads(f.read_text())
        d.setdefault("ground_truth", True)  # records written before searches without ground truth existed
        d["target_dataset"], d["target_split"] = d["target"] if d.get("target") else ("", "")
        for key in ("constraints", "vote", "batch"):  # flattened: constraints.flops_max, vote.ties, batch.size
            d.update({f"{key}.{k}": v for k, v in (d.get(key) or {}).items() if not isinstance(v, (dict, list))})
        d.setdefault("machine", "not recorded")
        d.setdefault("accounting", "in_budget")  # records written before the setting existed
        d.setdefault("n_initial", math.nan)
        d.setdefault("n_costed", d.get("n_scored"))
        d.setdefault("cost_note", "")
        d["settings"] = ", ".join(f"{k}={v}" for k, v in sorted((d.get("strategy_params") or {}).items()))
        d["path"] = str(f)
        rows.append({k: v for k, v in d.items() if not isinstance(v, (dict, list))})
    df = pd.DataFrame(rows).drop_duplicates(subset=GROUP + ["seed"], keep="first")
    for col in ("test_accuracy", "regret", "search_cost_s", "n_costed", "n_initial"):  # null -> NaN
        df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def _datasets(summary: pd.DataFrame) -> list[str]:
    seen = list(dict.fromkeys(summary["images"]))
    return sorted(seen, key=lambda d: (DATASET_ORDER.index(d) if d in DATASET_ORDER else len(DATASET_ORDER),
                                       seen.index(d)))


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    g = df.groupby(GROUP, sort=False, dropna=False)
    out = g.agg(acc_mean=("test_accuracy", "mean"), acc_std=("test_accuracy", "std"),
                regret_mean=("regret", "mean"), regret_std=("regret", "std"), cost_mean=("search_cost_s", "mean"),
                cost_std=("search_cost_s", "std"), n_costed=("n_costed", "mean"),
                n_scored=("n_scored", "mean"), n_failed=("n_failed", "sum"),
                n_initial=("n_initial", "first"), accounting=("accounting", "first"),
                cost_note=("cost_note", lambda s: "; ".join(dict.fromkeys(map(str, s)))),
                n_seeds=("seed", "nunique"), n_nan=("test_accuracy", lambda s: int(s.isna().sum())),
                optimum=("optimum", "first"), protocol=("protocol", "first"),
                machine=("machine", lambda s: "; ".join(dict.fromkeys(map(str, s)))),
                settings=("settings", lambda s: "; ".join(dict.fromkeys(map(str, s))))).reset_index()
    # the cost of one costed architecture: mean cost / mean count (a ratio of means)
    out["sec_per_arch"] = out["cost_mean"] / out["n_costed"].where(out["n_costed"] > 0)
    return out


def _label(strategy: str, objective: str) -> str:
    return f"{STRATEGY_LABELS.get(strategy, strategy)} + {OBJECTIVE_LABELS.get(objective, objective)}"


def _cost(x: float) -> str:
    return MISSING if not math.isfinite(x) else f"{x:,.0f}"


def _per_arch(x: float) -> str:
    return MISSING if not math.isfinite(x) else f"{x:.3g}"


# --------------------------------------------------------------------------- published results
def _benchmark(space: str) -> Any:
    """The space's benchmark, or None for a space that is not installed here."""
    import spaces

    try:
        return spaces.get_space(space).benchmark
    except (spaces.UnknownNameError, spaces.DataFileError) as err:  # a space that is not installed here
        log.warning("no published search results for space %r: %s", space, err)
        return None


def _benchmark_results(space: str, datasets: Sequence[str]) -> dict[tuple[str, ...], float]:
    """``{(method, setting, source, cite, where, images): accuracy}`` the space's benchmark
    publishes (none for a space that is not installed or a benchmark that does not say)."""
    ask = getattr(_benchmark(space), "published_search", None)
    if ask is None:
        return {}
    return {(p.method, p.setting, p.source, getattr(p, "cite", ""), getattr(p, "where", ""), d): float(p.accuracy)
            for d in datasets for p in ask(d)}


def _published(summary: pd.DataFrame) -> list[tuple[str, str, dict[str, float], str]]:
    """:func:`published`'s rows, each with the words naming its source (authors, year, place,
    BibTeX key)."""
    datasets = _datasets(summary)
    found = [_benchmark_results(space, datasets) for space in dict.fromkeys(summary["space"].astype(str))]
    common = {k: v for k, v in found[0].items() if all(f.get(k) == v for f in found[1:])} if found else {}
    methods: dict[tuple[str, ...], dict[str, float]] = {}
    for (*method, d), acc in common.items():
        methods.setdefault(tuple(method), {})[d] = acc
    out = []
    for (method, setting, source, cite, where), accs in methods.items():
        label = f"{method}, {setting} ({source}, published)" if setting else f"{method} ({source}, published)"
        named = f"{method}, {setting}" if setting else method
        out.append((label, f"{method} {setting}" if setting else method, accs,
                    f"{named}: {source}" + (f", {where}" if where else "") + (f" [{cite}]" if cite else "")))
    return out


def published(summary: pd.DataFrame) -> list[tuple[str, str, dict[str, float]]]:
    """The published search results to show beside the summary: (row label, short label for a
    figure key, ``{images: accuracy}``) per method, as every space of the summary's benchmark
    reports them (in the first space's order)."""
    return [(label, short, accs) for label, short, accs, _ in _published(summary)]


def sources(summary: pd.DataFrame) -> list[str]:
    """Where the table's quoted numbers come from, one entry each: the optimum (the benchmark's
    table, with its BibTeX key when the benchmark states one) and each published search result."""
    benches = {space: getattr(_benchmark(space), "cite", "") or "" for space in dict.fromkeys(summary["space"].astype(str))}
    optimum = "; ".join(f"the {space} table" + (f" [{cite}]" if cite else "") for space, cite in benches.items())
    return [f"optimum (benchmark): {optimum}"] + [src for *_, src in _published(summary)]


def _tex_sources(entries: Sequence[str]) -> Tex:
    """The sources as a LaTeX footnote: each ``[key]`` a ``\\cite{key}``, the words escaped."""
    parts = []
    for entry in entries:
        text, _, key = entry.rpartition(" [") if entry.endswith("]") else (entry, "", "")
        parts.append(latex_escape(text) + (f" \\cite{{{key[:-1]}}}" if key else ""))
    return Tex("Sources: " + "; ".join(parts) + ".")


# --------------------------------------------------------------------------- tables
def search_table(summary: pd.DataFrame) -> Table:
    """One row per method (per dataset the accuracy and the search cost), then the benchmark's
    optimum and the published results, under the caption and the strategies' settings."""
    datasets = _datasets(summary)
    summary = _with_defaults(summary)
    per = ("test acc. (%)", "regret", "cost (s)", "s/arch")
    header = ["method", "N"] + [f"{d} {c}" for d in datasets for c in per] + ["seeds"]
    rows: list[list[Any]] = []
    index = {(r.images, r.strategy, r.objective, r.budget): r for r in summary.itertuples()}
    methods = list(dict.fromkeys(zip(summary["strategy"], summary["objective"], summary["budget"])))
    order = {name: i for i, name in enumerate(STRATEGY_LABELS)}  # R, RE, RL; objectives as they came
    methods.sort(key=lambda m: order.get(m[0], len(order)))
    for strategy, objective, budget in methods:
        cells: list[Any] = []
        seeds = set()
        for d in datasets:
            r = index.get((d, strategy, objective, budget))
            cells += ([MeanStd(r.acc_mean, r.acc_std, digits=2), MeanStd(r.regret_mean, r.regret_std, digits=2),
                       _cost(r.cost_mean), _per_arch(r.sec_per_arch)] if r else [MISSING] * len(per))
            if r:
                seeds.add(int(r.n_seeds))
        rows.append([_label(strategy, objective), str(budget)] + cells + ["/".join(map(str, sorted(seeds)))])
    optimum = {r.images: r.optimum for r in summary.itertuples()}
    rows.append(["optimum (benchmark)", ""] + [c for d in datasets for c in (f"{optimum[d]:.2f}", "0", "", "")]
                + [""])
    for label, _, accs in published(summary):
        rows.append([label, ""] + [c for d in datasets for c in (
            (f"{accs[d]:.2f}", f"{optimum[d] - accs[d]:.2f}") if d in accs else (MISSING, MISSING)) + ("", "")]
                    + [""])
    protocols = "; ".join(dict.fromkeys(summary["protocol"]))
    machine = "; ".join(dict.fromkeys(m for ms in summary["machine"] for m in ms.split("; ")
                                      if m != "benchmark training time"))
    caption = (f"Search results: found architecture's accuracy and its regret to the benchmark's optimum, mean ± "
               f"std over seeds ({protocols}). Cost = proxy seconds of the distinct architectures scored, measured "
               f"on {machine or 'n/a (no proxy-guided rows)'}; s/arch = cost per architecture, to convert to another device "
               "(ValAcc: 12 epochs of the benchmark's training time per architecture" + _valacc_note(summary) + ").")
    cited = sources(summary)
    notes = [caption, _accounting(summary), _settings(summary),
             "Sources of the quoted numbers (BibTeX keys: docs/references.bib): " + "; ".join(cited) + "."]
    return Table(header, rows, notes=notes, footnote=_tex_sources(cited))


def _valacc_note(summary: pd.DataFrame) -> str:
    """How the ValAcc rows' training time was obtained, per dataset (their records' cost notes)."""
    notes = [n for n in dict.fromkeys(summary.loc[summary["objective"] == "valacc12", "cost_note"].astype(str))
             if n and n != "nan"]
    scales = [n.partition(" [")[0] for n in notes]  # "<images>: <column> x <factor> [<how derived>]"
    basis = list(dict.fromkeys(n.partition(" [")[2].rstrip("]") for n in notes if " [" in n))
    return (": " + "; ".join(scales) + (f"; {'; '.join(basis)}" if basis else "")) if notes else ""


def _with_defaults(summary: pd.DataFrame) -> pd.DataFrame:
    """A summary with the columns older summaries lack (NaN / the then only accounting)."""
    summary = summary.copy()
    for col, default in (("regret_std", math.nan), ("sec_per_arch", math.nan), ("n_initial", math.nan),
                         ("accounting", "in_budget"), ("cost_note", "")):
        if col not in summary.columns:
            summary[col] = default
    summary["accounting"] = summary["accounting"].fillna("in_budget").astype(str)
    return summary


def _accounting(summary: pd.DataFrame) -> str:
    """How N and the cost count each strategy's initial samples."""
    parts = []
    for (strategy, accounting), g in _with_defaults(summary).groupby(["strategy", "accounting"], sort=False):
        initial = g["n_initial"].dropna()
        k = int(initial.iloc[0]) if len(initial) else None
        label = STRATEGY_LABELS.get(strategy, strategy)
        if not k:
            parts.append(f"{label}: N architectures")
        elif accounting == "released":
            parts.append(f"{label}: {k} uniform samples on top of N" + (
                " (not costed, not candidates: they fix the reward's normalisation)" if strategy == "reinforce"
                else " (costed, candidates)"))
        else:
            parts.append(f"{label}: the first {k} of N are uniform samples")
    return "Budget N (accounting): " + "; ".join(parts) + "."


def _settings(summary: pd.DataFrame) -> str:
    per = {STRATEGY_LABELS.get(st, st): "; ".join(dict.fromkeys(g["settings"])) or "defaults"
           for st, g in summary.groupby("strategy", sort=False)}
    return "Settings: " + "; ".join(f"{k}: {v}" for k, v in per.items()) + "."


def write_tables(summary: pd.DataFrame, out_dir: Path, name: str, *, summary_csv: bool = True) -> list[Path]:
    """``tables/{name}.md`` and ``.tex`` and (``summary_csv``) ``tables/{name}_summary.csv``."""
    tables = Path(out_dir) / "tables"
    written = write_table(search_table(summary), tables, name, ("md", "tex"))
    if not summary_csv:
        return written
    csv_path = tables / f"{name}_summary.csv"
    summary.to_csv(csv_path, index=False, float_format="%.10g")
    return written + [csv_path]


def read_summary(path: Path | str) -> pd.DataFrame:
    """A summary written by :func:`write_tables` (``tables/{name}_summary.csv``), typed as
    :func:`summarise` returns it (its numbers to the 10 significant digits the file keeps: a table redrawn from it is the same)."""
    import pandas as pd

    df = pd.read_csv(path)
    missing = [c for c in GROUP + ["acc_mean", "acc_std", "cost_mean", "n_seeds", "optimum"] if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a search summary (lacks columns {missing})")
    for col in ("protocol", "machine", "settings", "cost_note"):
        df[col] = df[col].fillna("").astype(str) if col in df.columns else ""
    df = _with_defaults(df)
    return df.astype({"space": str, "images": str, "strategy": str, "objective": str})


# --------------------------------------------------------------------------- figures
def _reference_handles(refs: Sequence[tuple[str, str, dict[str, float]]]) -> tuple[list[Any], list[str]]:
    """Key entries for the levels drawn across the panels: the optimum and each published result."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], **OPTIMUM_LINE)]
    labels = ["optimum (benchmark)"]
    for (_, short, _), (ls, _) in zip(refs, PUBLISHED_LINES):
        handles.append(Line2D([], [], ls=ls, c="black", lw=0.6))
        labels.append(f"{short} (published)")
    return handles, labels


def _key(fig: Any, axes: Any, refs: Sequence[tuple[str, str, dict[str, float]]]) -> None:
    """One key under the panels: every method drawn in any panel, then the reference levels."""
    found: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            found.setdefault(lab, h)
    # one column per objective (R, RE, RL down it), the reference levels last
    objectives = list(dict.fromkeys(lab.split(" + ", 1)[-1] for lab in found))
    strategies = list(STRATEGY_LABELS.values())
    labels = sorted(found, key=lambda lab: (objectives.index(lab.split(" + ", 1)[-1]),
                                            strategies.index(lab.split(" + ")[0]) if lab.split(" + ")[0] in strategies
                                            else len(strategies)))
    h, lab = _reference_handles(refs)
    rows = max(len(strategies), len(lab))
    legend_outside(fig, [found[x] for x in labels] + h, labels + lab, where="bottom",
                   ncol=math.ceil((len(labels) + len(lab)) / rows))


def _panels(plt: Any, summary: pd.DataFrame):
    """(the figure, one panel per dataset, the datasets, a colour per objective)."""
    datasets = _datasets(summary)
    fig, axes = plt.subplots(1, len(datasets), figsize=(max(4.2, 3.1 * len(datasets)), 3.4), squeeze=False)
    objectives = list(dict.fromkeys(summary["objective"]))
    return fig, axes, datasets, dict(zip(objectives, colours() * (1 + len(objectives) // len(colours()))))


def write_figure(summary: pd.DataFrame, out_dir: Path, name: str) -> list[Path]:
    """Mean test accuracy (± std over seeds) against mean search cost, per dataset; the benchmark's
    optimum and the published results as levels across each panel; one key under the panels."""
    figures = Path(out_dir) / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    refs = published(summary)
    with figure_style() as plt:
        fig, axes, datasets, colour = _panels(plt, summary)
        for ax, d in zip(axes[0], datasets):
            sub = summary[summary["images"] == d]
            for r in sub.itertuples():
                ax.errorbar(max(r.cost_mean, 1e-3), r.acc_mean, yerr=None if not np.isfinite(r.acc_std) else r.acc_std,
                            fmt=STRATEGY_MARKERS.get(r.strategy, "x"), color=colour[r.objective], capsize=2,
                            markersize=4, elinewidth=0.8, label=_label(r.strategy, r.objective))
            ax.axhline(sub["optimum"].iloc[0], **OPTIMUM_LINE)
            for (_, _, accs), (ls, _) in zip(refs, PUBLISHED_LINES):
                if d in accs:
                    ax.axhline(accs[d], ls=ls, c="black", lw=0.6)
            ax.set_xscale("log")
            ax.set_xlabel("search cost (s, log scale)")
            ax.set_title(f"{d} ({'/'.join(sub[['target_dataset', 'target_split']].iloc[0])})")
        axes[0][0].set_ylabel(f"test accuracy (%)\n({seeds_note(summary['n_seeds'])})")
        _key(fig, axes[0], refs)
        return save(fig, figures / f"{name}_cost.png")


def load_trajectories(df: pd.DataFrame) -> pd.DataFrame:
    """Every run's ``trajectory.csv`` (beside its ``search.json``) with the run's group columns."""
    import pandas as pd

    parts = []
    for r in df.itertuples():
        path = Path(r.path).with_name("trajectory.csv")
        if path.is_file():
            t = pd.read_csv(path, usecols=["step", "cost_s", "best_accuracy"])
            t = t[t["cost_s"] > 0]  # a released REINFORCE's warm-up: no cost, no incumbent yet
            for col in GROUP + ["seed"]:
                t[col] = getattr(r, col)
            parts.append(t)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def write_curves(traj: pd.DataFrame, summary: pd.DataFrame, out_dir: Path, name: str) -> list[Path]:
    """The incumbent's accuracy against search cost, mean over seeds (each seed's step function
    evaluated on a common log-spaced cost grid, from the cost at which every seed has an
    incumbent), one panel per dataset, one line per method; nothing without trajectories."""
    if traj.empty:
        return []
    with figure_style() as plt:
        fig, axes, datasets, colour = _panels(plt, summary)
        for ax, d in zip(axes[0], datasets):
            sub = traj[traj["images"] == d]
            for (strategy, objective), runs in sub.groupby(["strategy", "objective"], sort=False):
                seeds = [g.sort_values("step") for _, g in runs.groupby("seed")]
                lo = max(float(g["cost_s"].iloc[0]) for g in seeds)
                hi = min(float(g["cost_s"].iloc[-1]) for g in seeds)
                if not (lo > 0 and hi > lo):
                    continue
                grid = np.geomspace(lo, hi, 100)
                acc = [g["best_accuracy"].to_numpy()[np.searchsorted(g["cost_s"].to_numpy(), grid, side="right") - 1]
                       for g in seeds]
                ax.plot(grid, np.nanmean(acc, axis=0), ls=STRATEGY_LINES.get(strategy, "-"), color=colour[objective],
                        label=_label(strategy, objective))
            ax.axhline(summary.loc[summary["images"] == d, "optimum"].iloc[0], **OPTIMUM_LINE)
            ax.set_xscale("log")
            ax.set_xlabel("search cost (s, log scale)")
            ax.set_title(d)
        axes[0][0].set_ylabel("incumbent's test acc. (%)\n(mean over seeds)")
        _key(fig, axes[0], [])
        return save(fig, Path(out_dir) / "figures" / f"{name}_trajectory.png")


def trajectory_figure(steps: Sequence[Mapping[str, Any]], summary: Mapping[str, Any], path: Path) -> list[Path]:
    """One search run's figure: the incumbent's accuracy against search cost (``steps``: the
    run's trajectory rows, ``summary``: its ``search.json``).  Returns the paths written; a
    failure is a warning and returns none (a figure must not lose the search's numbers).  A search
    without ground truth draws its candidates' FLOPs and cost instead
    (:func:`harness.reports.offline.run_figure`)."""
    try:
        if summary.get("ground_truth") is False:
            from .offline import run_figure

            return run_figure(steps, summary, path)
        with figure_style() as plt:
            fig, ax = plt.subplots(figsize=(4.5, 3.0))
            ax.step([s["cost_s"] for s in steps], [s["best_accuracy"] for s in steps], where="post",
                    label="incumbent")
            ax.axhline(summary["optimum"], **OPTIMUM_LINE, label="optimum (benchmark)")
            ax.set_xlabel("search cost (s)")
            ax.set_ylabel(f"incumbent's {'/'.join(summary['target'])} acc. (%)")
            ax.set_title(f"{summary['strategy']} / {summary['objective']} / seed {summary['seed']}")
            legend_outside(fig, *ax.get_legend_handles_labels(), where="bottom")
            return save(fig, path)
    except Exception as err:  # noqa: BLE001
        log.warning("could not draw the trajectory figure: %s", err)
        return []


def build(record_dirs: Iterable[Path | str], out_dir: Path | str, name: str) -> dict[str, Any]:
    """The search table and figures of the records below ``record_dirs``; records of searches
    without ground truth (``mobilenetv2``) get their own table and figure
    (:mod:`harness.reports.offline`), and are not mixed with searches that have an accuracy."""
    runs = load_searches(record_dirs)
    offline = ~runs["ground_truth"].astype(bool)
    if offline.any():
        if not offline.all():
            raise ValueError(f"{int(offline.sum())} of {len(runs)} search records have no ground truth (space "
                             f"{', '.join(map(str, dict.fromkeys(runs.loc[offline, 'space'])))}): report them apart "
                             "from the searches with an accuracy (separate --records)")
        from . import offline as offline_report

        return offline_report.build(runs, out_dir, name)
    summary = summarise(runs)
    paths = write_tables(summary, Path(out_dir), name)
    paths += write_figure(summary, Path(out_dir), name)
    paths += write_curves(load_trajectories(runs), summary, Path(out_dir), name)
    return {"summary": summary, "paths": paths}


def build_from_summary(summary_csv: Path | str, out_dir: Path | str, name: str) -> dict[str, Any]:
    """The table and the cost figure from a committed ``tables/{name}_summary.csv`` alone (the
    trajectories need the runs' records); the summary file is read, not rewritten."""
    summary = read_summary(summary_csv)
    paths = write_tables(summary, Path(out_dir), name, summary_csv=False)
    paths += write_figure(summary, Path(out_dir), name)
    return {"summary": summary, "paths": paths}


def main(argv: Sequence[str] | None = None) -> int:
    from ..commands import command_parser, output_name

    parser = command_parser("search-report")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--records", nargs="+", help="directories holding search.json files")
    source.add_argument("--summary", help="redraw from a search report's tables/{name}_summary.csv alone "
                                          "(table and cost figure; no trajectories)")
    parser.add_argument("--out", default="results", help="output root (tables/, figures/)")
    parser.add_argument("--name", required=True, type=output_name, help="base name of the generated files")
    args = parser.parse_args(argv)
    if args.summary is not None:
        out = build_from_summary(args.summary, args.out, args.name)
    else:
        out = build(args.records, args.out, args.name)
    from ..progress import print_written

    print_written(out["paths"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
