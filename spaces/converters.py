"""Convert the official benchmark files into the compact CSV tables the project reads.

Users who own the official files turn them into the tables that :mod:`spaces.benchmarks` reads,
with the same column names as the shipped tables (see ``../shared/data/README.md``):

========================  =================================================  ======================
converter                 official input                                     default output
========================  =================================================  ======================
:func:`convert_nb201`     ``NAS-Bench-201-v1_1-096897.pth`` (or ``v1_0``)    ``nb201/nb201_ground_truth.csv``
:func:`convert_nats`      ``NATS-tss-v1_0-3ffb9-simple/`` (``space="tss"``)  ``nb201/nb201_ground_truth.csv``
:func:`convert_nats`      ``NATS-sss-v1_0-50262-simple/`` (``space="sss"``)  ``nats/nats_sss_ground_truth.csv``
:func:`convert_nb101`     ``nasbench_only108.tfrecord``                      ``nb101/nb101_ground_truth.csv``
========================  =================================================  ======================

(``harness convert`` wraps these with the default paths and ``SHA256SUMS`` upkeep.)

Protocol of the numbers written
-------------------------------
* NB201 / NATS-TSS: accuracies in percent, the mean over all training seeds at the final epoch of
  the 200-epoch schedule (``hp="200"``), read with the official ``ArchResults.get_metrics(dataset,
  setname, iepoch=None, is_random=False)``.  ``c10valid_valid`` = ``cifar10-valid``/``x-valid``;
  ``c10_test`` = ``cifar10``/``ori-test``; for CIFAR-100 and ImageNet16-120 ``*_valid`` =
  ``x-valid``, ``*_test`` = ``x-test``, ``*_valtest`` = ``ori-test`` (both halves together).  Unlike
  the shipped table, whose CIFAR-100/ImageNet16-120 ``*_valid`` columns were derived as
  ``2*valtest - test``, the converted ones are read directly from ``x-valid``.
  ``n_seeds_200`` is the smallest number of seeds among the four training sets (in the shipped
  table every set has the same count).  ``params_mb_*`` are ``get_compute_costs(dataset)["params"]``
  (millions), ``train_time_s_c10valid_200`` is ``get_compute_costs("cifar10-valid")["T-train@total"]``
  (seconds, mean over seeds).  The 12-epoch columns (``hp="12"``) are written when the file has
  12-epoch results: ``cifar10_val_12ep`` = ``cifar10-valid``/``x-valid``, ``cifar10_test_12ep`` =
  ``cifar10``/``ori-test``, ``cifar100_*``/``imagenet_*`` = ``x-valid``/``x-test`` (this reading of
  the shipped columns is inferred from their rounding grid, see the tests).  ``naslib_tuple`` is
  derived from ``arch_str`` with the mapping the data README states.
* NATS-SSS: the same columns with the suffix ``_90`` (the size space's longest schedule,
  ``hp="90"`` = ``api.full_train_epochs``), ``arch_str`` = the channel string (``8:16:24:32:40``),
  no ``naslib_tuple``.
* NB101: CIFAR-10, 108 epochs; ``val_accuracy``/``test_accuracy`` in percent, the mean over the
  (3) seeds of the final evaluation (the last ``evaluation_data`` entry; the official API reads
  entry 2 of the 3: start, half-way, end); ``train_time_s`` the mean final ``training_time``.

A cell the official file cannot give (a dataset or an evaluation set missing for an
architecture) is written empty (read back as NaN) and counted in the summary's ``missing``.

Tables are written atomically (a temporary file in the target directory, then a rename), floats
with ``repr`` precision (they read back bit-identical), NaN as an empty cell.  Each converter
returns a summary ``{"path", "rows", "columns", "sha256", "missing", ...}``;
:func:`record_checksum` adds or updates the file's line in the data directory's ``SHA256SUMS``.

Only the standard library, numpy and torch are imported here; ``nas_201_api``
(``pip install nas-bench-201``) and ``nats_bench`` (``pip install nats_bench``) are imported
lazily, and NB101 is read without TensorFlow (the TFRecord framing, its CRC-32C checksums and the
``ModelMetrics`` protobuf are decoded here).

Trust: the official NB201 ``.pth`` is a pickle.  It is first read with
``torch.load(weights_only=True)`` (numpy scalars allowed); if that is refused, the converter stops
and asks for ``trust_pickle=True`` (``--trust-pickle``), which unpickles it fully.  The NATS-Bench
archives are plain pickles that ``nats_bench`` always unpickles: convert only files you got from
the benchmarks' authors.
"""
from __future__ import annotations

import base64
import contextlib
import binascii
import csv
import importlib
import json
import math
import os
import pickle
import re
import struct
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from .base import DataFileError
from .datafiles import SUMS_FILE, file_sha256

__all__ = [
    "NB201_COLUMNS",
    "NATS_SSS_COLUMNS",
    "NB101_COLUMNS",
    "SHORT_COLUMNS",
    "convert_nb201",
    "convert_nats",
    "convert_nb101",
    "record_checksum",
    "naslib_tuple",
    "crc32c",
    "masked_crc32c",
    "iter_tfrecord",
    "decode_model_metrics",
]

# --------------------------------------------------------------------------- column layout
#: (column stem, dataset, evaluation set) of the long-schedule accuracies, in the shipped order
_LONG_SPECS: tuple[tuple[str, str, str], ...] = (
    ("c10_test", "cifar10", "ori-test"),
    ("c10valid_valid", "cifar10-valid", "x-valid"),
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

# --------------------------------------------------------------------------- NB201 helpers
#: NASLib's op codes and the arch-string position -> tuple index map (data README, checked on all
#: 15,625 rows of the shipped table)
_NASLIB_OP_CODE = {"skip_connect": 0, "none": 1, "nor_conv_3x3": 2, "nor_conv_1x1": 3, "avg_pool_3x3": 4}
_NASLIB_POSITION = (0, 1, 3, 2, 4, 5)
_NB201_EDGE_INPUTS = (0, 0, 1, 0, 1, 2)  # the input node of each edge, in arch-string order


def naslib_tuple(arch_str: str) -> str:
    """NASLib's op-index tuple of an NB201 arch string, written as in the shipped table.

    >>> naslib_tuple("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|")
    '(4, 3, 3, 0, 0, 0)'
    """
    edges = [e for node in str(arch_str).split("+") for e in node.split("|") if e]
    if len(edges) != 6:
        raise ValueError(f"not an NB201 arch string (6 edges expected, got {len(edges)}): {arch_str!r}")
    out = [0] * 6
    for k, edge in enumerate(edges):
        op, _, src = edge.partition("~")
        if op not in _NASLIB_OP_CODE or src != str(_NB201_EDGE_INPUTS[k]):
            raise ValueError(f"edge {k} of {arch_str!r} is {edge!r}: not an NB201 op~input pair")
        out[_NASLIB_POSITION[k]] = _NASLIB_OP_CODE[op]
    return str(tuple(out))


# --------------------------------------------------------------------------- generic helpers
def _require(module: str, pip_name: str, purpose: str) -> Any:
    """Import an optional package, or raise DataFileError naming the pip package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DataFileError(
            f"{purpose} needs the Python package {pip_name!r} (module {module!r}), which is not "
            f"installed: run `pip install {pip_name}` ({exc})"
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


# --------------------------------------------------------------------------- ArchResults -> row
def _nan_on_missing(fn: Callable[[], Any]) -> float:
    """``fn()`` as a float; NaN when the official object lacks the entry (KeyError & co.)."""
    try:
        value = fn()
    except (KeyError, ValueError, IndexError, AssertionError, TypeError, ZeroDivisionError):
        return math.nan
    return math.nan if value is None else float(value)


def _mean_accuracy(res: Any, dataset: str, setname: str) -> float:
    if res is None or dataset not in res.dataset_seed:
        return math.nan
    return _nan_on_missing(lambda: res.get_metrics(dataset, setname, iepoch=None, is_random=False)["accuracy"])


def _row_from_results(index: int, arch_str: str, long_res: Any, short_res: Any, hp: str,
                      with_naslib: bool) -> dict[str, Any]:
    row: dict[str, Any] = {"index": int(index), "arch_str": arch_str}
    if with_naslib:
        try:
            row["naslib_tuple"] = naslib_tuple(arch_str)
        except ValueError as exc:
            raise DataFileError(f"architecture {index}: {exc}") from None
    for stem, dataset, setname in _LONG_SPECS:
        row[f"{stem}_{hp}"] = _mean_accuracy(long_res, dataset, setname)
    if long_res is not None:
        seeds = [len(long_res.dataset_seed[d]) for d in _DATASETS if d in long_res.dataset_seed]
        row[f"n_seeds_{hp}"] = min(seeds) if seeds else None
        for column, datasets in _PARAM_SPECS:
            present = [d for d in datasets if d in long_res.dataset_seed]
            row[column] = (_nan_on_missing(lambda: long_res.get_compute_costs(present[0])["params"])
                           if present else math.nan)
        row[f"train_time_s_c10valid_{hp}"] = (
            _nan_on_missing(lambda: long_res.get_compute_costs("cifar10-valid")["T-train@total"])
            if "cifar10-valid" in long_res.dataset_seed else math.nan
        )
    for column, dataset, setname in _SHORT_SPECS:
        row[column] = _mean_accuracy(short_res, dataset, setname)
    return row


def _finish(columns: list[str], rows: list[dict[str, Any]], has_short: bool, out_csv: Any,
            **extra: Any) -> dict[str, Any]:
    if not has_short:
        columns = [c for c in columns if c not in SHORT_COLUMNS]
    summary = _write_csv_atomic(out_csv, columns, rows)
    summary.update(extra)
    return summary


# --------------------------------------------------------------------------- NAS-Bench-201 (.pth)
#: torch's legacy (pre-zip) format starts with a pickled magic number: LONG1 0x1950a86a20f9469cfc6c
_LEGACY_TORCH_MAGIC = b"\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
_ZIP_MAGIC = b"PK\x03\x04"


def _numpy_safe_globals() -> list[Any]:
    """What ``torch.load(weights_only=True)`` needs to rebuild numpy scalars (numpy 1 and 2 names)."""
    core = getattr(np, "_core", None) or np.core  # numpy 2 / numpy 1
    scalar = core.multiarray.scalar
    out: list[Any] = [scalar, (scalar, "numpy.core.multiarray.scalar"),
                      (scalar, "numpy._core.multiarray.scalar"), np.dtype]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        for name in ("Float64DType", "Float32DType", "Float16DType", "Int64DType", "Int32DType",
                     "Int16DType", "Int8DType", "UInt8DType", "BoolDType"):
            if hasattr(dtypes, name):
                out.append(getattr(dtypes, name))
    return out


def _load_nb201_pth(path: Path, trust_pickle: bool) -> dict:
    import torch

    with open(path, "rb") as f:
        head = f.read(32)
    if not (head.startswith(_ZIP_MAGIC) or (head[:1] == b"\x80" and _LEGACY_TORCH_MAGIC in head)):
        raise DataFileError(
            f"{str(path)!r} is not a PyTorch-saved file, so not the official NAS-Bench-201 .pth "
            "(NAS-Bench-201-v1_1-096897.pth or NAS-Bench-201-v1_0-e61699.pth); NATS-Bench archives "
            "are converted with convert_nats (`nats-tss` / `nats-sss`)"
        )
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not trust_pickle:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise DataFileError(
                f"{str(path)!r} could not be read with torch.load(weights_only=True) ({reason[:300]}). "
                "It is a pickle that needs full unpickling, which can run arbitrary code: if it is the "
                "official file from the NAS-Bench-201 authors and you trust it, convert it with "
                "trust_pickle=True (CLI: --trust-pickle)"
            ) from None
        try:
            data = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc2:  # a broken file: say so, with the reason
            raise DataFileError(f"{str(path)!r} could not be read by torch.load: {exc2}") from exc2
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise DataFileError(f"{str(path)!r} could not be read by torch.load (truncated or corrupt?): {exc}") from exc
    return data


def convert_nb201(pth_path: str | os.PathLike[str], out_csv: str | os.PathLike[str], *,
                  trust_pickle: bool = False) -> dict[str, Any]:
    """Convert the official NAS-Bench-201 ``.pth`` into the NB201 ground-truth table.

    ``pth_path``: ``NAS-Bench-201-v1_1-096897.pth`` (or ``v1_0-e61699``).  Every architecture the
    file holds becomes a row (sorted by ``index``) with the columns of :data:`NB201_COLUMNS`
    (see the module docstring for the protocol).  The file is read the way
    ``nas_201_api.NASBench201API`` reads it — each ``arch2infos[index]["full"/"less"]`` state dict
    becomes a ``nas_201_api.ArchResults`` (``hp="200"``/``"12"``) — but one architecture at a
    time and without the API's deep copy of the whole file (several GB).  Raises DataFileError for
    a missing file, a file that is not the NB201 ``.pth``, or a missing ``nas-bench-201`` package.
    """
    path = _existing(pth_path, "NAS-Bench-201 file", want_dir=False)
    api = _require("nas_201_api", "nas-bench-201", "converting the NAS-Bench-201 .pth")
    data = _load_nb201_pth(path, trust_pickle)
    if not isinstance(data, dict) or not all(k in data for k in ("meta_archs", "arch2infos")):
        keys = sorted(map(str, data))[:10] if isinstance(data, dict) else type(data).__name__
        raise DataFileError(
            f"{str(path)!r} is not the NAS-Bench-201 benchmark file: it has no 'meta_archs'/'arch2infos' "
            f"(found {keys}); expected NAS-Bench-201-v1_1-096897.pth or NAS-Bench-201-v1_0-e61699.pth"
        )
    meta_archs, arch2infos = data["meta_archs"], data["arch2infos"]
    if not isinstance(arch2infos, dict):
        raise DataFileError(f"{str(path)!r}: 'arch2infos' is a {type(arch2infos).__name__}, not a dict")
    rows: list[dict[str, Any]] = []
    has_short = False
    for index in sorted(arch2infos):
        infos = arch2infos[index]
        if not isinstance(infos, dict):
            raise DataFileError(f"{str(path)!r}: arch2infos[{index}] is not a dict of results")
        # NB201 stores {'less': hp 12, 'full': hp 200}; NATS-style dicts are keyed by hp already
        hp2state = {"12": infos.get("less"), "200": infos.get("full")} if "full" in infos else dict(infos)
        try:
            arch_str = str(meta_archs[index])
            long_res = api.ArchResults.create_from_state_dict(hp2state["200"]) if hp2state.get("200") else None
            short_res = api.ArchResults.create_from_state_dict(hp2state["12"]) if hp2state.get("12") else None
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise DataFileError(f"{str(path)!r}: architecture {index} is not in the NB201 format: {exc!r}") from exc
        if long_res is not None and isinstance(long_res.arch_str, str) and long_res.arch_str != arch_str:
            raise DataFileError(
                f"{str(path)!r}: architecture {index} is {arch_str!r} in meta_archs but "
                f"{long_res.arch_str!r} in its results"
            )
        has_short = has_short or short_res is not None
        rows.append(_row_from_results(index, arch_str, long_res, short_res, "200", with_naslib=True))
        arch2infos[index] = None  # free this architecture's share of the (large) file
    del data
    return _finish(list(NB201_COLUMNS), rows, has_short, out_csv, source=str(path), hp="200")


# --------------------------------------------------------------------------- NATS-Bench
_SPACE_NAMES = {"tss": "tss", "topology": "tss", "sss": "sss", "size": "sss"}
_SSS_ARCH = re.compile(r"\d+(?::\d+)+")


def convert_nats(archive_path: str | os.PathLike[str], out_csv: str | os.PathLike[str],
                 space: str = "tss") -> dict[str, Any]:
    """Convert a NATS-Bench archive into the TSS table (NB201 columns) or the SSS table.

    ``archive_path``: the ``NATS-tss-v1_0-3ffb9-simple`` / ``NATS-sss-v1_0-50262-simple``
    directory (``meta.pickle.pbz2`` + one ``<index>.pickle.pbz2`` per architecture, read by
    ``nats_bench.create(path, space, fast_mode=True)``), or the single-file
    ``NATS-*.pickle.pbz2`` (read with ``fast_mode=False``; needs much more memory).
    ``space``: ``"tss"`` (columns :data:`NB201_COLUMNS`, ``hp="200"``) or ``"sss"`` (columns
    :data:`NATS_SSS_COLUMNS`, ``hp="90"``).  Architectures are read one at a time and dropped from
    the API's cache after use.
    """
    try:
        kind = _SPACE_NAMES[str(space).lower()]
    except KeyError:
        raise ValueError(f"space must be 'tss' or 'sss', got {space!r}") from None
    path = _existing(archive_path, f"NATS-Bench {kind.upper()} archive")
    nats_bench = _require("nats_bench", "nats_bench", "converting a NATS-Bench archive")
    fast = path.is_dir()
    if fast and not (path / "meta.pickle.pbz2").is_file():
        raise DataFileError(
            f"{str(path)!r} is not a NATS-Bench archive directory: it has no meta.pickle.pbz2 "
            f"(expected the unpacked NATS-{kind}-v1_0-*-simple directory)"
        )
    try:
        api = nats_bench.create(str(path), kind, fast_mode=fast, verbose=False)
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, pickle.UnpicklingError) as exc:
        raise DataFileError(f"{str(path)!r} could not be read as a NATS-Bench {kind.upper()} archive: {exc!r}") from exc
    meta_archs = list(api.meta_archs)
    if meta_archs:
        looks_sss = _SSS_ARCH.fullmatch(str(meta_archs[0])) is not None
        if looks_sss != (kind == "sss"):
            other = "sss" if looks_sss else "tss"
            raise DataFileError(
                f"{str(path)!r} holds {other.upper()} architectures (e.g. {str(meta_archs[0])!r}), "
                f"not {kind.upper()}: convert it with space={other!r} (CLI: nats-{other})"
            )
    hp = str(int(api.full_train_epochs))  # 200 (topology) / 90 (size), from nats_bench itself
    rows: list[dict[str, Any]] = []
    has_short = False
    for index in range(len(meta_archs)):
        if fast and index not in api.arch2infos_dict:
            try:  # what the API's fast mode does on a query (_prepare_info), without the deep copy
                api.reload(api.archive_dir, index)
            except (AssertionError, OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
                raise DataFileError(
                    f"{str(path)!r}: the results of architecture {index} are missing or unreadable "
                    f"(incomplete archive?): {exc!r}"
                ) from exc
        hp2res = api.arch2infos_dict.get(index) or {}
        long_res, short_res = hp2res.get(hp), hp2res.get("12")
        has_short = has_short or short_res is not None
        rows.append(_row_from_results(index, str(meta_archs[index]), long_res, short_res, hp,
                                      with_naslib=kind == "tss"))
        api.arch2infos_dict.pop(index, None)  # keep memory flat: one architecture at a time
        if isinstance(api.evaluated_indexes, set):
            api.evaluated_indexes.discard(index)
    columns = list(NB201_COLUMNS) if kind == "tss" else ["index", "arch_str", *_long_columns(hp), *SHORT_COLUMNS]
    return _finish(columns, rows, has_short, out_csv, source=str(path), space=kind, hp=hp)


# --------------------------------------------------------------------------- TFRecord + CRC-32C
_CRC32C_POLY = 0x82F63B78  # Castagnoli, reflected


def _crc32c_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _CRC32C_POLY if c & 1 else c >> 1
        table[i] = c
    return table


_CRC_TABLE = _crc32c_table()
_CRC_TABLE_LIST = [int(x) for x in _CRC_TABLE]
_MASK_DELTA = 0xA282EAD8


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, pure Python.

    >>> hex(crc32c(b"123456789"))
    '0xe3069283'
    """
    c = 0xFFFFFFFF
    t = _CRC_TABLE_LIST
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The masked CRC-32C that TFRecord files store after the length and after the data."""
    return _mask(crc32c(data))


_CRC_BLOCK_BYTES = 1 << 25  # bound on the zero-padded block one vectorised pass works on (32 MiB)


def _masked_crc32c_many(chunks: Sequence[bytes]) -> np.ndarray:
    """``masked_crc32c`` of many byte strings at once (vectorised across them with numpy).

    The strings are sorted longest first and processed in blocks of similar length, one byte
    column at a time; the strings still active at column ``j`` always form a prefix of the block.
    """
    n = len(chunks)
    out = np.empty(n, dtype=np.uint64)
    if n == 0:
        return out
    lens = np.fromiter((len(c) for c in chunks), dtype=np.int64, count=n)
    order = np.argsort(-lens, kind="stable")
    table = _CRC_TABLE
    start = 0
    while start < n:
        width = int(lens[order[start]])
        stop = min(n, start + max(1, _CRC_BLOCK_BYTES // max(width, 1)))
        idx = order[start:stop]
        block_lens = lens[idx]
        buf = np.zeros((width, len(idx)), dtype=np.uint8)  # column r = chunk idx[r], zero-padded
        for r, i in enumerate(idx):
            if block_lens[r]:
                buf[: block_lens[r], r] = np.frombuffer(chunks[i], dtype=np.uint8)
        active = np.searchsorted(-block_lens, -np.arange(width), side="left")  # #strings longer than j
        crc = np.full(len(idx), 0xFFFFFFFF, dtype=np.uint32)
        for j in range(width):
            k = int(active[j])
            c = crc[:k]
            crc[:k] = table[(c ^ buf[j, :k]) & 0xFF] ^ (c >> 8)
        c64 = (crc ^ np.uint32(0xFFFFFFFF)).astype(np.uint64)
        out[idx] = ((((c64 >> 15) | (c64 << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF
        start = stop
    return out


def iter_tfrecord(path: str | os.PathLike[str], *, verify_crc: bool = True,
                  batch: int = 8192) -> Iterator[bytes]:
    """The records of a TFRecord file, without TensorFlow.

    Each record is ``uint64 length | uint32 masked_crc32c(length) | data | uint32
    masked_crc32c(data)`` (little-endian).  The length's CRC is always checked (a wrong one means
    the file is not a TFRecord or is corrupt); the data's CRC is checked when ``verify_crc`` is
    true, ``batch`` records at a time (numpy-vectorised CRC-32C).  Raises DataFileError on a
    truncated file or a CRC mismatch.
    """
    path = Path(path)
    pending: list[bytes] = []
    expected: list[int] = []
    offsets: list[int] = []

    def check() -> Iterator[bytes]:
        if verify_crc and pending:
            got = _masked_crc32c_many(pending)
            bad = np.nonzero(got != np.asarray(expected, dtype=np.uint64))[0]
            if bad.size:
                j = int(bad[0])
                raise DataFileError(
                    f"{str(path)!r}: the data CRC of the record at byte offset {offsets[j]} does not "
                    "match (corrupt or truncated download?); re-download the file"
                )
        yield from pending
        pending.clear()
        expected.clear()
        offsets.clear()

    with open(path, "rb") as f:
        offset = 0
        while True:
            header = f.read(12)
            if not header:
                break
            if len(header) < 12:
                raise DataFileError(f"{str(path)!r}: truncated TFRecord header at byte offset {offset}")
            (length,) = struct.unpack("<Q", header[:8])
            (length_crc,) = struct.unpack("<I", header[8:])
            if masked_crc32c(header[:8]) != length_crc:
                raise DataFileError(
                    f"{str(path)!r} is not a TFRecord file (or is corrupt): the length CRC of the record "
                    f"at byte offset {offset} does not match"
                )
            data = f.read(length)
            footer = f.read(4)
            if len(data) < length or len(footer) < 4:
                raise DataFileError(f"{str(path)!r}: truncated TFRecord record at byte offset {offset}")
            pending.append(data)
            expected.append(struct.unpack("<I", footer)[0])
            offsets.append(offset)
            offset += 16 + length
            if len(pending) >= batch:
                yield from check()
        yield from check()


# --------------------------------------------------------------------------- protobuf (ModelMetrics)
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, raw value) of each field of a serialized protobuf message."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > end:
                raise ValueError("truncated 64-bit field")
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise ValueError("truncated length-delimited field")
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            if pos + 4 > end:
                raise ValueError("truncated 32-bit field")
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire} (field {number})")
        yield number, wire, value


def _double(wire: int, value: Any, name: str) -> float:
    if wire != 1:
        raise ValueError(f"{name}: wire type {wire}, expected 1 (double)")
    return struct.unpack("<d", value)[0]


#: nasbench/lib/model_metrics.proto, EvaluationData: field number -> name (doubles, then a string)
_EVAL_DOUBLES = {1: "current_epoch", 2: "training_time", 3: "train_accuracy",
                 4: "validation_accuracy", 5: "test_accuracy"}


def decode_model_metrics(blob: bytes) -> dict[str, Any]:
    """Decode nasbench's serialized ``ModelMetrics`` protobuf (no protobuf library needed).

    ``ModelMetrics { repeated EvaluationData evaluation_data = 1; optional int32
    trainable_parameters = 2; optional double total_time = 3; }`` and ``EvaluationData {
    optional double current_epoch = 1; training_time = 2; train_accuracy = 3;
    validation_accuracy = 4; test_accuracy = 5; optional string checkpoint_path = 6; }``
    (nasbench/lib/model_metrics.proto).  Unknown fields are skipped; absent optionals are None.
    """
    out: dict[str, Any] = {"evaluation_data": [], "trainable_parameters": None, "total_time": None}
    for number, wire, value in _fields(blob):
        if number == 1:
            if wire != 2:
                raise ValueError(f"evaluation_data: wire type {wire}, expected 2")
            ev: dict[str, Any] = {name: None for name in _EVAL_DOUBLES.values()}
            ev["checkpoint_path"] = None
            for n2, w2, v2 in _fields(value):
                if n2 in _EVAL_DOUBLES:
                    ev[_EVAL_DOUBLES[n2]] = _double(w2, v2, _EVAL_DOUBLES[n2])
                elif n2 == 6 and w2 == 2:
                    ev["checkpoint_path"] = v2.decode("utf-8", errors="replace")
            out["evaluation_data"].append(ev)
        elif number == 2:
            if wire != 0:
                raise ValueError(f"trainable_parameters: wire type {wire}, expected 0")
            # a negative int32 is written as the 10-byte varint of its 64-bit two's complement
            out["trainable_parameters"] = value - (1 << 64) if value >= (1 << 63) else value
        elif number == 3:
            out["total_time"] = _double(wire, value, "total_time")
    return out


# --------------------------------------------------------------------------- NAS-Bench-101
def _mean(xs: Sequence[float]) -> float:
    vals = [x for x in xs if x is not None]
    return math.fsum(vals) / len(vals) if vals else math.nan


def convert_nb101(tfrecord_path: str | os.PathLike[str], out_csv: str | os.PathLike[str], *,
                  epochs: int = 108, verify_crc: bool = True) -> dict[str, Any]:
    """Convert ``nasbench_only108.tfrecord`` into the NB101 ground-truth table, without TensorFlow.

    Each record is the JSON list ``[module_hash, epochs, raw_adjacency, raw_operations,
    raw_metrics]`` (as read by nasbench's ``api.py``); only records with ``epochs == epochs``
    (108) are used.  One row per module hash, in order of first appearance, with the columns of
    :data:`NB101_COLUMNS`: ``matrix_rowmajor`` is the ``V*V`` adjacency exactly as stored (49
    characters only for 7-vertex cells; smaller cells are NOT padded, padding would change the
    graph) and ``num_vertices`` its ``V``; ``ops`` the ``;``-joined operations
    (``input;conv3x3-bn-relu;...;output``); ``val_accuracy``/``test_accuracy`` the mean over the
    seeds (``n_seeds``) of the final evaluation, in percent; ``train_time_s`` the mean final
    training time.  CRCs are verified unless ``verify_crc=False`` (see :func:`iter_tfrecord`).
    """
    path = _existing(tfrecord_path, "NAS-Bench-101 TFRecord file", want_dir=False)
    modules: dict[str, dict[str, Any]] = {}
    n_records = n_skipped = 0
    for n, data in enumerate(iter_tfrecord(path, verify_crc=verify_crc)):
        n_records += 1
        try:
            record = json.loads(data.decode("utf-8"))
            module_hash, rec_epochs, raw_adjacency, raw_operations, raw_metrics = record
        except (UnicodeDecodeError, json.JSONDecodeError, ValueError, TypeError) as exc:
            raise DataFileError(
                f"{str(path)!r}: record {n} is not a NAS-Bench-101 record (a JSON list [module_hash, "
                f"epochs, adjacency, operations, metrics]): {exc}"
            ) from None
        if int(rec_epochs) != int(epochs):
            n_skipped += 1
            continue
        try:
            metrics = decode_model_metrics(base64.b64decode(raw_metrics, validate=True))
            final = metrics["evaluation_data"][-1]
        except (ValueError, binascii.Error, IndexError, TypeError) as exc:
            raise DataFileError(f"{str(path)!r}: record {n}: undecodable ModelMetrics: {exc}") from None
        entry = modules.get(module_hash)
        if entry is None:
            adjacency, ops = str(raw_adjacency), str(raw_operations).split(",")
            dim = math.isqrt(len(adjacency))
            if dim * dim != len(adjacency) or set(adjacency) - {"0", "1"} or len(ops) != dim:
                raise DataFileError(
                    f"{str(path)!r}: record {n} ({module_hash}): adjacency {adjacency!r} is not a "
                    f"square 0/1 matrix matching its {len(ops)} operations"
                )
            entry = modules[module_hash] = {
                "module_hash": module_hash, "matrix_rowmajor": adjacency, "num_vertices": dim,
                "ops": ";".join(ops), "trainable_parameters": metrics["trainable_parameters"],
                "_val": [], "_test": [], "_time": [], "_raw": (raw_adjacency, raw_operations),
            }
        elif entry["_raw"] != (raw_adjacency, raw_operations):
            raise DataFileError(f"{str(path)!r}: record {n}: module {module_hash} appears with two different graphs")
        entry["_val"].append(final["validation_accuracy"])
        entry["_test"].append(final["test_accuracy"])
        entry["_time"].append(final["training_time"])
    if not modules:
        raise DataFileError(
            f"{str(path)!r} holds {n_records} records but none with epochs == {epochs}: "
            "is it nasbench_only108.tfrecord (or nasbench_full.tfrecord)?"
        )

    def rows() -> Iterator[dict[str, Any]]:
        for entry in modules.values():
            val, test = _mean(entry["_val"]), _mean(entry["_test"])
            yield {
                **{k: v for k, v in entry.items() if not k.startswith("_")},
                "val_accuracy": 100.0 * val,
                "test_accuracy": 100.0 * test,
                "n_seeds": len(entry["_val"]),
                "train_time_s": _mean(entry["_time"]),
            }

    summary = _write_csv_atomic(out_csv, list(NB101_COLUMNS), rows())
    summary.update(source=str(path), epochs=int(epochs), records=n_records, skipped_records=n_skipped,
                   crc_verified=bool(verify_crc))
    return summary
