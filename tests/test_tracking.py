"""Tests for harness.tracking (MLflow on an embedded SQLite store, all in tmp_path)."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import tracking
from harness.tracking import (
    NONFINITE_COUNT_TAG,
    PARENT_RUN_ID_FILE,
    MlflowSweepCallback,
    MlflowTracker,
    NullTracker,
    RunHandle,
    Tracker,
    ensure_store,
    make_tracker,
    normalise_uri,
    parent_run_id_for,
    provenance_tags,
    sanitise_key,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def _template_db(tmp_path_factory) -> Path:
    """One freshly migrated store per module; creating the schema costs ~2 s, copying it ~0."""
    db = tmp_path_factory.mktemp("template") / "mlruns.db"
    ensure_store(f"sqlite:///{db}", "template")
    return db


@pytest.fixture
def _uri(tmp_path: Path, _template_db: Path):
    """``_uri(tmp_path)`` -> URI of a private copy of the migrated template store."""

    def make(base: Path) -> str:
        db = base / "store" / "mlruns.db"
        if not db.exists():
            db.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_template_db, db)
        return f"sqlite:///{db}"

    return make


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def test_import_is_cheap():
    code = "import sys, harness.tracking; print('mlflow' in sys.modules, 'seaborn' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "False"]


def test_limits_match_installed_mlflow():
    from mlflow.utils import validation as v

    assert tracking.MAX_PARAM_VAL_LENGTH == v.MAX_PARAM_VAL_LENGTH
    assert tracking.MAX_TAG_VAL_LENGTH == v.MAX_TAG_VAL_LENGTH
    assert tracking.MAX_ENTITY_KEY_LENGTH == v.MAX_ENTITY_KEY_LENGTH
    assert tracking.MAX_PARAMS_TAGS_PER_BATCH == v.MAX_PARAMS_TAGS_PER_BATCH
    assert tracking.MAX_METRICS_PER_BATCH == v.MAX_METRICS_PER_BATCH


def test_null_tracker_does_nothing(tmp_path):
    tracker = NullTracker()
    assert isinstance(tracker, Tracker)
    with tracker.run("x", parent_run_id="p", tags={"a": 1}) as run:
        assert isinstance(run, RunHandle)
        run.log_params({"a": 1})
        run.log_metrics({"m": float("nan")}, step=1)
        run.set_tags({"t": "v"})
        run.log_artifact(tmp_path / "missing.txt")
        assert run.run_id == ""
    assert list(tmp_path.iterdir()) == []
    assert isinstance(make_tracker(None), NullTracker)
    assert isinstance(make_tracker({"enabled": False, "uri": "x", "experiment": "e"}), NullTracker)


def test_sanitised_keys_are_accepted_by_mlflow(tmp_path):
    from mlflow.utils.validation import _validate_metric_name

    for key in ["rho/wrcor/cifar10-valid/valid", "tau/grad_norm/ImageNet16-120/test", "rho/weird[proxy]/a/../b/x=y"]:
        _validate_metric_name(sanitise_key(key))  # raises if MLflow refuses it
    assert sanitise_key("rho/wrcor/cifar10-valid/valid") == "rho/wrcor/cifar10-valid/valid"
    assert sanitise_key("") == "_"
    assert len(sanitise_key("k" * 400)) == tracking.MAX_ENTITY_KEY_LENGTH


def test_run_logs_params_metrics_tags_artifact(tmp_path, _uri):
    uri = _uri(tmp_path)
    tracker = MlflowTracker(uri, "exp")
    artifact = tmp_path / "metrics.csv"
    artifact.write_text("proxy,tau\nwrcor,0.5\n")
    params = {f"p{i}": i for i in range(250)}  # > one log_batch chunk
    params["long"] = "x" * 10_000
    with tracker.run("job", tags={"stage": "unit"}) as run:
        run.log_params(params)
        run.log_metrics({"rho/wrcor/cifar10-valid/valid": 0.75, "run/n": 3})
        run.log_metrics({"curve": 0.1}, step=0)
        run.log_metrics({"curve": 0.2}, step=1)
        run.set_tags({"git.commit": "abc", "odd key[0]": "v"})
        run.log_artifact(artifact)
        run_id = run.run_id

    client = _client(uri)
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "job"
    assert got.data.params["p249"] == "249"
    assert len(got.data.params) == 251
    assert len(got.data.params["long"]) == tracking.MAX_PARAM_VAL_LENGTH
    assert got.data.params["long"].endswith("[truncated; 10000 chars in full]")
    assert got.data.metrics["rho/wrcor/cifar10-valid/valid"] == pytest.approx(0.75)
    assert got.data.metrics["run/n"] == 3
    assert [m.value for m in client.get_metric_history(run_id, "curve")] == [0.1, 0.2]
    assert got.data.tags["stage"] == "unit"
    assert got.data.tags["git.commit"] == "abc"
    assert got.data.tags["odd key_0_"] == "v"
    assert [f.path for f in client.list_artifacts(run_id)] == ["metrics.csv"]
    # artifacts live beside the database, not in the working directory
    assert (tmp_path / "store" / "mlartifacts").is_dir()
    assert got.info.artifact_uri.startswith((tmp_path / "store" / "mlartifacts").as_uri())


def test_failed_block_marks_run_failed(tmp_path, _uri):
    uri = _uri(tmp_path)
    tracker = MlflowTracker(uri, "exp")
    with pytest.raises(RuntimeError):
        with tracker.run("boom") as run:
            run_id = run.run_id
            raise RuntimeError("job failed")
    assert _client(uri).get_run(run_id).info.status == "FAILED"


def test_nonfinite_metrics_become_tags(tmp_path, _uri):
    uri = _uri(tmp_path)
    tracker = MlflowTracker(uri, "exp")
    with tracker.run("nan") as run:
        run.log_metrics({"tau/a/c10/valid": float("nan"), "tau/b/c10/valid": 0.3, "tau/c/c10/valid": math.inf})
        run.log_metrics({"tau/d/c10/valid": -math.inf}, step=2)
        assert run.n_nonfinite == 3
        run_id = run.run_id
    data = _client(uri).get_run(run_id).data
    assert data.metrics == {"tau/b/c10/valid": pytest.approx(0.3)}
    assert data.tags["nonfinite/tau/a/c10/valid"] == "nan"
    assert data.tags["nonfinite/tau/c/c10/valid"] == "inf"
    assert data.tags["nonfinite/tau/d/c10/valid"] == "-inf @step=2"
    assert data.tags[NONFINITE_COUNT_TAG] == "3"


def test_parent_and_children(tmp_path, _uri):
    uri = _uri(tmp_path)
    tracker = MlflowTracker(uri, "sweep")
    with tracker.run("parent") as parent:
        for i in range(2):
            with MlflowTracker(uri, "sweep").run(f"child{i}", parent_run_id=parent.run_id) as child:
                child.log_metrics({"x": i})
    client = _client(uri)
    exp = client.get_experiment_by_name("sweep")
    runs = client.search_runs([exp.experiment_id])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.run_id]
    assert len(runs) == 3
    assert sorted(r.info.run_name for r in children) == ["child0", "child1"]


def test_ensure_store_is_idempotent(tmp_path, _uri):
    uri = _uri(tmp_path)
    first = ensure_store(uri, "exp")
    second = ensure_store(uri, "exp")
    assert first == second
    client = _client(uri)
    assert [e.name for e in client.search_experiments()].count("exp") == 1
    assert client.get_experiment(first).artifact_location == (tmp_path / "store" / "mlartifacts").as_uri()
    # a deleted experiment is restored, not duplicated
    client.delete_experiment(first)
    assert ensure_store(uri, "exp") == first
    assert client.get_experiment(first).lifecycle_stage == "active"
    # a plain path means the same SQLite store
    assert ensure_store(tmp_path / "store" / "mlruns.db", "exp") == first


def test_custom_artifact_root_and_uri_forms(tmp_path, _uri):
    uri = _uri(tmp_path)
    exp_id = ensure_store(uri, "custom", tmp_path / "arts")
    assert _client(uri).get_experiment(exp_id).artifact_location == (tmp_path / "arts").as_uri()
    assert normalise_uri(str(tmp_path / "a.db")) == f"sqlite:///{tmp_path / 'a.db'}"
    with pytest.raises(ValueError, match="file:"):
        normalise_uri("file:///tmp/mlruns")


def _git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def test_provenance_tags_in_git_repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.txt").write_text("1")
    _git(repo, "add", "a.txt")
    _git(repo, "commit", "-q", "-m", "init")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    tags = provenance_tags(repo, {"NAS-Bench-201/nb201.csv": "ab12"})
    assert tags == {"git.commit": head, "git.dirty": "false", "data.sha256.NAS-Bench-201/nb201.csv": "ab12"}
    (repo / "untracked.txt").write_text("x")  # untracked files do not count as dirty
    assert provenance_tags(repo, {})["git.dirty"] == "false"
    (repo / "a.txt").write_text("2")
    assert provenance_tags(repo, {})["git.dirty"] == "true"


def test_provenance_tags_outside_git(tmp_path):
    outside = tmp_path / "plain"
    outside.mkdir()
    env_ceiling = os.environ.get("GIT_CEILING_DIRECTORIES")
    os.environ["GIT_CEILING_DIRECTORIES"] = str(tmp_path)
    try:
        tags = provenance_tags(outside, {"x.bin": "ff"})
    finally:
        if env_ceiling is None:
            del os.environ["GIT_CEILING_DIRECTORIES"]
        else:
            os.environ["GIT_CEILING_DIRECTORIES"] = env_ceiling
    assert tags == {"git.commit": "unknown", "git.dirty": "unknown", "data.sha256.x.bin": "ff"}


def test_sweep_callback_writes_parent_id(tmp_path, _uri):
    from omegaconf import OmegaConf

    uri = _uri(tmp_path)
    sweep_dir = tmp_path / "multirun" / "sweep0"
    cfg = OmegaConf.create(
        {
            "tracking": {"enabled": True, "uri": uri, "experiment": "sweeps", "artifact_root": None},
            "hydra": {"sweep": {"dir": str(sweep_dir)}, "overrides": {"task": ["proxy=wrcor,synflow"]},
                      "job": {"name": "cli"}},
        }
    )
    cb = MlflowSweepCallback()
    cb.on_multirun_start(config=cfg, config_name="config")
    parent = parent_run_id_for(sweep_dir)
    assert parent is not None and (sweep_dir / PARENT_RUN_ID_FILE).is_file()
    tracker = make_tracker(cfg.tracking)
    with tracker.run("job0", parent_run_id=parent) as child:
        child_id = child.run_id
    client = _client(uri)
    assert client.get_run(parent).info.status == "RUNNING"
    assert client.get_run(parent).data.tags["sweep.overrides"] == "proxy=wrcor,synflow"
    assert client.get_run(child_id).data.tags["mlflow.parentRunId"] == parent
    cb.on_multirun_end(config=cfg)
    assert client.get_run(parent).info.status == "FINISHED"


def test_sweep_callback_noop_when_disabled(tmp_path):
    from omegaconf import OmegaConf

    sweep_dir = tmp_path / "sweep"
    for cfg in (
        OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}}}),
        OmegaConf.create({"tracking": {"enabled": False, "uri": f"sqlite:///{tmp_path / 'store' / 'm.db'}",
                                       "experiment": "e"},
                          "hydra": {"sweep": {"dir": str(sweep_dir)}}}),
    ):
        cb = MlflowSweepCallback()
        cb.on_multirun_start(config=cfg)
        cb.on_multirun_end(config=cfg)
    assert not sweep_dir.exists()
    assert parent_run_id_for(sweep_dir) is None
    assert not (tmp_path / "store").exists()


def test_hydra_multirun_end_to_end(tmp_path, _uri):
    """A real `--multirun` with the callback: one parent, one child per job, parent FINISHED."""
    uri = _uri(tmp_path)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "config.yaml").write_text(
        textwrap.dedent(
            f"""
            x: 0
            tracking:
              enabled: true
              uri: {uri}
              experiment: e2e
              artifact_root: null
            hydra:
              sweep:
                dir: {tmp_path / 'multirun'}
              callbacks:
                mlflow_sweep:
                  _target_: harness.tracking.MlflowSweepCallback
            """
        )
    )
    (tmp_path / "app.py").write_text(
        textwrap.dedent(
            """
            import hydra
            from hydra.core.hydra_config import HydraConfig
            from harness.tracking import make_tracker, parent_run_id_for

            @hydra.main(version_base="1.3", config_path="conf", config_name="config")
            def main(cfg):
                parent = parent_run_id_for(HydraConfig.get().sweep.dir)
                assert parent, "no parent run id"
                with make_tracker(cfg.tracking).run(f"x={cfg.x}", parent_run_id=parent) as run:
                    run.log_metrics({"x": cfg.x})

            if __name__ == "__main__":
                main()
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "app.py", "--multirun", "x=1,2"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    parent = parent_run_id_for(tmp_path / "multirun")
    client = _client(uri)
    exp = client.get_experiment_by_name("e2e")
    runs = {r.info.run_id: r for r in client.search_runs([exp.experiment_id])}
    assert len(runs) == 3 and parent in runs
    assert runs[parent].info.status == "FINISHED"
    children = [r for r in runs.values() if r.data.tags.get("mlflow.parentRunId") == parent]
    assert sorted(r.data.metrics["x"] for r in children) == [1.0, 2.0]


_WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from harness.tracking import MlflowTracker
    import mlflow  # noqa: F401 -- imported before the start line, so the workers start together

    base, i = Path(sys.argv[1]), int(sys.argv[2])
    (base / f"ready{i}").touch()
    while not (base / "go").exists():
        time.sleep(0.005)
    tracker = MlflowTracker(base / "store" / "mlruns.db", "concurrent")
    for r in range(3):
        with tracker.run(f"w{i}-r{r}", tags={"worker": i}) as run:
            run.log_params({f"p{k}": k * i for k in range(30)})
            for step in range(4):
                run.log_metrics({"m": float(step * i), "r": float(r)}, step=step)
            run.set_tags({"done": "yes"})
    """
)


def test_concurrent_workers_on_a_new_store_all_log(tmp_path):
    """Sweep workers started at the same instant on a store that does not exist yet: the first
    opening (MLflow's migration) is serialised by ensure_store's lock, every later write waits
    for SQLite's lock (MLflow's busy_timeout): no 'database is locked', every run complete."""
    import time

    n = 4
    (tmp_path / "worker.py").write_text(_WORKER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(tmp_path / "worker.py"), str(tmp_path), str(i)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(n)]
    try:
        deadline = time.monotonic() + 240
        while not all((tmp_path / f"ready{i}").exists() for i in range(n)):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a worker did not start"
            time.sleep(0.05)
        (tmp_path / "go").touch()
        results = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
        assert "database is locked" not in err
    client = _client(f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}")
    runs = client.search_runs([client.get_experiment_by_name("concurrent").experiment_id], max_results=100)
    assert sorted(r.info.run_name for r in runs) == sorted(f"w{i}-r{r}" for i in range(n) for r in range(3))
    for run in runs:
        assert run.info.status == "FINISHED" and run.data.tags["done"] == "yes" and len(run.data.params) == 30
        assert len(client.get_metric_history(run.info.run_id, "m")) == 4


def test_mlflow_sessions_wait_for_sqlite_locks(tmp_path, _uri):
    """What the concurrency above relies on in the installed MLflow: its SQLite sessions set a
    busy timeout (a writer waits for another's lock instead of failing at once)."""
    from sqlalchemy import text

    store = _client(_uri(tmp_path))._tracking_client.store
    with store.ManagedSessionMaker() as session:
        assert session.execute(text("PRAGMA busy_timeout")).scalar() >= 5000


# --------------------------------------------------------------------------- the layout, end to end
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from conftest import REAL
    from mlflow_sweep import tiny_sweep

    if REAL is None:
        pytest.skip("benchmark data (../shared/data or $ZSNAS_DATA_DIR) not found")
    return tiny_sweep(tmp_path_factory.mktemp("tiny"))


def _layout(sweep):
    client = _client(sweep.uri)
    exp = client.get_experiment_by_name("zsnas-bench")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    by_role: dict[str, list] = {}
    for r in runs:
        by_role.setdefault(r.data.tags.get("zsnas.role"), []).append(r)
    return client, exp, runs, by_role


def test_experiment_opens_on_the_runs_table(tiny):
    _, exp, _, _ = _layout(tiny)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"


def test_one_run_per_evaluation_nested_under_its_job_under_the_sweep(tiny):
    from mlflow_sweep import PROXIES, SEEDS

    client, _, runs, by_role = _layout(tiny)
    assert sorted(by_role) == ["evaluation", "job", "summary", "sweep"]
    (sweep,) = by_role["sweep"]
    parent_file = (tiny.dir / PARENT_RUN_ID_FILE).read_text().strip()
    assert sweep.info.run_id == parent_file
    jobs = {r.info.run_id: r for r in by_role["job"]}
    assert len(jobs) == len(SEEDS)
    assert all(r.data.tags["mlflow.parentRunId"] == sweep.info.run_id for r in jobs.values())
    evaluations = by_role["evaluation"]
    targets = {("cifar10-valid", "valid"), ("cifar10-valid", "test"), ("cifar10", "test")}
    assert len(evaluations) == len(PROXIES) * len(targets) * len(SEEDS)
    for r in evaluations:
        assert r.data.tags["mlflow.parentRunId"] in jobs  # nested under its job's run
        assert r.data.tags["zsnas.sweep_run_id"] == sweep.info.run_id
        p = r.data.params
        assert jobs[r.data.tags["mlflow.parentRunId"]].data.params["seed"] == p["seed"]
        assert {k: p[k] for k in ("space", "n_archs", "batch_size", "batch_kind")} == \
            {"space": "nb201", "n_archs": "3", "batch_size": "8", "batch_kind": "noise"}
        assert p["proxy"] in PROXIES and (p["dataset"], p["split"]) in targets and p["seed"] in ("0", "1")
        if p["proxy"] == "wrcor":  # the proxy's own parameters
            assert p["proxy.power"] == "1.0" and p["proxy.weighting"] == "exp_bottom_to_top"
        assert {"kendall_tau", "spearman_rho", "n_nan", "sec_per_arch"} <= set(r.data.metrics)
        assert r.info.run_name == f"{p['proxy']} · nb201 · {p['dataset']}/{p['split']} · s{p['seed']}"
        assert r.info.status == "FINISHED"
    assert sorted((r.data.params["proxy"], r.data.params["dataset"], r.data.params["seed"]) for r in evaluations) \
        == sorted((p, d, str(s)) for p in PROXIES for d, _ in targets for s in SEEDS)
    # names are unique and flat metric names only: no chart section per proxy/dataset
    names = [r.info.run_name for r in runs]
    assert len(set(names)) == len(names)
    assert all("/" not in k for r in runs for k in r.data.metrics)
    # the job's run: the config and records as artifacts, provenance as tags
    job = next(iter(jobs.values()))
    assert job.info.run_name.startswith("nb201 · cifar10 · s") and job.data.params["proxies"] == ",".join(PROXIES)
    arts = {f.path for f in client.list_artifacts(job.info.run_id)}
    assert {"config.yaml", "scores.csv", "metrics.csv"} <= arts
    assert job.data.tags["git.commit"] and any(k.startswith("data.sha256.") for k in job.data.tags)


def test_a_job_run_brackets_its_work(tiny):
    """Each job's run starts before its first score is computed and ends after its last one, inside
    the sweep's run, which brackets every job."""
    import sqlite3

    _, _, _, by_role = _layout(tiny)
    (sweep,) = by_role["sweep"]
    with sqlite3.connect(tiny.store) as con:
        created = con.execute("select seed, min(created), max(created) from scores group by seed").fetchall()
    span = {str(seed): (lo, hi) for seed, lo, hi in created}
    assert sweep.info.start_time / 1000 >= tiny.started - 1 and sweep.info.end_time / 1000 <= tiny.ended + 1
    for job in by_role["job"]:
        start, end = job.info.start_time / 1000, job.info.end_time / 1000
        first, last = span[job.data.params["seed"]]
        assert start <= first <= last <= end, (start, first, last, end)
        assert sweep.info.start_time <= job.info.start_time and job.info.end_time <= sweep.info.end_time
    for ev in by_role["evaluation"]:
        job = next(j for j in by_role["job"] if j.info.run_id == ev.data.tags["mlflow.parentRunId"])
        assert job.info.start_time <= ev.info.start_time <= ev.info.end_time <= job.info.end_time


def test_the_sweep_run_carries_aggregates_over_seeds_and_the_report(tiny):
    from mlflow_sweep import PROXIES, SEEDS

    from harness.reports.metrics import mean_std

    client, _, _, by_role = _layout(tiny)
    (sweep,) = by_role["sweep"]
    summaries = by_role["summary"]
    n_targets = 3  # cifar10-valid/valid, cifar10-valid/test, cifar10/test
    assert len(summaries) == len(PROXIES) * n_targets  # per (proxy, dataset/split)
    for s in summaries:
        assert s.data.tags["mlflow.parentRunId"] == sweep.info.run_id
        p = s.data.params
        assert "seed" not in p and p["seeds"] == "0,1"
        assert s.info.run_name == f"{p['proxy']} · nb201 · {p['dataset']}/{p['split']} · mean of 2 seeds"
        members = [r for r in by_role["evaluation"]
                   if all(r.data.params[k] == p[k] for k in ("proxy", "dataset", "split"))]
        assert len(members) == len(SEEDS)
        for metric in ("spearman_rho", "kendall_tau", "sec_per_arch"):
            mean, std = mean_std([r.data.metrics[metric] for r in members])
            assert s.data.metrics[f"{metric}_mean"] == pytest.approx(mean)
            assert s.data.metrics[f"{metric}_std"] == pytest.approx(std)
        assert s.data.metrics["n_seeds"] == len(SEEDS)
    assert sweep.data.metrics == {"n_jobs": float(len(SEEDS)), "n_runs": float(len(PROXIES) * n_targets * len(SEEDS)),
                                  "n_summaries": float(len(PROXIES) * n_targets)}
    assert sweep.info.status == "FINISHED"
    arts = {f.path for d in ("report/tables", "report/figures") for f in client.list_artifacts(sweep.info.run_id, d)}
    assert {"report/tables/tiny.md", "report/tables/tiny.tex", "report/tables/tiny_summary.csv"} <= arts
    assert any(a.startswith("report/figures/") and a.endswith(".png") for a in arts)


def test_run_names_are_made_unique(tmp_path, _uri):
    uri = _uri(tmp_path)
    tracker = MlflowTracker(uri, "exp")
    names = []
    for _ in range(3):
        with tracker.run("wrcor · nb201 · cifar10/test · s0") as run:
            names.append(_client(uri).get_run(run.run_id).info.run_name)
    with tracker.run("it's") as run:  # a quote does not break the lookup
        pass
    with tracker.run("it's") as run:
        names.append(_client(uri).get_run(run.run_id).info.run_name)
    assert names == ["wrcor · nb201 · cifar10/test · s0", "wrcor · nb201 · cifar10/test · s0 #2",
                     "wrcor · nb201 · cifar10/test · s0 #3", "it's #2"]


def test_log_series_logs_steps_and_leaves_out_nonfinite(tmp_path, _uri):
    uri = _uri(tmp_path)
    with MlflowTracker(uri, "exp").run("s") as run:
        run.log_series({"best_accuracy": [(1, 90.0), (2, math.nan), (3, 91.5)]})
        run_id = run.run_id
    client = _client(uri)
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "best_accuracy")] == [(1, 90.0), (3, 91.5)]
    assert client.get_run(run_id).data.metrics["best_accuracy"] == 91.5  # the last step is the run's value
    assert client.get_run(run_id).data.tags["nonfinite/best_accuracy"] == "1 non-finite step(s) left out"


def test_an_old_experiment_gets_the_kind_tag(tmp_path, _uri):
    uri = _uri(tmp_path)
    client = _client(uri)
    exp_id = client.create_experiment("old")
    assert "mlflow.experimentKind" not in client.get_experiment(exp_id).tags
    assert ensure_store(uri, "old") == exp_id
    assert client.get_experiment(exp_id).tags["mlflow.experimentKind"] == "custom_model_development"


def test_an_evaluation_run_gets_the_proxy_s_own_parameters():
    from harness.scoring.run import _proxy_params

    assert _proxy_params("wrcor(power=2.0)")["proxy.power"] == 2.0
    assert _proxy_params("wrcor")["proxy.power"] == 1.0  # the registered default, so specs compare
    assert _proxy_params("vote_sjw@comparator") == {"proxy.components": "synflow,jacob_cov,wrcor",
                                                    "proxy.rule": "majority", "proxy.ordering": "comparator"}
    assert _proxy_params("synflow") == {}
