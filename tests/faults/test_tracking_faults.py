"""Fault injection, tracking: an unreachable, silent or unwritable MLflow store is a clear error
naming it within seconds, before any scoring; ``tracking.on_error=warn`` keeps the local records
whole and ``harness track`` logs them later as a live job would (issue 20, part 1)."""
from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import needs_data
from harness.tracking import MlflowTracker, TrackingError, ensure_store

ROOT = Path(__file__).resolve().parents[2]
JOB = ["space.channels=4", "space.cells_per_stage=1", "batch.size=8", "batch.kind=noise", "device=cpu", "archs.n=3",
       "proxies=[synflow,snip]"]


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ZSNAS_PROGRESS": "lines"}
    env.pop("ZSNAS_STORE", None)
    env.pop("ZSNAS_MLFLOW_URI", None)
    return env


def harness(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=300)
    return done, time.monotonic() - started


@pytest.fixture(scope="module")
def template_db(tmp_path_factory) -> Path:
    """One migrated MLflow store per module (creating the schema costs seconds; copying it none)."""
    db = tmp_path_factory.mktemp("template") / "mlruns.db"
    ensure_store(f"sqlite:///{db}", "zsnas-bench")
    return db


def _store(template: Path, where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, where / "mlruns.db")
    return where / "mlruns.db"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_server():
    """A listener that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held, stop = [], threading.Event()

    def serve() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join(2)
    for c in held:
        c.close()
    sock.close()


def _nothing_scored(tmp_path: Path, run_dir: Path) -> None:
    assert not (tmp_path / "scores.sqlite").exists(), "scoring started before the tracker was checked"
    assert not (run_dir / "scores.csv").exists()


def test_an_unreachable_server_stops_the_job_before_scoring_naming_it(tmp_path):
    uri = f"http://127.0.0.1:{_closed_port()}"
    done, seconds = harness(["run", *JOB, f"store.path={tmp_path / 'scores.sqlite'}", f"tracking.uri={uri}",
                             "tracking.timeout_s=2", "hydra.run.dir=runs/job"], tmp_path)
    print(f"closed port: exit {done.returncode} after {seconds:.1f} s (process start included): {done.stderr.strip()}")
    assert done.returncode == 2
    assert f"MLflow tracking server {uri} cannot be reached: connection refused" in done.stderr
    assert "Nothing was run" in done.stderr and "Traceback" not in done.stderr
    assert seconds < 60
    _nothing_scored(tmp_path, tmp_path / "runs" / "job")


def test_a_silent_server_stops_the_job_within_the_timeout(tmp_path, silent_server):
    done, seconds = harness(["run", *JOB, f"store.path={tmp_path / 'scores.sqlite'}", f"tracking.uri={silent_server}",
                             "tracking.timeout_s=2", "hydra.run.dir=runs/job"], tmp_path)
    print(f"silent listener: exit {done.returncode} after {seconds:.1f} s: {done.stderr.strip()}")
    assert done.returncode == 2
    assert f"MLflow tracking server {silent_server} cannot be reached: no answer within 2 s" in done.stderr
    assert seconds < 60
    _nothing_scored(tmp_path, tmp_path / "runs" / "job")


def test_an_unwritable_sqlite_store_is_named_with_its_path(tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the store's directory should be")
    db = blocker / "mlflow" / "mlruns.db"
    done, _ = harness(["run", *JOB, f"store.path={tmp_path / 'scores.sqlite'}", f"tracking.uri={db}",
                       "hydra.run.dir=runs/job"], tmp_path)
    print(done.stderr.strip())
    assert done.returncode == 2
    assert f"MLflow tracking store sqlite:///{db} cannot be used: cannot create the database's directory " \
           f"{db.parent}" in done.stderr
    assert blocker.read_text() == "a file where the store's directory should be"
    _nothing_scored(tmp_path, tmp_path / "runs" / "job")


def test_the_new_settings_are_validated(tmp_path):
    done, _ = harness(["run", *JOB, "tracking.timeout_s=0", "tracking.retries=99", "--dry-run"], tmp_path)
    assert done.returncode == 2
    assert "tracking.timeout_s=0.0 is not allowed" in done.stderr and "tracking.retries=99 is not allowed" in done.stderr
    done, _ = harness(["run", *JOB, "tracking.on_error=maybe", "--dry-run"], tmp_path)
    assert done.returncode != 0 and "on_error" in done.stderr


def test_a_failure_during_the_job_warns_once_and_records_it(tmp_path, template_db, caplog):
    """warn: the store fails after the job's run was opened; one warning, later calls skipped,
    tracking.json says so with the command that logs the records later. fail: a TrackingError
    naming the store and that command."""
    from mlflow.exceptions import MlflowException

    class Broken:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise MlflowException("database is locked")
            return fail

    uri = f"sqlite:///{_store(template_db, tmp_path / 'store')}"
    run_dir = tmp_path / "run"
    tracker = MlflowTracker(uri, "zsnas-bench", on_error="warn", run_dir=run_dir)
    with caplog.at_level("WARNING", logger="harness.tracking"):
        with tracker.run("job") as job:
            job.log_params({"a": 1})
            job._client = tracker._client_obj = Broken()  # the store goes away mid-job
            job.log_metrics({"x": 1.0})
            job.log_params({"b": 2})
            with tracker.run("child", parent_run_id=job.run_id) as child:
                child.log_metrics({"y": 2.0})
    warnings = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(warnings) == 1 and uri in warnings[0].getMessage() and "database is locked" in warnings[0].getMessage()
    record = json.loads((run_dir / "tracking.json").read_text())
    assert record["tracked"] is False and "database is locked" in record["cause"]
    assert record["log_later"] == f"harness track {run_dir} --uri {uri}"

    failing = MlflowTracker(uri, "zsnas-bench", run_dir=tmp_path / "run2")
    with pytest.raises(TrackingError, match="failed while logging metrics: database is locked") as err:
        with failing.run("job") as job:
            job._client = Broken()
            job.log_metrics({"x": 1.0})
    assert uri in str(err.value) and f"harness track {tmp_path / 'run2'}" in str(err.value)


def _runs(uri: str) -> dict[str, object]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("zsnas-bench")
    out = {}
    for r in client.search_runs([exp.experiment_id]):
        role, name = r.data.tags["zsnas.role"], r.info.run_name
        out[f"{role}:{name.rsplit(' · ', 1)[0] if role == 'job' else name}"] = r  # a job's name ends in its directory
    return out


@needs_data
def test_warn_keeps_the_records_and_track_logs_them_as_a_live_job_would(tmp_path, template_db, silent_server):
    # 1. the live job, tracked into its own store
    live = f"sqlite:///{_store(template_db, tmp_path / 'live')}"
    done, _ = harness(["run", *JOB, f"store.path={tmp_path / 's1.sqlite'}", f"tracking.uri={live}",
                       "hydra.run.dir=runs/live"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    # 2. the same job while the server is silent, on_error=warn: it goes on, records whole
    done, seconds = harness(["run", *JOB, f"store.path={tmp_path / 's2.sqlite'}", f"tracking.uri={silent_server}",
                             "tracking.timeout_s=2", "tracking.on_error=warn", "hydra.run.dir=runs/later"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = tmp_path / "runs" / "later"
    for name in ("scores.csv", "metrics.csv", "summary.json", "config.yaml"):
        assert (run_dir / name).is_file()
    record = json.loads((run_dir / "tracking.json").read_text())
    assert record["tracked"] is False and "no answer within 2 s" in record["cause"]
    assert done.stderr.count("tracking.on_error=warn: the job goes on without tracking") == 1
    closing = done.stdout.strip().splitlines()[-1]
    print(closing)
    assert closing.startswith("  tracking  not logged") and f"harness track {run_dir} --uri {silent_server}" in closing
    records = {n: (run_dir / n).read_bytes() for n in ("scores.csv", "metrics.csv", "summary.json", "config.yaml")}
    # 3. logged later into another store
    later = f"sqlite:///{_store(template_db, tmp_path / 'later')}"
    done, _ = harness(["track", str(run_dir), "--uri", later], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run_dir / "tracking.json").read_text())["tracked"] is True
    assert {n: (run_dir / n).read_bytes() for n in records} == records  # the records are left as they were
    # same layout: the same runs, params, metric keys and values (timings aside), tags
    a, b = _runs(live), _runs(later)
    assert sorted(a) == sorted(b) and len(a) == 1 + 2 * 3
    for key in a:
        ra, rb = a[key], b[key]
        assert ra.data.params == rb.data.params, key
        assert set(ra.data.metrics) == set(rb.data.metrics), key
        for m, v in ra.data.metrics.items():
            if m != "sec_per_arch":
                assert math.isclose(v, rb.data.metrics[m], rel_tol=1e-9) or (math.isnan(v) and math.isnan(
                    rb.data.metrics[m])), (key, m)
        later_tag = {"zsnas.logged_later"} if key.startswith("job:") else set()
        assert set(ra.data.tags) | later_tag == set(rb.data.tags), key
        assert ra.info.status == rb.info.status == "FINISHED"
    assert {p.path for p in _artifacts(live, a)} == {p.path for p in _artifacts(later, b)}
    # 4. once logged, the directory is not logged twice
    done, _ = harness(["track", str(run_dir), "--uri", later], tmp_path)
    assert done.returncode == 0 and "already logged" in done.stderr


def _artifacts(uri: str, runs: dict) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    job = next(r for k, r in runs.items() if k.startswith("job:"))
    return client.list_artifacts(job.info.run_id)
