"""The scoring job end to end: composed Hydra configs, the durable store, resumption after kill -9."""
from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import harness.scoring.run as hrun
from harness.config import ConfigError, compose, load
from hydra.errors import ConfigCompositionException
from conftest import needs_data
from harness.scoring.store import ScoreStore
from spaces.base import UnknownNameError

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["space.channels=4", "space.cells_per_stage=1", "tracking=none", "batch.size=16"]


def make_cfg(*overrides: str):
    return compose("config", overrides)


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml")))
def test_every_experiment_config_composes(experiment):
    if experiment.startswith("search_"):  # the search experiments extend conf/search_run.yaml
        cfg = compose("search_run", [f"experiment={experiment}"], return_hydra_config=True)
        params = cfg.hydra.sweeper.params or {}
        assert cfg.profile == experiment and cfg.budget >= 1
        swept = [[f"{key}={v}" for v in str(params[key]).split(",")] for key in ("search", "objective") if key in params]
        for job in itertools.product(*swept):  # every job of the sweep (or the one search) passes the door
            load(compose("search_run", [f"experiment={experiment}", *job]))
        return
    cfg = make_cfg(f"experiment={experiment}")
    assert cfg.profile == experiment
    load(cfg)  # the door: types, ranges, every proxy spec


@needs_data
def test_run_scores_stores_and_never_recomputes(tmp_path):
    cfg = make_cfg(*SMALL, "archs.n=4", "proxies=[wrcor,rcor]", f"store.path={tmp_path}/s.sqlite")
    first = hrun.run(cfg, output_dir=tmp_path / "a")
    assert first["computed"] == 4 and first["cached"] == 0
    again = hrun.run(cfg, output_dir=tmp_path / "b")
    assert again["computed"] == 0 and again["cached"] == 4
    assert again["metrics"] == first["metrics"]
    with ScoreStore(tmp_path / "s.sqlite") as store:
        assert len(store) == 8
    for name in ("scores.csv", "metrics.csv", "summary.json"):
        assert (tmp_path / "a" / name).stat().st_size > 0
    # metrics: one row per proxy x target, with the protocol stated
    assert {(m["proxy"], m["dataset"], m["split"]) for m in first["metrics"]} == {
        (p, d, s) for p in ("wrcor", "rcor") for d, s in (("cifar10-valid", "valid"), ("cifar10-valid", "test"), ("cifar10", "test"))}
    assert all("200 epochs" in m["protocol"] for m in first["metrics"])
    # a different seed is a different key: computed anew
    other = hrun.run(make_cfg(*SMALL, "archs.n=4", "proxies=[wrcor,rcor]", "seed=1",
                              f"store.path={tmp_path}/s.sqlite"), output_dir=tmp_path / "c")
    assert other["computed"] == 4


@needs_data
def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="'nope' is not allowed: unknown proxy 'nope'; registered proxies"):
        hrun.run(make_cfg(*SMALL, "proxies=[wrcor,nope]", f"store.path={tmp_path}/s.sqlite"), output_dir=tmp_path)
    with pytest.raises(UnknownNameError, match="valid"):
        hrun.run(make_cfg(*SMALL, "dataset.targets=[[cifar10,bogus]]", f"store.path={tmp_path}/s.sqlite"),
                 output_dir=tmp_path)
    with pytest.raises(ConfigCompositionException, match="archs.select=some"):  # refused while composing
        make_cfg(*SMALL, "archs.select=some")
    with pytest.raises(ConfigError, match="archs.select='some' is not allowed"):  # the API refuses it too
        hrun.select_archs(hrun.spaces.get_space("nb201"), select="some", n=3, seed=0)
    assert not (tmp_path / "s.sqlite").exists() or len(ScoreStore(tmp_path / "s.sqlite")) == 0


@needs_data
def test_failed_architecture_is_recorded_not_lost(tmp_path, monkeypatch):
    """A proxy failure becomes a stored outcome; the other architectures' scores are kept."""
    real = hrun.proxies.compute_outcomes
    calls = {"n": 0}

    def flaky(names, net, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("boom")
        return real(names, net, *a, **kw)

    monkeypatch.setattr(hrun.proxies, "compute_outcomes", flaky)
    one_arch = "engine.enabled=false"  # (the engine's failures: tests/test_engine.py)
    cfg = make_cfg(*SMALL, "archs.n=3", "proxies=[wrcor]", f"store.path={tmp_path}/s.sqlite", one_arch)
    out = hrun.run(cfg, output_dir=tmp_path)
    with ScoreStore(tmp_path / "s.sqlite") as store:
        statuses = sorted(r.status for r in store.records())
    assert statuses == ["error", "ok", "ok"]
    assert [m["n_failed"] for m in out["metrics"]] == [1, 1, 1]  # one row per target
    assert "boom" in (tmp_path / "scores.csv").read_text()
    # a plain re-run keeps the recorded failure; retry_failed recomputes only it
    assert hrun.run(cfg, output_dir=tmp_path / "again")["computed"] == 0
    retry = hrun.run(make_cfg(*SMALL, "archs.n=3", "proxies=[wrcor]", f"store.path={tmp_path}/s.sqlite",
                              "retry_failed=true", one_arch), output_dir=tmp_path / "retry")
    assert retry["computed"] == 1
    with ScoreStore(tmp_path / "s.sqlite") as store:
        assert sorted(r.status for r in store.records()) == ["ok", "ok", "ok"]


@needs_data
def test_engine_and_one_architecture_path_store_the_same_scores(tmp_path):
    """A job with the engine (groups of 3) and one without: the same stored scores (float32
    networks: within 1e-5 relative), the same statuses and skip counts; other proxies of the
    job go through the one-architecture path either way."""
    got = {}
    for label, engine in (("engine", ["engine.group=3"]), ("one_arch", ["engine.enabled=false"])):
        cfg = make_cfg(*SMALL, "archs.n=7", "proxies=[wrcor,gcor,synflow]", f"store.path={tmp_path}/{label}.sqlite",
                       *engine)
        assert hrun.run(cfg, output_dir=tmp_path / label)["computed"] == 7
        with ScoreStore(tmp_path / f"{label}.sqlite") as store:
            got[label] = {(r.key.arch, r.key.proxy): r for r in store.records()}
    assert got["engine"].keys() == got["one_arch"].keys() and len(got["engine"]) == 21
    for k, r in got["one_arch"].items():
        e = got["engine"][k]
        assert (e.status, e.n_skipped) == (r.status, r.n_skipped), k
        if r.status == "ok":
            assert e.value == pytest.approx(r.value, rel=1e-5), k


def _stored(db: Path) -> dict[tuple, float]:
    if not db.exists():
        return {}
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        rows = con.execute("SELECT arch, proxy, created FROM scores").fetchall()
        con.close()
    except sqlite3.OperationalError:
        return {}
    return {(a, p): c for a, p, c in rows}


@needs_data
def test_sweep_killed_with_sigkill_resumes_without_loss_or_recomputation(tmp_path):
    db = tmp_path / "scores.sqlite"
    args = [sys.executable, "-m", "harness", "run", *SMALL, "archs.n=40", "proxies=[wrcor,rcor]",
            f"store.path={db}", f"hydra.run.dir={tmp_path}/run"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while len(_stored(db)) < 10 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the job finished before it could be killed: make it longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = _stored(db)
    archs_before = {a for a, _ in before}
    # whole architectures are committed at once: no half-scored architecture
    assert all((a, p) in before for a in archs_before for p in ("wrcor", "rcor"))
    assert 5 <= len(archs_before) < 40

    done = subprocess.run(args[:-1] + [f"hydra.run.dir={tmp_path}/run2"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    after = _stored(db)
    assert len(after) == 80
    # nothing stored before the kill was lost or recomputed
    assert all(after[k] == v for k, v in before.items())
    summary = json.loads((tmp_path / "run2" / "summary.json").read_text())
    assert summary["computed"] == 40 - len(archs_before)
    assert summary["cached"] == len(archs_before)


@needs_data
def test_multirun_sweep_is_one_parent_run_with_a_child_per_job(tmp_path):
    """``--multirun`` over seeds: one job directory each, and in MLflow one parent with a job run
    per job, an evaluation run per (proxy, dataset, split) under each, and a summary per group."""
    db = tmp_path / "mlruns.db"
    args = [sys.executable, "-m", "harness", "run", "--multirun", "space.channels=4", "space.cells_per_stage=1",
            "batch.size=16", "archs.n=3", "proxies=[wrcor]", "seed=0,1", f"store.path={tmp_path}/s.sqlite",
            f"tracking.uri={db}", f"hydra.sweep.dir={tmp_path}/sweep"]
    done = subprocess.run(args, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = sorted(p.parent for p in (tmp_path / "sweep").glob("*/metrics.csv"))
    assert len(jobs) == 2
    assert {json.loads((j / "summary.json").read_text())["seed"] for j in jobs} == {0, 1}

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = client.get_experiment_by_name("zsnas-bench")
    runs = client.search_runs([exp.experiment_id])
    parent_id = (tmp_path / "sweep" / "mlflow_parent_run_id").read_text().strip()
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id]
    job_runs = [r for r in children if r.data.tags["zsnas.role"] == "job"]
    assert len(job_runs) == 2
    job = job_runs[0]
    assert job.data.params["proxies"] == "wrcor" and job.data.tags["git.commit"]
    assert any(k.startswith("data.sha256.") for k in job.data.tags)
    evaluations = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == job.info.run_id]
    assert {r.data.params["dataset"] for r in evaluations} == {"cifar10-valid", "cifar10"}
    assert all(r.data.params["proxy"] == "wrcor" and "spearman_rho" in r.data.metrics for r in evaluations)


# ------------------------------------------------------------------------------------------------
# votes, proxy specs, shards, populations from a data file


@needs_data
def test_votes_are_derived_from_their_scored_components(tmp_path):
    import pandas as pd

    from proxies import get_aggregator

    cfg = make_cfg(*SMALL, "archs.n=6", "proxies=[vote_spw,wrcor]", f"store.path={tmp_path}/s.sqlite")
    summary = hrun.run(cfg, output_dir=tmp_path / "a")
    # the components are scored (once: wrcor is requested and a component) and reported
    assert summary["proxies"] == ["wrcor", "synflow", "l2_norm", "vote_spw", "vote_spw@comparator"]
    scores = pd.read_csv(tmp_path / "a" / "scores.csv")
    wide = scores.pivot(index="arch", columns="proxy", values="score").loc[scores["arch"].unique()]
    expected = get_aggregator("vote_spw").scores({c: wide[c].to_numpy() for c in ("synflow", "l2_norm", "wrcor")})
    assert wide["vote_spw"].tolist() == pytest.approx(expected.tolist())
    # a vote costs its components' distinct passes
    secs = scores.pivot(index="arch", columns="proxy", values="seconds")
    total = secs["synflow"] + secs["l2_norm"] + secs["wrcor"]
    assert (secs["vote_spw"] - total).abs().max() < 1e-9
    metrics = pd.read_csv(tmp_path / "a" / "metrics.csv")
    assert {"vote_spw", "vote_spw@comparator"} <= set(metrics["proxy"])
    with ScoreStore(tmp_path / "s.sqlite") as store:  # votes are derived, never stored
        stored = {r.key.proxy for r in store.records()}
    assert stored == {"wrcor", "synflow", "l2_norm"}


@needs_data
def test_proxy_spec_runs_an_ablation_under_its_canonical_name(tmp_path):
    cfg = make_cfg(*SMALL, "archs.n=3", 'proxies=[wrcor,"wrcor(power=2,weighting=linear)"]',
                   f"store.path={tmp_path}/s.sqlite")
    summary = hrun.run(cfg, output_dir=tmp_path / "a")
    assert summary["proxies"] == ["wrcor", "wrcor(power=2, weighting=linear)"]
    rhos = {m["proxy"]: m["rho"] for m in summary["metrics"] if m["split"] == "valid"}
    assert len(rhos) == 2
    with pytest.raises(ValueError, match="no parameter"):
        hrun.run(make_cfg(*SMALL, "archs.n=3", 'proxies=["wrcor(pwr=2)"]', f"store.path={tmp_path}/s.sqlite"),
                 output_dir=tmp_path / "b")


@needs_data
def test_shards_fill_one_store_and_the_last_job_reports(tmp_path):
    base = [*SMALL, "archs.n=5", "proxies=[wrcor]", f"store.path={tmp_path}/s.sqlite"]
    s0 = hrun.run(make_cfg(*base, "shard=0/2"), output_dir=tmp_path / "s0")
    assert s0["computed"] == 3 and s0["metrics"] == [] and s0["missing"] == 2
    assert not (tmp_path / "s0" / "metrics.csv").exists()
    s1 = hrun.run(make_cfg(*base, "shard=1/2"), output_dir=tmp_path / "s1")
    assert s1["computed"] == 2 and s1["metrics"]
    final = hrun.run(make_cfg(*base), output_dir=tmp_path / "all")
    assert final["computed"] == 0 and final["metrics"] == s1["metrics"]
    with pytest.raises(ValueError, match="i/n"):
        hrun.parse_shard("2")
    with pytest.raises(ValueError, match="0 <= i < n"):
        hrun.parse_shard("2/2")


@needs_data
def test_population_from_a_data_file(tmp_path):
    import pandas as pd

    from conftest import REAL

    cfg = make_cfg(*SMALL, "archs.select=random", "archs.n=4", "archs.file=nb201/suite_zero_proxies_cifar10.csv",
                   "archs.column=net_str", "proxies=[l2_norm]", f"store.path={tmp_path}/s.sqlite")
    summary = hrun.run(cfg, output_dir=tmp_path / "a")
    listed = set(pd.read_csv(Path(REAL) / "nb201" / "suite_zero_proxies_cifar10.csv")["net_str"])
    archs = pd.read_csv(tmp_path / "a" / "scores.csv")["arch"].tolist()
    assert summary["n_archs"] == 4 and set(archs) <= listed
    assert archs == sorted(archs, key=lambda a: hrun.spaces.get_space("nb201").index(a))  # index order


def test_random_selection_of_n_is_a_prefix_of_a_larger_one():
    space = hrun.spaces.get_space("nb201", channels=4, cells_per_stage=1)
    population = [space.parse(a) for a in list(space.product_order())[:200]]
    small = hrun.select_archs(space, select="random", n=20, seed=3, population=population)
    large = hrun.select_archs(space, select="random", n=60, seed=3, population=population)
    assert len(set(small)) == 20 and set(small) < set(large)
    assert hrun.select_archs(space, select="random", n=20, seed=4, population=population) != small


@needs_data
def test_targets_come_from_the_space_and_a_missing_pair_is_a_clear_error(tmp_path):
    cfg = make_cfg("space=nb101", "dataset=cifar100", "tracking=none")
    assert cfg.dataset.targets is None
    with pytest.raises(ValueError, match="no ground-truth targets for images 'cifar100'.*cifar10"):
        hrun.run(cfg, output_dir=tmp_path)
    assert [list(t) for t in make_cfg("space=darts").dataset.targets] == [["cifar10", "valid"]]
    assert [list(t) for t in make_cfg("dataset=cifar100").dataset.targets] == [["cifar100", "valid"],
                                                                               ["cifar100", "test"]]


@needs_data
def test_nb101_job_end_to_end_on_reduced_networks(tmp_path):
    cfg = make_cfg("space=nb101", "space.stem_channels=8", "space.cells_per_stack=1", "tracking=none",
                   "batch.size=16", "archs.n=6", "proxies=[wrcor,synflow,params]", f"store.path={tmp_path}/s.sqlite")
    summary = hrun.run(cfg, output_dir=tmp_path / "out")
    assert summary["n_archs"] == 6 and summary["computed"] == 6
    rows = {m["proxy"]: m for m in summary["metrics"]}
    assert set(rows) == {"wrcor", "synflow", "params"}
    assert all(m["dataset"] == "cifar10" and m["split"] == "valid" and m["n_failed"] == 0 for m in rows.values())
    assert "292 distinct cells" in rows["wrcor"]["protocol"]
    import json
    keys = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert keys["space"] == "nb101"


def test_auto_device_spreads_local_shards_over_the_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert hrun.resolve_device("auto", (3, 4)) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert [hrun.resolve_device("auto", (i, 8)) for i in (0, 2, 5)] == [
        torch.device("cuda:0"), torch.device("cuda:2"), torch.device("cuda:1")]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # e.g. one GPU per SLURM task
    assert hrun.resolve_device("auto", (7, 8)) == torch.device("cuda")
    assert hrun.resolve_device("cpu", (1, 2)) == torch.device("cpu")


def test_tf32_scores_on_a_gpu_have_their_own_keys(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    plain = hrun.score_params("wrcor", sampling="random", device=cuda, space_kw={})
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    assert hrun.score_params("wrcor", sampling="random", device=cuda, space_kw={}) != plain
    assert '"tf32"' not in hrun.score_params("wrcor", sampling="random", device=cpu, space_kw={})
