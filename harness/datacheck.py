"""``harness data verify [--data-dir DIR]``: check every file of the benchmark data against the
data directory's ``SHA256SUMS``.

Prints one line per file (``OK``, ``MISMATCH``, ``MISSING``; ``UNLISTED`` for a file the sums do
not list, e.g. a table converted by hand: accepted unchecked, as the harness does), a summary, and
exits with status 1 on any mismatch or missing file (or a data directory that cannot be found or
has no ``SHA256SUMS``), naming the data directory and how to point at another one.  The checking
itself is :func:`spaces.datafiles.verify_data_dir` (standard library only: no torch import).
"""
from __future__ import annotations

import sys
from typing import Sequence

from spaces.datafiles import ENV_VAR, SUMS_FILE, data_dir_source, verify_data_dir
from spaces.vocabulary import DataFileError

#: what to do when the check fails
_POINT_ELSEWHERE = (f"point at another data directory with --data-dir DIR here, and ZSNAS_DATA_DIR=DIR "
                    f"(${ENV_VAR}) or the data_dir=DIR setting for harness run / search")


def build_parser():
    from .commands import command_parser

    parser = command_parser("data", epilog="examples:\n  harness data verify\n"
                                           "  harness data verify --data-dir ~/zsnas-data\n"
                                           "  ZSNAS_DATA_DIR=~/zsnas-data make verify-data")
    sub = parser.add_subparsers(dest="action", required=True)
    verify = sub.add_parser("verify", help=f"check every data file against the data directory's {SUMS_FILE}",
                            description=f"Check every data file against the data directory's {SUMS_FILE}: "
                                        "OK / MISMATCH / MISSING per file (UNLISTED: not in the sums, "
                                        "accepted unchecked), exit status 1 on any mismatch or missing file.")
    verify.add_argument("--data-dir", default=None,
                        help=f"the data directory (default: ${ENV_VAR}, else <project root>/../shared/data)")
    return parser


def verify(data_dir: str | None) -> int:
    """Print the check of ``data_dir`` (see the module docstring); return the exit status."""
    source = data_dir_source(data_dir).replace("the `data_dir` argument", "--data-dir")
    try:
        root, rows = verify_data_dir(data_dir)
    except DataFileError as err:
        print(f"harness data verify: {err}", file=sys.stderr)
        print(f"harness data verify: FAILED; {_POINT_ELSEWHERE}", file=sys.stderr)
        return 1
    print(f"data directory: {root} (from {source})")
    print(f"checking against {root / SUMS_FILE}")
    for rel, status, detail in rows:
        print(f"{status:<9} {rel}" + (f"  ({detail})" if detail else ""), flush=True)
    counts = {s: sum(r[1] == s for r in rows) for s in ("OK", "MISMATCH", "MISSING", "UNLISTED")}
    print("summary: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n or s == "OK"))
    bad = [r for r in rows if r[1] in ("MISMATCH", "MISSING")]
    if bad:
        names = ", ".join(f"{rel} ({status})" for rel, status, _ in bad)
        print(f"harness data verify: FAILED in {root}: {names}. Restore these files from the release "
              f"(docs/data.md says where each comes from and how `harness convert` rebuilds a table), or "
              f"{_POINT_ELSEWHERE}", file=sys.stderr)
        return 1
    print(f"all {counts['OK']} listed files match {SUMS_FILE}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.action == "verify":
        return verify(args.data_dir)
    return 2  # pragma: no cover -- argparse refuses other actions
