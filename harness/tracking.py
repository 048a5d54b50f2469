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
    ``tracking.experiment``, ``tracking.artifact_root``.

``import harness.tracking`` is cheap: mlflow, hydra and omegaconf are imported lazily.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import subprocess
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


class MlflowRun:
    """Run handle bound to one MLflow run through an explicit client."""

    def __init__(self, client: Any, run_id: str) -> None:
        self._client = client
        self.run_id = run_id
        self.n_nonfinite = 0

    # params / tags -----------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = self._entries(params, MAX_PARAM_VAL_LENGTH, "param")
        batch = [Param(k, v) for k, v in items.items()]
        for i in range(0, len(batch), MAX_PARAMS_TAGS_PER_BATCH):
            self._client.log_batch(self.run_id, params=batch[i : i + MAX_PARAMS_TAGS_PER_BATCH])

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
        if p.is_dir():
            self._client.log_artifacts(self.run_id, str(p), artifact_path)
        else:
            self._client.log_artifact(self.run_id, str(p), artifact_path)


class MlflowTracker:
    """MLflow tracker on an embedded store; see the module docstring for conventions."""

    def __init__(
        self,
        tracking_uri: str | os.PathLike[str],
        experiment: str,
        artifact_root: str | os.PathLike[str] | None = None,
    ) -> None:
        self.tracking_uri = normalise_uri(tracking_uri)
        self.experiment = str(experiment)
        self.artifact_root = _artifact_uri(artifact_root, self.tracking_uri)
        self._client_obj: Any = None
        self._experiment_id: str | None = None

    @property
    def client(self) -> Any:
        """The ``mlflow.MlflowClient`` of this tracker (store created on first use)."""
        if self._client_obj is None:
            self._experiment_id = ensure_store(self.tracking_uri, self.experiment, self.artifact_root)
            self._client_obj = _client(self.tracking_uri)
        return self._client_obj

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
        client = self.client
        all_tags = {sanitise_key(k): _truncate(_to_str(v), MAX_TAG_VAL_LENGTH) for k, v in (tags or {}).items()}
        if parent_run_id:
            all_tags[PARENT_RUN_TAG] = str(parent_run_id)
        with _first_use_lock(self.tracking_uri):
            unique = _unique_name(client, self.experiment_id, str(name))
            info = client.create_run(self.experiment_id, run_name=unique, tags=all_tags).info
        return MlflowRun(client, info.run_id)

    def finish(self, handle: MlflowRun, status: str = "FINISHED") -> None:
        """End ``handle``'s run with ``status`` (FINISHED, FAILED or KILLED)."""
        self.client.set_terminated(handle.run_id, status)

    @contextlib.contextmanager
    def run(
        self,
        name: str,
        *,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> Iterator[MlflowRun]:
        handle = self.start(name, parent_run_id=parent_run_id, tags=tags)
        status = "FAILED"
        try:
            yield handle
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            try:
                self.finish(handle, status)
            except Exception:  # noqa: BLE001 - never mask the original exception
                log.exception("could not mark MLflow run %s as %s", handle.run_id, status)


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


def make_tracker(tracking_cfg: Any) -> NullTracker | MlflowTracker:
    """Tracker for a ``tracking`` config (:class:`harness.config.TrackingConfig`, or a node or
    mapping with its keys: ``enabled``, ``uri``, ``experiment``, ``artifact_root``) or ``None``.
    Disabled or missing -> :class:`NullTracker`."""
    from .config import TrackingConfig, typed

    tracking = typed(tracking_cfg, TrackingConfig, "tracking")
    if tracking is None or not tracking.enabled:
        return NullTracker()
    return MlflowTracker(tracking.uri, tracking.experiment, tracking.artifact_root)


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
        tracking = self._tracking(config)
        if tracking is None:
            return
        sweep_dir = self._select(config, "hydra.sweep.dir")
        if not sweep_dir:
            raise ValueError("MlflowSweepCallback needs hydra.sweep.dir in the config")
        tracker = make_tracker(tracking)
        assert isinstance(tracker, MlflowTracker)
        sweep = Path(str(sweep_dir))
        sweep.mkdir(parents=True, exist_ok=True)
        overrides = self._select(config, "hydra.overrides.task")
        job_name = self._select(config, "hydra.job.name") or "sweep"
        tags: dict[str, Any] = {
            "sweep.dir": str(sweep.resolve()),
            "sweep.overrides": " ".join(str(o) for o in overrides) if overrides else "",
            "sweep.role": "parent",
        }
        tags.update(provenance_tags(Path.cwd(), {}))
        tags[ROLE_TAG] = "sweep"
        handle = tracker.start(run_name(f"{job_name} sweep", f"{sweep.parent.name}/{sweep.name}"), tags=tags)
        self.parent_run_id = handle.run_id
        target = sweep / PARENT_RUN_ID_FILE
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(handle.run_id + "\n", encoding="utf-8")
        os.replace(tmp, target)

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
        try:
            summarise_sweep(tracker, run_id, Path(str(sweep_dir)) if sweep_dir else None,
                            name=str(self._select(config, "profile") or "sweep"))
        except Exception as err:  # noqa: BLE001 -- the jobs' runs are recorded; the summary is extra
            log.warning("could not summarise the sweep in MLflow run %s: %s", run_id, err)
        tracker.client.set_terminated(run_id, "FINISHED")


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


def tracking_entry(enabled: bool, uri: str | None, experiment: str | None = None) -> tuple[str, str, str]:
    """The outputs entry of an MLflow store (``tracking  <uri>  (experiment X; open with: ...)``),
    or ``tracking  none`` when tracking is off."""
    if not enabled or not uri:
        return ("tracking", "none", "not logged to MLflow: tracking.enabled=false")
    uri = normalise_uri(uri)
    return ("tracking", uri, (f"experiment {experiment}; " if experiment else "") + tracking_how_to_open(uri))
