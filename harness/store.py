"""Durable score cache: one SQLite file, one row per scored (architecture, setting).

A crash loses nothing: every :meth:`ScoreStore.put` / :meth:`ScoreStore.put_many` is one
transaction that is committed (``synchronous=FULL``, write-ahead log) before the call
returns, so a process killed at any point leaves every previously stored record
readable, and a restarted job skips them.

* **Key** -- :class:`ScoreKey`; *every* field (space, arch, dataset, proxy, seed,
  batch_size, input_kind, code_version, params) is part of the primary key, so a change
  to any knob that changes a score (including ``code_version`` and the proxy's
  canonical ``params`` string) is a different record, never a stale hit.
* **Values** -- NaN and +-inf round-trip exactly.  SQLite stores NaN as NULL, so the
  outcome is kept in its own ``status`` column (``"ok"``, ``"nan"``, ``"inf"``,
  ``"error"``, ``"oom"``); see :func:`status_of`.  (``-0.0`` reads back as ``0.0``.)
* **Several processes** (Hydra multirun jobs) may share one file: WAL journal mode and
  a 60 s busy timeout; writes take the write lock up front (``BEGIN IMMEDIATE``).
  The file must be on a local filesystem (WAL needs shared memory; not NFS).
* **Last write wins** -- a put of an existing key replaces the row.  The runner never
  relies on that: it looks a key up first and never recomputes a key that is present.

A :class:`ScoreStore` holds one connection: open one per process (and per thread);
do not carry an open store across ``fork``.

>>> with ScoreStore(":memory:") as store:
...     key = ScoreKey(space="nb201", arch="|nor_conv_3x3~0|", dataset="cifar10",
...                    proxy="wrcor", seed=0, batch_size=64, input_kind="real",
...                    code_version="abc123")
...     store.put(Record(key, float("-inf"), status_of(float("-inf")), seconds=0.5))
...     rec = store.get(key)
...     (rec.value, rec.status, len(store), store.get(replace(key, seed=1)))
(-inf, 'inf', 1, None)
"""

from __future__ import annotations

import math
import operator
import os
import sqlite3
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Iterable, Sequence, Union

__all__ = ["ScoreKey", "Record", "ScoreStore", "status_of", "STATUSES"]

#: Allowed values of :attr:`Record.status`.
STATUSES: tuple[str, ...] = ("ok", "nan", "inf", "error", "oom")

_SCHEMA_VERSION = 1
_BUSY_TIMEOUT_S = 60.0
# Bound parameters per statement in get_many: far below SQLite's limit (999 on old builds).
_CHUNK = 500

_STR_KEY_FIELDS = ("space", "arch", "dataset", "proxy", "input_kind", "code_version", "params")
_INT_KEY_FIELDS = ("seed", "batch_size")


def status_of(value: float) -> str:
    """Status of a computed score: ``"ok"`` (finite), ``"nan"`` or ``"inf"`` (either sign).

    >>> status_of(0.25), status_of(float("nan")), status_of(float("-inf"))
    ('ok', 'nan', 'inf')
    """
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf"
    return "ok"


@dataclass(frozen=True)
class ScoreKey:
    """Everything a score depends on; all fields form the store's primary key.

    ``arch`` is the space's canonical string (``Arch.to_str()``); ``params`` is a
    canonical string of any other knob that changes the score (e.g. a proxy's
    parameters), ``""`` when there is none.  Integer fields accept numpy integers
    (stored as ``int``); anything else of the wrong type raises ``TypeError``.
    """

    space: str
    arch: str
    dataset: str
    proxy: str
    seed: int
    batch_size: int
    input_kind: str
    code_version: str
    params: str = ""

    def __post_init__(self) -> None:
        for name in _STR_KEY_FIELDS:
            if not isinstance(getattr(self, name), str):
                raise TypeError(
                    f"ScoreKey.{name} must be str, got {type(getattr(self, name)).__name__}"
                )
        for name in _INT_KEY_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool):
                raise TypeError(f"ScoreKey.{name} must be int, got bool")
            try:
                object.__setattr__(self, name, operator.index(v))
            except TypeError:
                raise TypeError(
                    f"ScoreKey.{name} must be int, got {type(v).__name__}"
                ) from None


_KEY_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ScoreKey))


@dataclass(frozen=True)
class Record:
    """One stored outcome of scoring ``key``.

    ``status`` must agree with ``value``: ``"ok"`` needs a finite value, ``"nan"`` a
    NaN, ``"inf"`` +-inf (use :func:`status_of`); ``"error"`` and ``"oom"`` (the score
    could not be computed; ``message`` says why) accept any value, usually NaN.
    ``seconds`` is the compute time actually spent, ``n_skipped`` the number of
    modules/samples a proxy had to skip, ``created`` a unix timestamp.
    Equality treats two NaN values as equal, so a record equals its round trip.
    """

    key: ScoreKey
    value: float
    status: str
    seconds: float
    n_skipped: int = 0
    message: str = ""
    created: float = field(default_factory=time.time)

    @property
    def failed(self) -> bool:
        """The score could not be computed (``error`` or ``oom``), as opposed to a NaN/inf score."""
        return self.status in ("error", "oom")

    def __post_init__(self) -> None:
        if not isinstance(self.key, ScoreKey):
            raise TypeError(f"Record.key must be a ScoreKey, got {type(self.key).__name__}")
        if self.status not in STATUSES:
            raise ValueError(f"Record.status must be one of {STATUSES}, got {self.status!r}")
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "seconds", float(self.seconds))
        object.__setattr__(self, "n_skipped", operator.index(self.n_skipped))
        object.__setattr__(self, "created", float(self.created))
        if not isinstance(self.message, str):
            raise TypeError(f"Record.message must be str, got {type(self.message).__name__}")
        if self.status in ("ok", "nan", "inf") and status_of(self.value) != self.status:
            raise ValueError(
                f"Record.status {self.status!r} does not match value {self.value!r} "
                f"(expected {status_of(self.value)!r})"
            )

    def __eq__(self, other: object) -> bool:
        # NaN != NaN would make a round-tripped record unequal to itself.
        if not isinstance(other, Record):
            return NotImplemented
        same_value = self.value == other.value or (
            math.isnan(self.value) and math.isnan(other.value)
        )
        return same_value and (
            self.key,
            self.status,
            self.seconds,
            self.n_skipped,
            self.message,
            self.created,
        ) == (other.key, other.status, other.seconds, other.n_skipped, other.message, other.created)

    def __hash__(self) -> int:
        return hash((self.key, self.status, self.seconds, self.created))


_COLUMNS = _KEY_FIELDS + ("value", "status", "seconds", "n_skipped", "message", "created")
# ``arch`` last in the primary key: get_many queries ``<equal on the rest> AND arch IN (...)``.
_PK_ORDER = tuple(n for n in _KEY_FIELDS if n != "arch") + ("arch",)

_CREATE = f"""
CREATE TABLE IF NOT EXISTS scores (
    space        TEXT    NOT NULL,
    arch         TEXT    NOT NULL,
    dataset      TEXT    NOT NULL,
    proxy        TEXT    NOT NULL,
    seed         INTEGER NOT NULL,
    batch_size   INTEGER NOT NULL,
    input_kind   TEXT    NOT NULL,
    code_version TEXT    NOT NULL,
    params       TEXT    NOT NULL,
    value        REAL,
    status       TEXT    NOT NULL CHECK (status IN ({", ".join(repr(s) for s in STATUSES)})),
    seconds      REAL    NOT NULL,
    n_skipped    INTEGER NOT NULL,
    message      TEXT    NOT NULL,
    created      REAL    NOT NULL,
    PRIMARY KEY ({", ".join(_PK_ORDER)})
) WITHOUT ROWID
"""

_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM scores"
_INSERT = (
    f"INSERT OR REPLACE INTO scores ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_COLUMNS))})"
)


def _row_of(rec: Record) -> tuple:
    k = rec.key
    value = None if math.isnan(rec.value) else rec.value  # NaN is stored as NULL
    return (
        k.space, k.arch, k.dataset, k.proxy, k.seed, k.batch_size, k.input_kind,
        k.code_version, k.params,
        value, rec.status, rec.seconds, rec.n_skipped, rec.message, rec.created,
    )


def _record_of(row: Sequence) -> Record:
    nk = len(_KEY_FIELDS)
    key = ScoreKey(**dict(zip(_KEY_FIELDS, row[:nk])))
    value, status, seconds, n_skipped, message, created = row[nk:]
    return Record(
        key=key,
        value=math.nan if value is None else float(value),
        status=status,
        seconds=seconds,
        n_skipped=n_skipped,
        message=message,
        created=created,
    )


class ScoreStore:
    """SQLite-backed score cache shared safely by several processes.

    ``path`` is a file (parent directories are created) or ``":memory:"``.
    Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: Union[str, os.PathLike]) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions, we issue BEGIN/COMMIT ourselves.
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None
        )
        try:
            self._setup()
        except BaseException:
            self._conn.close()
            self._conn = None
            raise

    def _setup(self) -> None:
        c = self._c
        c.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        c.execute("PRAGMA journal_mode = WAL")
        c.execute("PRAGMA synchronous = FULL")  # commit = fsync'd WAL: durable
        with self._write():
            version = c.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                raise RuntimeError(
                    f"{self.path}: score store schema version {version}, "
                    f"this code reads version {_SCHEMA_VERSION}"
                )
            c.execute(_CREATE)
            c.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    @property
    def _c(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"ScoreStore({self.path!r}) is closed")
        return self._conn

    class _Txn:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def __enter__(self) -> sqlite3.Connection:
            # Take the write lock now (waits up to busy_timeout) rather than upgrading
            # a read lock later, which can fail with SQLITE_BUSY without waiting.
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, exc_type, exc, tb) -> None:
            if exc_type is None:
                self.conn.execute("COMMIT")
            else:
                self.conn.execute("ROLLBACK")

    def _write(self) -> "ScoreStore._Txn":
        return ScoreStore._Txn(self._c)

    # ------------------------------------------------------------------ reads
    def get(self, key: ScoreKey) -> Record | None:
        """The record stored for ``key``, or ``None``."""
        where = " AND ".join(f"{n} = ?" for n in _KEY_FIELDS)
        row = self._c.execute(
            f"{_SELECT} WHERE {where}", tuple(getattr(key, n) for n in _KEY_FIELDS)
        ).fetchone()
        return None if row is None else _record_of(row)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, ScoreKey) and self.get(key) is not None

    def get_many(self, keys: Iterable[ScoreKey]) -> dict[ScoreKey, Record]:
        """Records for those of ``keys`` that are stored (missing keys are absent).

        Keys are grouped by everything but ``arch`` and fetched with indexed
        ``arch IN (...)`` queries, so thousands of keys cost a handful of statements.
        All reads happen in one snapshot.
        """
        groups: dict[tuple, list[str]] = {}
        wanted: set[ScoreKey] = set()
        for k in keys:
            if k in wanted:
                continue
            wanted.add(k)
            groups.setdefault(tuple(getattr(k, n) for n in _PK_ORDER[:-1]), []).append(k.arch)
        out: dict[ScoreKey, Record] = {}
        if not wanted:
            return out
        c = self._c
        where = " AND ".join(f"{n} = ?" for n in _PK_ORDER[:-1])
        c.execute("BEGIN")  # one read snapshot for all chunks
        try:
            for prefix, archs in groups.items():
                for i in range(0, len(archs), _CHUNK):
                    chunk = archs[i : i + _CHUNK]
                    sql = f"{_SELECT} WHERE {where} AND arch IN ({', '.join('?' * len(chunk))})"
                    for row in c.execute(sql, prefix + tuple(chunk)):
                        rec = _record_of(row)
                        out[rec.key] = rec
        finally:
            c.execute("COMMIT")
        return out

    def __len__(self) -> int:
        return int(self._c.execute("SELECT COUNT(*) FROM scores").fetchone()[0])

    def records(self, **filters: object) -> list[Record]:
        """All records whose fields equal ``filters`` (any :class:`ScoreKey` field, or
        ``status``), in primary-key order.  ``records()`` returns everything.

        >>> with ScoreStore(":memory:") as store:
        ...     store.records(proxy="wrcor", seed=0)
        []
        """
        allowed = _KEY_FIELDS + ("status",)
        unknown = sorted(set(filters) - set(allowed))
        if unknown:
            raise TypeError(f"unknown filter(s) {unknown}; valid: {list(allowed)}")
        names = [n for n in allowed if n in filters]
        sql = _SELECT
        if names:
            sql += " WHERE " + " AND ".join(f"{n} = ?" for n in names)
        sql += f" ORDER BY {', '.join(_PK_ORDER)}"
        rows = self._c.execute(sql, tuple(filters[n] for n in names)).fetchall()
        return [_record_of(r) for r in rows]

    # ----------------------------------------------------------------- writes
    def put(self, record: Record) -> None:
        """Store one record; committed (durable) before returning.  Replaces an
        existing record with the same key (last write wins)."""
        self.put_many((record,))

    def put_many(self, records: Iterable[Record]) -> None:
        """Store many records in ONE transaction, committed before returning:
        either all are stored or (on an exception) none."""
        rows = []
        for r in records:
            if not isinstance(r, Record):
                raise TypeError(f"put_many expects Record objects, got {type(r).__name__}")
            rows.append(_row_of(r))
        if not rows:
            return
        with self._write() as c:
            c.executemany(_INSERT, rows)

    # -------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "ScoreStore":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"ScoreStore({self.path!r}, {state})"
