"""The table and figure of searches without ground truth (a space whose benchmark answers no
target, e.g. ``mobilenetv2``: no ImageNet offline), from saved search records only.

Such a search records the found architecture, its counts (FLOPs in the space's convention, the
true parameters, ...), its cost and the device, and no accuracy (``search.json``'s
``ground_truth: false`` and ``accuracy_note``).  One row per search (seed), then the mean ± std
over them:

* the found architecture (its canonical string) and its counts, where the space has them:
  ``flops`` (the space's convention: mobilenetv2 = the released ``get_FLOPs``), ``macs``,
  ``params`` (the true count), ``model_size`` (mobilenetv2: the released ``get_model_size``);
* the candidates evaluated, the **cost per candidate** (mean wall seconds of build + init + batch
  + proxies over the candidates scored now, on the recorded device), the proxy seconds (the
  harness's search cost) and the wall time of the whole search (with the rejected draws, as the
  released log's total), and the draws rejected over the resource limits.

Outputs ``tables/{name}.{md,tex,csv}`` (the reports' table writer) and ``figures/{name}.png``
(and ``.pdf``): each candidate's FLOPs with the incumbent's and the limit, and the cost per
candidate, against the step, one colour per seed.  :func:`run_figure` draws one search's own
``trajectory.png`` the same way.  ``harness search-report`` calls :func:`build` when every record
it is given lacks ground truth.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .style import colours, figure_style, legend_outside, save
from .tables import MISSING, MeanStd, Table, Tex, latex_escape
from .tables import write as write_table

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COUNTS", "PAPER_GPU_S_PER_CANDIDATE", "build", "offline_table", "run_figure", "write_figure"]

#: the counts a row shows, in order: (record key, header, scale, digits)
COUNTS = (("found_flops", "FLOPs (M)", 1e6, 1), ("found_macs", "MACs (M)", 1e6, 1),
          ("found_params", "params (M)", 1e6, 3), ("found_model_size", "model size (M)", 1e6, 3))
#: the WRCor paper's ImageNet search: ~4 GPU hours for 5064 candidates
PAPER_GPU_S_PER_CANDIDATE = 4 * 3600 / 5064


def _num(x: Any, digits: int) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return MISSING
    return f"{v:,.{digits}f}" if math.isfinite(v) else MISSING


def _get(r: Mapping[str, Any], key: str) -> float:
    v = r.get(key)
    try:
        return float(v) if v is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def _genotype_tex(arch: str) -> Tex:
    """The architecture string in LaTeX, breakable after each element."""
    parts = arch.replace(")", ")\n").split("\n")
    return Tex("\\texttt{\\scriptsize " + "\\allowbreak ".join(latex_escape(p) for p in parts if p) + "}")


def _limits_text(r: Mapping[str, Any]) -> str:
    limits = [(k, r.get(f"constraints.{k}")) for k in ("flops_max", "params_max", "latency_max")]
    text = ", ".join(f"{k} {v:,.0f}" if k != "latency_max" else f"{k} {v:g} s"
                     for k, v in limits if v is not None and not (isinstance(v, float) and math.isnan(v)))
    return text or "none"


def offline_table(runs: pd.DataFrame, *, latex: bool = False) -> Table:
    """One row per search (sorted by seed), then mean ± std over the searches (``latex``: the
    table for the LaTeX file, its architectures breakable monospace)."""
    runs = runs.sort_values("seed")
    counts = [c for c in COUNTS if c[0] in runs.columns and runs[c[0]].notna().any()]
    header = ["seed"] + [h for _, h, _, _ in counts] + ["candidates", "cost/cand. (s)", "proxy cost (s)",
                                                        "wall (s)", "rejected (sample/mutate)", "found architecture"]
    rows: list[list[Any]] = []
    records = runs.to_dict("records")
    for r in records:
        rows.append([str(int(r["seed"]))] + [_num(_get(r, k) / scale, d) for k, _, scale, d in counts]
                    + [str(int(r.get("n_asked") or r.get("n_scored") or 0)), _num(_get(r, "cost_per_candidate_s"), 2),
                       _num(_get(r, "search_cost_s"), 1), _num(_get(r, "wall_s"), 1),
                       f"{int(_get(r, 'n_rejected_sample') or 0)}/{int(_get(r, 'n_rejected_mutate') or 0)}",
                       r["arch"]])
    if len(records) > 1:
        def ms(key: str, scale: float = 1.0, digits: int = 1) -> MeanStd:
            v = runs[key].astype(float) / scale if key in runs else None
            return MISSING if v is None else MeanStd(float(v.mean()), float(v.std()), digits=digits)

        rows.append([f"mean ± std ({len(records)})"] + [ms(k, scale, d) for k, _, scale, d in counts]
                    + [ms("n_asked", digits=0), ms("cost_per_candidate_s", digits=2), ms("search_cost_s"),
                       ms("wall_s"), "", ""])
    first = records[0]
    devices = "; ".join(dict.fromkeys(str(r.get("device") or r.get("machine") or "not recorded") for r in records))
    settings = "; ".join(dict.fromkeys(
        f"{r['strategy']} ({r.get('settings') or 'defaults'}) guided by {r['objective']}"
        + (f" (vote: rule {r['vote.rule']}, ties to the {r['vote.ties']})" if _voted(r) else "")
        + f", N={int(r['budget'])}" + (f" + {int(r['n_initial'])} initial (accounting released)"
                                       if r.get("accounting") == "released" and _get(r, "n_initial") > 0 else "")
        for r in records))
    batch = "; ".join(dict.fromkeys(
        f"{int(_get(r, 'batch.size'))} {r.get('batch.kind', 'real')} {r['images']} images"
        + (f" at {int(_get(r, 'batch.resolution'))}x{int(_get(r, 'batch.resolution'))}"
           if math.isfinite(_get(r, 'batch.resolution')) else " at the dataset's own size")
        for r in records if math.isfinite(_get(r, "batch.size"))))
    caption = (f"Searches in the {first['space']} space without ground truth: {settings}; resource limits "
               f"{_limits_text(first)}; proxies' batch: {batch or 'not recorded'}. Counts of the found "
               "architecture as the space counts them (mobilenetv2: FLOPs = the released get_FLOPs multiply-adds, "
               "params = the true number of parameters, model size = the released get_model_size). "
               f"cost/cand. = mean wall seconds of build + init + batch + proxies per candidate scored now, on "
               f"{devices} (the paper: ~{PAPER_GPU_S_PER_CANDIDATE:.1f} s on a GPU, 4 GPU hours for 5064 "
               "candidates); proxy cost = the proxies' own seconds (the harness's search cost); wall = the whole "
               "search, the rejected draws included (the released log's total).")
    notes = [caption, "Accuracy: " + str(first.get("accuracy_note") or "none (no ground truth)") + "."]
    align = "r" * (len(header) - 1) + "l"
    if latex:  # the architecture breakable after each element, in a paragraph column
        rows = [r[:-1] + [_genotype_tex(r[-1]) if r[-1] else ""] for r in rows]
        return Table(header, rows, align=align, latex_spec="r" * (len(header) - 1) + "p{7.5cm}", comments=notes)
    return Table(header, rows, align=align, notes=notes)


def write_figure(runs: pd.DataFrame, out_dir: Path | str, name: str) -> list[Path]:
    """Per seed: each candidate's FLOPs (and the incumbent's, and the limit) and the cost per
    candidate against the step, from the runs' ``trajectory.csv``; nothing without them."""
    import pandas as pd

    trajs = {}
    for r in runs.sort_values("seed").itertuples():
        path = Path(r.path).with_name("trajectory.csv")
        if path.is_file():
            trajs[int(r.seed)] = pd.read_csv(path)
    if not trajs:
        return []
    limit = runs["constraints.flops_max"].dropna().iloc[0] if "constraints.flops_max" in runs and \
        runs["constraints.flops_max"].notna().any() else None
    device = "; ".join(dict.fromkeys(runs["device"].astype(str))) if "device" in runs else ""
    first = runs.iloc[0]
    return _draw(trajs, limit, device, Path(out_dir) / "figures" / f"{name}.png",
                 title=f"{first['space']}: {first['strategy']} guided by {first['objective']}"
                 + (f" (rule {first['vote.rule']})" if _voted(first) else ""))


def _voted(r: Mapping[str, Any]) -> bool:
    """Whether a search record's objective combines proxies (so its vote rule matters)."""
    import proxies

    return isinstance(r.get("vote.rule"), str) and proxies.is_aggregator(str(r["objective"]))


def run_figure(steps: Sequence[Mapping[str, Any]], summary: Mapping[str, Any], path: Path) -> list[Path]:
    """One search's own ``trajectory.png`` without ground truth (see :func:`write_figure`)."""
    import pandas as pd

    limit = (summary.get("constraints") or {}).get("flops_max")
    return _draw({int(summary["seed"]): pd.DataFrame(list(steps))}, limit, str(summary.get("device", "")), path,
                 title=f"{summary['strategy']} / {summary['objective']} / seed {summary['seed']}")


def _incumbent_flops(t: pd.DataFrame) -> np.ndarray:
    flops = dict(zip(t["arch"], t["arch_flops"]))
    return np.array([flops.get(b, math.nan) if isinstance(b, str) else math.nan for b in t["best_arch"]], float)


def _draw(trajs: Mapping[int, pd.DataFrame], limit: float | None, device: str, path: Path, *, title: str) -> list[Path]:
    has_flops = all("arch_flops" in t for t in trajs.values())
    has_cost = all("eval_wall_s" in t and t["eval_wall_s"].notna().any() for t in trajs.values())
    panels = [p for p, ok in (("flops", has_flops), ("cost", has_cost)) if ok]
    if not panels:
        return []
    colour = dict(zip(trajs, colours() * (1 + len(trajs) // len(colours()))))
    from matplotlib.ticker import MaxNLocator

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with figure_style() as plt:
        fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels) + 0.6, 3.0), squeeze=False)
        handles, labels = [], []
        for ax, panel in zip(axes[0], panels):
            for seed, t in trajs.items():
                c = colour[seed]
                if panel == "flops":
                    h = ax.scatter(t["step"], t["arch_flops"] / 1e6, s=7, color=c, alpha=0.55, lw=0)
                    line, = ax.step(t["step"], _incumbent_flops(t) / 1e6, where="post", color=c, lw=1.1)
                    handles += [h, line]
                    labels += [f"seed {seed}: candidates", f"seed {seed}: incumbent"]
                else:
                    done = t[t["eval_wall_s"].notna()]
                    h, = ax.plot(done["step"], done["eval_wall_s"], "o-", ms=2.5, lw=0.6, color=c)
                    handles.append(h)
                    labels.append(f"seed {seed}: candidates")
            first = next(iter(trajs.values()))
            if "phase" in first and (first["phase"] == "initial").any() and (first["phase"] == "search").any():
                start = float(first.loc[first["phase"] == "search", "step"].iloc[0]) - 0.5
                ref = ax.axvline(start, ls="-.", c="0.6", lw=0.7)
                handles.append(ref)
                labels.append("end of the initial population")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if panel == "flops":
                ax.set_ylim(bottom=0)
                if limit is not None and math.isfinite(float(limit)):
                    ref = ax.axhline(float(limit) / 1e6, ls="--", c="grey", lw=0.8)
                    handles.append(ref)
                    labels.append(f"FLOPs limit ({float(limit) / 1e6:g}M)")
                ax.set_ylabel("FLOPs (M, released count)")
            else:
                ref = ax.axhline(PAPER_GPU_S_PER_CANDIDATE, ls=":", c="black", lw=0.8)
                handles.append(ref)
                labels.append(f"paper, GPU (~{PAPER_GPU_S_PER_CANDIDATE:.1f} s)")
                ax.set_ylim(bottom=0)
                ax.set_ylabel("cost per candidate (s)")
                if device:
                    ax.set_title(device if len(device) <= 48 else device[:45] + "...", fontsize=6.5)
            ax.set_xlabel("step (candidate)")
        fig.suptitle(title, fontsize=8)
        legend_outside(fig, handles, labels, where="bottom", ncol=3)
        return save(fig, path)


def build(runs: pd.DataFrame, out_dir: Path | str, name: str) -> dict[str, Any]:
    """``tables/{name}.{md,tex,csv}`` and ``figures/{name}`` from the records of searches without
    ground truth (``runs``: :func:`harness.reports.search.load_searches`)."""
    tables = Path(out_dir) / "tables"
    paths = write_table(offline_table(runs), tables, name, ("md",))
    paths += write_table(offline_table(runs, latex=True), tables, name, ("tex",))
    paths += write_table(offline_table(runs), tables, name, ("csv",))
    paths += write_figure(runs, out_dir, name)
    return {"summary": runs, "paths": paths}
