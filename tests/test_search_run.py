"""The search runner end to end: scores through the durable store, honest cost, resumption,
the ground-truth lookup after the search, MLflow logging, and the CLI's final JSON line."""
from __future__ import annotations

import json
import re
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import spaces
from conftest import RecordingTracker, needs_data
from harness import search as hs
from harness.config import ConfigError, compose
from harness.scoring.store import ScoreStore

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["space.channels=4", "space.cells_per_stage=1", "tracking=none", "batch.size=16"]

pytestmark = needs_data


def make_cfg(tmp_path, *overrides: str, small=SMALL):
    return compose("search_run", [*small, f"store.path={tmp_path}/s.sqlite", "progress_every=10", *overrides])


def test_search_scores_through_the_store_and_counts_distinct_cost(tmp_path):
    cfg = make_cfg(tmp_path, "search=evolution", "search.population=8", "search.tournament=3", "objective=synflow",
                   "budget=30", "seed=1")
    first = hs.run_search(cfg, output_dir=tmp_path / "a")
    traj = pd.read_csv(tmp_path / "a" / "trajectory.csv")
    assert len(traj) == 30 and first["n_scored"] == traj["arch"].nunique() == traj["new"].sum()
    assert first["n_computed"] == first["n_scored"]  # an empty store: every distinct arch computed once
    with ScoreStore(tmp_path / "s.sqlite") as store:
        recs = store.records(proxy="synflow")
    assert len(recs) == first["n_scored"]
    assert first["search_cost_s"] == pytest.approx(sum(r.seconds for r in recs))
    assert traj["cost_s"].is_monotonic_increasing and traj["cost_s"].iloc[-1] == pytest.approx(first["search_cost_s"])
    # the found architecture is the best synflow score of all evaluated ones, judged on the test split
    best = traj.loc[traj["synflow"].idxmax(), "arch"]
    assert first["arch"] == best
    bench = spaces.get_space("nb201").benchmark
    acc = bench.lookup(best, "cifar10", "test")
    assert first["test_accuracy"] == pytest.approx(acc)
    assert first["regret"] == pytest.approx(94.373333 - acc)
    assert first["test_error"] == pytest.approx(100 - acc)
    assert first["target"] == ["cifar10", "test"] and "200 epochs" in first["protocol"]
    assert (tmp_path / "a" / "trajectory.png").stat().st_size > 0
    # again: the same result from the store, nothing recomputed, the same cost
    again = hs.run_search(cfg, output_dir=tmp_path / "b")
    assert again["n_computed"] == 0
    for k in ("arch", "test_accuracy", "search_cost_s", "n_scored"):
        assert again[k] == first[k]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "b" / "trajectory.csv").drop(columns="computed"),
                                  traj.drop(columns="computed"))


class _Stop(Exception):
    pass


def cut_at(cfg, out_dir, step_no: int) -> None:
    """Run the search of ``cfg`` and interrupt it at step ``step_no`` (as a kill would)."""
    def stop_at(step):
        if step == step_no:
            raise _Stop

    with pytest.raises(_Stop):
        hs.run_search(cfg, output_dir=out_dir, on_step=stop_at)


def test_progress_lines_with_rate_and_eta_and_a_stopped_line_when_interrupted(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("ZSNAS_PROGRESS", "lines")
    caplog.set_level("INFO", logger="harness.search.run")
    cfg = make_cfg(tmp_path, "search=random", "objective=synflow", "budget=6", "progress_every=2")
    cut_at(cfg, tmp_path / "cut", 5)
    got = [r.getMessage() for r in caplog.records if r.name == "harness.search.run"]
    periodic = [m for m in got if re.match(r"search \d", m)]
    assert [m.split(" (")[0] for m in periodic] == ["search 2/6 steps", "search 4/6 steps"]
    assert all("/s, ETA " in m and "distinct architectures" in m for m in periodic)
    assert any(m.startswith("stopped: search 5/6 steps in ") for m in got)
    assert "search interrupted after 5 of 6 steps" in got[-1]


@pytest.mark.parametrize("strategy", ["random", "evolution", "reinforce"])
def test_interrupted_search_resumes_without_repeating_work(tmp_path, strategy):
    extra = {"evolution": ["search.population=6", "search.tournament=3"], "reinforce": ["search.warmup=5"]}
    cfg = make_cfg(tmp_path, f"search={strategy}", *extra.get(strategy, []), "objective=synflow", "budget=20")

    cut_at(cfg, tmp_path / "cut", 9)
    with ScoreStore(tmp_path / "s.sqlite") as store:
        kept = len(store)
    assert 0 < kept <= 9
    resumed = hs.run_search(cfg, output_dir=tmp_path / "resumed")
    assert resumed["n_computed"] == resumed["n_scored"] - kept  # nothing lost, nothing repeated
    fresh_cfg = make_cfg(tmp_path / "fresh", f"search={strategy}", *extra.get(strategy, []), "objective=synflow",
                         "budget=20")
    (tmp_path / "fresh").mkdir()
    fresh = hs.run_search(fresh_cfg, output_dir=tmp_path / "fresh")
    for k in ("arch", "test_accuracy", "n_scored"):
        assert resumed[k] == fresh[k]
    assert pd.read_csv(tmp_path / "resumed" / "trajectory.csv")["arch"].tolist() == \
        pd.read_csv(tmp_path / "fresh" / "trajectory.csv")["arch"].tolist()


def test_vote_objective_scores_all_components_and_counts_each_pass_once(tmp_path):
    cfg = make_cfg(tmp_path, "search=random", "objective=vote_spw", "budget=6")
    out = hs.run_search(cfg, output_dir=tmp_path / "v")
    traj = pd.read_csv(tmp_path / "v" / "trajectory.csv")
    assert {"synflow", "l2_norm", "wrcor"} <= set(traj.columns)
    with ScoreStore(tmp_path / "s.sqlite") as store:
        by = {p: {r.key.arch: r.seconds for r in store.records(proxy=p)} for p in ("synflow", "l2_norm", "wrcor")}
    expected = sum(by["synflow"][a] + by["l2_norm"][a] + by["wrcor"][a] for a in traj["arch"].unique())
    assert out["search_cost_s"] == pytest.approx(expected)  # three separate passes, each counted once
    assert set(out["best_score"]) == {"synflow", "l2_norm", "wrcor"}


def test_valacc_baseline_costs_training_time_and_never_scores(tmp_path):
    cfg = make_cfg(tmp_path, "search=random", "objective=valacc12", "budget=25", "dataset=cifar100")
    out = hs.run_search(cfg, output_dir=tmp_path / "v")
    traj = pd.read_csv(tmp_path / "v" / "trajectory.csv")
    bench = spaces.get_space("nb201").benchmark
    keys = bench.keys()
    time_of = dict(zip(keys, bench.column("train_time_s_c10valid_200", per="key")))
    val_of = dict(zip(keys, bench.column("cifar100_val_12ep", per="key")))
    assert out["search_cost_s"] == pytest.approx(0.12 * sum(time_of[a] for a in traj["arch"].unique()))  # CIFAR-100: x2
    assert out["arch"] == max(traj["arch"], key=lambda a: val_of[a])
    assert out["target"] == ["cifar100", "test"] and out["n_computed"] == 0
    assert not (tmp_path / "s.sqlite").exists() or len(ScoreStore(tmp_path / "s.sqlite")) == 0


def test_bad_search_input_is_a_clear_error(tmp_path):
    rnd = "search=random"
    with pytest.raises(ConfigError, match="objective='nope' is not allowed: unknown proxy 'nope'; registered proxies"):
        hs.run_search(make_cfg(tmp_path, rnd, "objective=nope", "budget=3"), output_dir=tmp_path)
    with pytest.raises(ConfigError, match="budget=0 is not allowed: a positive integer"):
        hs.run_search(make_cfg(tmp_path, rnd, "budget=0"), output_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"signs=\[1.0, -1.0\] is not allowed: \+1 or -1 for each of"):
        hs.run_search(make_cfg(tmp_path, rnd, "objective=vote_sjw", "signs=[1,-1]", "budget=3"), output_dir=tmp_path)
    with pytest.raises(ConfigError, match="dataset.search_target=null is not allowed"):
        hs.run_search(make_cfg(tmp_path, rnd, "dataset.search_target=null", "budget=3"), output_dir=tmp_path)
    # a budget that never leaves the initial samples would be random search under another name
    with pytest.raises(ConfigError, match=r"budget=64 is not allowed: search=evolution spends its first 64 asks"):
        hs.run_search(make_cfg(tmp_path, "search=evolution", "budget=64"), output_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"budget=20 is not allowed: search=reinforce .*\(search.warmup=100\)"):
        hs.run_search(make_cfg(tmp_path, "search=reinforce", "budget=20"), output_dir=tmp_path)
    assert not (tmp_path / "s.sqlite").exists()  # refused before any work


def test_search_is_logged_to_the_tracker(tmp_path):
    tracker = RecordingTracker()
    out = hs.run_search(make_cfg(tmp_path, "search=random", "objective=synflow", "budget=4"), tracker=tracker,
                        output_dir=tmp_path / "t")
    (logged,) = tracker.runs
    assert logged["name"] == "random · synflow · nb201 · cifar10/test · s0"  # the search target
    assert logged["tags"]["found_arch"] == out["arch"] and logged["tags"]["zsnas.role"] == "search"
    assert logged["params"]["objective"] == "synflow" and logged["params"]["strategy"] == "random"
    assert {k: logged["params"][k] for k in ("space", "dataset", "budget", "seed")} == \
        {"space": "nb201", "dataset": "cifar10", "budget": 4, "seed": 0}
    for k in ("test_accuracy", "test_error", "regret", "n_scored"):
        assert logged["metrics"][k] == pytest.approx(out[k])
    # the trajectory as step metrics: the last step's values are the summary's
    assert [s for s, _ in logged["series"]["search_cost_s"]] == [1, 2, 3, 4]
    assert logged["series"]["search_cost_s"][-1][1] == pytest.approx(out["search_cost_s"])
    assert logged["series"]["best_accuracy"][-1][1] == pytest.approx(out["test_accuracy"])
    assert set(logged["artifacts"]) == {"config.yaml", "search.json", "trajectory.csv", "trajectory.png",
                                        "trajectory.pdf"}


def test_cli_prints_one_json_line_last(tmp_path):
    cmd = [sys.executable, "-m", "harness", "search", *SMALL, "objective=synflow", "budget=5", "search=random",
           f"store.path={tmp_path}/s.sqlite", f"hydra.run.dir={tmp_path}/run"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    for k in ("arch", "test_accuracy", "regret", "search_cost_s", "n_scored"):
        assert k in last
    assert last["n_scored"] <= 5 and math.isfinite(last["test_accuracy"])
    assert "search 5/5 steps in " in proc.stderr  # progress goes to stderr
    assert f"  records   {tmp_path / 'run'}  (search.json" in proc.stderr  # and where the results are
    saved = json.loads((tmp_path / "run" / "search.json").read_text())
    assert saved["arch"] == last["arch"]
    assert np.isclose(saved["search_cost_s"], last["search_cost_s"])


def test_no_accuracy_is_read_during_the_search(tmp_path, monkeypatch):
    """The ground truth is looked up only after the last step (the strategy never sees it)."""
    from spaces.benchmarks import TableBenchmark

    calls = []
    real = TableBenchmark.lookup_many
    monkeypatch.setattr(TableBenchmark, "lookup_many", lambda self, *a, **k: calls.append(a) or real(self, *a, **k))
    seen = []
    hs.run_search(make_cfg(tmp_path, "search=evolution", "search.population=4", "search.tournament=2",
                           "objective=synflow", "budget=8"),
                  output_dir=tmp_path / "o", on_step=lambda step: seen.append(len(calls)))
    assert seen == [0] * 8 and calls  # none during the 8 steps; the found architecture's afterwards


def test_nb101_search_outside_the_offline_table_records_no_accuracy(tmp_path):
    cfg = make_cfg(tmp_path, "space=nb101", "space.stem_channels=4", "space.num_stacks=1", "space.cells_per_stack=1",
                   "search=reinforce", "search.warmup=3", "objective=params", "budget=6",
                   small=["tracking=none", "batch.size=8"])
    out = hs.run_search(cfg, output_dir=tmp_path / "n")
    assert out["target"] == ["cifar10", "valid"] and out["optimum_over"] == 292
    saved = json.loads((tmp_path / "n" / "search.json").read_text())  # strict JSON: no NaN
    if math.isnan(out["test_accuracy"]):
        assert saved["test_accuracy"] is None and saved["regret"] is None
    else:
        assert saved["test_accuracy"] == pytest.approx(out["test_accuracy"])
    assert out["n_scored"] >= 1 and out["search_cost_s"] > 0


def test_stored_failures_are_failed_evaluations_unless_retried(tmp_path, monkeypatch):
    import harness.scoring.run as hrun

    real = hrun.proxies.compute_outcomes
    calls = {"n": 0}

    def failing_first(names, net, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 1:
            return {n: hrun.proxies.ProxyOutcome(math.nan, "oom", 0.0, 0, "CUDA out of memory") for n in names}
        return real(names, net, *a, **kw)

    monkeypatch.setattr(hrun.proxies, "compute_outcomes", failing_first)
    cfg = make_cfg(tmp_path, "search=random", "objective=synflow", "budget=5")
    out = hs.run_search(cfg, output_dir=tmp_path / "a")
    traj = pd.read_csv(tmp_path / "a" / "trajectory.csv")
    assert out["n_failed"] == 1 and bool(traj["failed"].iloc[0]) and out["arch"] != traj["arch"].iloc[0]
    with ScoreStore(tmp_path / "s.sqlite") as store:
        assert sum(r.status == "oom" for r in store.records()) == 1
    again = hs.run_search(cfg, output_dir=tmp_path / "b")
    assert again["n_failed"] == 1 and again["n_computed"] == 0  # the stored failure is not retried by default
    retried = hs.run_search(make_cfg(tmp_path, "search=random", "objective=synflow", "budget=5", "retry_failed=true"),
                            output_dir=tmp_path / "c")
    assert retried["n_failed"] == 0 and retried["n_computed"] == 1
    with ScoreStore(tmp_path / "s.sqlite") as store:
        assert all(r.status == "ok" for r in store.records())


#: recorded before batched search existed (objective=params: exact integers on any machine, ties
#: included): per strategy, sha256[:16] of the trajectory's architectures and incumbents (one per
#: line), the found architecture and the distinct count, for budget 40 and seed 3
PINNED_SEARCH = {
    "random": ("e00174f61985a2e3", "5c4add0dc0be4bd3",
               "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|nor_conv_3x3~1|nor_conv_3x3~2|", 40),
    "evolution": ("3b70d7d2f89e1d01", "7ddc55eb6b38482b",
                  "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|", 38),
    "reinforce": ("be916b4c25580493", "bc4e47fd1eee4e31",
                  "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_1x1~2|", 39),
}
PINNED_SETTINGS = {"random": [], "evolution": ["search.population=8", "search.tournament=3"],
                   "reinforce": ["search.warmup=8", "search.lr=0.1"]}


@pytest.mark.parametrize("strategy", sorted(PINNED_SEARCH))
def test_default_search_reproduces_the_pinned_result(tmp_path, strategy):
    import hashlib

    cfg = make_cfg(tmp_path, f"search={strategy}", *PINNED_SETTINGS[strategy], "objective=params", "budget=40",
                   "seed=3", "figure=false")
    out = hs.run_search(cfg, output_dir=tmp_path / "p")
    traj = pd.read_csv(tmp_path / "p" / "trajectory.csv")
    digest = lambda col: hashlib.sha256("\n".join(traj[col]).encode()).hexdigest()[:16]  # noqa: E731
    assert (digest("arch"), digest("best_arch"), out["arch"], out["n_scored"]) == PINNED_SEARCH[strategy]
    assert len(traj) == out["budget"] == 40


def _trajectory(path):
    return pd.read_csv(path / "trajectory.csv").drop(columns="cost_s")  # cost: the seconds measured


def test_random_search_is_the_same_search_for_every_batch_size(tmp_path):
    """Batch 8 (scored together, the last batch cut to the budget) and batch 1, each from an empty
    store: the same architectures, the same scores (computed anew by each), the same result."""
    runs = {}
    for n in (1, 8):
        cfg = make_cfg(tmp_path / f"b{n}", "search=random", "objective=synflow", "budget=20", "seed=2",
                       f"ask_batch={n}", "figure=false")
        runs[n] = hs.run_search(cfg, output_dir=tmp_path / f"b{n}")
    pd.testing.assert_frame_equal(_trajectory(tmp_path / "b1"), _trajectory(tmp_path / "b8"))
    assert runs[8]["ask_batch"] == 8 and runs[8]["n_computed"] == runs[8]["n_scored"]
    for k in ("arch", "test_accuracy", "regret", "n_scored", "n_computed", "n_failed", "best_score", "budget"):
        assert runs[1][k] == runs[8][k], k


@pytest.mark.parametrize("strategy", ["evolution", "reinforce"])
def test_a_batched_search_is_reproducible_and_resumes(tmp_path, strategy):
    cfg = make_cfg(tmp_path, f"search={strategy}", *PINNED_SETTINGS[strategy], "objective=params", "budget=30",
                   "seed=3", "ask_batch=4", "figure=false")

    cut_at(cfg, tmp_path / "cut", 13)
    resumed = hs.run_search(cfg, output_dir=tmp_path / "resumed")
    fresh = hs.run_search(make_cfg(tmp_path / "fresh", f"search={strategy}", *PINNED_SETTINGS[strategy],
                                   "objective=params", "budget=30", "seed=3", "ask_batch=4", "figure=false"),
                          output_dir=tmp_path / "fresh")
    traj = _trajectory(tmp_path / "fresh")
    pd.testing.assert_frame_equal(_trajectory(tmp_path / "resumed").drop(columns="computed"),
                                  traj.drop(columns="computed"))
    assert resumed["arch"] == fresh["arch"] and len(traj) == 30 and fresh["n_scored"] == traj["arch"].nunique()
    one = make_cfg(tmp_path, f"search={strategy}", *PINNED_SETTINGS[strategy], "objective=params", "budget=30",
                   "seed=3", "figure=false")
    hs.run_search(one, output_dir=tmp_path / "one")
    initial = 8  # search.population / search.warmup: the same uniform draws whatever the batch size
    assert _trajectory(tmp_path / "one")["arch"].tolist()[:initial] == traj["arch"].tolist()[:initial]


def test_a_batch_goes_through_the_engine_when_enabled(tmp_path, monkeypatch):
    """engine.enabled=true: a batch's unscored candidates are scored by the engine in groups (here
    of 4), within float32 noise of the one-network path (a search's default)."""
    from proxies.engine import Engine

    groups = []
    real = Engine.run

    def run(self, archs, *a, **kw):
        for group in real(self, archs, *a, **kw):
            groups.append(len(group))
            yield group

    monkeypatch.setattr(Engine, "run", run)
    got = {}
    for label, extra in (("engine", ["engine.enabled=true", "engine.group=4"]), ("one", [])):
        cfg = make_cfg(tmp_path / label, "search=random", "objective=wrcor", "budget=8", "ask_batch=4",
                       "figure=false", *extra)
        got[label] = hs.run_search(cfg, output_dir=tmp_path / label)
    assert groups == [4, 4]  # two batches, each one stacked pass; none for the one-network search
    e, o = _trajectory(tmp_path / "engine"), _trajectory(tmp_path / "one")
    assert e["arch"].tolist() == o["arch"].tolist()
    np.testing.assert_allclose(e["wrcor"], o["wrcor"], rtol=1e-5)


def test_ask_batch_must_be_positive(tmp_path):
    with pytest.raises(ConfigError, match="ask_batch=0 is not allowed: a positive integer"):
        hs.run_search(make_cfg(tmp_path, "search=random", "ask_batch=0", "budget=3"), output_dir=tmp_path)


def test_a_parallel_joblib_sweep_logs_every_search_into_one_new_store(tmp_path):
    """Three searches in parallel Hydra joblib workers, one MLflow SQLite store created by the
    sweep: a parent and a FINISHED child per search, no 'database is locked'."""
    db = tmp_path / "mlruns.db"
    cmd = [sys.executable, "-m", "harness", "search", "--multirun", "hydra/launcher=joblib", "hydra.launcher.n_jobs=3",
           "space.channels=4", "space.cells_per_stage=1", "batch.size=8", "batch.kind=noise", "device=cpu",
           "search=random", "objective=params", "budget=4", "seed=0,1,2", "figure=false",
           f"store.path={tmp_path}/s.sqlite", f"tracking.uri={db}", f"hydra.sweep.dir={tmp_path}/sweep"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "database is locked" not in proc.stderr

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    runs = client.search_runs([client.get_experiment_by_name("zsnas-bench-search").experiment_id])
    parent = (tmp_path / "sweep" / "mlflow_parent_run_id").read_text().strip()
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent
                and r.data.tags["zsnas.role"] == "search"]
    summaries = [r for r in runs if r.data.tags["zsnas.role"] == "summary"]
    assert len(runs) == 5 and sorted(r.data.params["seed"] for r in children) == ["0", "1", "2"]
    assert all(r.info.status == "FINISHED" for r in runs) and all("regret" in r.data.metrics for r in children)
    # one summary over the three seeds, under the sweep's run
    assert len(summaries) == 1 and summaries[0].data.params["seeds"] == "0,1,2"
    assert summaries[0].data.metrics["n_seeds"] == 3 and "regret_mean" in summaries[0].data.metrics


# ------------------------------------------------------------------ the released search's accounting
def test_released_accounting_evolution_scores_the_population_on_top_of_n(tmp_path):
    """accounting=released (the WRCor search.py): evolution evaluates its initial population and
    then N children; the population's cost counts and its members can be the result."""
    cfg = make_cfg(tmp_path, "search=evolution", "search.population=8", "search.tournament=3", "objective=params",
                   "budget=12", "seed=2", "accounting=released", "figure=false")
    out = hs.run_search(cfg, output_dir=tmp_path / "r")
    traj = pd.read_csv(tmp_path / "r" / "trajectory.csv")
    assert len(traj) == 20 and out["budget"] == 12 and out["n_initial"] == 8
    assert list(traj["phase"]) == ["initial"] * 8 + ["search"] * 12
    assert out["accounting"] == "released"
    with ScoreStore(tmp_path / "s.sqlite") as store:
        secs = {r.key.arch: r.seconds for r in store.records(proxy="params")}
    assert out["search_cost_s"] == pytest.approx(sum(secs[a] for a in traj["arch"].unique()))
    assert out["arch"] == traj.loc[traj["params"].idxmax(), "arch"]  # over the population and the children
    # the same seed with the harness's own accounting spends the population inside N
    inside = hs.run_search(make_cfg(tmp_path, "search=evolution", "search.population=8", "search.tournament=3",
                                    "objective=params", "budget=12", "seed=2", "figure=false"),
                           output_dir=tmp_path / "i")
    assert len(pd.read_csv(tmp_path / "i" / "trajectory.csv")) == 12 and inside["n_initial"] == 8
    assert inside["accounting"] == "in_budget"


def test_released_accounting_reinforce_warmup_is_outside_n_the_cost_and_the_result(tmp_path):
    """The released REINFORCE evaluates 100 uniform samples to fix its reward normalisation; they
    are neither counted in N nor costed, and the result is the best of the N policy draws."""
    cfg = make_cfg(tmp_path, "search=reinforce", "search.warmup=10", "search.lr=0.1", "objective=params",
                   "budget=15", "seed=4", "accounting=released", "figure=false")
    out = hs.run_search(cfg, output_dir=tmp_path / "r")
    traj = pd.read_csv(tmp_path / "r" / "trajectory.csv")
    assert len(traj) == 25 and out["n_initial"] == 10 and out["budget"] == 15
    warm, draws = traj[traj["phase"] == "initial"], traj[traj["phase"] == "search"]
    assert len(warm) == 10 and len(draws) == 15
    assert warm["best_arch"].isna().all() and warm["cost_s"].eq(0).all()
    with ScoreStore(tmp_path / "s.sqlite") as store:
        secs = {r.key.arch: r.seconds for r in store.records(proxy="params")}
    assert out["search_cost_s"] == pytest.approx(sum(secs[a] for a in draws["arch"].unique()))
    assert out["arch"] == draws.loc[draws["params"].idxmax(), "arch"]
    assert out["n_scored"] == traj["arch"].nunique()  # every distinct network evaluated, warm-up included


@pytest.mark.parametrize("dataset, scale", [("cifar10", 0.06), ("cifar100", 0.12), ("ImageNet16-120", 0.09102)])
def test_valacc_cost_is_each_datasets_own_training_time(tmp_path, dataset, scale):
    """12 epochs of the dataset's own training: cifar10-valid's recorded 200-epoch time x 12/200,
    scaled by training images x pixels (CIFAR-100 50k x 32^2; ImageNet16-120 151,700 x 16^2)."""
    cfg = make_cfg(tmp_path, "search=random", "objective=valacc12", "budget=5", f"dataset={dataset}", "figure=false")
    out = hs.run_search(cfg, output_dir=tmp_path / dataset)
    traj = pd.read_csv(tmp_path / dataset / "trajectory.csv")
    bench = spaces.get_space("nb201").benchmark
    time_of = dict(zip(bench.keys(), bench.column("train_time_s_c10valid_200", per="key")))
    assert out["search_cost_s"] == pytest.approx(scale * sum(time_of[a] for a in traj["arch"].unique()), rel=1e-6)
    assert "estimate" in out["cost_note"] and dataset in out["cost_note"]
