"""Experiment tracking behind a small interface (MLflow as the one backend).

The harness never talks to MLflow directly: it asks a :class:`Tracker` for a
run and logs through the run handle it yields::

    tracker = make_tracker(cfg.tracking)          # NullTracker when disabled
    with tracker.run(run_name("nb201", "cifar10", "s0", "job0"), parent_run_id=parent_run_id_for(sweep_dir),
                     tags={ROLE_TAG: "job", **provenance_tags(project_root, checksums)}) as job:
        ...                                       # the work: the run's duration is the job's
        with tracker.run(run_name("wrcor", "nb201", "cifar10-valid/valid", "s0"), parent_run_id=job.run_id,
                         tags={ROLE_TAG: "evaluation"}) as run:
            run.log_params({"space": "nb201", "proxy": "wrcor", "dataset": "cifar10-valid", "seed": 0})
            run.log_metrics({"spearman_rho": 0.81, "kendall_tau": 0.62})
        job.log_artifact(job_dir / "metrics.csv")

Store
    The default store is an embedded SQLite database, ``sqlite:////abs/path/mlruns.db``,
    with artifacts in a sibling ``mlartifacts/`` directory (MLflow 3 refuses the old
    ``file:`` tracking store; no server is needed or contacted). A bare filesystem path
    given as ``tracking_uri`` is taken to mean a SQLite database at that path, and a
    relative SQLite path is made absolute against the current directory once, when the
    tracker is built (Hydra jobs may change directory later).
    :func:`ensure_store` creates the database (schema migration) and the experiment,
    idempotently; call it once before parallel jobs start (the Hydra sweep callback does).
    :class:`MlflowTracker` also goes through it lazily on its first run, so a single process
    needs nothing else. Every tracker owns an explicit ``mlflow.MlflowClient``; the fluent,
    process-global ``mlflow.start_run`` state is never used, so several trackers or processes
    do not interfere.

Concurrency
    Parallel sweep workers (``hydra/launcher=joblib``) log into one SQLite store at once.
    MLflow handles that itself: every session of its SQLAlchemy store sets SQLite's
    ``busy_timeout`` to 20 s, so a writer waits for another's lock instead of failing with
    ``database is locked`` (each write holds it for milliseconds); an HTTP store retries
    transient failures with backoff (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``,
    ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR``). The one race MLflow leaves open is the first
    opening of a new database: its tracking store migrates an empty database in its
    constructor with no inter-process guard, so two processes doing that at once fail in the
    migration. :func:`ensure_store` therefore opens the store and creates the experiment under
    an exclusive ``fcntl`` lock on ``<database>.lock`` (:func:`_first_use_lock`); nothing else
    is locked or retried here. ``tests/test_tracking.py`` starts several processes on one new
    store at the same instant and checks that every run is logged.

Run layout (what the UI compares)
    One experiment per command (``zsnas-bench``, ``zsnas-bench-search``), tagged
    ``mlflow.experimentKind = custom_model_development`` so that MLflow 3's UI opens on its runs
    table (not the GenAI traces overview). Inside it, every run carries ``zsnas.role``:

    * ``sweep``: one per ``--multirun`` (:class:`MlflowSweepCallback`), open for the whole sweep;
      at its end it holds ``n_jobs``/``n_runs``/``n_summaries`` and the sweep's report (tables and
      figures) under the artifact path ``report/``.
    * ``job``: one per scoring job, opened before the job's work and closed after it (its duration
      is the job's), child of the sweep's run; params ``space``, ``dataset``, ``seed``, ``proxies``
      ...; the config as ``config.yaml`` and the records (``scores.csv``, ``metrics.csv``, figures)
      as artifacts.
    * ``evaluation``: one per evaluated (space, proxy, dataset, split, seed), child of its job's
      run, named ``wrcor · nb201 · cifar10-valid/valid · s0``; params ``space proxy dataset split
      seed n_archs batch_size batch_kind images`` and the proxy's own parameters
      (``proxy.<name>``); metrics ``kendall_tau spearman_rho n_nan n_inf n_failed sec_per_arch``.
    * ``search``: one per search (the job's run itself), named ``evolution · wrcor · nb201 ·
      cifar10-valid/valid · s0``; params ``space dataset target strategy objective budget seed``
      ...; metrics ``test_accuracy test_error regret search_cost_s n_scored ...`` and the
      trajectory as step metrics (``best_accuracy`` and ``search_cost_s`` at step i).
    * ``summary``: at a sweep's end, one per group of ``evaluation``/``search`` runs that differ
      only in their seed, child of the sweep's run, named ``<group> · mean of N seeds``: the
      group's params (``seed`` replaced by ``seeds``) and ``<metric>_mean`` / ``<metric>_std``
      (sample std; 0 for one seed) of each metric, plus ``n_seeds``. One row per (proxy, dataset)
      with flat, sortable columns: filter ``tags.zsnas.role = 'summary'`` and sort by
      ``spearman_rho_mean``.

    Metric names are flat (no ``/``: the UI makes a chart section of each prefix). Run names are
    unique within an experiment: :meth:`MlflowTracker.start` reserves a name under the store's
    lock and appends `` #2``, `` #3`` ... to a name already taken (on a SQLite store; an HTTP
    store has no shared lock, so there two processes may, rarely, take the same name). Every run carries the provenance
    tags (``git.commit``, ``git.dirty``, ``data.sha256.<file>`` where known) and, inside a sweep,
    ``zsnas.sweep_run_id``. The job's whole config travels as its ``config.yaml`` artifact.

Non-finite metric values (decision)
    NaN, +inf, -inf (and ``None``) are **never logged as MLflow metrics**: the SQL store keeps
    NaN but silently clips inf to +-1.8e308, which would turn an outcome into a magic
    number. Instead each such value is recorded as a tag ``nonfinite/<metric key>`` with value
    ``nan`` / ``inf`` / ``-inf`` / ``none`` (suffixed `` @step=N`` when a step was given), and
    the running count for the run is kept in the tag ``tracking.n_nonfinite_metrics`` (also
    on ``handle.n_nonfinite``). Finite values in the same call are logged normally.

Params
    Values are converted to strings (``true``/``false``, ``null``, ``repr`` for floats) and truncated to MLflow's 6000-character limit with a visible
    ``...[truncated; N chars in full]`` suffix; tag values likewise to 8000. Params are sent with
    ``log_batch`` in chunks of 100. MLflow refuses to change a param once logged (same
    value again is fine): that error is raised, not swallowed.

Sweeps
    :class:`MlflowSweepCallback` (``hydra.callbacks``) creates one parent run per
    ``--multirun`` sweep and writes its id to ``<hydra.sweep.dir>/mlflow_parent_run_id``;
    each job reads it with :func:`parent_run_id_for` and opens its own child run with
    ``parent_run_id=...`` (MLflow tag ``mlflow.parentRunId``). The parent is set FINISHED in
    ``on_multirun_end``, after it has written the sweep's summary runs and report
    (:func:`summarise_sweep`). Tracking config keys: ``tracking.enabled``, ``tracking.uri``,
    ``tracking.experiment``, ``tracking.artifact_root``, ``tracking.timeout_s``,
    ``tracking.retries``, ``tracking.on_error``.

Faults (a tracker that is down, silent or unwritable)
    Before any work the tracker is checked (:func:`preflight`, through :meth:`MlflowTracker.check`):
    an HTTP server gets one request with ``tracking.timeout_s`` to connect and to answer (no
    retries); a SQLite store's directory must be creatable and writable, the database openable, the
    artifact directory writable. A failure is a :class:`TrackingError` naming the URI (or path) and
    the cause, within those seconds. Every later MLflow call of the process is bounded too: MLflow's
    own ``MLFLOW_HTTP_REQUEST_TIMEOUT`` / ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` /
    ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`` are set from ``tracking.timeout_s`` / ``tracking.retries``
    (1) unless the user's environment sets them (MLflow's defaults, 120 s and 7 retries with backoff,
    make an unreachable server cost minutes per call). With ``tracking.on_error=fail`` (default) a
    failure stops the job (before any work when the check fails); with ``warn`` the first failure is
    logged once and every later call is skipped: the job goes on with its local records. Either way
    the run directory gets ``tracking.json`` (:data:`TRACKING_FILE`): ``{"tracked": false, "cause":
    ..., "log_later": "harness track RUN_DIR --uri URI"}``, or ``{"tracked": true, "run_id": ...}``
    when the job's run was logged whole; ``harness track RUN_DIR`` logs such a directory later
    through the same code a live job logs with.

``import harness.tracking`` is cheap: mlflow, hydra and omegaconf are imported lazily.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ContextManager, Protocol, runtime_checkable

try:  # Hydra is a harness dependency, but keep this module importable without it.
    from hydra.experimental.callback import Callback as _HydraCallback
except Exception:  # pragma: no cover - exercised only where hydra is missing
    _HydraCallback = object  # type: ignore[assignment,misc]

__all__ = [
    "PARENT_RUN_ID_FILE",
    "TRACKING_FILE",
    "TrackingError",
    "preflight",
    "read_tracking_record",
    "NONFINITE_TAG_PREFIX",
    "NONFINITE_COUNT_TAG",
    "RunHandle",
    "Tracker",
    "NullRun",
    "NullTracker",
    "MlflowRun",
    "MlflowTracker",
    "MlflowSweepCallback",
    "ensure_store",
    "normalise_uri",
    "default_artifact_root",
    "make_tracker",
    "sanitise_key",
    "provenance_tags",
    "parent_run_id_for",
    "run_name",
    "summarise_sweep",
    "tracking_entry",
    "tracking_how_to_open",
    "EXPERIMENT_KIND_TAG",
    "EXPERIMENT_KIND",
    "ROLE_TAG",
    "SWEEP_TAG",
    "GROUP_TAG",
]

log = logging.getLogger(__name__)

PARENT_RUN_ID_FILE = "mlflow_parent_run_id"
#: a run directory's record of whether its job reached MLflow (see "Faults")
TRACKING_FILE = "tracking.json"
NONFINITE_TAG_PREFIX = "nonfinite/"
NONFINITE_COUNT_TAG = "tracking.n_nonfinite_metrics"
PARENT_RUN_TAG = "mlflow.parentRunId"
#: MLflow 3's UI opens an experiment of this kind on its runs table (not the GenAI overview)
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
#: what a run is: sweep | job | evaluation | search | summary (see "Run layout")
ROLE_TAG = "zsnas.role"
#: the sweep's parent run, on every run of a sweep (also grandchildren)
SWEEP_TAG = "zsnas.sweep_run_id"
#: a run's name less its seed: the runs a summary averages share it
GROUP_TAG = "zsnas.group"
#: params that vary across the runs a summary averages
SEED_PARAMS = ("seed", "score_seed")
NAME_SEP = " · "

# MLflow 3.17 limits (mlflow.utils.validation); copied so that importing this module does
# not import mlflow. tests/test_tracking.py checks them against the installed mlflow.
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_ENTITY_KEY_LENGTH = 250
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000

_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-. /]")


# --------------------------------------------------------------------------- interface
@runtime_checkable
class RunHandle(Protocol):
    """What a tracker's ``run()`` yields."""

    run_id: str

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...

    def set_tags(self, tags: Mapping[str, Any]) -> None: ...

    def log_series(self, series: Mapping[str, Sequence[tuple[int, float]]]) -> None: ...

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None: ...


@runtime_checkable
class Tracker(Protocol):
    """Opens runs. ``run`` is a context manager yielding a :class:`RunHandle`.

    The run ends FINISHED when the block exits normally, FAILED on an exception and
    KILLED on KeyboardInterrupt; the exception is re-raised.
    """

    def run(
        self,
        name: str,
        *,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ContextManager[RunHandle]: ...


# --------------------------------------------------------------------------- helpers
def run_name(*parts: Any) -> str:
    """A readable run name: the non-empty parts joined by `` · ``.

    >>> run_name("wrcor", "nb201", "cifar10-valid/valid", "s0")
    'wrcor · nb201 · cifar10-valid/valid · s0'
    >>> run_name("nb201", None, "", 3)
    'nb201 · 3'
    """
    return NAME_SEP.join(str(p) for p in parts if p is not None and str(p) != "")


def sanitise_key(key: str) -> str:
    """Map ``key`` onto a name MLflow accepts for metrics, params and tags.

    >>> sanitise_key("a.b/c d-e_f")
    'a.b/c d-e_f'
    >>> sanitise_key("model[0]=x")
    'model_0__x'
    >>> sanitise_key("/a//b/./../c/")
    'a/b/__/c'
    """
    text = _BAD_KEY_CHARS.sub("_", str(key))
    parts = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        parts.append("__" if part == ".." else part)
    out = "/".join(parts) or "_"
    return out[:MAX_ENTITY_KEY_LENGTH].rstrip("/") or "_"


def _truncate(value: str, limit: int) -> str:
    """Cut ``value`` to ``limit`` characters, ending in a visible marker when cut."""
    if len(value) <= limit:
        return value
    suffix = f"...[truncated; {len(value)} chars in full]"
    return value[: limit - len(suffix)] + suffix


def _to_str(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def _git(project_root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=project_root,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def provenance_tags(project_root: Path, data_checksums: Mapping[str, str]) -> dict[str, str]:
    """Tags that pin down what produced a run.

    ``git.commit``: ``git rev-parse HEAD`` in ``project_root`` (``"unknown"`` outside a
    repository or before the first commit). ``git.dirty``: ``"true"`` when tracked files
    differ from HEAD (untracked files are ignored, as setuptools-scm does), ``"false"``
    otherwise, ``"unknown"`` outside a repository. ``data.sha256.<relpath>`` per checksum
    (the path made key-safe with :func:`sanitise_key`).
    """
    root = Path(project_root)
    head = _git(root, "rev-parse", "--verify", "HEAD")
    commit = head.strip() if head else "unknown"
    inside = _git(root, "rev-parse", "--is-inside-work-tree")
    if inside is None or inside.strip() != "true":
        dirty = "unknown"
    else:
        status = _git(root, "status", "--porcelain", "--untracked-files=no")
        dirty = "unknown" if status is None else ("true" if status.strip() else "false")
    tags = {"git.commit": commit or "unknown", "git.dirty": dirty}
    for rel, digest in sorted(data_checksums.items()):
        tags[sanitise_key(f"data.sha256.{Path(rel).as_posix()}")] = str(digest)
    return tags


def parent_run_id_for(sweep_dir: str | os.PathLike[str] | None) -> str | None:
    """The sweep's parent run id written by :class:`MlflowSweepCallback`, or ``None``."""
    if sweep_dir is None:
        return None
    path = Path(sweep_dir) / PARENT_RUN_ID_FILE
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text or None


# --------------------------------------------------------------------------- faults
class TrackingError(RuntimeError):
    """The tracker cannot be reached, cannot be written or failed; the message names the store
    (its URI or path) and the cause. ``cause`` is that cause alone (one line)."""

    def __init__(self, message: str, *, uri: str | None = None, cause: str | None = None) -> None:
        super().__init__(message)
        self.uri = uri
        self.cause = cause or message


#: what to do about a tracker that fails, in every message that stops a job before its work
_ADVICE = ("Nothing was run. Start the server or correct tracking.uri; tracking=none runs without MLflow; "
           "tracking.on_error=warn runs and keeps the records to log later (harness track RUN_DIR).")

#: MLflow's own limits of its HTTP calls (read per request by mlflow.utils.rest_utils)
_HTTP_ENV = ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")
#: the ones the user's environment set before the harness ran: never overridden
_USER_HTTP_ENV = {k for k in _HTTP_ENV if k in os.environ}


def _is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def http_limits(timeout_s: float, retries: int) -> None:
    """Bound every MLflow HTTP call of this process: ``timeout_s`` (rounded up: MLflow takes whole
    seconds) per connection and answer, ``retries`` retries with backoff 1 s, 2 s, ... A variable
    the user's environment set is left as it is."""
    values = {"MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, math.ceil(float(timeout_s)))),
              "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(int(retries)),
              "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
    for key, value in values.items():
        if key not in _USER_HTTP_ENV:
            os.environ[key] = value


def _chain(err: BaseException) -> list[BaseException]:
    """``err`` and its causes and contexts (and urllib3's ``reason``), outermost first."""
    out: list[BaseException] = []
    todo: list[BaseException | None] = [err]
    while todo:
        e = todo.pop(0)
        if e is None or any(e is seen for seen in out):
            continue
        out.append(e)
        todo += [e.__cause__, e.__context__, getattr(e, "reason", None) if isinstance(getattr(e, "reason", None),
                                                                                     BaseException) else None]
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
    return out


def _http_cause(err: BaseException, host: str, timeout_s: float) -> str:
    """One line saying why an HTTP request to ``host`` failed."""
    import socket

    names = {type(e).__name__ for e in _chain(err)}
    text = " ".join(str(e) for e in _chain(err))
    if any(isinstance(e, ConnectionRefusedError) for e in _chain(err)) or "Connection refused" in text:
        return f"connection refused (nothing listens on {host})"
    if "ReadTimeout" in names or "ReadTimeoutError" in names or "Read timed out" in text:
        return (f"no answer within {timeout_s:g} s (the server accepted the connection but sent nothing; "
                f"tracking.timeout_s={timeout_s:g})")
    if "ConnectTimeout" in names or "ConnectTimeoutError" in names or "timed out" in text:
        return f"no connection within {timeout_s:g} s (tracking.timeout_s={timeout_s:g}; a wrong address or a firewall)"
    if any(isinstance(e, socket.gaierror) for e in _chain(err)) or "NameResolutionError" in names:
        return f"the host name of {host} cannot be resolved"
    return _one_line(err)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _probe_http(uri: str, experiment: str, timeout_s: float) -> None:
    """One request to an MLflow server, no retries, ``timeout_s`` to connect and to answer:
    ``experiments/get-by-name`` (200, or 404 for an experiment not made yet)."""
    from urllib.parse import urlsplit

    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    parts = urlsplit(uri)
    host = parts.netloc or uri
    try:
        resp = http_request(get_default_host_creds(uri), "/api/2.0/mlflow/experiments/get-by-name", "GET",
                            max_retries=0, backoff_factor=0, timeout=float(timeout_s),
                            params={"experiment_name": experiment})
    except Exception as err:  # noqa: BLE001 -- every failure becomes its cause, named
        raise TrackingError(f"MLflow tracking server {uri} cannot be reached: {_http_cause(err, host, timeout_s)}.",
                            uri=uri, cause=_http_cause(err, host, timeout_s)) from err
    if resp.status_code == 200:
        return
    body = resp.text[:300]
    if resp.status_code == 404 and "RESOURCE_DOES_NOT_EXIST" in body:
        return
    if resp.status_code in (401, 403):
        cause = (f"the server refused access (HTTP {resp.status_code}): set MLFLOW_TRACKING_USERNAME and "
                 f"MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN")
    else:
        cause = f"it answered HTTP {resp.status_code}, not as an MLflow server does: {' '.join(body.split())[:200]}"
    raise TrackingError(f"MLflow tracking server {uri} cannot be used: {cause}.", uri=uri, cause=cause)


def _writable_dir(path: Path, what: str, uri: str) -> None:
    """``path`` exists (made if missing) and a file can be created in it; else a TrackingError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".zsnas-write-check-"):
            pass
    except OSError as err:
        cause = f"cannot write {what} {path}: {err.strerror or err}"
        if isinstance(err, (NotADirectoryError, FileExistsError)):
            cause = f"cannot create {what} {path}: a part of the path is a file ({err.strerror})"
        raise TrackingError(f"MLflow tracking store {uri} cannot be used: {cause}.", uri=uri, cause=cause) from err


def _check_sqlite(uri: str, db: Path, art: str | None) -> None:
    """A SQLite store's directory can be written (SQLite writes its journal beside the
    database), the database file (if any) is a writable file, and so is the artifact directory."""
    _writable_dir(db.parent, "the database's directory", uri)
    if db.exists():
        try:
            if db.is_dir():
                raise IsADirectoryError(21, "it is a directory", str(db))
            with open(db, "r+b"):
                pass
        except OSError as err:
            cause = f"cannot write the database {db}: {err.strerror or err}"
            raise TrackingError(f"MLflow tracking store {uri} cannot be used: {cause}.", uri=uri, cause=cause) from err
    if art and art.startswith("file:"):
        from urllib.parse import unquote, urlsplit

        _writable_dir(Path(unquote(urlsplit(art).path)), "the artifact directory", uri)


def preflight(tracking_uri: str | os.PathLike[str], experiment: str, artifact_root: str | os.PathLike[str] | None = None,
              *, timeout_s: float = 5.0) -> str:
    """Check that the store can be used, then create it and the experiment (:func:`ensure_store`);
    return the experiment's id. An HTTP server gets one request (no retries) with ``timeout_s`` to
    connect and to answer; a SQLite store's directories must be writable. Raises
    :class:`TrackingError` naming the URI (or path) and the cause."""
    uri = normalise_uri(tracking_uri)
    art = _artifact_uri(artifact_root, uri)
    db = _sqlite_path(uri)
    if _is_http(uri):
        _probe_http(uri, experiment, timeout_s)
    elif db is not None:
        _check_sqlite(uri, db, art)
    try:
        return ensure_store(uri, experiment, art)
    except TrackingError:
        raise
    except Exception as err:  # noqa: BLE001 -- the store's own failure, named
        cause = _http_cause(err, uri, timeout_s) if _is_http(uri) else _one_line(err)
        if db is not None:
            cause = f"the database {db} cannot be opened: {cause}"
        raise TrackingError(f"MLflow tracking store {uri} cannot be used: {cause}.", uri=uri, cause=cause) from err


def _tracker_failure(err: BaseException) -> bool:
    """Is ``err`` a failure of the tracker (MLflow, its HTTP or SQL layers, the file system), as
    opposed to a mistake in what was logged?"""
    if isinstance(err, (TrackingError, OSError)):
        return True
    module = type(err).__module__.split(".")[0]
    return module in ("mlflow", "requests", "urllib3", "sqlalchemy", "sqlite3", "http", "socket")


def read_tracking_record(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A run directory's :data:`TRACKING_FILE` (None when it has none or it cannot be read)."""
    try:
        return json.loads((Path(run_dir) / TRACKING_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_tracking_record(run_dir: str | os.PathLike[str], record: Mapping[str, Any]) -> Path:
    """Write a run directory's :data:`TRACKING_FILE` atomically (strict JSON)."""
    target = Path(run_dir) / TRACKING_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(dict(record), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def track_later_command(run_dir: str | os.PathLike[str], uri: str) -> str:
    """The command that logs ``run_dir`` to ``uri`` later."""
    import shlex

    return f"harness track {shlex.quote(str(run_dir))} --uri {shlex.quote(uri)}"


# --------------------------------------------------------------------------- null backend
class NullRun:
    """A run handle that records nothing (``run_id`` is ``""``)."""

    run_id = ""
    n_nonfinite = 0

    def log_params(self, params: Mapping[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        pass

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        pass

    def log_series(self, series: Mapping[str, Sequence[tuple[int, float]]]) -> None:
        pass

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        pass


class NullTracker:
    """Tracking disabled: every run is a :class:`NullRun`."""

    @contextlib.contextmanager
    def run(self, name: str, **options: Any) -> Iterator[NullRun]:
        """A run that records nothing (``options``: the :class:`Tracker` protocol's, ignored)."""
        yield NullRun()


# --------------------------------------------------------------------------- mlflow backend
def normalise_uri(tracking_uri: str | os.PathLike[str]) -> str:
    """Absolute ``sqlite:////...`` URI for a path or SQLite URI; other schemes unchanged.

    >>> normalise_uri("/tmp/x/mlruns.db")
    'sqlite:////tmp/x/mlruns.db'
    >>> normalise_uri("sqlite:////tmp/x/mlruns.db")
    'sqlite:////tmp/x/mlruns.db'
    """
    uri = os.fspath(tracking_uri)
    if uri.startswith("file:"):
        raise ValueError(
            f"tracking uri {uri!r}: MLflow 3 no longer supports the file: store; "
            "use a SQLite database, e.g. 'sqlite:////abs/path/mlruns.db' or a plain path"
        )
    if "://" not in uri:
        return "sqlite:///" + str(Path(uri).expanduser().resolve())
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///") :]
        if path in ("", ":memory:"):
            raise ValueError("an in-memory SQLite store cannot be shared between runs; give a file path")
        return "sqlite:///" + str(Path(path).expanduser().resolve())
    return uri


def _sqlite_path(uri: str) -> Path | None:
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :])
    return None


def default_artifact_root(tracking_uri: str) -> str | None:
    """``<db dir>/mlartifacts`` (as a file URI) for SQLite stores, else ``None`` (server default)."""
    db = _sqlite_path(normalise_uri(tracking_uri))
    return (db.parent / "mlartifacts").as_uri() if db is not None else None


def _artifact_uri(artifact_root: str | os.PathLike[str] | None, tracking_uri: str) -> str | None:
    if artifact_root is None or os.fspath(artifact_root) == "":
        return default_artifact_root(tracking_uri)
    root = os.fspath(artifact_root)
    if "://" in root or root.startswith("file:"):
        return root
    return Path(root).expanduser().resolve().as_uri()


@contextlib.contextmanager
def _first_use_lock(uri: str) -> Iterator[None]:
    """Exclusive inter-process lock on ``<database>.lock`` beside a SQLite database (no-op for
    other stores): MLflow migrates a new database when its store is first opened, unguarded
    (see the module docstring), so :func:`ensure_store` opens it under this lock."""
    import fcntl

    db = _sqlite_path(uri)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file is closed
        yield


def _client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def ensure_store(
    tracking_uri: str | os.PathLike[str],
    experiment: str,
    artifact_root: str | os.PathLike[str] | None = None,
) -> str:
    """Create the store (database schema) and the experiment if missing; return its id.

    Idempotent and safe to call from several processes (an exclusive file lock beside a
    SQLite database serialises the first opening, which migrates a new database, and the
    experiment creation). A deleted
    experiment of that name is restored. ``artifact_root`` only applies when the experiment is
    created; by default it is ``mlartifacts/`` beside the SQLite file.
    """
    uri = normalise_uri(tracking_uri)
    art = _artifact_uri(artifact_root, uri)
    with _first_use_lock(uri):
        client = _client(uri)  # opening a new database runs the migrations
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            from mlflow.exceptions import MlflowException

            try:
                return str(client.create_experiment(experiment, artifact_location=art,
                                                    tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}))
            except MlflowException as exc:  # created by a store user that skipped the lock
                if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                    raise
                exp = client.get_experiment_by_name(experiment)
                if exp is None:
                    raise
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        if EXPERIMENT_KIND_TAG not in exp.tags:  # a store made before the tag existed
            client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return str(exp.experiment_id)


def _guarded(what: str):
    """A :class:`MlflowRun` method whose tracker failures go to its tracker's guard (fail: a
    :class:`TrackingError` naming the store; warn: warned once, then skipped)."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(self, *args: Any, **kwargs: Any) -> Any:
            if self._guard is None:
                return fn(self, *args, **kwargs)
            return self._guard.call(what, fn, self, *args, **kwargs)

        return wrapper

    return deco


class MlflowRun:
    """Run handle bound to one MLflow run through an explicit client (and, from a
    :class:`MlflowTracker`, its guard: see "Faults")."""

    def __init__(self, client: Any, run_id: str, guard: "MlflowTracker | None" = None) -> None:
        self._client = client
        self.run_id = run_id
        self.n_nonfinite = 0
        self._guard = guard

    # params / tags -----------------------------------------------------------------
    @_guarded("logging params")
    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = self._entries(params, MAX_PARAM_VAL_LENGTH, "param")
        batch = [Param(k, v) for k, v in items.items()]
        for i in range(0, len(batch), MAX_PARAMS_TAGS_PER_BATCH):
            self._client.log_batch(self.run_id, params=batch[i : i + MAX_PARAMS_TAGS_PER_BATCH])

    @_guarded("setting tags")
    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = self._entries(tags, MAX_TAG_VAL_LENGTH, "tag")
        batch = [RunTag(k, v) for k, v in items.items()]
        for i in range(0, len(batch), MAX_PARAMS_TAGS_PER_BATCH):
            self._client.log_batch(self.run_id, tags=batch[i : i + MAX_PARAMS_TAGS_PER_BATCH])

    @staticmethod
    def _entries(mapping: Mapping[str, Any], limit: int, what: str) -> dict[str, str]:
        out: dict[str, str] = {}
        origin: dict[str, str] = {}
        for key, value in mapping.items():
            safe = sanitise_key(key)
            text = _truncate(_to_str(value), limit)
            if safe in out and out[safe] != text:
                raise ValueError(f"{what} keys {origin[safe]!r} and {key!r} both map to {safe!r}")
            out[safe], origin[safe] = text, str(key)
        return out

    # metrics -----------------------------------------------------------------------
    @_guarded("logging metrics")
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log finite values; record non-finite ones as tags (see module docstring)."""
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        finite: dict[str, float] = {}
        nonfinite: dict[str, str] = {}
        for key, value in metrics.items():
            safe = sanitise_key(key)
            if value is None:
                nonfinite[safe] = "none"
                continue
            x = float(value)
            if math.isfinite(x):
                finite[safe] = x
            else:
                nonfinite[safe] = "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
        batch = [Metric(k, v, ts, int(step or 0)) for k, v in finite.items()]
        for i in range(0, len(batch), MAX_METRICS_PER_BATCH):
            self._client.log_batch(self.run_id, metrics=batch[i : i + MAX_METRICS_PER_BATCH])
        if nonfinite:
            self.n_nonfinite += len(nonfinite)
            suffix = "" if step is None else f" @step={int(step)}"
            tags: dict[str, Any] = {NONFINITE_TAG_PREFIX + k: v + suffix for k, v in nonfinite.items()}
            tags[NONFINITE_COUNT_TAG] = str(self.n_nonfinite)
            self.set_tags(tags)

    @_guarded("logging step metrics")
    def log_series(self, series: Mapping[str, Sequence[tuple[int, float]]]) -> None:
        """Log step metrics: ``{key: [(step, value), ...]}`` in batches (a trajectory). Non-finite
        values are left out of a series; their number is the tag ``nonfinite/<key>``."""
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        batch, dropped = [], {}
        for key, points in series.items():
            safe = sanitise_key(key)
            for step, value in points:
                x = math.nan if value is None else float(value)
                if math.isfinite(x):
                    batch.append(Metric(safe, x, ts, int(step)))
                else:
                    dropped[safe] = dropped.get(safe, 0) + 1
        for i in range(0, len(batch), MAX_METRICS_PER_BATCH):
            self._client.log_batch(self.run_id, metrics=batch[i : i + MAX_METRICS_PER_BATCH])
        if dropped:
            self.set_tags({NONFINITE_TAG_PREFIX + k: f"{n} non-finite step(s) left out" for k, n in dropped.items()})

    # artifacts ---------------------------------------------------------------------
    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        """Copy a file (or a directory's contents) into the run's artifacts."""
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"artifact {p} does not exist")
        self._log_artifact(p, artifact_path)

    @_guarded("logging an artifact")
    def _log_artifact(self, p: Path, artifact_path: str | None) -> None:
        if p.is_dir():
            self._client.log_artifacts(self.run_id, str(p), artifact_path)
        else:
            self._client.log_artifact(self.run_id, str(p), artifact_path)


class MlflowTracker:
    """MLflow tracker on an embedded store; see the module docstring for conventions.

    ``timeout_s``/``retries`` bound its calls to an HTTP server, ``on_error`` (``fail`` | ``warn``)
    says what a tracker failure does, and ``run_dir`` (the job's records) gets
    :data:`TRACKING_FILE` (see "Faults"). ``untracked`` is the cause once the job's run could not
    be logged whole (else None)."""

    def __init__(
        self,
        tracking_uri: str | os.PathLike[str],
        experiment: str,
        artifact_root: str | os.PathLike[str] | None = None,
        *,
        timeout_s: float = 5.0,
        retries: int = 2,
        on_error: str = "fail",
        run_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.tracking_uri = normalise_uri(tracking_uri)
        self.experiment = str(experiment)
        self.artifact_root = _artifact_uri(artifact_root, self.tracking_uri)
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.on_error = str(getattr(on_error, "value", on_error))
        if self.on_error not in ("fail", "warn"):
            raise ValueError(f"on_error={self.on_error!r}: fail or warn")
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.untracked: str | None = None  # the cause, once a failure left the job's run incomplete
        self.down = False  # warn: a failure happened, every later call is skipped
        self._client_obj: Any = None
        self._experiment_id: str | None = None
        self._depth = 0  # runs open through run(): the outermost is the job's
        self._job_run_id: str | None = None
        if _is_http(self.tracking_uri):
            http_limits(self.timeout_s, self.retries)

    @property
    def client(self) -> Any:
        """The ``mlflow.MlflowClient`` of this tracker (checked, store created, on first use:
        :func:`preflight`)."""
        if self._client_obj is None:
            self._experiment_id = preflight(self.tracking_uri, self.experiment, self.artifact_root,
                                            timeout_s=self.timeout_s)
            self._client_obj = _client(self.tracking_uri)
        return self._client_obj

    def check(self) -> bool:
        """Contact the store now, before any work (:func:`preflight`); True when it can be used.
        fail: a :class:`TrackingError` naming the store and the cause (and "Nothing was run");
        warn: the warning, once, and False (the job goes on untracked)."""
        if self.down:
            return False
        try:
            self.client  # noqa: B018 - the check itself
            return True
        except Exception as err:  # noqa: BLE001 -- named below (fail) or warned (warn)
            if not _tracker_failure(err):
                raise
            if self.on_error == "fail":  # nothing was run: nothing to record
                self.untracked = getattr(err, "cause", None) or _one_line(err)
                message = str(err) if isinstance(err, TrackingError) else (
                    f"MLflow tracking store {self.tracking_uri} cannot be used: {_one_line(err)}.")
                raise TrackingError(f"{message} {_ADVICE}", uri=self.tracking_uri,
                                    cause=getattr(err, "cause", None)) from err
            self._warn(err, "before the job")
            return False

    def call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, a call to the store; its failure handled by ``on_error``
        (fail: raised as a :class:`TrackingError` naming the store; warn: warned once, then this
        and every later call skipped: None)."""
        if self.down:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 -- only the tracker's own failures are handled
            if not _tracker_failure(err):
                raise
            cause = getattr(err, "cause", None) if isinstance(err, TrackingError) else None
            cause = cause or (_http_cause(err, self.tracking_uri, self.timeout_s) if _is_http(self.tracking_uri)
                              else _one_line(err))
            if self.on_error == "fail":
                self._record_untracked(cause)
                later = ""
                if self.run_dir is not None:
                    later = (f" The job's records are in {self.run_dir}; log them once the tracker works: "
                             f"{track_later_command(self.run_dir, self.tracking_uri)}")
                raise TrackingError(f"MLflow tracking store {self.tracking_uri} failed while {what}: {cause}.{later}",
                                    uri=self.tracking_uri, cause=cause) from err
            self._warn(err, f"while {what}", cause)
            return None

    def _warn(self, err: BaseException, when: str, cause: str | None = None) -> None:
        cause = cause or getattr(err, "cause", None) or _one_line(err)
        self.down = True
        self._record_untracked(cause)
        where = f"; its records go on in {self.run_dir}" if self.run_dir is not None else ""
        later = (f"; log them later: {track_later_command(self.run_dir, self.tracking_uri)}"
                 if self.run_dir is not None else "")
        log.warning("MLflow tracking store %s failed %s: %s. tracking.on_error=warn: the job goes on without "
                    "tracking%s%s", self.tracking_uri, when, cause, where, later)

    def _record_untracked(self, cause: str) -> None:
        self.untracked = self.untracked or cause
        if self.run_dir is None:
            return
        try:
            write_tracking_record(self.run_dir, {
                "tracked": False, "uri": self.tracking_uri, "experiment": self.experiment, "cause": self.untracked,
                "partial_run_id": self._job_run_id, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "log_later": track_later_command(self.run_dir, self.tracking_uri)})
        except OSError as err:
            log.warning("could not record in %s that the job was not tracked: %s", self.run_dir, err)

    @property
    def experiment_id(self) -> str:
        self.client  # noqa: B018 - ensures the store and experiment exist
        assert self._experiment_id is not None
        return self._experiment_id

    def start(self, name: str, *, parent_run_id: str | None = None,
              tags: Mapping[str, Any] | None = None) -> MlflowRun:
        """Open a RUNNING run named ``name`` (made unique in the experiment: `` #2`` ... appended
        to a name already taken, reserved under the store's lock so that parallel jobs never
        share one); end it with :meth:`finish`. :meth:`run` is the context-manager form."""
        all_tags = {sanitise_key(k): _truncate(_to_str(v), MAX_TAG_VAL_LENGTH) for k, v in (tags or {}).items()}
        if parent_run_id:
            all_tags[PARENT_RUN_TAG] = str(parent_run_id)

        def create() -> MlflowRun:
            client = self.client
            with _first_use_lock(self.tracking_uri):
                unique = _unique_name(client, self.experiment_id, str(name))
                info = client.create_run(self.experiment_id, run_name=unique, tags=all_tags).info
            return MlflowRun(client, info.run_id, guard=self)

        handle = self.call(f"opening the run {name!r}", create)
        return handle if handle is not None else NullRun()  # type: ignore[return-value]

    def finish(self, handle: MlflowRun, status: str = "FINISHED") -> None:
        """End ``handle``'s run with ``status`` (FINISHED, FAILED or KILLED)."""
        if handle.run_id:
            self.call(f"ending the run {handle.run_id}", lambda: self.client.set_terminated(handle.run_id, status))

    @contextlib.contextmanager
    def run(
        self,
        name: str,
        *,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> Iterator[MlflowRun]:
        outermost = self._depth == 0
        handle = self.start(name, parent_run_id=parent_run_id, tags=tags)
        if outermost:
            self._job_run_id = handle.run_id or None
        status = "FAILED"
        self._depth += 1
        try:
            yield handle
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            self._depth -= 1
            if status == "FINISHED":  # a tracker failure here is the job's (fail: raised)
                self.finish(handle, status)
            else:
                try:
                    self.finish(handle, status)
                except Exception:  # noqa: BLE001 - never mask the original exception
                    log.exception("could not mark MLflow run %s as %s", handle.run_id, status)
        if outermost and status == "FINISHED" and self.run_dir is not None and self.untracked is None:
            try:
                write_tracking_record(self.run_dir, {
                    "tracked": True, "uri": self.tracking_uri, "experiment": self.experiment,
                    "run_id": handle.run_id, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
            except OSError as err:
                log.warning("could not record in %s that the job was tracked: %s", self.run_dir, err)


def _unique_name(client: Any, experiment_id: str, name: str) -> str:
    """``name``, or ``name #k`` with the smallest k >= 2 not yet taken in the experiment."""
    prefix = name.split("'")[0]  # a quote would end the filter's string; the exact test is below
    taken = {r.info.run_name for r in _search_all(client, experiment_id, f"attributes.run_name LIKE '{prefix}%'")}
    if name not in taken:
        return name
    k = 2
    while f"{name} #{k}" in taken:
        k += 1
    return f"{name} #{k}"


def _search_all(client: Any, experiment_id: str, filter_string: str) -> list[Any]:
    """Every active run of the experiment matching ``filter_string`` (all pages)."""
    out: list[Any] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=filter_string, max_results=5000, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def make_tracker(tracking_cfg: Any, *, run_dir: str | os.PathLike[str] | None = None) -> NullTracker | MlflowTracker:
    """Tracker for a ``tracking`` config (:class:`harness.config.TrackingConfig`, or a node or
    mapping with its keys: ``enabled``, ``uri``, ``experiment``, ``artifact_root``, ``timeout_s``,
    ``retries``, ``on_error``) or ``None``. Disabled or missing -> :class:`NullTracker`.
    ``run_dir``: the job's records, where :data:`TRACKING_FILE` goes. A ``tracking.uri`` MLflow
    cannot use (``file:``, in-memory SQLite) is a :class:`~harness.config.ConfigError`."""
    from .config import ConfigError, TrackingConfig, typed

    tracking = typed(tracking_cfg, TrackingConfig, "tracking")
    if tracking is None or not tracking.enabled:
        return NullTracker()
    try:
        return MlflowTracker(tracking.uri, tracking.experiment, tracking.artifact_root, timeout_s=tracking.timeout_s,
                             retries=tracking.retries, on_error=tracking.on_error, run_dir=run_dir)
    except ValueError as err:
        raise ConfigError(f"tracking.uri={tracking.uri!r} is not allowed: {err}") from None


# --------------------------------------------------------------------------- hydra sweeps
class MlflowSweepCallback(_HydraCallback):  # type: ignore[misc,valid-type]
    """Hydra callback: one MLflow parent run per ``--multirun`` sweep.

    Register it in the Hydra config::

        hydra:
          callbacks:
            mlflow_sweep:
              _target_: harness.tracking.MlflowSweepCallback

    ``on_multirun_start`` creates the store and experiment (once, before any job runs),
    opens the parent run and writes its id to ``<hydra.sweep.dir>/mlflow_parent_run_id``;
    jobs read it with :func:`parent_run_id_for`. ``on_multirun_end`` marks it FINISHED.
    A missing ``tracking`` node or ``tracking.enabled: false`` makes both no-ops.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.parent_run_id: str | None = None

    @staticmethod
    def _select(config: Any, key: str) -> Any:
        from omegaconf import OmegaConf

        return OmegaConf.select(config, key, throw_on_missing=False)

    @classmethod
    def _tracking(cls, config: Any) -> Any:
        from .config import TrackingConfig, typed

        tracking = typed(cls._select(config, "tracking"), TrackingConfig, "tracking")
        return tracking if tracking is not None and tracking.enabled else None

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = self._select(config, "hydra.sweep.dir")
        if sweep_dir:
            SWEEP_DIRS.append(Path(str(sweep_dir)))  # the command line's summary reads the jobs there
        tracking = self._tracking(config)
        if tracking is None:
            return
        if not sweep_dir:
            raise ValueError("MlflowSweepCallback needs hydra.sweep.dir in the config")
        tracker = make_tracker(tracking)
        assert isinstance(tracker, MlflowTracker)
        job_name = self._select(config, "hydra.job.name") or "sweep"
        try:
            if not tracker.check():  # warn: the jobs go on, each untracked
                return
        except TrackingError as err:  # fail: before any job, the message and status 2
            import sys

            print(f"harness {job_name}: {err}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        overrides = self._select(config, "hydra.overrides.task")
        handle = open_sweep_run(tracker, Path(str(sweep_dir)), overrides, job_name)
        self.parent_run_id = handle.run_id or None

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        tracking = self._tracking(config)
        if tracking is None:
            return
        sweep_dir = self._select(config, "hydra.sweep.dir")
        run_id = parent_run_id_for(sweep_dir) or self.parent_run_id
        if not run_id:
            return
        tracker = make_tracker(tracking)
        assert isinstance(tracker, MlflowTracker)
        close_sweep_run(tracker, run_id, Path(str(sweep_dir)) if sweep_dir else None,
                        name=str(self._select(config, "profile") or "sweep"))


#: the sweep directories of this process's --multirun sweeps, in order (the command line reads the
#: last one's jobs for its closing summary)
SWEEP_DIRS: list[Path] = []


def open_sweep_run(tracker: MlflowTracker, sweep: Path, overrides: Sequence[Any] | None, job_name: str) -> Any:
    """Open a sweep's parent run (role ``sweep``) and write its id to
    ``<sweep>/mlflow_parent_run_id``; return its handle (a :class:`NullRun` when a tracker under
    ``on_error=warn`` failed)."""
    sweep.mkdir(parents=True, exist_ok=True)
    tags: dict[str, Any] = {
        "sweep.dir": str(sweep.resolve()),
        "sweep.overrides": " ".join(str(o) for o in overrides) if overrides else "",
        "sweep.role": "parent",
    }
    tags.update(provenance_tags(Path.cwd(), {}))
    tags[ROLE_TAG] = "sweep"
    handle = tracker.start(run_name(f"{job_name} sweep", f"{sweep.parent.name}/{sweep.name}"), tags=tags)
    if handle.run_id:
        target = sweep / PARENT_RUN_ID_FILE
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(handle.run_id + "\n", encoding="utf-8")
        os.replace(tmp, target)
    return handle


def close_sweep_run(tracker: MlflowTracker, run_id: str, sweep_dir: Path | None, name: str = "sweep") -> None:
    """Write a sweep's summaries and report (:func:`summarise_sweep`) and end its run FINISHED; a
    failure there is a warning (the jobs' runs are recorded)."""
    try:
        summarise_sweep(tracker, run_id, sweep_dir, name=name)
    except Exception as err:  # noqa: BLE001 -- the jobs' runs are recorded; the summary is extra
        log.warning("could not summarise the sweep in MLflow run %s: %s", run_id, err)
    try:
        tracker.client.set_terminated(run_id, "FINISHED")
    except Exception as err:  # noqa: BLE001 -- likewise
        log.warning("could not end the sweep's MLflow run %s: %s", run_id, err)


def summarise_sweep(tracker: MlflowTracker, sweep_run_id: str, sweep_dir: Path | None = None,
                    name: str = "sweep") -> list[str]:
    """Write a sweep's aggregates into MLflow; return the summary runs' ids.

    The ``evaluation`` and ``search`` runs tagged with the sweep (``zsnas.sweep_run_id``) are
    grouped by every param but the seeds (``seed``, ``score_seed``); each group becomes a
    ``summary`` run under the sweep's run with the group's params, ``seeds`` (the seeds, comma
    separated), and per metric ``<metric>_mean`` and ``<metric>_std`` (sample std, 0 for one
    seed; NaN values ignored) plus ``n_seeds``. The sweep's run gets ``n_jobs``, ``n_runs``,
    ``n_summaries`` and, with ``sweep_dir``, the sweep's report (:func:`harness.reports.artifacts
    .log_sweep_report`: tables and figures under ``report/``, named ``name``).
    """
    from .reports.metrics import mean_std

    client = tracker.client
    runs = _search_all(client, tracker.experiment_id, f"tags.`{SWEEP_TAG}` = '{sweep_run_id}'")
    leaves = [r for r in runs if r.data.tags.get(ROLE_TAG) in ("evaluation", "search")]
    groups: dict[tuple[tuple[str, str], ...], list[Any]] = {}
    for r in sorted(leaves, key=lambda r: r.info.start_time or 0):
        key = tuple(sorted((k, v) for k, v in r.data.params.items() if k not in SEED_PARAMS))
        groups.setdefault(key, []).append(r)
    sweep = MlflowRun(client, sweep_run_id)
    ids = []
    for key, members in groups.items():
        first = members[0]
        seeds = sorted({m.data.params.get("seed", "") for m in members}, key=lambda x: (len(x), x))
        stem = first.data.tags.get(GROUP_TAG) or first.info.run_name
        metrics: dict[str, float] = {"n_seeds": float(len(members))}
        for metric in sorted({k for m in members for k in m.data.metrics}):
            mean, std = mean_std([m.data.metrics.get(metric, math.nan) for m in members])
            metrics[f"{metric}_mean"], metrics[f"{metric}_std"] = mean, std
        tags = {ROLE_TAG: "summary", SWEEP_TAG: sweep_run_id, GROUP_TAG: stem,
                "summary.of": ",".join(m.info.run_id for m in members)}
        with tracker.run(run_name(stem, f"mean of {len(members)} seed{'s' if len(members) > 1 else ''}"),
                         parent_run_id=sweep_run_id, tags=tags) as handle:
            handle.log_params({**dict(key), "seeds": ",".join(seeds)})
            handle.log_metrics(metrics)
            ids.append(handle.run_id)
    n_jobs = sum(r.data.tags.get(ROLE_TAG) in ("job", "search") for r in runs)
    sweep.log_metrics({"n_jobs": n_jobs, "n_runs": len(leaves), "n_summaries": len(ids)})
    if sweep_dir is not None and leaves:
        from .reports.artifacts import log_sweep_report

        kind = "search" if all(r.data.tags.get(ROLE_TAG) == "search" for r in leaves) else "scores"
        log_sweep_report(sweep, sweep_dir, kind=kind, name=name)
    return ids


def tracking_how_to_open(uri: str) -> str:
    """How to open an MLflow store: ``harness ui --store ...`` for a SQLite file (one worker, the
    runs table's links; ``make ui`` for ``./mlruns.db`` in the project directory, whose Makefile
    serves it), the address for a server."""
    if uri.startswith(("http://", "https://")):
        return f"open {uri} in a browser"
    how = f"harness ui --store {uri}"
    if uri.startswith("sqlite:///") and Path(uri[len("sqlite:///"):]) == Path.cwd().resolve() / "mlruns.db":
        makefile = Path.cwd() / "Makefile"
        if makefile.is_file() and "\nui:" in makefile.read_text(errors="replace"):
            how = f"make ui, or {how}"  # the project's target serves ./mlruns.db
    return f"open with: {how}"


def tracking_entry(enabled: bool, uri: str | None, experiment: str | None = None, *,
                   tracker: Any = None) -> tuple[str, str, str]:
    """The outputs entry of an MLflow store (``tracking  <uri>  (experiment X; open with: ...)``),
    ``tracking  none`` when tracking is off, or ``tracking  not logged`` with the command that logs
    the records later when ``tracker`` (a :class:`MlflowTracker` with a ``run_dir``) failed."""
    if not enabled or not uri:
        return ("tracking", "none", "not logged to MLflow: tracking.enabled=false")
    if isinstance(tracker, MlflowTracker) and tracker.untracked is not None:
        later = (f"; log it later: {track_later_command(tracker.run_dir, tracker.tracking_uri)}"
                 if tracker.run_dir is not None else "")
        return ("tracking", "not logged", f"{tracker.tracking_uri} failed: {tracker.untracked}{later}")
    uri = normalise_uri(uri)
    return ("tracking", uri, (f"experiment {experiment}; " if experiment else "") + tracking_how_to_open(uri))
