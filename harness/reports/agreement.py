"""Rank agreement with independently published proxy scores (NAS-Bench-Suite-Zero).

Our scores and Suite-Zero's come from different batches, seeds, initialisations and network code
(NASLib's NB201 model), so they cannot be equal; a proxy implementing the same definition ranks
the same architectures the same way, which Spearman's rho over the shared architectures shows.

    harness agreement --records runs/proxies_suite_zero/latest --out results \\
        --name suite_zero_agreement

reads ``scores.csv`` records and joins them, per (space, dataset), with Suite-Zero's scores of the
same architectures, which the space's benchmark provides
(:meth:`spaces.benchmarks.TableBenchmark.suite_zero_reference`: for NB201 and NATS-TSS separate
files, for NB-101 and DARTS the Suite-Zero columns of the benchmark table itself), by the
benchmark's key (NB-101's graph hash, so a cell's score is Suite-Zero's for the table's first
spec of that cell).  Spearman's rho and Kendall's tau-b are :mod:`harness.reports.metrics`'.
Writes a Markdown table and a CSV per (space, dataset).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from .metrics import kendall_tau, spearman_rho
from .scores import load_records
from .tables import Table
from .tables import write as write_table

#: our proxy name -> the Suite-Zero column with the same definition
SUITE_ZERO_COLUMNS = {
    "epe_nas": "epe_nas", "fisher": "fisher", "flops": "flops", "grad_norm": "grad_norm", "grasp": "grasp",
    "jacob_cov": "jacov", "l2_norm": "l2_norm", "naswot": "nwot", "params": "params", "plain": "plain",
    "snip": "snip", "synflow": "synflow", "zen": "zen",
}


def suite_zero_reference(space_name: str, dataset: str, data_dir=None) -> tuple[pd.DataFrame, Any] | None:
    """(Suite-Zero's scores with a ``key`` column, the function mapping our arch strings to keys),
    or None when the space's benchmark has none for this image dataset.  The frame's ``attrs``
    name its source: ``source`` (words) and ``cite`` (a BibTeX key, ``docs/references.bib``)."""
    import spaces

    bench = spaces.get_space(space_name, data_dir=data_dir).benchmark
    ask = getattr(bench, "suite_zero_reference", None)  # a plugin's benchmark may not offer it
    ref = ask(dataset) if ask is not None else None
    if ref is None:
        return None
    frame = pd.DataFrame({"key": ref.keys, **ref.columns})
    frame.attrs.update(source=ref.source, cite=getattr(ref, "cite", ""))
    return frame, bench.key_of


def agreement(scores: pd.DataFrame, reference: pd.DataFrame, *, arch_column: str = "net_str",
              columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Spearman rho and Kendall tau-b of our scores vs the reference per shared proxy and seed.

    ``scores`` has the columns of ``scores.csv`` (arch, proxy, seed, score, ...); rows whose
    score or reference value is not finite are left out and counted (``n_dropped``).
    """
    columns = SUITE_ZERO_COLUMNS if columns is None else columns
    ref = reference.drop_duplicates(arch_column).set_index(arch_column)
    rows = []
    for (proxy, seed), group in scores.groupby(["proxy", "seed"], sort=False):
        col = columns.get(str(proxy))
        if col is None or col not in ref.columns:
            continue
        shared = group[group["arch"].isin(ref.index)]
        ours = shared["score"].to_numpy(dtype=float)
        theirs = ref.loc[shared["arch"], col].to_numpy(dtype=float)
        ok = np.isfinite(ours) & np.isfinite(theirs)
        n = int(ok.sum())
        rho = spearman_rho(ours[ok], theirs[ok]) if n > 2 else math.nan
        tau = kendall_tau(ours[ok], theirs[ok]) if n > 2 else math.nan
        row = {"proxy": proxy, "suite_zero_column": col, "seed": seed, "n_archs": n,
               "n_dropped": int(len(shared) - n), "spearman": float(rho), "kendall": float(tau),
               "truth": "", "rho_truth_ours": math.nan, "rho_truth_suite_zero": math.nan}
        # the first ground-truth target this space has (records of several spaces leave the
        # other spaces' targets empty)
        truth_cols = [c for c in shared.columns if c.startswith("truth__") and shared[c].notna().any()]
        if truth_cols and n > 2:  # both proxies' Spearman rho vs the first ground-truth target
            acc = shared[truth_cols[0]].to_numpy(dtype=float)[ok]
            row.update(truth=truth_cols[0][len("truth__"):].replace("__", "/"),
                       rho_truth_ours=spearman_rho(ours[ok], acc),
                       rho_truth_suite_zero=spearman_rho(theirs[ok], acc))
        rows.append(row)
    return pd.DataFrame(rows, columns=["proxy", "suite_zero_column", "seed", "n_archs", "n_dropped", "spearman",
                                       "kendall", "truth", "rho_truth_ours", "rho_truth_suite_zero"])


def source_line(source: str, cite: str = "") -> str:
    """The note naming where the published scores come from."""
    return f"Published scores: {source}" + (f" [{cite}]" if cite else "") + " (BibTeX keys: docs/references.bib)."


def agreement_table(table: pd.DataFrame, *, dataset: str, threshold: float = 0.9, source: str = "",
                    cite: str = "") -> Table:
    """The agreement rows as a report table (rows below ``threshold`` flagged; ``source`` and
    ``cite`` name the published scores' origin in a note)."""
    notes = [f"Rank agreement with NAS-Bench-Suite-Zero's published scores ({dataset}): Spearman rho / "
             "Kendall tau-b over the shared architectures (different batch, seed and network code, same "
             f"definition). Rows below {threshold} are marked and explained in the README.",
             "The last two columns: each proxy's own Spearman ρ against the ground truth named, ours and "
             "Suite-Zero's, on the same architectures."]
    if source or cite:
        notes.append(source_line(source or "NAS-Bench-Suite-Zero", cite))
    header = ["proxy", "Suite-Zero column", "seed", "archs", "dropped", "Spearman ρ", "Kendall τ", "", "truth",
              "ρ ours", "ρ Suite-Zero"]
    rows = [[r.proxy, r.suite_zero_column, r.seed, r.n_archs, r.n_dropped, f"{r.spearman:.3f}", f"{r.kendall:.3f}",
             "" if r.spearman >= threshold else "below", r.truth, f"{r.rho_truth_ours:.3f}",
             f"{r.rho_truth_suite_zero:.3f}"] for r in table.itertuples()]
    return Table(header, rows, align="llrrrrrllrr", notes=notes)


def markdown(table: pd.DataFrame, *, dataset: str, threshold: float = 0.9) -> str:
    """:func:`agreement_table` in Markdown."""
    return agreement_table(table, dataset=dataset, threshold=threshold).markdown()


def build(record_dirs: Iterable[Path | str], out_dir: Path | str, name: str, *, data_dir=None) -> list[Path]:
    scores, _ = load_records([Path(p) for p in record_dirs])
    out = Path(out_dir) / "tables"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    several = scores["space"].nunique() > 1
    for (space, dataset), group in scores.groupby(["space", "dataset"], sort=False):
        found = suite_zero_reference(str(space), str(dataset), data_dir)
        if found is None:
            continue
        ref, key_of = found
        keys = {a: key_of(a) for a in group["arch"].unique()}
        table = agreement(group.assign(arch=group["arch"].map(keys)), ref, arch_column="key")
        if table.empty:
            continue
        stem = f"{name}_{space}_{dataset}" if several else f"{name}_{dataset}"
        written += write_table(agreement_table(table, dataset=f"{space}, {dataset}", source=ref.attrs.get("source", ""),
                                               cite=ref.attrs.get("cite", "")), out, stem, ("md",))
        csv = out / f"{stem}.csv"  # the rows at full precision (data, not the rendered table)
        table.to_csv(csv, index=False)
        written.append(csv)
    if not written:
        raise ValueError("no records share architectures and proxies with the Suite-Zero files")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    from ..commands import command_parser, output_name

    parser = command_parser("agreement")
    parser.add_argument("--records", nargs="+", required=True, type=Path, help="job output dirs (searched recursively)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="output root (tables/)")
    parser.add_argument("--name", default="suite_zero_agreement", type=output_name,
                        help="base name of the generated files")
    parser.add_argument("--data-dir", default=None, help="the benchmark data (default: ../shared/data or "
                                                         "$ZSNAS_DATA_DIR)")
    args = parser.parse_args(argv)
    try:
        paths = build(args.records, args.out, args.name, data_dir=args.data_dir)
    except (FileNotFoundError, ValueError) as exc:
        parser.exit(2, f"error: {exc}\n")
    from ..progress import print_written

    print_written(paths)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
