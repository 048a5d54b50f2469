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
* **Several machines** (a cluster sweep) write one store each -- never one file over NFS --
  and :meth:`ScoreStore.merge_from` folds them into one without loss (a computed score beats
  a recorded failure, otherwise the destination's record is kept); :class:`UnionStore` reads
  several stores as one and writes to one of them.  ``harness store merge|count``.
  :func:`merge_stores` can skip an unreadable source, naming it, and merge the others.
* **Errors** -- a file, disk or lock problem is a :class:`StoreError` naming the store's path,
  the cause (cannot create, read-only, disk full, locked, not a database / corrupt, I/O) and
  what to do; it is a :class:`~harness.errors.UserError`, so the command line prints one line
  and exits with status 2.  A failed write is rolled back whole: what was committed stays.

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

import contextlib
import errno
import math
import operator
import os
import sqlite3
import sys
import time
from dataclasses import dataclass, field, fields, replace  # noqa: F401  (the module doctest uses replace)
from pathlib import Path
from typing import Callable, Iterable, Sequence, Union

from ..errors import UserError

__all__ = ["ScoreKey", "Record", "ScoreStore", "UnionStore", "StoreError", "merge_stores", "status_of", "STATUSES",
           "main"]

#: Allowed values of :attr:`Record.status`.
STATUSES: tuple[str, ...] = ("ok", "nan", "inf", "error", "oom")

_SCHEMA_VERSION = 1
_BUSY_TIMEOUT_S = 60.0
# Bound parameters per statement in get_many: far below SQLite's limit (999 on old builds).
_CHUNK = 500

_STR_KEY_FIELDS = ("space", "arch", "dataset", "proxy", "input_kind", "code_version", "params")
_INT_KEY_FIELDS = ("seed", "batch_size")


class StoreError(UserError, RuntimeError):
    """A score store cannot be opened, read or written: the message names the file, the cause
    (cannot create, read-only, disk full, locked, not a database / corrupt, I/O error) and what
    to do.  ``cause`` is that cause as one word (``"create"``, ``"readonly"``, ``"full"``,
    ``"locked"``, ``"corrupt"``, ``"io"``, ``"other"``), ``path`` the store's file.

    A :class:`~harness.errors.UserError`, so ``harness run`` / ``harness search`` print it as
    one line and exit with status 2; every record committed before the error stays stored
    (each write is one transaction: a failed one leaves nothing half-written)."""

    def __init__(self, message: str, *, path: str = "", cause: str = "other") -> None:
        super().__init__(message)
        self.path, self.cause = path, cause


def _dir_of(path: str) -> Path:
    return Path(path).expanduser().absolute().parent


def _nearest_existing(d: Path) -> Path:
    while not d.exists() and d != d.parent:
        d = d.parent
    return d


def store_error(path: str, err: BaseException, action: str, *, timeout_s: float = _BUSY_TIMEOUT_S) -> StoreError:
    """The :class:`StoreError` for ``err`` (a ``sqlite3`` error or an ``OSError``) raised while
    ``action`` (``"open"``, ``"read"``, ``"write"``) on the store at ``path``."""
    raw = f"{type(err).__name__}: {err}"
    name = getattr(err, "sqlite_errorname", "") or ""
    text = str(err).lower()
    d = _dir_of(path)
    p = Path(path)
    if path != ":memory:":
        path = str(p.expanduser().absolute())
    eno = getattr(err, "errno", None)
    where = f"score store {path}"
    keep = "every record committed before stays in the store"
    if (name.startswith("SQLITE_FULL") or "disk is full" in text or eno in (errno.ENOSPC, errno.EDQUOT)):
        return StoreError(f"{where}: cannot {action}: the disk holding it is full ({raw}). Free space on that "
                          f"filesystem (df {d}) or set store.path to a file on another disk, then rerun: "
                          f"{keep} and the job skips them", path=path, cause="full")
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED") or "locked" in text:
        return StoreError(f"{where}: cannot {action}: it is locked: another process has held its write lock for "
                          f"more than the {timeout_s:g} s this job waits ({raw}). Wait for that process to finish "
                          f"or stop it (`fuser {path}` names it), then rerun; a store must be on a local "
                          f"filesystem (not NFS)", path=path, cause="locked")
    if (name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or name.startswith("SQLITE_CORRUPT")
            or "not a database" in text or "malformed" in text):
        return StoreError(f"{where}: cannot {action}: it is not a score store or it is corrupt ({raw}). Move it "
                          f"aside (e.g. mv {path} {path}.bad) and rerun: the job recomputes what is missing; or "
                          f"restore it from a copy", path=path, cause="corrupt")
    readonly_file = p.exists() and not os.access(p, os.W_OK)
    readonly_dir = d.exists() and not os.access(d, os.W_OK)
    if name.startswith("SQLITE_READONLY") or "readonly" in text or "read-only" in text or eno in (
            errno.EROFS, errno.EACCES, errno.EPERM) and p.exists():
        if readonly_file:
            why, todo = "the file is read-only", f"make it writable (chmod u+w {path})"
        elif readonly_dir:
            why, todo = (f"its directory {d} is read-only (SQLite writes its -wal and -shm journal files beside "
                         "the store)"), f"make {d} writable"
        else:
            why, todo = "the file or its filesystem is read-only", "make it writable"
        return StoreError(f"{where}: cannot {action}: {why} ({raw}). {todo.capitalize()}, or set store.path to "
                          f"a file in a writable directory", path=path, cause="readonly")
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text or isinstance(err, OSError):
        if not d.is_dir():
            base = _nearest_existing(d)
            why = (f"its directory {d} does not exist and cannot be created "
                   f"({base} {'is not a directory' if base.exists() and not base.is_dir() else 'is not writable'})")
        elif readonly_dir:
            why = (f"its directory {d} is not writable" if not p.exists() else
                   f"its directory {d} is not writable (SQLite creates the -wal and -shm journal files beside "
                   "the store)")
        elif p.exists() and not os.access(p, os.R_OK):
            why = "the file is not readable"
        elif p.is_dir():
            why = "it is a directory, not a file"
        else:
            why = "SQLite cannot open the file"
        verb = "create" if not p.exists() else action
        return StoreError(f"{where}: cannot {verb}: {why} ({raw}). Set store.path to a file in a writable "
                          f"directory, or fix the permissions", path=path, cause="create" if verb == "create" else "other")
    if name.startswith("SQLITE_IOERR") or "disk i/o" in text:
        return StoreError(f"{where}: cannot {action}: an I/O error ({raw}). Check the disk (and that the store is on "
                          f"a local filesystem, not NFS), then rerun: {keep}", path=path, cause="io")
    return StoreError(f"{where}: cannot {action}: {raw}", path=path, cause="other")


#: the errors of the environment (the file, the disk, other processes) that :class:`StoreError`
#: explains; integrity and programming errors (a bad row, a closed store) stay what they are
_ENV_ERRORS = (sqlite3.OperationalError, sqlite3.DatabaseError, OSError)


def _environmental(err: BaseException) -> bool:
    return isinstance(err, _ENV_ERRORS) and not isinstance(
        err, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError, StoreError))


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
    ``readonly=True`` opens an existing store for reading only (SQLite ``mode=ro``: the
    file is never written; a put raises); a missing file is then ``FileNotFoundError``.
    Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: Union[str, os.PathLike], *, readonly: bool = False,
                 timeout_s: float | None = None) -> None:
        self.path = str(path)
        self.readonly = bool(readonly)
        #: how long a write waits for another process's write lock before :class:`StoreError` ("locked")
        self.timeout_s = float(_BUSY_TIMEOUT_S if timeout_s is None else timeout_s)
        self._conn: sqlite3.Connection | None = None
        if self.readonly:
            if self.path == ":memory:":
                raise ValueError("a read-only ScoreStore needs a file, not ':memory:'")
            if not Path(self.path).is_file():
                raise FileNotFoundError(f"score store {self.path} does not exist")
            target, uri = Path(self.path).resolve().as_uri() + "?mode=ro", True
        else:
            target, uri = self.path, False
        with self._guard("create" if self.path != ":memory:" and not Path(self.path).exists() else "open"):
            if not self.readonly and self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: no implicit transactions, we issue BEGIN/COMMIT ourselves.
            self._conn = sqlite3.connect(target, timeout=self.timeout_s, isolation_level=None, uri=uri)
            try:
                self._setup()
            except BaseException:
                self._conn.close()
                self._conn = None
                raise

    @contextlib.contextmanager
    def _guard(self, action: str):
        """Turn an error of the environment (file, disk, lock) into a :class:`StoreError` that
        names this store, the cause and what to do."""
        try:
            yield
        except BaseException as err:
            if _environmental(err):
                raise store_error(self.path, err, action, timeout_s=self.timeout_s) from err
            raise

    def _setup(self) -> None:
        c = self._c
        c.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
        if self.readonly:
            version = c.execute("PRAGMA user_version").fetchone()[0]
            has_table = c.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'scores'"
            ).fetchone()
            if version != _SCHEMA_VERSION or not has_table:
                raise StoreError(
                    f"score store {self.path}: cannot read: not a score store of schema version {_SCHEMA_VERSION} "
                    f"(user_version {version}, scores table {'present' if has_table else 'absent'}). Move it "
                    "aside or name the right file", path=self.path, cause="corrupt")
            return
        self._switch_to_wal()
        c.execute("PRAGMA synchronous = FULL")  # commit = fsync'd WAL: durable
        with self._write():
            version = c.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                raise StoreError(
                    f"score store {self.path}: cannot open: schema version {version}, "
                    f"this code reads version {_SCHEMA_VERSION}", path=self.path, cause="other")
            c.execute(_CREATE)
            c.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    def _switch_to_wal(self) -> None:
        """``PRAGMA journal_mode = WAL``, retried: switching a new file to WAL needs an exclusive
        lock and SQLite does not wait for it (the busy timeout does not apply), so several
        processes opening one new store at once (a sweep's first jobs) would fail with
        "database is locked"."""
        deadline = time.monotonic() + self.timeout_s
        delay = 0.005
        while True:
            try:
                self._c.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

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
                try:
                    self.conn.execute("COMMIT")
                    return
                except BaseException:
                    self._rollback()
                    raise
            self._rollback()

        def _rollback(self) -> None:
            # SQLite may already have rolled back (a full disk, an I/O error): never let the
            # rollback's own error hide the cause
            if self.conn.in_transaction:
                try:
                    self.conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass

    def _write(self) -> "ScoreStore._Txn":
        if self.readonly:
            raise PermissionError(f"ScoreStore({self.path!r}) was opened read-only")
        return ScoreStore._Txn(self._c)

    # ------------------------------------------------------------------ reads
    def get(self, key: ScoreKey) -> Record | None:
        """The record stored for ``key``, or ``None``."""
        where = " AND ".join(f"{n} = ?" for n in _KEY_FIELDS)
        with self._guard("read"):
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
        keys = list(keys)
        if not keys:
            return {}
        c = self._c
        with self._guard("read"):
            c.execute("BEGIN")  # one read snapshot for all chunks
            try:
                got = _fetch(c, keys)
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")
            return got

    def __len__(self) -> int:
        with self._guard("read"):
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
        with self._guard("read"):
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
        txn = self._write()
        with self._guard("write"), txn as c:
            c.executemany(_INSERT, rows)

    def merge_from(self, source: Union[str, os.PathLike, "ScoreStore"]) -> dict[str, int]:
        """Copy every record of ``source`` (a path, opened read-only, or an open store) into
        this store, in ONE transaction; return the counts ``added`` (key missing here),
        ``replaced`` (a failed record here -- ``error``/``oom`` -- and a computed one, ok/nan/inf,
        in ``source``: a computed score beats a failure), ``kept`` (anything else: this
        store's record stays) and ``read`` (records in ``source``).  Idempotent: merging the
        same source again adds and replaces nothing.

        >>> k = ScoreKey("nb201", "a", "cifar10", "wrcor", 0, 8, "noise", "v")
        >>> with ScoreStore(":memory:") as shard, ScoreStore(":memory:") as main:
        ...     shard.put(Record(k, 1.5, "ok", 0.1))
        ...     main.put(Record(k, math.nan, "oom", 0.0, message="CUDA out of memory"))
        ...     first, again = main.merge_from(shard), main.merge_from(shard)
        ...     (first["replaced"], again["kept"], main.get(k).value)
        (1, 1, 1.5)
        """
        return self._merge_records(read_store(source))

    def _merge_records(self, incoming: list[Record]) -> dict[str, int]:
        """:meth:`merge_from` of records already read."""
        counts = {"added": 0, "replaced": 0, "kept": 0, "read": len(incoming)}
        rows = []
        txn = self._write()
        with self._guard("write"), txn as c:
            here = _fetch(c, [r.key for r in incoming])
            for rec in incoming:
                old = here.get(rec.key)
                if old is None:
                    counts["added"] += 1
                elif old.failed and not rec.failed:
                    counts["replaced"] += 1
                else:
                    counts["kept"] += 1
                    continue
                rows.append(_row_of(rec))
            if rows:
                c.executemany(_INSERT, rows)
        return counts

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
        mode = ", read-only" if self.readonly else ""
        return f"ScoreStore({self.path!r}, {state}{mode})"


def _fetch(c: sqlite3.Connection, keys: Iterable[ScoreKey]) -> dict[ScoreKey, Record]:
    """The stored records of ``keys``, read on ``c`` inside the caller's transaction: keys
    are grouped by everything but ``arch`` and fetched with indexed ``arch IN (...)`` queries."""
    groups: dict[tuple, list[str]] = {}
    wanted: set[ScoreKey] = set()
    for k in keys:
        if k in wanted:
            continue
        wanted.add(k)
        groups.setdefault(tuple(getattr(k, n) for n in _PK_ORDER[:-1]), []).append(k.arch)
    out: dict[ScoreKey, Record] = {}
    where = " AND ".join(f"{n} = ?" for n in _PK_ORDER[:-1])
    for prefix, archs in groups.items():
        for i in range(0, len(archs), _CHUNK):
            chunk = archs[i : i + _CHUNK]
            sql = f"{_SELECT} WHERE {where} AND arch IN ({', '.join('?' * len(chunk))})"
            for row in c.execute(sql, prefix + tuple(chunk)):
                rec = _record_of(row)
                out[rec.key] = rec
    return out


def _prefer(found: Record | None, rec: Record | None) -> Record | None:
    """The record a union lookup returns: the first found, unless it is a failure and a
    later store has a computed one."""
    if found is None:
        return rec
    if rec is not None and found.failed and not rec.failed:
        return rec
    return found


class UnionStore:
    """Several stores read as one, written as one: lookups return the first record found
    in ``[write, *read_also]`` -- preferring a computed one (ok/nan/inf) to a failure
    (error/oom) found earlier -- and :meth:`put` / :meth:`put_many` go to ``write`` only.
    ``len()`` is the write store's.  It owns the stores: :meth:`close` closes them all.

    A cluster shard writes its own file and looks scores up there and in the main store
    too, so nothing scored anywhere is computed again.

    >>> k = ScoreKey("nb201", "a", "cifar10", "wrcor", 0, 8, "noise", "v")
    >>> main = ScoreStore(":memory:"); main.put(Record(k, 2.0, "ok", 0.1))
    >>> with UnionStore(ScoreStore(":memory:"), [main]) as u:
    ...     (u.get(k).value, k in u, len(u))
    (2.0, True, 0)
    """

    def __init__(self, write: ScoreStore, read_also: Sequence[ScoreStore] = ()) -> None:
        self.write = write
        self.read_also = list(read_also)

    @property
    def stores(self) -> list[ScoreStore]:
        return [self.write, *self.read_also]

    @property
    def path(self) -> str:
        return self.write.path

    def get(self, key: ScoreKey) -> Record | None:
        found = None
        for s in self.stores:
            found = _prefer(found, s.get(key))
            if found is not None and not found.failed:
                break
        return found

    def __contains__(self, key: object) -> bool:
        return isinstance(key, ScoreKey) and self.get(key) is not None

    def get_many(self, keys: Iterable[ScoreKey]) -> dict[ScoreKey, Record]:
        todo = list(dict.fromkeys(keys))
        out: dict[ScoreKey, Record] = {}
        for s in self.stores:
            if not todo:
                break
            got = s.get_many(todo)
            for k, rec in got.items():
                out[k] = _prefer(out.get(k), rec)
            todo = [k for k in todo if k not in out or out[k].failed]
        return out

    def records(self, **filters: object) -> list[Record]:
        """The union's records matching ``filters`` (one per key, as :meth:`get` would
        choose), in primary-key order."""
        out: dict[ScoreKey, Record] = {}
        for s in self.stores:
            for rec in s.records(**filters):
                out[rec.key] = _prefer(out.get(rec.key), rec)
        return sorted(out.values(), key=lambda r: tuple(getattr(r.key, n) for n in _PK_ORDER))

    def __len__(self) -> int:
        return len(self.write)

    def put(self, record: Record) -> None:
        self.write.put(record)

    def put_many(self, records: Iterable[Record]) -> None:
        self.write.put_many(records)

    def close(self) -> None:
        for s in self.stores:
            s.close()

    def __enter__(self) -> "UnionStore":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"UnionStore(write={self.write!r}, read_also={self.read_also!r})"


def read_store(source: Union[str, os.PathLike, "ScoreStore"]) -> list[Record]:
    """Every record of ``source`` (a path, opened read-only, or an open store).  A file that cannot
    be read as a score store is a :class:`StoreError` naming it and the cause (a missing file
    stays ``FileNotFoundError``)."""
    if isinstance(source, ScoreStore):
        return source.records()
    path = str(source)
    try:
        with ScoreStore(path, readonly=True) as src:
            return src.records()
    except (StoreError, FileNotFoundError):
        raise
    except (sqlite3.Error, OSError, ValueError, TypeError) as err:  # e.g. a row a corrupt file garbled
        raise StoreError(f"score store {path}: cannot read: a record is unreadable ({type(err).__name__}: {err}); "
                         f"it is corrupt. Move it aside or restore it from a copy", path=path,
                         cause="corrupt") from err


def merge_stores(dest: ScoreStore, sources: Iterable[Union[str, os.PathLike]],
                 on_merged: Callable[[str, dict[str, int] | None], None] | None = None,
                 on_unreadable: Callable[[str, BaseException], None] | None = None) -> dict[str, int]:
    """Merge every source store into ``dest`` (:meth:`ScoreStore.merge_from`; a source that is
    ``dest`` itself is skipped) and return the summed counts plus ``files`` merged.
    ``on_merged(source, counts)`` is told of each source as it is done (``None`` if skipped).

    A source that cannot be read (missing, corrupt, not a store, locked...) raises -- or, with
    ``on_unreadable``, is passed to ``on_unreadable(source, error)`` and skipped while the others
    are merged.  Each source is read in full before anything of it is written, and written in one
    transaction, so the records merged before and after an unreadable source are intact.  An error
    writing ``dest`` (disk full, read-only, locked) always raises: what was merged before stays."""
    total = {"files": 0, "added": 0, "replaced": 0, "kept": 0, "read": 0}
    for src in sources:
        if dest.path != ":memory:" and Path(src).resolve() == Path(dest.path).resolve():
            if on_merged is not None:
                on_merged(str(src), None)
            continue
        try:
            incoming = read_store(src)
        except (StoreError, FileNotFoundError) as err:
            if on_unreadable is None:
                raise
            on_unreadable(str(src), err)
            continue
        counts = dest._merge_records(incoming)
        total["files"] += 1
        for k, v in counts.items():
            total[k] += v
        if on_merged is not None:
            on_merged(str(src), counts)
    return total


# ---------------------------------------------------------------------- CLI
def _count_lines(path: str) -> list[str]:
    with ScoreStore(path, readonly=True) as store:
        rows = store._c.execute(
            "SELECT proxy, status, COUNT(*) FROM scores GROUP BY proxy, status ORDER BY proxy, status"
        ).fetchall()
    lines = [f"{path}: {sum(n for _, _, n in rows)} rows"]
    lines += [f"  {proxy:<32} {status:<6} {n}" for proxy, status, n in rows]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """``harness store merge --into DEST SRC [SRC ...]`` folds the sources into DEST
    (created if missing; the sources are only read) and prints the counts;
    ``harness store count PATH [PATH ...]`` prints the rows per proxy and status."""
    from ..commands import command_parser

    parser = command_parser("store", main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    merge = sub.add_parser("merge", help="merge stores into one, losing nothing")
    merge.add_argument("--into", required=True, help="the destination store")
    merge.add_argument("sources", nargs="+", help="the stores to merge (read only)")
    count = sub.add_parser("count", help="rows, and rows per proxy and status")
    count.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)

    if args.command == "count":
        for p in args.paths:
            try:
                print("\n".join(_count_lines(p)))
            except (FileNotFoundError, RuntimeError, sqlite3.DatabaseError) as err:  # StoreError is a RuntimeError
                print(f"{p}: {err}", file=sys.stderr)
                return 1
        return 0
    failed: list[str] = []

    def report(src: str, counts: dict[str, int] | None) -> None:
        print(f"{src}: " + ("skipped (the destination itself)" if counts is None
                            else " ".join(f"{k}={v}" for k, v in counts.items())), flush=True)

    def unreadable(src: str, err: BaseException) -> None:
        failed.append(src)
        print(f"{src}: not merged: {err}", file=sys.stderr, flush=True)

    try:
        with ScoreStore(args.into) as dest:
            total = merge_stores(dest, args.sources, report, unreadable)
            total.pop("files")
            print("total: " + " ".join(f"{k}={v}" for k, v in total.items())
                  + f"; {args.into} holds {len(dest)} rows")
    except StoreError as err:  # the destination: cannot create, read-only, disk full, locked...
        print(f"harness store merge: {err}", file=sys.stderr)
        return 1
    if failed:
        print(f"harness store merge: {len(failed)} of {len(args.sources)} source(s) not merged: {', '.join(failed)} "
              f"(each named above with its cause); every other source was merged. Fix or move them aside and "
              f"merge again (merging is idempotent)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
