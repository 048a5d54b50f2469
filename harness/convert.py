"""Convert official benchmark files into the project's ground-truth tables.

``harness convert {nb201,nats-tss,nats-sss,nb101} SOURCE [--data-dir DIR] [--out RELPATH]``

Writes the table into the data directory (``--data-dir``, else ``$ZSNAS_DATA_DIR``, else
``../shared/data``) at the path the project's benchmarks read, records its SHA-256 in the data
directory's ``SHA256SUMS``, and prints a summary.  An existing table is only replaced with
``--force``.  The conversion itself lives in :mod:`spaces.convert` (offline only, so imported here
when a conversion runs, not with the parser).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from spaces.base import DataFileError
from spaces.datafiles import resolve_data_dir

#: kind -> (default output path relative to the data dir, official source, one-line description)
DEFAULTS: dict[str, tuple[str, str, str]] = {
    "nb201": ("nb201/nb201_ground_truth.csv", "NAS-Bench-201-v1_1-096897.pth",
              "NAS-Bench-201 .pth (v1_1 or v1_0) -> NB201 table (200 epochs, mean over seeds)"),
    "nats-tss": ("nb201/nb201_ground_truth.csv", "NATS-tss-v1_0-3ffb9-simple",
                 "NATS-Bench topology archive (same space as NB201) -> NB201 table"),
    "nats-sss": ("nats/nats_sss_ground_truth.csv", "NATS-sss-v1_0-50262-simple",
                 "NATS-Bench size archive -> SSS table (90 epochs, *_90 columns)"),
    "nb101": ("nb101/nb101_ground_truth.csv", "nasbench_only108.tfrecord",
              "NAS-Bench-101 TFRecord -> NB101 table (108 epochs, mean over 3 seeds; no TensorFlow)"),
}

_EXAMPLES = """\
examples:
  harness convert nb201 ~/data/NAS-Bench-201-v1_1-096897.pth
  harness convert nats-tss ~/data/NATS-tss-v1_0-3ffb9-simple --data-dir ~/zsnas-data
  harness convert nats-sss ~/data/NATS-sss-v1_0-50262-simple
  harness convert nb101 ~/data/nasbench_only108.tfrecord --out nb101/nb101_full.csv
  harness convert nb201 NAS-Bench-201-v1_1-096897.pth --force --trust-pickle

default outputs (relative to the data directory):
""" + "\n".join(f"  {k:<9} {v[0]:<34} from {v[1]}" for k, v in DEFAULTS.items()) + """

Point the project at a data directory with $ZSNAS_DATA_DIR or the `data_dir` config key.
"""


def build_parser() -> argparse.ArgumentParser:
    from .commands import command_parser

    parser = command_parser(
        "convert",
        description="Convert official benchmark files (which you own) into the compact CSV tables "
                    "zsnas-bench reads, and record their SHA-256 in the data directory's SHA256SUMS.",
        epilog=_EXAMPLES,
    )
    parser.add_argument("kind", choices=list(DEFAULTS),
                        help="; ".join(f"{k}: {v[2]}" for k, v in DEFAULTS.items()))
    parser.add_argument("source", type=Path, help="the official file or archive directory")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data directory to write into (created if missing); default: "
                             "$ZSNAS_DATA_DIR, else ../shared/data")
    parser.add_argument("--out", default=None, metavar="RELPATH",
                        help="output path relative to the data directory (default per kind, see below); "
                             "an absolute path is written as is, and its checksum is recorded only if "
                             "it lies inside the data directory")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="nb201 only: unpickle the .pth fully if torch.load(weights_only=True) refuses "
                             "it (only for the official file from a source you trust)")
    parser.add_argument("--no-crc", action="store_true",
                        help="nb101 only: skip the data CRC-32C checks of the TFRecord (faster)")
    return parser


def _run(kind: str, source: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    from spaces.convert import convert_nats, convert_nb101, convert_nb201

    converters: dict[str, Callable[[], dict[str, Any]]] = {
        "nb201": lambda: convert_nb201(source, out, trust_pickle=args.trust_pickle),
        "nats-tss": lambda: convert_nats(source, out, space="tss"),
        "nats-sss": lambda: convert_nats(source, out, space="sss"),
        "nb101": lambda: convert_nb101(source, out, verify_crc=not args.no_crc),
    }
    return converters[kind]()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, convert, record the checksum; returns the exit status (0 = success)."""
    args = build_parser().parse_args(argv)
    from spaces.convert import record_checksum  # offline-only code: loaded once a conversion is asked for

    try:
        if args.data_dir is not None:
            args.data_dir.expanduser().mkdir(parents=True, exist_ok=True)
        data_dir = resolve_data_dir(args.data_dir)
        rel = args.out if args.out is not None else DEFAULTS[args.kind][0]
        out = Path(rel).expanduser()
        out = out if out.is_absolute() else data_dir / out
        if out.exists() and not args.force:
            print(f"error: {out} already exists; refusing to overwrite it (pass --force to replace it)",
                  file=sys.stderr)
            return 1
        summary = _run(args.kind, args.source.expanduser(), out, args)
        line = record_checksum(out, data_dir)
    except DataFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {summary['path']}: {summary['rows']} rows x {len(summary['columns'])} columns")
    print(f"sha256 {summary['sha256']}")
    if line is not None:
        print(f"recorded in {data_dir / 'SHA256SUMS'}: {line}")
    else:
        print(f"not inside the data directory {data_dir}: SHA256SUMS left unchanged")
    for column, count in summary.get("missing", {}).items():
        print(f"  {count} empty cell(s) (NaN) in column {column}")
    if summary.get("skipped_records"):
        print(f"  {summary['skipped_records']} record(s) with other epoch counts skipped")
    _print_where(Path(summary["path"]), data_dir, recorded=line is not None, default=args.data_dir is None)
    return 0


def _print_where(table: Path, data_dir: Path, *, recorded: bool, default: bool) -> None:
    """The closing lines: the table, the sums, and how to point the harness at the data directory."""
    from spaces.datafiles import data_dir_source

    from .progress import print_outputs

    if not recorded:
        read = f"outside the data directory {data_dir}: the harness does not read it there"
    elif default and "$" not in data_dir_source(None):
        read = "read by the harness from its default data directory"
    elif default:
        read = f"read by the harness while {data_dir_source(None)} names {data_dir}"
    else:
        read = f"the harness reads it with ZSNAS_DATA_DIR={data_dir} (harness run / search: data_dir={data_dir})"
    entries = [("table", table.resolve(), read)]
    if recorded:
        entries.append(("sums", data_dir / "SHA256SUMS", f"check with: harness data verify --data-dir {data_dir}"))
    print_outputs(entries)


if __name__ == "__main__":
    sys.exit(main())
