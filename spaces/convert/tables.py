"""The tables the converters write: column layout, CSV writing, ``SHA256SUMS`` upkeep.

Tables are written atomically (a temporary file in the target directory, then a rename), floats
with ``repr`` precision (they read back bit-identical), NaN as an empty cell.  Standard library
and numpy only.
"""
from __future__ import annotations

import contextlib
import csv
import importlib
import math
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from ..base import DataFileError
from ..datafiles import SUMS_FILE, file_sha256

__all__ = ["NB201_COLUMNS", "NATS_SSS_COLUMNS", "NB101_COLUMNS", "SHORT_COLUMNS", "record_checksum"]

#: what ``pip install`` line brings the optional packages of :mod:`spaces.convert`
CONVERT_EXTRA = "pip install 'zsnas-bench[convert]'"

# --------------------------------------------------------------------------- column layout
#: (column stem, dataset, evaluation set) of the long-schedule accuracies, in the shipped order
_LONG_SPECS: tuple[tuple[str, str, str], ...] = (
    ("c10_test", "cifar10", "ori-test"),
    ("c10valid_valid", "cifar10-valid", "x-valid"),
    ("c10valid_test", "cifar10-valid", "ori-test"),
    ("c100_test", "cifar100", "x-test"),
    ("c100_valtest", "cifar100", "ori-test"),
    ("c100_valid", "cifar100", "x-valid"),
    ("in16_test", "ImageNet16-120", "x-test"),
    ("in16_valtest", "ImageNet16-120", "ori-test"),
    ("in16_valid", "ImageNet16-120", "x-valid"),
)
#: (column, dataset, evaluation set) of the 12-epoch accuracies, in the shipped order
_SHORT_SPECS: tuple[tuple[str, str, str], ...] = (
    ("cifar10_test_12ep", "cifar10", "ori-test"),
    ("cifar10_val_12ep", "cifar10-valid", "x-valid"),
    ("cifar100_test_12ep", "cifar100", "x-test"),
    ("cifar100_val_12ep", "cifar100", "x-valid"),
    ("imagenet_test_12ep", "ImageNet16-120", "x-test"),
    ("imagenet_val_12ep", "ImageNet16-120", "x-valid"),
)
#: (column, datasets tried in order) for the parameter counts
_PARAM_SPECS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("params_mb_c10", ("cifar10", "cifar10-valid")),
    ("params_mb_c100", ("cifar100",)),
    ("params_mb_in16", ("ImageNet16-120",)),
)
_DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")

SHORT_COLUMNS: tuple[str, ...] = tuple(c for c, _, _ in _SHORT_SPECS)


def _long_columns(hp: str) -> list[str]:
    return (
        [f"{stem}_{hp}" for stem, _, _ in _LONG_SPECS]
        + [f"n_seeds_{hp}"]
        + [c for c, _ in _PARAM_SPECS]
        + [f"train_time_s_c10valid_{hp}"]
    )


#: the NB201 / NATS-TSS table (12-epoch columns only when the source has them)
NB201_COLUMNS: tuple[str, ...] = ("index", "arch_str", "naslib_tuple", *_long_columns("200"), *SHORT_COLUMNS)
#: the NATS-SSS table
NATS_SSS_COLUMNS: tuple[str, ...] = ("index", "arch_str", *_long_columns("90"), *SHORT_COLUMNS)
#: the NB101 table
NB101_COLUMNS: tuple[str, ...] = (
    "module_hash", "matrix_rowmajor", "num_vertices", "ops",
    "val_accuracy", "test_accuracy", "n_seeds", "trainable_parameters", "train_time_s",
)


# --------------------------------------------------------------------------- inputs
def _require(module: str, pip_name: str, purpose: str, *, install: str | None = None) -> Any:
    """Import an optional package, or raise DataFileError naming what to install (``install``:
    the pip command; default ``pip install <pip_name>``)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DataFileError(
            f"{purpose} needs the Python package {pip_name!r} (module {module!r}), which is not "
            f"installed: run `{install or f'pip install {pip_name}'}` ({exc})"
        ) from exc


def _existing(path: str | os.PathLike[str], what: str, *, want_dir: bool | None = None) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise DataFileError(f"{what} {str(p)!r} not found")
    if want_dir is True and not p.is_dir():
        raise DataFileError(f"{what} {str(p)!r} is not a directory")
    if want_dir is False and not p.is_file():
        raise DataFileError(f"{what} {str(p)!r} is not a file")
    return p


# --------------------------------------------------------------------------- CSV writing
def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return "" if math.isnan(f) else repr(f)
    return str(value)


@contextlib.contextmanager
def _atomic_text(out: Path, newline: str = "") -> Iterator[Any]:
    """A text file handle whose content replaces ``out`` only when the block ends without error
    (a temporary file in the same directory, fsync'ed, then renamed; the old mode is kept)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", newline=newline, encoding="utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, (out.stat().st_mode & 0o777) if out.exists() else 0o644)
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _write_csv_atomic(out_csv: str | os.PathLike[str], columns: Sequence[str],
                      rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Write ``rows`` (dicts keyed by ``columns``) to ``out_csv`` atomically; the summary dict."""
    out = Path(out_csv).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    missing = {c: 0 for c in columns}
    n = 0
    with _atomic_text(out) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            cells = [_cell(row.get(c)) for c in columns]
            for c, cell in zip(columns, cells):
                if cell == "":
                    missing[c] += 1
            writer.writerow(cells)
            n += 1
    return {
        "path": str(out),
        "rows": n,
        "columns": list(columns),
        "sha256": file_sha256(out),
        "missing": {c: k for c, k in missing.items() if k},
    }


def _finish(columns: list[str], rows: list[dict[str, Any]], has_short: bool, out_csv: Any,
            **extra: Any) -> dict[str, Any]:
    """Write an NB201-style table (without the 12-epoch columns when no row has them)."""
    if not has_short:
        columns = [c for c in columns if c not in SHORT_COLUMNS]
    summary = _write_csv_atomic(out_csv, columns, rows)
    summary.update(extra)
    return summary


# --------------------------------------------------------------------------- SHA256SUMS
def _sums_name(name: str) -> str | None:
    """``./a//b.csv`` or ``*a/b.csv`` -> ``a/b.csv``; None for names we do not touch."""
    parts = [p for p in PurePosixPath(name.lstrip("*").replace("\\", "/")).parts if p not in (".", "")]
    return "/".join(parts) if parts else None


def record_checksum(out_csv: str | os.PathLike[str], data_dir: str | os.PathLike[str]) -> str | None:
    """Add or update the ``<sha256>  ./<relative path>`` line of ``out_csv`` in ``data_dir/SHA256SUMS``.

    Returns the line written, or None (and writes nothing) when ``out_csv`` does not lie inside
    ``data_dir``.  Other lines (and comments) are kept as they are; the file is replaced atomically
    and created if absent.  The format is the one :mod:`spaces.datafiles` verifies.
    """
    out = Path(out_csv).expanduser().resolve()
    root = Path(data_dir).expanduser().resolve()
    try:
        rel = out.relative_to(root).as_posix()
    except ValueError:
        return None
    if not out.is_file():
        raise DataFileError(f"cannot record the checksum of {str(out)!r}: no such file")
    line = f"{file_sha256(out)}  ./{rel}"
    sums = root / SUMS_FILE
    lines = sums.read_text(encoding="utf-8").splitlines() if sums.is_file() else []
    replaced = False
    kept: list[str] = []
    for old in lines:
        parts = old.strip().split(maxsplit=1)
        if len(parts) == 2 and not old.lstrip().startswith("#") and _sums_name(parts[1]) == rel:
            if not replaced:
                kept.append(line)
                replaced = True
            continue  # drop duplicates of the same path
        kept.append(old)
    if not replaced:
        kept.append(line)
    with _atomic_text(sums, newline="\n") as f:
        f.write("\n".join(kept) + "\n")
    return line
