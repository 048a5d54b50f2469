"""Ground truth as pure table lookups.

A :class:`TableBenchmark` reads one CSV of trained accuracies (one row per architecture, keyed by
the architecture's canonical string), once, lazily, the first time it is needed, and then answers
``lookup(arch, dataset, split)`` from memory.  Every ``(dataset, split)`` pair it offers carries a
one-line *protocol* saying exactly what the number is (epochs, seeds, split), so that every
results row can state it.

A benchmark also says which independently published numbers exist for it, so that reports ask
it instead of knowing spaces by name: :meth:`TableBenchmark.suite_zero_reference` (published proxy
scores of its architectures) and :meth:`TableBenchmark.published_search` (published search
results).

Only the standard library (``csv``) and numpy are used, so this runs on a bare GPU machine.
"""
from __future__ import annotations

import csv
import math
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .vocabulary import DataFileError, MissingDataFileError, UnknownNameError
from .datafiles import data_file

__all__ = ["ArchitectureNotFoundError", "TableBenchmark", "nb201_benchmark", "NB201_FILE", "ScoreFile",
           "ReferenceScores", "PublishedSearch", "SUITE_ZERO_SCORE_COLUMNS", "SUITE_ZERO_TABLE_IMAGES",
           "SUITE_ZERO_CITE"]

_MISSING = frozenset({"", "nan", "NaN", "NAN", "NA", "N/A", "null", "None"})


class ArchitectureNotFoundError(KeyError):
    """An architecture is not a row of a benchmark table."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain sentence
        return str(self.args[0]) if self.args else ""


# ---------------------------------------------------------------------- published reference numbers
#: NAS-Bench-Suite-Zero's proxy score columns (its names for its 13 zero-cost proxies)
SUITE_ZERO_SCORE_COLUMNS = ("epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm", "nwot",
                            "params", "plain", "snip", "synflow", "zen")
#: the images of the Suite-Zero columns a benchmark table carries itself (NASLib's NB-101 and NB-301
#: tables ship Suite-Zero's CIFAR-10 scores only): the default of ``TableBenchmark(suite_zero=...)``
SUITE_ZERO_TABLE_IMAGES = "cifar10"
#: the BibTeX key of NAS-Bench-Suite-Zero (Krishnakumar et al. 2022), whose scores the references are
SUITE_ZERO_CITE = "krishnakumar2022suitezero"


@dataclass(frozen=True)
class ScoreFile:
    """A CSV of published proxy scores of a benchmark's architectures.

    ``relpath`` is relative to the data directory; ``key_column`` names each row's architecture:
    an architecture string (read through the benchmark's ``key_of``), or, with ``via``, a name
    found in that column of the benchmark table (e.g. NASLib's cell tuple), whose row gives the key.
    """

    relpath: str
    key_column: str = "net_str"
    via: str | None = None


@dataclass(frozen=True)
class ReferenceScores:
    """Published proxy scores of a benchmark's architectures: ``keys`` (the benchmark's keys, see
    ``key_of``; each once) and, per score column (the publisher's names), a float64 array aligned
    with them; ``source`` says where they come from, ``cite`` the publication's BibTeX key (in
    ``docs/references.bib``)."""

    source: str
    keys: list[str]
    columns: dict[str, np.ndarray]
    cite: str = ""


@dataclass(frozen=True)
class PublishedSearch:
    """A search result as a paper published it on this benchmark: the test accuracy (percent, the
    paper's mean over its runs) of the architecture ``method`` (with ``setting``, ``""`` for none)
    found, from ``source`` (authors and year); ``cite`` is the paper's BibTeX key (in
    ``docs/references.bib``), ``where`` the place in it (e.g. ``Table 2``; ``""`` when not stated)."""

    method: str
    setting: str
    source: str
    accuracy: float
    cite: str = ""
    where: str = ""


@dataclass(frozen=True)
class PublishedCorrelation:
    """A rank correlation between a proxy and this benchmark's accuracy as a paper published it:
    ``value`` of ``metric`` (``rho`` = Spearman, ``tau`` = Kendall) for the registered proxy
    ``proxy`` scored on the images ``images``, over ``population`` (e.g. ``all 15,625``, ``first
    1000``: another population than ours is another number, and the tables say so), against the
    ground truth ``target`` ((dataset, split) of this benchmark, or None when the paper does not
    say which); ``source`` names the paper, ``cite`` its BibTeX key (``docs/references.bib``),
    ``where`` the place in it (``""`` when not stated)."""

    proxy: str
    images: str
    metric: str
    value: float
    population: str
    source: str
    cite: str = ""
    target: tuple[str, str] | None = None
    where: str = ""


def _parse_float(cell: str) -> float:
    cell = cell.strip()
    if cell in _MISSING:
        return math.nan
    return float(cell)


class TableBenchmark:
    """A ground-truth table read from a CSV under the data directory.

    Parameters
    ----------
    relpath:
        The CSV's path relative to the data directory (see :mod:`spaces.datafiles`).
    key_column:
        The column holding each architecture's canonical string; ``lookup`` uses ``str(arch)``.
    columns:
        ``{(dataset, split): column}`` — which CSV column answers which lookup; a tuple of column
        names is a list of alternatives, the first the table has answering (e.g. the shipped
        table's column, then the one ``harness convert`` writes).
    protocols:
        ``{(dataset, split): one-line description}`` — must have the same keys as ``columns``.
    index_column:
        A column of official row indices returned by :meth:`index_of`, if the CSV has it
        (otherwise the 0-based row number is returned).
    data_dir:
        Overrides the data directory (else ``$ZSNAS_DATA_DIR``, else ``../shared/data``).
    row_key:
        Derives each row's key from the row (a ``{column: cell}`` mapping) instead of reading
        ``key_column`` as it is — e.g. NB-101's graph hash from the matrix and ops columns, or a
        DARTS genotype string normalised.  ``keys()`` then lists the derived keys.
    arch_key:
        The key of an architecture for lookups (default ``str``).
    missing_hint:
        A sentence added to the error when the file is missing (e.g. how to convert it).
    duplicates:
        ``"error"`` (a key in two rows is a corrupt table) or ``"mean"``: rows sharing a key are
        one architecture measured several times (e.g. NASLib's NB-101 table lists one cell under
        several unpruned specs, each with one training seed's accuracy); a lookup returns the mean
        of their values (NaN cells ignored), ``keys()`` lists each key once (first appearance)
        and ``index_of`` gives the first row.
    suite_zero:
        ``{images: ScoreFile or None}``: where NAS-Bench-Suite-Zero's scores of these
        architectures, computed on those images, are -- a separate file, or ``None`` for this
        table's own Suite-Zero columns (:data:`SUITE_ZERO_SCORE_COLUMNS` it has).  Default
        ``{SUITE_ZERO_TABLE_IMAGES: None}``.  See :meth:`suite_zero_reference`.
    published_search:
        ``{images: [PublishedSearch, ...]}``: published search results on this benchmark (default
        none).  See :meth:`published_search`.

    The file is located, checksum-verified and parsed once, on first use; empty or ``nan`` cells
    read as NaN.
    """

    def __init__(
        self,
        relpath: str,
        *,
        key_column: str,
        columns: Mapping[tuple[str, str], str | tuple[str, ...]],
        protocols: Mapping[tuple[str, str], str],
        index_column: str | None = "index",
        data_dir: str | os.PathLike[str] | None = None,
        row_key: Callable[[Mapping[str, str]], str] | None = None,
        arch_key: Callable[[Any], str] = str,
        missing_hint: str | None = None,
        duplicates: str = "error",
        suite_zero: Mapping[str, ScoreFile | None] | None = None,
        published_search: Mapping[str, Sequence[PublishedSearch]] | None = None,
        published_correlations: Sequence[PublishedCorrelation] = (),
        cite: str = "",
    ) -> None:
        columns = {(str(d), str(s)): str(c) if isinstance(c, str) else tuple(map(str, c))
                   for (d, s), c in dict(columns).items()}
        protocols = {(str(d), str(s)): str(p) for (d, s), p in dict(protocols).items()}
        if set(columns) != set(protocols):
            missing = sorted(set(columns) ^ set(protocols))
            raise ValueError(f"columns and protocols must name the same (dataset, split) pairs; differ on {missing}")
        self.relpath = relpath
        #: the BibTeX key (``docs/references.bib``) of the publication whose numbers the table holds
        self.cite = cite
        self.key_column = key_column
        self.index_column = index_column
        self.data_dir = data_dir
        self._row_key = row_key
        self._arch_key = arch_key
        self._missing_hint = missing_hint
        if duplicates not in ("error", "mean"):
            raise ValueError(f"duplicates must be 'error' or 'mean', got {duplicates!r}")
        self.duplicates = duplicates
        self._groups: dict[str, list[int]] = {}
        self._merged_cache: dict[str, np.ndarray] = {}
        self._declared = dict(columns)
        self._columns = {pair: c if isinstance(c, str) else c[0] for pair, c in columns.items()}
        self._protocols = protocols
        self._lock = threading.Lock()
        self._loaded = False
        self._header: list[str] = []
        self._raw: dict[str, list[str]] = {}
        self._row_of: dict[str, int] = {}
        self._float_cache: dict[str, np.ndarray] = {}
        self._column_cache: dict[str, np.ndarray] = {}
        self._source: str | None = None
        self._suite_zero = dict({SUITE_ZERO_TABLE_IMAGES: None} if suite_zero is None else suite_zero)
        self._published_search = {str(d): tuple(rs) for d, rs in dict(published_search or {}).items()}
        self._published_correlations = tuple(published_correlations)

    def __repr__(self) -> str:
        return f"TableBenchmark({self.relpath!r}, key_column={self.key_column!r}, pairs={self.available()})"

    # ------------------------------------------------------------------ loading
    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            try:
                path = data_file(self.relpath, self.data_dir)
            except MissingDataFileError as exc:
                if self._missing_hint:
                    raise MissingDataFileError(f"{self._missing_hint} ({exc})") from None
                raise
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.reader(f)
                try:
                    header = [h.strip() for h in next(reader)]
                except StopIteration:
                    raise DataFileError(f"benchmark table {str(path)!r} is empty") from None
                rows = [row for row in reader if row]
            columns = {pair: c if isinstance(c, str) else next((a for a in c if a in header), " or ".join(c))
                       for pair, c in self._declared.items()}
            needed = [self.key_column, *columns.values()]
            absent = [c for c in needed if c not in header]
            if absent:
                raise DataFileError(
                    f"benchmark table {str(path)!r} lacks column(s) {absent}; it has {header}"
                )
            width = len(header)
            for lineno, row in enumerate(rows, 2):
                if len(row) != width:
                    raise DataFileError(
                        f"{str(path)!r} line {lineno}: {len(row)} fields, the header has {width}"
                    )
            raw = {name: [row[j] for row in rows] for j, name in enumerate(header)}
            if self._row_key is None:
                keys = raw[self.key_column]
            else:
                keys = []
                for lineno, row in enumerate(rows, 2):
                    try:
                        keys.append(self._row_key(dict(zip(header, row))))
                    except Exception as exc:
                        raise DataFileError(f"{str(path)!r} line {lineno}: cannot read the architecture: {exc}") from exc
            row_of: dict[str, int] = {}
            groups: dict[str, list[int]] = {}
            for i, key in enumerate(keys):
                if key in row_of:
                    if self.duplicates == "error":
                        raise DataFileError(
                            f"benchmark table {str(path)!r}: key {key!r} appears twice "
                            f"(rows {row_of[key]} and {i} of column {self.key_column!r})"
                        )
                    groups.setdefault(key, [row_of[key]]).append(i)
                    continue
                row_of[key] = i
            self._header, self._raw, self._row_of, self._columns = header, raw, row_of, columns
            self._groups = groups
            self._source = str(path)
            self._loaded = True

    def _floats(self, name: str) -> np.ndarray:
        """A column parsed as float64 (NaN for empty cells); raises if a cell is not a number."""
        arr = self._float_cache.get(name)
        if arr is None:
            try:
                arr = np.array([_parse_float(c) for c in self._raw[name]], dtype=np.float64)
            except ValueError as exc:
                raise DataFileError(f"column {name!r} of {self._source!r} is not numeric: {exc}") from None
            arr.flags.writeable = False
            self._float_cache[name] = arr
        return arr

    def _pair_column(self, dataset: str, split: str) -> str:
        try:
            return self._columns[(dataset, split)]
        except KeyError:
            raise UnknownNameError(
                f"no ground truth for dataset={dataset!r}, split={split!r} in {self.relpath}; "
                f"valid (dataset, split) pairs: {self.available()}"
            ) from None

    def _row(self, arch: Any) -> int:
        key = self._arch_key(arch)
        try:
            return self._row_of[key]
        except KeyError:
            raise ArchitectureNotFoundError(
                f"architecture {key!r} is not in {self.relpath} "
                f"({len(self._row_of)} rows keyed by column {self.key_column!r})"
            ) from None

    # ------------------------------------------------------------------ queries
    def available(self) -> list[tuple[str, str]]:
        """The ``(dataset, split)`` pairs this table answers, in declaration order."""
        return list(self._columns)

    def protocol(self, dataset: str, split: str) -> str:
        """A one-line statement of what ``lookup(arch, dataset, split)`` returns."""
        self._pair_column(dataset, split)
        return self._protocols[(dataset, split)]

    def lookup(self, arch: Any, dataset: str, split: str) -> float:
        """The ground-truth accuracy of ``arch`` (keyed by ``arch_key(arch)``); NaN cells give NaN."""
        return float(self.lookup_many([arch], dataset, split)[0])

    def lookup_many(self, archs: Iterable[Any], dataset: str, split: str) -> np.ndarray:
        """``lookup`` for many architectures at once, as a float64 array."""
        col = self._pair_column(dataset, split)
        self._ensure_loaded()
        rows = np.fromiter((self._row(a) for a in archs), dtype=np.intp)
        return self._merged(col)[rows].copy()

    def optimum(self, dataset: str, split: str) -> tuple[float, int]:
        """(the best accuracy over the table's architectures, how many architectures that is):
        the space's optimum when the table covers the whole space (NB201), only the table's best
        when it does not (the offline NB-101 and DARTS tables)."""
        col = self._pair_column(dataset, split)
        self._ensure_loaded()
        values = self._merged(col)[np.fromiter(self._row_of.values(), dtype=np.intp)]
        return float(np.nanmax(values)), len(values)

    def _merged(self, name: str) -> np.ndarray:
        """A numeric column where each key's first row holds the mean over the key's rows (NaN
        cells ignored; NaN if all are): what a lookup returns.  Without duplicates, the column."""
        arr = self._merged_cache.get(name)
        if arr is None:
            arr = self._floats(name)
            if self._groups:
                arr = arr.copy()
                for rows in self._groups.values():
                    group = arr[rows]
                    arr[rows[0]] = np.nan if np.isnan(group).all() else np.nanmean(group)
                arr.flags.writeable = False
            self._merged_cache[name] = arr
        return arr

    def key_of(self, arch: Any) -> str:
        """The key ``arch`` is looked up by (e.g. NB-101's graph hash)."""
        return self._arch_key(arch)

    def rows_of(self, arch: Any) -> list[int]:
        """Every row of ``arch``'s key (one unless ``duplicates="mean"`` merged several)."""
        self._ensure_loaded()
        row = self._row(arch)
        return list(self._groups.get(self._arch_key(arch), [row]))

    def index_of(self, arch: Any) -> int:
        """The official index of ``arch`` (the ``index_column``), or its row number if there is none."""
        self._ensure_loaded()
        row = self._row(arch)
        if self.index_column is not None and self.index_column in self._raw:
            return int(self._raw[self.index_column][row])
        return row

    def keys(self) -> list[str]:
        """The key strings (derived by ``row_key`` when given), in file order, each once."""
        self._ensure_loaded()
        return list(self._row_of)

    def column_names(self) -> list[str]:
        """Every column of the CSV, in file order."""
        self._ensure_loaded()
        return list(self._header)

    def column(self, name: str, *, per: str = "row", as_str: bool = False) -> np.ndarray:
        """Any column, in file order, read-only: int64 if every cell is an integer, else float64
        (NaN for empty cells) if every cell parses as a number, else an array of strings
        (``as_str``: always the cells as written).  ``per="key"``: one value per key of
        :meth:`keys` (its first row), aligned with it."""
        self._ensure_loaded()
        if per == "key":
            return self.column(name, as_str=as_str)[np.fromiter(self._row_of.values(), dtype=np.intp)]
        if per != "row":
            raise ValueError(f"per must be 'row' or 'key', got {per!r}")
        if name not in self._raw:
            raise UnknownNameError(f"{self.relpath} has no column {name!r}; columns: {self._header}")
        if as_str:
            return np.array(self._raw[name], dtype=str)
        arr = self._column_cache.get(name)
        if arr is None:
            cells = self._raw[name]
            try:
                arr = np.array([int(c) for c in cells], dtype=np.int64)
            except (ValueError, OverflowError):
                try:
                    arr = self._floats(name)
                except DataFileError:
                    arr = np.array(cells, dtype=str)
            arr.flags.writeable = False
            self._column_cache[name] = arr
        return arr

    # ------------------------------------------------------------------ published numbers
    def suite_zero_reference(self, dataset: str) -> ReferenceScores | None:
        """NAS-Bench-Suite-Zero's published proxy scores of this benchmark's architectures,
        computed on the images ``dataset`` (e.g. ``"cifar10"``), keyed by this benchmark's keys;
        ``None`` when there are none for those images.  A score file's rows whose architecture is
        not in the benchmark are left out; a key in several rows keeps the first."""
        if dataset not in self._suite_zero:
            return None
        spec = self._suite_zero[dataset]
        if spec is None:  # this table's own Suite-Zero columns
            present = [c for c in SUITE_ZERO_SCORE_COLUMNS if c in self.column_names()]
            if not present:
                return None
            columns = {c: np.asarray(self.column(c, per="key"), dtype=np.float64) for c in present}
            return ReferenceScores(f"NAS-Bench-Suite-Zero columns of {self.relpath}", self.keys(), columns,
                                   cite=SUITE_ZERO_CITE)
        scores = TableBenchmark(spec.relpath, key_column=spec.key_column, columns={}, protocols={},
                                index_column=None, data_dir=self.data_dir, duplicates="mean")
        if spec.via is None:
            translate: Callable[[str], str | None] = self._arch_key
        else:
            translate = dict(zip(self.column(spec.via, as_str=True, per="key"), self.keys())).get
        rows: dict[str, int] = {}  # key -> its first row (per key of the score file)
        for row, name in enumerate(scores.keys()):
            key = translate(name)
            if key is not None and key not in rows:
                rows[key] = row
        take = np.fromiter(rows.values(), dtype=np.intp, count=len(rows))
        columns = {c: np.asarray(scores.column(c, per="key"), dtype=np.float64)[take]
                   for c in SUITE_ZERO_SCORE_COLUMNS if c in scores.column_names()}
        return ReferenceScores(f"NAS-Bench-Suite-Zero, {spec.relpath}", list(rows), columns, cite=SUITE_ZERO_CITE)

    def published_search(self, dataset: str) -> list[PublishedSearch]:
        """Published search results on this benchmark whose searches used the images ``dataset``
        (the accuracy is on that dataset's test split), in a fixed order; empty when there are none."""
        return list(self._published_search.get(dataset, ()))

    def published_correlations(self, dataset: str) -> list[PublishedCorrelation]:
        """Published rank correlations of proxies scored on the images ``dataset`` with this
        benchmark's accuracy, in a fixed order; empty when there are none."""
        return [p for p in self._published_correlations if p.images == dataset]

    def __contains__(self, arch: Any) -> bool:
        self._ensure_loaded()
        return self._arch_key(arch) in self._row_of

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._row_of)


# ---------------------------------------------------------------------- NAS-Bench-201
NB201_FILE = "nb201/nb201_ground_truth.csv"

_NB201_COLUMNS: dict[tuple[str, str], str | tuple[str, ...]] = {
    ("cifar10-valid", "valid"): "c10valid_valid_200",
    # the shipped table's NB201 v1.0 column, else the one `harness convert nb201` writes
    ("cifar10-valid", "test"): ("nb201v10_c10valid_test_200", "c10valid_test_200"),
    ("cifar10", "test"): "c10_test_200",
    ("cifar100", "valid"): "c100_valid_200",
    ("cifar100", "test"): "c100_test_200",
    ("ImageNet16-120", "valid"): "in16_valid_200",
    ("ImageNet16-120", "test"): "in16_test_200",
}

_MEAN = "200 epochs, mean over 2-3 seeds (percent)"
_NB201_PROTOCOLS: dict[tuple[str, str], str] = {
    ("cifar10-valid", "valid"): (
        f"NB201 cifar10-valid/valid: trained on the 25k train split, accuracy on the 25k valid split, {_MEAN}"
    ),
    ("cifar10-valid", "test"): (
        "NB201 cifar10-valid/test: trained on the 25k train split, accuracy on the 10k test set, 200 epochs, "
        "NB201 v1.0's table in the shipped data, the converted file's otherwise (the released WRCor notebook's target)"
    ),
    ("cifar10", "test"): (
        f"NB201 cifar10/test: trained on train+valid (50k), accuracy on the 10k test set, {_MEAN}"
    ),
    ("cifar100", "valid"): (
        f"NB201 cifar100/valid (x-valid half of the test set), {_MEAN}; "
        "derived as 2*valtest - test, no independent check"
    ),
    ("cifar100", "test"): f"NB201 cifar100/test (x-test half of the test set), {_MEAN}",
    ("ImageNet16-120", "valid"): (
        f"NB201 ImageNet16-120/valid (x-valid half of the test set), {_MEAN}; "
        "derived as 2*valtest - test, no independent check"
    ),
    ("ImageNet16-120", "test"): f"NB201 ImageNet16-120/test (x-test half of the test set), {_MEAN}",
}


#: Suite-Zero's NB201 scores per image dataset: keyed by architecture string (CIFAR-10) or by
#: NASLib's cell tuple, the table's ``naslib_tuple`` column (ImageNet16-120)
_NB201_SUITE_ZERO = {
    "cifar10": ScoreFile("nb201/suite_zero_proxies_cifar10.csv"),
    "ImageNet16-120": ScoreFile("nb201/suite_zero_proxies_imagenet16.csv", key_column="net", via="naslib_tuple"),
}
#: published zero-shot search results on NB201 (test accuracy, %, as the papers report their means)
_NB201_PUBLISHED_SEARCH = {
    images: (PublishedSearch("NASWOT", "N=1000", "Mellor et al. 2021", naswot, cite="mellor2021naswot"),
             PublishedSearch("TE-NAS", "", "Chen et al. 2021", tenas, cite="chen2021tenas"))
    for images, naswot, tenas in (("cifar10", 92.96, 93.9), ("cifar100", 69.98, 71.24),
                                  ("ImageNet16-120", 44.44, 42.38))
}


#: VKDNW's Table 1 (CVPR 2025): proxy, re-run by them (not their method), rho and tau on
#: cifar10 / cifar100 / ImageNet16-120
_VKDNW_TABLE1 = (
    ("vkdnw_agg", False, {"rho": (0.919, 0.919, 0.906), "tau": (0.750, 0.753, 0.743)}),
    ("vkdnw_single", False, {"rho": (0.815, 0.829, 0.814), "tau": (0.618, 0.634, 0.622)}),
    ("az_nas", True, {"rho": (0.892, 0.880, 0.859), "tau": (0.712, 0.696, 0.673)}),
    ("te_nas", True, {"rho": (0.722, 0.723, 0.709), "tau": (0.536, 0.537, 0.523)}),
)
_ZC = "Abdelfattah et al. 2021"
#: published rank correlations on NB201 (Spearman rho).  The zero-cost-proxies paper's are over all
#: 15,625 architectures; WRCor's over the first 1000 (its released notebook); ZiCo's and MeCo's over
#: the whole space, as their papers report them
_NB201_PUBLISHED_CORRELATIONS = (
    PublishedCorrelation("wrcor", "cifar10", "rho", 0.812, "first 1000", "Jing et al. 2025", cite="jing2025wrcor",
                         target=("cifar10-valid", "test")),
    *(PublishedCorrelation(proxy, images, "rho", value, "all 15,625", _ZC, cite="abdelfattah2021zerocost")
      for proxy, values in (("synflow", (0.74, 0.76, 0.75)), ("jacob_cov", (0.73, 0.70, 0.70)),
                            ("snip", (0.60, 0.64, 0.58)), ("grasp", (0.51, 0.55, 0.55)),
                            ("fisher", (0.36, 0.39, 0.33)))
      for images, value in zip(("cifar10", "cifar100", "ImageNet16-120"), values)),
    PublishedCorrelation("zico", "cifar10", "rho", 0.80, "all 15,625", "Li et al. 2023", cite="li2023zico"),
    PublishedCorrelation("meco", "cifar10", "rho", 0.89, "all 15,625", "Jiang et al. 2023", cite="jiang2023meco"),
    # the peers (../shared/specs/peer_proxies.md): AZ-NAS's own CIFAR-10 row as its released notebook
    # prints it (seed 1, all archs, cifar10 ori-test); the rest from VKDNW's Table 1 (5 runs, test
    # accuracy: cifar10 ori-test, cifar100 / ImageNet16-120 x-test), AZ-NAS and TE-NAS re-run there
    *(PublishedCorrelation("az_nas", "cifar10", metric, value, "all 15,625", "Lee & Ham 2024", cite="lee2024aznas",
                           target=("cifar10", "test"), where="released notebook tss_general.ipynb (seed 1)")
      for metric, value in (("rho", 0.913), ("tau", 0.741))),
    *(PublishedCorrelation(proxy, images, metric, value, "all 15,625", "Týbl & Neumann 2025", cite="tybl2025vkdnw",
                           target=(images, "test"), where="Table 1" + (" (their re-run)" if rerun else ""))
      for metric in ("rho", "tau")
      for proxy, rerun, by_metric in _VKDNW_TABLE1
      for images, value in zip(("cifar10", "cifar100", "ImageNet16-120"), by_metric[metric])),
    PublishedCorrelation("swap_reg", "cifar100", "rho", 0.90, "not stated", "Peng et al. 2024", cite="peng2024swap",
                         target=("cifar100", "valid"), where="abstract (mu, sigma not given)"),
)


def nb201_benchmark(data_dir: str | os.PathLike[str] | None = None) -> TableBenchmark:
    """NAS-Bench-201 (= NATS-Bench TSS) ground truth for all 15,625 cells, 200-epoch schedule.

    Keyed by the official arch string (``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``); ``index_of``
    gives the official NB201/NATS index.  Extra columns (``cifar10_val_12ep``,
    ``train_time_s_c10valid_200``, ``params_mb_c10`` ...) are available through ``column``.
    Suite-Zero's scores (CIFAR-10, ImageNet16-120) and published NASWOT / TE-NAS search results
    come with it.
    """
    return TableBenchmark(
        NB201_FILE,
        key_column="arch_str",
        columns=_NB201_COLUMNS,
        protocols=_NB201_PROTOCOLS,
        index_column="index",
        data_dir=data_dir,
        suite_zero=_NB201_SUITE_ZERO,
        published_search=_NB201_PUBLISHED_SEARCH,
        published_correlations=_NB201_PUBLISHED_CORRELATIONS,
        cite="dong2020nasbench201",
    )
