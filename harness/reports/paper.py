"""The paper's proxy tables with the published numbers beside ours (``harness paper-report``).

From the records of a scoring sweep over several image datasets (``make reproduce-paper``:
``experiment=proxies_1000``, every proxy and the WRCor weighting ablation x three datasets x three
seeds), or from the summary such a report wrote:

* ``tables/{name}_proxies_{images}`` (Markdown, LaTeX, CSV), one per image dataset: per proxy, τ
  and ρ (mean ± std over seeds) against each of that dataset's ground-truth targets, the seeds,
  architectures and non-finite scores, s/arch, and -- where a paper published a value
  (:meth:`spaces.benchmarks.TableBenchmark.published_correlations`) -- the published ρ, the
  population it was measured on, its source, and ours minus it (on the published target when the
  paper names one, else on the dataset's first target).  A published value over another population
  (all 15,625 against our first 1000) is another number: the column says which.
* ``tables/{name}_ablation``: the WRCor family and its variants (``wrcor(key=value)``), with the
  responses, weighting, power and convention each uses, ρ per image dataset (first target) and its
  difference to WRCor's.
* ``figures/{name}_proxies`` and ``figures/{name}_ablation`` (PNG and PDF): ρ per proxy / variant,
  mean ± std over seeds, published values as open diamonds.
* ``tables/{name}_summary.csv``: the summary, from which ``--summary`` redraws all of the above.

The image dataset of a target comes from the space's configuration (``space.targets``).  A
dataset whose images are a stand-in (ImageNet16-120 here: see ``../shared/data/README.md``) says
so in its table's caption.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from .scores import load_records, read_summary, summarise
from .style import ERROR_BAR, figure_style, label_width, legend_outside, save, seeds_note
from .tables import MISSING, MeanStd, Table
from .tables import write as write_table

__all__ = ["STAND_IN_IMAGES", "image_datasets", "published_correlations", "published_for", "proxies_table", "ablation_table", "build",
           "build_from_summary", "main"]

#: image datasets whose proxy batch is not the official pixels (the tables say so)
STAND_IN_IMAGES = {"ImageNet16-120": "the ImageNet16-120 batch is a STAND-IN (one real photo per class, 3 views, "
                                     "downsampled to 16x16), not the official pixels"}
#: the WRCor family: the ablation table's rows besides the ``wrcor(...)`` variants
FAMILY = ("wrcor", "wrcor_official", "rcor", "acor", "gcor")
FORMATS = ("md", "tex", "csv")


def _is_variant(proxy: str) -> bool:
    """A WRCor-family spec (``wrcor(weighting=none)``): an ablation row.  Any other spec (a peer's
    variant such as ``vkdnw(jacobian=per_class)``, an aggregate ``logrank(...)``) is a proxy row."""
    return "(" in proxy and proxy.split("(", 1)[0] in FAMILY


def image_datasets(space: str) -> dict[tuple[str, str], str]:
    """(target dataset, split) -> the image dataset whose jobs rank against it (``space.targets``)."""
    from ..config import compose

    targets = compose("config", [f"space={space}", "tracking=none"]).space.targets
    return {(str(d), str(s)): str(images) for images, pairs in targets.items() for d, s in pairs}


def published_correlations(space: str, images: str) -> list[Any]:
    """Every published rank correlation of a proxy scored on ``images`` in ``space``'s benchmark,
    in the benchmark's order; none for a space that is not installed here."""
    import spaces

    try:
        bench = spaces.get_space(space).benchmark
    except (spaces.UnknownNameError, spaces.DataFileError):
        return []
    return bench.published_correlations(images)


def published_for(space: str, images: str) -> dict[str, Any]:
    """proxy -> the published rank correlation of it on ``images`` (the benchmark's first for
    that proxy), none for a space that is not installed here."""
    out: dict[str, Any] = {}
    for p in published_correlations(space, images):
        if p.metric == "rho":  # the tables' column (a tau is published for some peers too)
            out.setdefault(p.proxy, p)
    return out


def _with_images(summary: pd.DataFrame) -> pd.DataFrame:
    df = summary.astype({"space": str, "dataset": str, "split": str, "proxy": str}).copy()
    maps = {space: image_datasets(space) for space in dict.fromkeys(df["space"])}
    df["images"] = [maps[sp].get((d, s), d) for sp, d, s in zip(df["space"], df["dataset"], df["split"])]
    return df


def _sec(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else MISSING


def _joined(values: Iterable[float]) -> str:
    texts = list(dict.fromkeys(str(int(v)) if math.isfinite(v) and float(v).is_integer() else f"{v:.1f}"
                               for v in values))
    return "/".join(texts) if texts else MISSING


# --------------------------------------------------------------------------- the proxy table
def proxies_table(df: pd.DataFrame, images: str) -> Table:
    """The proxies (no ablation variants) scored on ``images``: ours per target, then the published ρ."""
    sub = df[(df["images"] == images) & ~df["proxy"].map(_is_variant)]
    space = str(sub["space"].iloc[0])
    targets = list(dict.fromkeys(zip(sub["dataset"], sub["split"])))
    index = {(r.proxy, r.dataset, r.split): r for r in sub.itertuples()}
    published = published_for(space, images)
    rows = []
    for proxy in dict.fromkeys(sub["proxy"]):
        mine = [index.get((proxy, d, s)) for d, s in targets]
        cells: list[Any] = [proxy]
        for r in mine:
            cells += [MeanStd(r.tau_mean, r.tau_std), MeanStd(r.rho_mean, r.rho_std)] if r else [MISSING, MISSING]
        found = [r for r in mine if r is not None]
        cells += [_joined(r.n_seeds for r in found), _joined(r.n_archs for r in found),
                  _joined(r.n_nan + r.n_inf for r in found), _sec(float(np.nanmean([r.sec_per_arch for r in found])))]
        pub = published.get(proxy)
        if pub is None:
            cells += [MISSING] * 4
        else:
            target = pub.target if pub.target in targets else targets[0]
            ours = index.get((proxy, *target))
            diff = ours.rho_mean - pub.value if ours is not None and math.isfinite(ours.rho_mean) else math.nan
            cells += [f"{pub.value:.3f}", pub.population, f"{pub.source} [{pub.cite}]" if pub.cite else pub.source,
                      f"{diff:+.3f} ({'/'.join(target)})" if math.isfinite(diff) else MISSING]
        rows.append(cells)
    header = (["proxy"] + [f"{d}/{s} {g}" for d, s in targets for g in ("τ", "ρ")]
              + ["seeds", "archs", "NaN/inf", "s/arch", "published ρ", "published over", "source", "Δρ (on)"])
    protocols = "; ".join(dict.fromkeys(p for ps in sub["protocol"] for p in str(ps).split("; ") if p))
    n_archs = _joined(sub["n_archs"])
    caption = (f"{space} proxies scored on {images} images: Kendall τ and Spearman ρ against each ground-truth target, "
               f"mean ± sample std (ddof=1) over seeds, on {n_archs} architectures. Ground truth: {protocols}. "
               "NaN/inf = non-finite scores summed over seeds (left out of the correlations); s/arch = proxy seconds "
               "per architecture on this machine. Published ρ: as the source reports it, over the population named "
               "(all 15,625 is another population than ours: compare with care); Δρ = ours − published, on the "
               "target named (the published one where the source names it, else this table's first).")
    notes = [caption]
    if images in STAND_IN_IMAGES:
        notes.append(f"Images: {STAND_IN_IMAGES[images]}; its numbers are not the official protocol's.")
    return Table(header, rows, notes=notes, align="l" + "r" * (len(header) - 1),
                 footnote=f"Mean ± std over seeds; {images}" + (" (stand-in images)" if images in STAND_IN_IMAGES
                                                                 else ""))


# --------------------------------------------------------------------------- the ablation table
def _setting(proxy: str) -> list[str]:
    import proxies

    p = proxies.get_proxy(proxy).params
    return [str(p.get("responses", "")), str(p.get("weighting", "")), f"{float(p.get('power', 1.0)):g}",
            str(p.get("convention", ""))]


def ablation_table(df: pd.DataFrame) -> Table:
    """The WRCor family and variants: what each computes, ρ per image dataset (its first target)
    and the difference to WRCor's."""
    sub = df[df["proxy"].map(lambda p: p in FAMILY or (_is_variant(p) and p.startswith("wrcor(")))]
    firsts = {images: next(iter(zip(g["dataset"], g["split"]))) for images, g in sub.groupby("images", sort=False)}
    datasets = list(firsts)
    index = {(r.images, r.proxy): r for r in sub.itertuples() if (r.dataset, r.split) == firsts[r.images]}
    rows = []
    for proxy in dict.fromkeys(sub["proxy"]):
        cells: list[Any] = [proxy, *_setting(proxy)]
        for images in datasets:
            r, ref = index.get((images, proxy)), index.get((images, "wrcor"))
            if r is None:
                cells += [MISSING, MISSING]
                continue
            diff = r.rho_mean - ref.rho_mean if ref is not None else math.nan
            cells += [MeanStd(r.rho_mean, r.rho_std), f"{diff:+.3f}" if math.isfinite(diff) else MISSING]
        found = [r for images in datasets if (r := index.get((images, proxy))) is not None]
        cells += [_joined(r.n_seeds for r in found), _joined(r.n_nan + r.n_inf for r in found)]
        rows.append(cells)
    header = (["proxy", "responses", "weighting", "power", "convention"]
              + [c for images in datasets for c in (f"{images} ρ", f"{images} Δρ vs wrcor")] + ["seeds", "NaN/inf"])
    targets = "; ".join(f"{images}: {d}/{s}" for images, (d, s) in firsts.items())
    caption = ("WRCor ablation: the responses correlated (act = ReLU inputs, grad = their gradients, both), the cell "
               "weighting (exp_bottom_to_top = 2^l, the paper's), the power x of |C|^x and the convention (paper's "
               "formula or the released code's), with Spearman ρ (mean ± std over seeds) against each image "
               f"dataset's first target ({targets}) and the difference to wrcor's ρ. "
               + " ".join(f"{k}: {v}." for k, v in STAND_IN_IMAGES.items() if k in datasets))
    return Table(header, rows, notes=[caption], align="l" * 5 + "r" * (len(header) - 5))


# --------------------------------------------------------------------------- figures
def _dot_panels(plt: Any, df: pd.DataFrame, proxies: Sequence[str], path: Path, *, published: bool,
                reference: str | None = None) -> list[Path]:
    """One panel per image dataset: ρ (mean ± std over seeds, first target) per proxy; published
    values as open diamonds; ``reference``'s ρ as a dashed line."""
    datasets = list(dict.fromkeys(df["images"]))
    note = seeds_note(df["n_seeds"])
    height = max(1.3 + 0.2 * len(proxies), label_width([note]) + 0.8)  # room for the y label, written upright
    fig, axes = plt.subplots(1, len(datasets), figsize=(0.4 + label_width(proxies) + 2.2 * len(datasets), height),
                             sharey=True, squeeze=False)
    ys = np.arange(len(proxies))[::-1]
    handles: dict[str, Any] = {}
    for ax, images in zip(axes[0], datasets):
        sub = df[df["images"] == images]
        first = next(iter(zip(sub["dataset"], sub["split"])))
        sub = sub[(sub["dataset"] == first[0]) & (sub["split"] == first[1])].set_index("proxy")
        mean = np.array([sub["rho_mean"].get(p, np.nan) for p in proxies], dtype=float)
        std = np.array([sub["rho_std"].get(p, np.nan) for p in proxies], dtype=float)
        handles["ours"] = ax.errorbar(mean, ys, xerr=np.where(np.isfinite(std), std, 0), fmt="o", markersize=3,
                                      **ERROR_BAR)
        if published:
            pub = published_for(str(sub["space"].iloc[0]), images)
            px = [(pub[p].value, y) for p, y in zip(proxies, ys) if p in pub]
            if px:
                handles["published (its own population)"] = ax.scatter(
                    *zip(*px), marker="D", s=14, facecolors="none", edgecolors="C3", linewidths=0.8)
            # a value published against another target than the panel's: ours on that target beside it
            rows = df[df["images"] == images].set_index(["dataset", "split", "proxy"])["rho_mean"]
            other = [(float(rows.get((*pub[p].target, p), np.nan)), y) for p, y in zip(proxies, ys)
                     if p in pub and pub[p].target is not None and tuple(pub[p].target) != tuple(first)]
            other = [(x, y) for x, y in other if np.isfinite(x)]
            if other:
                handles["ours on the published value's target, where it is not the panel's"] = ax.scatter(
                    *zip(*other), marker="x", s=16, c="C0", linewidths=0.8)
        if reference is not None and reference in sub.index:
            handles[f"{reference}"] = ax.axvline(sub.loc[reference, "rho_mean"], ls="--", c="grey", lw=0.8)
        ax.set_title(f"{images}\n({first[0]}/{first[1]})" + ("\nstand-in images" if images in STAND_IN_IMAGES
                                                               else ""))
        ax.set_xlabel("Spearman ρ")
        ax.set_yticks(ys, proxies)
        ax.grid(axis="y", visible=False)
    axes[0][0].set_ylabel(note)
    legend_outside(fig, list(handles.values()), list(handles), where="bottom", ncol=len(handles))
    return save(fig, path)


def write_figures(df: pd.DataFrame, out_dir: Path, name: str) -> list[Path]:
    figures = Path(out_dir) / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    main_rows = [p for p in dict.fromkeys(df["proxy"]) if not _is_variant(p)]
    ablation = [p for p in dict.fromkeys(df["proxy"]) if p in FAMILY or _is_variant(p)]
    written = []
    with figure_style() as plt:
        written += _dot_panels(plt, df, main_rows, figures / f"{name}_proxies.png", published=True)
        if any(_is_variant(p) for p in ablation):
            written += _dot_panels(plt, df, ablation, figures / f"{name}_ablation.png", published=False,
                                   reference="wrcor")
    return written


# --------------------------------------------------------------------------- entry points
def _write(summary: pd.DataFrame, out_dir: Path, name: str) -> list[Path]:
    if summary.empty:
        raise ValueError("empty summary: nothing to tabulate")
    df = _with_images(summary)
    tables = Path(out_dir) / "tables"
    written: list[Path] = []
    for images in dict.fromkeys(df["images"]):
        written += write_table(proxies_table(df, images), tables, f"{name}_proxies_{images}", FORMATS)
    if df["proxy"].map(_is_variant).any():
        written += write_table(ablation_table(df), tables, f"{name}_ablation", FORMATS)
    return written + write_figures(df, out_dir, name)


def build(record_dirs: Iterable[Path | str], out_dir: Path | str, name: str) -> dict[str, Any]:
    """Records -> summary -> the proxy tables, the ablation table, their figures, the summary CSV."""
    _, metrics = load_records([Path(p) for p in record_dirs])
    summary = summarise(metrics)
    out = Path(out_dir)
    paths = _write(summary, out, name)
    summary_csv = out / "tables" / f"{name}_summary.csv"
    summary.to_csv(summary_csv, index=False)
    return {"summary": summary, "paths": paths + [summary_csv]}


def build_from_summary(summary_csv: Path | str, out_dir: Path | str, name: str) -> dict[str, Any]:
    """Everything but the summary (read, not rewritten) from a committed ``{name}_summary.csv``."""
    summary = read_summary(summary_csv)
    return {"summary": summary, "paths": _write(summary, Path(out_dir), name)}


def main(argv: Sequence[str] | None = None) -> int:
    from ..commands import command_parser, output_name

    parser = command_parser("paper-report")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--records", nargs="+", type=Path, help="scoring jobs' output dirs (searched recursively)")
    source.add_argument("--summary", type=Path, help="redraw from a paper report's tables/{name}_summary.csv")
    parser.add_argument("--out", type=Path, default=Path("results"), help="output root (tables/, figures/)")
    parser.add_argument("--name", default="paper_nb201", type=output_name, help="base name of the generated files")
    args = parser.parse_args(argv)
    try:
        out = (build_from_summary(args.summary, args.out, args.name) if args.summary is not None
               else build(args.records, args.out, args.name))
    except (FileNotFoundError, ValueError) as exc:
        parser.exit(2, f"error: {exc}\n")
    from ..progress import print_written

    print_written(out["paths"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
