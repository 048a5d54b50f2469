"""NAS-Bench-201 (``.pth``) and NATS-Bench (``-simple`` archives) -> the NB201 / NATS-SSS tables.

Read with the official APIs (``nas_201_api``, ``nats_bench``; imported lazily), one architecture
at a time; see :mod:`spaces.convert` for the protocol of the numbers written.
"""
from __future__ import annotations

import math
import os
import pickle
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..base import DataFileError
from .tables import (_DATASETS, _LONG_SPECS, _PARAM_SPECS, _SHORT_SPECS, NB201_COLUMNS, SHORT_COLUMNS, _existing,
                     _finish, _long_columns, _require)

__all__ = ["naslib_tuple", "convert_nb201", "convert_nats"]

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
