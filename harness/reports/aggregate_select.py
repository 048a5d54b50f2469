"""Choose a training-free rank aggregate on a calibration split, judge it on a held-out split
(``harness aggregate-select``).

From the records of scoring jobs (one per seed; e.g. the paper sweep's ``runs/paper/proxies``),
for one image dataset and one ground-truth target, every seed in turn:

1. its architectures are split at random (the seed's own permutation, ``--split-seed`` to fix
   one) into a *calibration* part (``--calibration``, a fraction) and a disjoint *held-out* part;
2. every candidate aggregate is ranked over the calibration part only: each rule of ``--rules``
   (``logrank``, ``ranksum``, ``majority``: :mod:`proxies.aggregators`) over ``--require`` (WRCor)
   plus up to ``--max-components - 1`` other proxies of ``--pool``, each counted in its registered
   direction; the one with the highest calibration Kendall τ (``--criterion``) is *selected*
   (ties: fewer components, then the name).  Only the calibration part's accuracies are read;
3. the selected aggregate, the comparators (``--compare``: proxies and aggregates, e.g. WRCor,
   the SJW vote, the peers' aggregates when their proxies were scored) and every other candidate
   are ranked over the held-out part, which is their population, and correlated with its accuracies.

No accuracy enters an aggregate's score: the pool is registered proxies only.  Outputs, under
``--out``: ``tables/{name}`` (Markdown, LaTeX, CSV: held-out τ and ρ, mean ± std over seeds,
beside the published numbers of the same dataset with their population), ``tables/{name}_seeds``
(per seed: the aggregate selected, its calibration and held-out numbers, the best comparator's),
``tables/{name}_candidates.csv`` (the ``--top`` candidates of each seed by calibration τ, with
their held-out numbers) and ``figures/{name}`` (calibration τ against held-out τ of every
candidate, one panel per seed).  The best candidate *on the held-out part* is reported too, marked
as what it is: a selection on the evaluation split, which does not count.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from .metrics import rank_metrics
from .paper import published_correlations
from .scores import load_records, parse_truth_column, truth_column
from .style import figure_style, legend_outside, save
from .tables import MeanStd, Table
from .tables import write as write_table

__all__ = ["Candidate", "SelectionError", "candidates", "candidate_scores", "select", "build", "main"]

RULES = ("logrank", "ranksum", "majority")
FORMATS = ("md", "tex", "csv")
#: the default comparators, each reported where its proxies were scored
COMPARE = ("wrcor", "vote_sjw", "vote_spw", "meco", "zico", "az_nas", "vkdnw_agg", "te_nas")
#: the published numbers the table places beside ours (VKDNW_agg: the best published; AZ-NAS)
PUBLISHED = ("vkdnw_agg", "az_nas")


class SelectionError(ValueError):
    """A setting or a record that makes the selection impossible (one line for the user)."""


@dataclass(frozen=True)
class Candidate:
    """``rule`` over ``components`` (proxy names), each with its registered direction."""

    rule: str
    components: tuple[str, ...]

    @property
    def name(self) -> str:
        """The aggregate spec (``harness run 'aggregates=[...]'`` accepts it as written)."""
        return f"{self.rule}({','.join(self.components)})"


def candidates(require: Sequence[str], pool: Sequence[str], rules: Sequence[str], max_components: int
               ) -> list[Candidate]:
    """Every rule over ``require`` plus 0..``max_components - len(require)`` others of ``pool``
    (a one-component aggregate is that proxy: listed once, under the first rule)."""
    others = [p for p in dict.fromkeys(pool) if p not in require]
    out: list[Candidate] = []
    for k in range(0, max_components - len(require) + 1):
        for extra in itertools.combinations(others, k):
            comps = tuple(require) + extra
            for rule in (rules[:1] if len(comps) == 1 else rules):
                out.append(Candidate(rule, comps))
    return out


class _Split:
    """One split's component scores, with what every candidate needs computed once: each
    component's oriented mid-ranks (logrank, ranksum) and, for the majority, its pairwise signs."""

    def __init__(self, table: pd.DataFrame, directions: dict[str, float]):
        from proxies.aggregators import oriented_ranks

        self.n = len(table)
        cols = list(table.columns)
        scores = table.to_numpy(dtype=float)
        signs = np.array([directions[c] for c in cols])
        ranks = oriented_ranks(scores, signs)
        self.rank = {c: ranks[:, i] for i, c in enumerate(cols)}
        self.logrank = {c: np.log(ranks[:, i] / max(self.n, 1)) for i, c in enumerate(cols)}
        self._signed = {c: scores[:, i] * signs[i] for i, c in enumerate(cols)}
        self._pairs: dict[str, np.ndarray] = {}

    def pairs(self, c: str) -> np.ndarray:
        """(n, n) int8: +1 where row i's score beats row j's in ``c``'s direction, -1 where it loses,
        0 for a tie or a NaN (an abstention, as :func:`proxies.vote.copeland_scores` counts it)."""
        if c not in self._pairs:
            s = self._signed[c]
            self._pairs[c] = ((s[:, None] > s[None, :]).astype(np.int8) - (s[:, None] < s[None, :]).astype(np.int8))
        return self._pairs[c]

    def score(self, cand: Candidate) -> np.ndarray:
        """The candidate's aggregate score of every architecture of the split (higher is better),
        equal to :meth:`proxies.aggregators.Aggregator.scores` over the same population."""
        if cand.rule == "logrank":
            return np.sum([self.logrank[c] for c in cand.components], axis=0)
        if cand.rule == "ranksum":
            return np.sum([self.rank[c] for c in cand.components], axis=0)
        if cand.rule == "majority":  # Copeland, relative majority
            margin = np.sum([self.pairs(c) for c in cand.components], axis=0, dtype=np.int16)
            wins, losses = (margin > 0).sum(axis=1), (margin < 0).sum(axis=1)
            return wins + 0.5 * ((self.n - 1) - wins - losses)
        raise SelectionError(f"unknown rule {cand.rule!r}; valid: {list(RULES)}")


def candidate_scores(table: pd.DataFrame, cand: Candidate) -> np.ndarray:
    """``cand``'s aggregate scores over the population ``table`` (rows: architectures, columns:
    at least the candidate's components), each component in its registered direction."""
    sub = table[list(cand.components)]
    return _Split(sub, _directions(sub.columns)).score(cand)


def _directions(names: Iterable[str]) -> dict[str, float]:
    from proxies import get_proxy

    return {n: (1.0 if get_proxy(n).higher_is_better else -1.0) for n in names}


def _evaluate(split: _Split, truth: np.ndarray, cand: Candidate) -> tuple[float, float]:
    m = rank_metrics(split.score(cand), truth)
    return m.tau, m.rho


def _comparator_scores(name: str, table: pd.DataFrame) -> np.ndarray | None:
    """A comparator's scores over the population ``table``: a proxy's column, or an aggregate
    ranked over these rows (None when a proxy it needs was not scored)."""
    from proxies.aggregators import get_aggregator, is_aggregator

    if is_aggregator(name):
        agg = get_aggregator(name)
        if any(leaf not in table.columns for leaf in agg.leaves):
            return None
        return agg.scores({leaf: table[leaf].to_numpy(dtype=float) for leaf in agg.leaves})
    if name not in table.columns:
        return None
    from proxies import get_proxy

    col = table[name].to_numpy(dtype=float)
    return col if get_proxy(name).higher_is_better else -col


# --------------------------------------------------------------------------- the selection
def _seed_tables(scores: pd.DataFrame, dataset: str, target: str) -> dict[int, tuple[pd.DataFrame, pd.Series]]:
    """seed -> (architectures x proxies score table, the target's accuracy), the dataset's rows only."""
    rows = scores[scores["dataset"].astype(str) == dataset]
    if rows.empty:
        found = sorted(set(scores["dataset"].astype(str)))
        raise SelectionError(f"no scores for dataset {dataset!r} in the records; they hold {found}")
    if target not in rows.columns:
        have = [parse_truth_column(c) for c in rows.columns if c.startswith("truth__")]
        raise SelectionError(f"the records of {dataset} have no target {'/'.join(parse_truth_column(target))}; "
                             f"they have {['/'.join(t) for t in have]}")
    ok = rows[rows["status"].astype(str) == "ok"] if "status" in rows.columns else rows
    out = {}
    for seed, sub in ok.groupby("seed", sort=True):
        table = sub.pivot_table(index="arch_index", columns="proxy", values="score", aggfunc="first", dropna=False)
        truth = pd.to_numeric(sub.groupby("arch_index")[target].first(), errors="coerce").reindex(table.index)
        keep = truth.notna()
        out[int(seed)] = (table[keep], truth[keep])
    return out


def select(table: pd.DataFrame, truth: pd.Series, cands: Sequence[Candidate], *, calibration: float,
           split_seed: int, criterion: str = "tau", compare: Sequence[str] = ()) -> dict[str, Any]:
    """One seed: split, select on the calibration part, evaluate on the held-out part.

    Returns ``{"cal": index, "held": index, "selected": Candidate, "candidates": DataFrame (rule,
    name, k, cal_tau, cal_rho, held_tau, held_rho), "compare": {name: (tau, rho)}}``.  The
    selection reads ``truth`` on the calibration rows only.
    """
    rng = np.random.default_rng(split_seed)
    order = rng.permutation(len(table))
    n_cal = int(round(calibration * len(table)))
    cal_idx, held_idx = table.index[np.sort(order[:n_cal])], table.index[np.sort(order[n_cal:])]
    if min(len(cal_idx), len(held_idx)) < 10:
        raise SelectionError(f"a split of {len(table)} architectures at --calibration {calibration} leaves "
                             f"{len(cal_idx)} for calibration and {len(held_idx)} held out; each needs 10 or more")
    comps = list(dict.fromkeys(c for cand in cands for c in cand.components))
    dirs = _directions(comps)
    cal = _Split(table.loc[cal_idx, comps], dirs)
    cal_truth = truth.loc[cal_idx].to_numpy(dtype=float)
    records = []
    for cand in cands:
        tau, rho = _evaluate(cal, cal_truth, cand)
        records.append({"rule": cand.rule, "name": cand.name, "k": len(cand.components),
                        "cal_tau": tau, "cal_rho": rho, "_cand": cand})
    ranked = pd.DataFrame(records)
    key = f"cal_{criterion}"
    ranked["_key"] = ranked[key].fillna(-np.inf)
    ranked = ranked.sort_values(["_key", "k", "name"], ascending=[False, True, True], kind="mergesort")
    selected = ranked["_cand"].iloc[0]
    # only now is the held-out part's accuracy read
    held = _Split(table.loc[held_idx, comps], dirs)
    held_truth = truth.loc[held_idx].to_numpy(dtype=float)
    held_metrics = [_evaluate(held, held_truth, c) for c in ranked["_cand"]]
    ranked["held_tau"] = [m[0] for m in held_metrics]
    ranked["held_rho"] = [m[1] for m in held_metrics]
    compared = {}
    for name in compare:
        s = _comparator_scores(name, table.loc[held_idx])
        if s is not None:
            m = rank_metrics(s, held_truth)
            compared[name] = (m.tau, m.rho)
    return {"cal": cal_idx, "held": held_idx, "selected": selected,
            "candidates": ranked.drop(columns=["_cand", "_key"]).reset_index(drop=True), "compare": compared}


# --------------------------------------------------------------------------- tables and figure
def _ms(values: Sequence[float]) -> MeanStd:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if not len(v):
        return MeanStd(math.nan, math.nan)
    return MeanStd(float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan)


def _summary_table(per_seed: dict[int, dict[str, Any]], published: list[Any], caption: str) -> Table:
    seeds = sorted(per_seed)
    n_held = sorted({len(r["held"]) for r in per_seed.values()})
    rows: list[list[Any]] = []

    sel = [per_seed[s]["candidates"].iloc[0] for s in seeds]
    sel_tau = [r["held_tau"] for r in sel]

    def row(label: str, taus: list[float], rhos: list[float], how: str, *, gain: bool = True) -> None:
        # gain: the selected aggregate's held-out τ minus this row's, seed by seed (the same split)
        diff = _ms([a - b for a, b in zip(sel_tau, taus)]) if gain else ""
        rows.append([label, _ms(taus), _ms(rhos), diff, len([t for t in taus if math.isfinite(t)]),
                     "/".join(map(str, n_held)), how, "", "", ""])

    row("selected on the calibration split", sel_tau, [r["held_rho"] for r in sel],
        "; ".join(dict.fromkeys(r["name"] for r in sel)), gain=False)
    for name in dict.fromkeys(n for s in seeds for n in per_seed[s]["compare"]):
        vals = [per_seed[s]["compare"].get(name, (math.nan, math.nan)) for s in seeds]
        row(name, [v[0] for v in vals], [v[1] for v in vals], "comparator")
    best = [per_seed[s]["candidates"].sort_values("held_tau", ascending=False).iloc[0] for s in seeds]
    row("best candidate on the held-out split (selected on the evaluation split: does not count)",
        [r["held_tau"] for r in best], [r["held_rho"] for r in best],
        "; ".join(dict.fromkeys(r["name"] for r in best)))
    by_proxy: dict[str, dict[str, Any]] = {}
    for p in published:
        by_proxy.setdefault(p.proxy, {}).setdefault(p.metric, p)  # the benchmark's first: the paper's own
    for proxy, metrics in by_proxy.items():
        any_p = next(iter(metrics.values()))
        rows.append([f"{proxy} (published)", _num(metrics.get("tau")), _num(metrics.get("rho")), "", "", "",
                     "published", any_p.population, f"{any_p.source}" + (f", {any_p.where}" if any_p.where else ""),
                     "/".join(any_p.target) if any_p.target else "not stated"])
    return Table(["method", "held-out τ", "held-out ρ", "selected τ − this τ (same split)", "seeds", "N held out",
                  "aggregate / kind", "population", "source", "target"], rows, align="lrrrrrllll", notes=[caption])


def _num(p: Any) -> Any:
    return "" if p is None else f"{p.value:.3f}"


def _seeds_table(per_seed: dict[int, dict[str, Any]], caption: str) -> Table:
    rows = []
    for s in sorted(per_seed):
        r = per_seed[s]
        top = r["candidates"].iloc[0]
        best_cmp = max(r["compare"].items(), key=lambda kv: -math.inf if not math.isfinite(kv[1][0]) else kv[1][0],
                       default=(None, (math.nan, math.nan)))
        rows.append([s, top["name"], len(r["cal"]), len(r["held"]), f"{top['cal_tau']:.3f}", f"{top['held_tau']:.3f}",
                     f"{top['held_rho']:.3f}", best_cmp[0] or "", f"{best_cmp[1][0]:.3f}", f"{best_cmp[1][1]:.3f}"])
    return Table(["seed", "selected aggregate", "N cal", "N held out", "cal τ", "held-out τ", "held-out ρ",
                  "best comparator", "its held-out τ", "its held-out ρ"], rows, align="llrrrrrlrr", notes=[caption])


def _figure(per_seed: dict[int, dict[str, Any]], published: list[Any], path: Path, criterion: str) -> list[Path]:
    seeds = sorted(per_seed)
    pub_tau: dict[str, Any] = {}
    for p in published:
        if p.metric == "tau":
            pub_tau.setdefault(p.proxy, p)  # the benchmark's first, as in the table
    with figure_style() as plt:
        fig, axes = plt.subplots(1, len(seeds), figsize=(3.2 * len(seeds), 3.2), squeeze=False, sharey=True,
                                 layout="constrained")
        handles: dict[str, Any] = {}
        for ax, s in zip(axes[0], seeds):
            df = per_seed[s]["candidates"]
            for rule in (r for r in RULES if r in set(df["rule"])):  # one colour per rule in every panel
                sub = df[df["rule"] == rule]
                handles[f"candidate: {rule}"] = ax.scatter(sub[f"cal_{criterion}"], sub["held_tau"], s=4,
                                                           alpha=0.35, color=f"C{RULES.index(rule)}", linewidths=0)
            top = df.iloc[0]
            handles["selected on calibration"] = ax.scatter([top[f"cal_{criterion}"]], [top["held_tau"]], marker="*",
                                                            s=90, color="k", zorder=5)
            for name, ls, colour in (("wrcor", ":", "grey"), ("vote_sjw", "-.", "grey"), ("az_nas", "-", "C3")):
                if name in per_seed[s]["compare"]:
                    handles[f"{name} on this held-out split"] = ax.axhline(per_seed[s]["compare"][name][0], ls=ls,
                                                                          c=colour, lw=0.8)
            for (name, pub), colour in zip(pub_tau.items(), ("C3", "C4", "C5")):
                handles[f"{name} published τ ({pub.population}: another population)"] = ax.axhline(
                    pub.value, ls="--", c=colour, lw=0.9)
            ax.set_title(f"seed {s}: {len(per_seed[s]['cal'])} cal / {len(per_seed[s]['held'])} held out")
            ax.set_xlabel(f"calibration {'Kendall τ' if criterion == 'tau' else 'Spearman ρ'}")
        axes[0][0].set_ylabel("held-out Kendall τ")
        legend_outside(fig, list(handles.values()), list(handles), where="bottom", ncol=3)
        return save(fig, path)


# --------------------------------------------------------------------------- entry points
def build(record_dirs: Iterable[Path | str], out_dir: Path | str, name: str, *, dataset: str = "cifar10",
          target: str = "cifar10/test", require: Sequence[str] = ("wrcor",), pool: Sequence[str] | None = None,
          rules: Sequence[str] = RULES, max_components: int = 5, calibration: float = 0.5,
          split_seed: int | None = None, criterion: str = "tau", compare: Sequence[str] = COMPARE,
          top: int = 25) -> dict[str, Any]:
    """Run the selection on every seed of the records and write the tables and the figure."""
    from proxies import get_proxy, list_proxies
    from proxies.aggregators import is_aggregator

    if not 0 < calibration < 1:
        raise SelectionError(f"--calibration is the calibration split's fraction, in (0, 1); got {calibration}")
    if criterion not in ("tau", "rho"):
        raise SelectionError(f"--criterion is tau or rho; got {criterion!r}")
    bad_rules = [r for r in rules if r not in RULES]
    if bad_rules or not rules:
        raise SelectionError(f"unknown rule(s) {bad_rules}; valid: {list(RULES)}")
    if max_components < len(require) or not require:
        raise SelectionError(f"--max-components ({max_components}) must be at least the required proxies "
                             f"({len(require)}: {list(require)})")
    tdataset, _, tsplit = target.partition("/")
    if not tsplit:
        raise SelectionError(f"--target is dataset/split, e.g. cifar10/test; got {target!r}")
    scores, _ = load_records([Path(p) for p in record_dirs])
    if scores.empty:
        raise SelectionError("the records hold no scores.csv: point --records at scoring jobs' directories")
    tables = _seed_tables(scores, dataset, truth_column(tdataset, tsplit))
    by_seed = {seed: set(map(str, t.columns)) for seed, (t, _) in tables.items()}
    scored = set.intersection(*by_seed.values())  # a candidate's proxies are scored in every seed
    if pool is None:  # every registered proxy the records scored, with its registered parameters
        pool = [n for n in sorted(scored & set(list_proxies())) if n not in require]
    for n in list(require) + list(pool):
        if "@" in n or is_aggregator(n):
            raise SelectionError(f"{n!r} is an aggregate; the pool holds proxies (compare aggregates with --compare)")
        get_proxy(n)  # an unknown name lists the registered proxies
    missing = [n for n in list(require) + list(pool) if n not in scored]
    if missing:
        lacking = sorted(seed for seed, names in by_seed.items() if set(missing) - names)
        raise SelectionError(f"the records of {dataset} hold no scores of {missing} (seeds {lacking}); "
                             f"every seed has {sorted(scored)}")
    cands = candidates(require, pool, rules, max_components)
    per_seed = {s: select(t, y, cands, calibration=calibration, criterion=criterion, compare=compare,
                          split_seed=s if split_seed is None else split_seed) for s, (t, y) in tables.items()}
    space = str(scores["space"].iloc[0])
    published = [p for p in published_correlations(space, dataset) if p.proxy in PUBLISHED]
    caption = (f"A WRCor-containing training-free aggregate chosen on a calibration split and judged on a disjoint "
               f"held-out split: {space}, {dataset} images, target {tdataset}/{tsplit}. Candidates: "
               f"{len(cands):,} ({', '.join(rules)} over {' + '.join(require)} and up to "
               f"{max_components - len(require)} of {len(pool)} proxies: {', '.join(pool)}), each proxy in its "
               f"registered direction; selected by the calibration split's {'Kendall τ' if criterion == 'tau' else 'Spearman ρ'}. Each seed's scores and split "
               f"are its own ({'split seed = scoring seed' if split_seed is None else f'split seed {split_seed}'}); "
               f"every aggregate is ranked over the held-out architectures (its population). Published numbers are "
               f"over their own population (e.g. all 15,625 architectures), not our held-out split.")
    out = Path(out_dir)
    written = write_table(_summary_table(per_seed, published, caption), out / "tables", name, FORMATS)
    written += write_table(_seeds_table(per_seed, caption), out / "tables", f"{name}_seeds", FORMATS)
    cand_csv = out / "tables" / f"{name}_candidates.csv"
    pd.concat([per_seed[s]["candidates"].head(top).assign(seed=s) for s in sorted(per_seed)]).to_csv(
        cand_csv, index=False, float_format="%.6g")
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    written += [cand_csv] + _figure(per_seed, published, figures / f"{name}.png", criterion)
    return {"per_seed": per_seed, "candidates": cands, "paths": written}


def _names(text: str) -> list[str]:
    from proxies.aggregators import _split_top

    return [n for n in _split_top(text) if n]


def main(argv: Sequence[str] | None = None) -> int:
    from ..commands import command_parser, output_name

    parser = command_parser("aggregate-select", epilog=(
        "example: harness aggregate-select --records runs/paper/proxies --dataset cifar10 --target cifar10/test"))
    parser.add_argument("--records", nargs="+", type=Path, required=True,
                        help="scoring jobs' output dirs (searched recursively), one or more seeds")
    parser.add_argument("--dataset", default="cifar10", help="the image dataset whose scores are aggregated")
    parser.add_argument("--target", default="cifar10/test", help="the ground truth, dataset/split")
    parser.add_argument("--require", default="wrcor", help="proxies every candidate contains (comma-separated)")
    parser.add_argument("--pool", default=None,
                        help="the other proxies a candidate may use (comma-separated); default: every plain "
                             "proxy the records scored (no aggregates, no parametrised variants)")
    parser.add_argument("--rules", default=",".join(RULES), help=f"aggregation rules to try, of {list(RULES)}")
    parser.add_argument("--max-components", type=int, default=5, help="most proxies in one candidate")
    parser.add_argument("--calibration", type=float, default=0.5, help="the calibration split's fraction")
    parser.add_argument("--split-seed", type=int, default=None, help="one split for every seed (default: each "
                                                                        "scoring seed splits with its own seed)")
    parser.add_argument("--criterion", default="tau", choices=("tau", "rho"), help="what the selection maximises")
    parser.add_argument("--compare", default=",".join(COMPARE),
                        help="proxies and aggregates judged on the same held-out split (those not scored are left out)")
    parser.add_argument("--top", type=int, default=25, help="candidates per seed kept in {name}_candidates.csv")
    parser.add_argument("--out", type=Path, default=Path("results"), help="output root (tables/, figures/)")
    parser.add_argument("--name", default="aggregate_nb201_cifar10", type=output_name, help="base name of the files")
    args = parser.parse_args(argv)
    from spaces.vocabulary import UnknownNameError

    try:
        out = build(args.records, args.out, args.name, dataset=args.dataset, target=args.target,
                    require=_names(args.require), pool=None if args.pool is None else _names(args.pool),
                    rules=_names(args.rules), max_components=args.max_components, calibration=args.calibration,
                    split_seed=args.split_seed, criterion=args.criterion, compare=_names(args.compare), top=args.top)
    except (FileNotFoundError, SelectionError, UnknownNameError, ValueError) as exc:
        parser.exit(2, f"harness aggregate-select: {exc}\n")
    from ..progress import print_written

    for s, r in sorted(out["per_seed"].items()):
        top = r["candidates"].iloc[0]
        print(f"seed {s}: selected {top['name']} on {len(r['cal'])} archs (τ {top['cal_tau']:.3f}); "
              f"held-out {len(r['held'])} archs: τ {top['held_tau']:.3f}, ρ {top['held_rho']:.3f}")
    print_written(out["paths"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
