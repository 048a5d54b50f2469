"""The ``mobilenetv2`` space's reports: the released genotypes counted by the harness beside the
official code's numbers, and (``--records``) the table of its searches.

Genotype table (``tables/{name}.{md,tex,csv}``, default name ``mobilenetv2_genotypes``): every
genotype of the released ``genotypes.py`` (kunjing96/ZSNAS-WRCor @270ce7a) as the fixture
``tests/fixtures/mobilenetv2_official.json`` records them -- produced by running the official code
(``PlainNet.get_FLOPs()``, ``get_model_size()``, Σ numel, Conv2d + Linear MACs by forward hooks) --
with its resolution, whether it is a member of the search space (the Zen-NAS genotypes are not),
whether it is within the released 600M-FLOPs limit, and the harness's counts
(:meth:`spaces.mobilenetv2.MobileNetV2Space.flops` / ``macs`` / ``params`` / ``model_size``) beside
the official ones, with a last column saying whether all four are equal.

Search table: ``--records DIR ... --search-name NAME`` is ``harness search-report --records DIR
--name NAME`` (:mod:`harness.reports.offline` for searches without ground truth).

CLI: ``harness mobilenetv2-report --out results`` (``--official FILE`` for another fixture).
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .tables import Table, Tex
from .tables import write as write_table

__all__ = ["DEFAULT_OFFICIAL", "build_genotypes", "genotype_rows", "genotype_table", "main"]

#: the fixture of official numbers, in a source checkout
DEFAULT_OFFICIAL = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mobilenetv2_official.json"
#: the counts compared: (harness method, fixture key, header)
COUNTS = (("flops", "flops", "FLOPs (released)"), ("macs", "conv_linear_macs", "MACs"),
          ("params", "numel", "params"), ("model_size", "model_size", "model size (released)"))
#: the released search's FLOPs limit
LIMIT = 600e6
#: the genotypes in the order of the released genotypes.py (any other name of a fixture follows)
RELEASED_ORDER = ("MobileNetV2", "zennet_flops400M_res192", "zennet_flops600M_res256", "zennet_flops900M_res224",
                  "R_our_vote", "RL_our_vote", "EA_our_vote", "R_our_vote_600M", "RL_our_vote_600M", "EA_our_vote_600M")


def load_official(path: Path | str) -> dict[str, dict[str, Any]]:
    """The fixture's genotypes (name -> structure, resolution and the official counts)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no official numbers at {path}: give --official FILE (the fixture "
                                "tests/fixtures/mobilenetv2_official.json of a source checkout)")
    data = json.loads(path.read_text())
    try:
        return dict(data["genotypes"])
    except (KeyError, TypeError):
        raise ValueError(f"{path}: not the official-numbers fixture (no 'genotypes' mapping)") from None


def genotype_rows(official: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per genotype: name, resolution, membership, the harness's and the official counts, agreement."""
    from spaces.mobilenetv2 import MobileNetV2Space
    from spaces.vocabulary import InvalidArchitectureError

    space = MobileNetV2Space()
    order = [n for n in RELEASED_ORDER if n in official] + [n for n in official if n not in RELEASED_ORDER]
    rows = []
    for name in order:
        g = official[name]
        arch = (g["structure"], int(g["resolution"]))
        try:
            space.parse(arch)
            member = "yes"
        except InvalidArchitectureError as err:
            member = "no: " + str(err).rsplit(" (", 1)[0].replace(" is not allowed: ", ", allowed: ")
        row: dict[str, Any] = {"genotype": name, "resolution": arch[1], "in_space": member}
        for method, key, _ in COUNTS:
            row[f"harness_{method}"] = getattr(space, method)(arch)
            row[f"official_{method}"] = g[key]
        row["within_600M"] = row["harness_flops"] <= LIMIT
        different = [m for m, _, _ in COUNTS if float(row[f"harness_{m}"]) != float(row[f"official_{m}"])]
        row["agreement"] = "equal" if not different else "different: " + ", ".join(different)
        rows.append(row)
    return rows


def _int(x: Any, sep: bool) -> str:
    v = float(x)
    if not math.isfinite(v):
        return "–"
    text = f"{v:,.0f}" if sep else f"{v:.0f}"
    return text if v == round(v) else (f"{v:,.2f}" if sep else repr(v))


def genotype_table(rows: Sequence[dict[str, Any]], *, csv: bool = False) -> Table:
    """The table of :func:`genotype_rows` (``csv``: numbers without thousands separators)."""
    header = ["genotype", "res.", "in space", "≤ 600M"]
    for _, _, label in COUNTS:
        header += [f"{label} harness", f"{label} official"]
    header.append("harness vs official")
    body = []
    for r in rows:
        cells = [r["genotype"], str(r["resolution"]), r["in_space"], "yes" if r["within_600M"] else "no"]
        for method, _, _ in COUNTS:
            cells += [_int(r[f"harness_{method}"], not csv), _int(r[f"official_{method}"], not csv)]
        body.append(cells + [r["agreement"]])
    n_equal = sum(r["agreement"] == "equal" for r in rows)
    notes = [(f"The released genotypes (kunjing96/ZSNAS-WRCor genotypes.py @270ce7a), counted by the harness "
             "(spaces.mobilenetv2) beside the official code run on the same structure "
             "(tests/fixtures/mobilenetv2_official.json). FLOPs (released) = PlainNet.get_FLOPs(): multiply-adds, "
             "the projection shortcut counted on the already-strided resolution (4x too low at stride 2); MACs = "
             "Conv2d + Linear multiply-adds of the built network (forward hooks); params = Σ numel of the "
             "parameters; model size (released) = get_model_size(), not the parameter count. All per sample, "
             "1000 classes, at the genotype's resolution. ≤ 600M: within the released search's FLOPs limit. "
             f"{n_equal} of {len(rows)} genotypes: all four counts equal.")]
    latex_header = [Tex("$\\le$ 600M") if h == "≤ 600M" else h for h in header]
    return Table(header, body, align="lrll" + "r" * (2 * len(COUNTS)) + "l", notes=notes, comments=notes,
                 latex_header=latex_header)


def build_genotypes(out_dir: Path | str, name: str = "mobilenetv2_genotypes",
                    official: Path | str = DEFAULT_OFFICIAL) -> dict[str, Any]:
    rows = genotype_rows(load_official(official))
    tables = Path(out_dir) / "tables"
    paths = write_table(genotype_table(rows), tables, name, ("md", "tex"))
    paths += write_table(genotype_table(rows, csv=True), tables, name, ("csv",))
    return {"rows": rows, "paths": paths}


def main(argv: Sequence[str] | None = None) -> int:
    from ..commands import command_parser, output_name
    from ..progress import print_written

    parser = command_parser("mobilenetv2-report")
    parser.add_argument("--official", default=str(DEFAULT_OFFICIAL),
                        help="the official code's numbers per released genotype (JSON fixture)")
    parser.add_argument("--out", default="results", help="output root (tables/, figures/)")
    parser.add_argument("--name", default="mobilenetv2_genotypes", type=output_name,
                        help="base name of the genotype table's files")
    parser.add_argument("--records", nargs="+", help="also: directories holding search.json files of mobilenetv2 "
                                                     "searches, reported as harness search-report does")
    parser.add_argument("--search-name", default="search_mobilenetv2", type=output_name,
                        help="base name of the search table's and figure's files (with --records)")
    args = parser.parse_args(argv)
    out = build_genotypes(args.out, args.name, args.official)
    paths = list(out["paths"])
    if args.records:
        from .search import build

        paths += build(args.records, args.out, args.search_name)["paths"]
    print_written(paths)
    different = [r["genotype"] for r in out["rows"] if r["agreement"] != "equal"]
    if different:
        print(f"harness mobilenetv2-report: the harness's counts differ from the official ones for {different}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
