"""Reference metrics with tolerances (``results/reference/*.json``): the regression bands.

A reference file holds, for one profile, the expected Kendall tau and Spearman rho of each
(proxy, dataset, split) with a tolerance, for the full profile and for a *reduced* version that
the test suite re-runs (``tests/test_reference.py``)::

    harness reference check results/reference/nb201_quick.json runs/nb201_quick/latest
    harness reference make  runs/nb201_quick/latest --out ... --tol 0.02 [--reduced DIR] [--seed 0]

A run directory is one job's (its ``metrics.csv``) or a sweep's (every ``metrics.csv`` below it);
a reference made with ``--seed`` holds, and is checked against, that seed's rows only (a sweep
over seeds and datasets has one reference file per dataset, its keys telling them apart).
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Iterable

from ..jsonio import write_json

KEYS = ("proxy", "dataset", "split")
METRICS = ("tau", "rho")


def read_metrics(run_dir: str | Path, *, seed: int | None = None) -> list[dict]:
    """The metrics rows of a job directory, or of every job below a sweep directory (sorted
    paths), only those of ``seed`` when given."""
    direct = Path(run_dir) / "metrics.csv"
    paths = [direct] if direct.exists() else sorted(Path(run_dir).rglob("metrics.csv"))
    if not paths:
        raise FileNotFoundError(f"no metrics.csv in or below {run_dir}: run the job first")
    rows = []
    for path in paths:
        with open(path, newline="") as fh:
            rows += [{**r, "tau": float(r["tau"]), "rho": float(r["rho"])} for r in csv.DictReader(fh)
                     if seed is None or int(r["seed"]) == seed]
    return rows


def values_of(rows: Iterable[dict]) -> list[dict]:
    return [{**{k: r[k] for k in KEYS}, **{m: round(float(r[m]), 6) for m in METRICS}} for r in rows]


def compare(expected: list[dict], actual: list[dict], tol: dict[str, float]) -> list[str]:
    """Lines describing every expected value that is missing or outside its band (empty = pass)."""
    got = {tuple(r[k] for k in KEYS): r for r in actual}
    problems = []
    for e in expected:
        key = tuple(e[k] for k in KEYS)
        a = got.get(key)
        if a is None:
            problems.append(f"{'/'.join(key)}: missing from the run")
            continue
        for m in METRICS:
            want = math.nan if e[m] is None else float(e[m])  # strict JSON writes NaN as null
            if not (abs(float(a[m]) - want) <= tol[m]) or math.isnan(float(a[m])):
                problems.append(f"{'/'.join(key)} {m}: got {float(a[m]):.4f}, expected {want:.4f} ± {tol[m]}")
    return problems


def check(ref_path: str | Path, run_dir: str | Path, *, part: str = "full") -> list[str]:
    ref = json.loads(Path(ref_path).read_text())
    section = ref if part == "full" else ref[part]
    return compare(section["values"], read_metrics(run_dir, seed=ref.get("seed")), ref["tolerance"])


def _only(rows: list[dict], datasets: list[str] | None) -> list[dict]:
    return rows if datasets is None else [r for r in rows if r["dataset"] in datasets]


def main(argv=None) -> int:
    from ..commands import command_parser
    from ..progress import print_outputs

    ap = command_parser("reference")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("reference")
    c.add_argument("run_dir")
    mk = sub.add_parser("make")
    mk.add_argument("run_dir")
    mk.add_argument("--out", required=True)
    mk.add_argument("--tol", type=float, default=0.02)
    mk.add_argument("--reduced", help="run dir of the reduced profile the test re-runs")
    mk.add_argument("--reduced-overrides", nargs="*", default=[])
    mk.add_argument("--profile", required=True)
    mk.add_argument("--seed", type=int, help="only this seed's rows (a sweep directory over seeds)")
    mk.add_argument("--only", nargs="*", default=None, help="only these ground-truth datasets' rows (a sweep over datasets)")
    args = ap.parse_args(argv)
    if args.cmd == "check":
        problems = check(args.reference, args.run_dir)
        for line in problems:
            print("OUT OF BAND:", line)
        n = len(json.loads(Path(args.reference).read_text())["values"])
        print(f"reference check: {n - len(problems)}/{n} values within their bands ({args.reference})")
        print_outputs([("checked", Path(args.run_dir).resolve(), "the run's metrics.csv; nothing written"),
                       ("against", Path(args.reference).resolve(), "the reference values and their bands")])
        return 1 if problems else 0
    ref = {"profile": args.profile, "tolerance": {m: args.tol for m in METRICS},
           "note": "expected tau/rho of the profile; regenerate with `harness reference make` "
                   "only when a change of numbers is intended, and say why in the commit",
           "values": values_of(_only(read_metrics(args.run_dir, seed=args.seed), args.only))}
    if args.seed is not None:
        ref["seed"] = args.seed
    if args.reduced:
        ref["reduced"] = {"overrides": args.reduced_overrides,
                          "values": values_of(_only(read_metrics(args.reduced, seed=args.seed), args.only))}
    write_json(args.out, ref)  # strict JSON: a NaN tau/rho is null (read back as NaN)
    print(f"wrote {args.out}")
    print_outputs([("reference", Path(args.out).resolve(), f"JSON; check a run with: harness reference check "
                                                           f"{args.out} RUN_DIR")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
