"""The WRCor ImageNet search in the ``mobilenetv2`` space, end to end and offline: no ground truth
(no fake accuracy), the found genotype exported for the released training script, FLOPs within
the limit, the cost per candidate with its device, the batch options (real images, the ImageNet
stand-in, noise, the released 320x320 geometry) and their refusals, the released vote wiring, the
report of such searches, and the committed genotype table."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import needs_data

import spaces
from harness import data
from harness import search as hs
from harness.config import ConfigError, compose, load
from harness.reports import mobilenetv2 as mr
from harness.reports import search as sr
from harness.scoring.store import ScoreStore
from harness.search.strategies import Evaluation, Objective
from spaces.mobilenetv2 import read_genotypes

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: a tiny CPU profile: 2 initial + N=2, 2 images, a tighter FLOPs limit than the released 600M
TINY = ["experiment=search_mobilenetv2", "budget=2", "search.population=2", "search.tournament=2", "batch.size=2",
        "constraints.flops_max=300e6", "tracking=none"]

pytestmark = needs_data


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """``harness search experiment=search_mobilenetv2`` made tiny, from a directory outside the repository."""
    tmp = tmp_path_factory.mktemp("mbv2")
    cmd = [str(BIN / "harness"), "search", *TINY, f"store.path={tmp}/s.sqlite", f"hydra.run.dir={tmp}/run"]
    proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, proc


def test_search_records_the_architecture_its_counts_and_cost_and_no_accuracy(cli_run):
    tmp, proc = cli_run
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    saved = json.loads((tmp / "run" / "search.json").read_text())
    space = spaces.get_space("mobilenetv2")
    arch = space.parse(saved["arch"])
    assert last["arch"] == saved["arch"] and last["space"] == "mobilenetv2"
    # no ground truth: no accuracy, regret or optimum, and the reason
    assert last["test_accuracy"] is None and last["regret"] is None and last["target"] is None
    assert saved["ground_truth"] is False and saved["optimum"] is None and saved["test_error"] is None
    assert "train_MobileNetV2_on_ImageNet.py" in saved["accuracy_note"] and "ImageNet" in last["accuracy_note"]
    # the found network's counts, within the limit (the released FLOPs convention)
    assert saved["found_flops"] == space.flops(arch) <= 300e6
    assert (saved["found_params"], saved["found_macs"], saved["found_model_size"]) == \
        (space.params(arch), space.macs(arch), space.model_size(arch))
    assert saved["constraints"]["flops_max"] == 300e6
    traj = pd.read_csv(tmp / "run" / "trajectory.csv")
    assert len(traj) == saved["n_asked"] == 4 and (traj["arch_flops"] <= 300e6).all()
    # the cost per candidate (build + init + batch + proxies), measured, with the device
    assert traj["eval_wall_s"].notna().all() and (traj["eval_wall_s"] > 0).all()
    assert saved["n_timed"] == 4 and saved["cost_per_candidate_s"] == pytest.approx(traj["eval_wall_s"].mean())
    assert saved["device"].startswith("cpu (") and "1 torch thread(s)" in saved["device"]
    assert saved["wall_s"] >= saved["candidates_wall_s"] > 0 and saved["ask_wall_s"] >= 0
    assert last["cost_per_candidate_s"] == pytest.approx(saved["cost_per_candidate_s"])
    # the released protocol: the SJW vote as released, absolute majority, a tie to the candidate
    assert saved["objective"] == "vote_sjw_official" and saved["vote"] == {"rule": "absolute", "ties": "candidate"}
    assert set(saved["best_score"]) == {"synflow", "jacob_cov", "wrcor_official"}
    assert saved["accounting"] == "released" and saved["n_initial"] == 2
    assert saved["strategy_params"] == {"population": 2, "tournament": 2, "replace": False}
    assert saved["batch"] == {"images": "ImageNet16-120", "kind": "real", "size": 2, "resolution": 320,
                              "sampling": "random"}
    assert (tmp / "run" / "trajectory.png").stat().st_size > 0


def test_the_exported_genotype_parses_back_to_the_found_architecture(cli_run):
    tmp, proc = cli_run
    saved = json.loads((tmp / "run" / "search.json").read_text())
    path = tmp / "run" / "genotype.py"
    assert saved["genotype_file"] == str(path)
    entries = read_genotypes(path)
    assert list(entries) == [saved["genotype_name"]] == ["zsnas_evolution_vote_sjw_official_s0"]
    space = spaces.get_space("mobilenetv2")
    assert space.parse(entries[saved["genotype_name"]]).to_str() == saved["arch"]
    # a plain Python file: importing it gives the released pair (structure string, resolution)
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 -- our own file
    assert namespace[saved["genotype_name"]] == space.parse(saved["arch"]).to_official()
    # the log's last lines name it, and how the released script trains it
    tail = "\n".join(proc.stderr.strip().splitlines()[-3:])
    assert str(path) in tail and "train_MobileNetV2_on_ImageNet.py --arch zsnas_evolution_vote_sjw_official_s0" in tail


def test_the_search_report_tables_searches_without_ground_truth(cli_run, tmp_path):
    tmp, _ = cli_run
    out = sr.build([tmp / "run"], tmp_path / "out", "mb")
    names = sorted(p.name for p in out["paths"])
    assert names == ["mb.csv", "mb.md", "mb.pdf", "mb.png", "mb.tex"]
    saved = json.loads((tmp / "run" / "search.json").read_text())
    md = (tmp_path / "out" / "tables" / "mb.md").read_text()
    assert saved["arch"] in md and f"{saved['found_flops'] / 1e6:,.1f}" in md
    assert "Accuracy: no ground truth offline" in md and saved["device"] in md and "flops_max 300,000,000" in md
    csv = pd.read_csv(tmp_path / "out" / "tables" / "mb.csv")
    assert list(csv["seed"]) == [0] and csv["found architecture"].iloc[0] == saved["arch"]
    assert "\\allowbreak" in (tmp_path / "out" / "tables" / "mb.tex").read_text()
    # never mixed with searches that have an accuracy
    nb201 = tmp_path / "nb201" / "job"
    nb201.mkdir(parents=True)
    (nb201 / "search.json").write_text(json.dumps({**{k: saved[k] for k in ("n_scored", "budget", "seed")},
                                                   "arch": "x", "test_accuracy": 90.0, "regret": 1.0,
                                                   "search_cost_s": 1.0, "space": "nb201", "images": "cifar10",
                                                   "target": ["cifar10", "test"], "optimum": 94.37,
                                                   "strategy": "random", "objective": "wrcor"}))
    with pytest.raises(ValueError, match="no ground truth"):
        sr.build([tmp / "run", nb201], tmp_path / "mixed", "m")


def test_noise_batches_at_the_released_size_score_the_search(tmp_path):
    cfg = compose("search_run", [*TINY, "budget=1", "search.population=1", "search.tournament=1",
                                 "batch.kind=noise", "batch.resolution=64", f"store.path={tmp_path}/s.sqlite",
                                 "figure=false"])
    out = hs.run_search(cfg, output_dir=tmp_path / "n")
    assert out["n_computed"] == 2 and math.isnan(out["test_accuracy"]) and out["found_flops"] <= 300e6
    with ScoreStore(tmp_path / "s.sqlite") as store:
        recs = store.records()
    assert {r.key.input_kind for r in recs} == {"noise"} and all('"resolution":64' in r.key.params for r in recs)
    assert {r.key.proxy for r in recs} == {"synflow", "jacob_cov", "wrcor_official"}


def test_batch_resolution_resizes_real_images_and_draws_noise_at_that_size():
    x, y = data.batch("ImageNet16-120", 3, seed=0, resolution=40)
    small, y0 = data.batch("ImageNet16-120", 3, seed=0)
    assert x.shape == (3, 3, 40, 40) and small.shape == (3, 3, 16, 16) and torch.equal(y, y0)
    assert torch.allclose(x, torch.nn.functional.interpolate(small, size=(40, 40), mode="bilinear",
                                                             align_corners=False))
    noise, _ = data.batch("cifar10", 2, seed=1, kind="noise", resolution=24)
    assert noise.shape == (2, 3, 24, 24)
    with pytest.raises(ValueError, match="resolution must be a positive integer"):
        data.batch("cifar10", 2, seed=1, resolution=0)


def test_bad_batch_choices_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError) as err:
        load(compose("search_run", [*TINY, "batch.resolution=4", "dataset.images=imagenet"]))
    assert "batch.resolution=4 is not allowed: null (the dataset's own size) or an integer >= 8" in str(err.value)
    assert "dataset.images='imagenet' is not allowed: one of cifar10, cifar100, ImageNet16-120" in str(err.value)
    done = subprocess.run([str(BIN / "harness"), "search", *TINY, "batch.kind=gaussian", "--dry-run"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2 and "Invalid value 'gaussian', expected one of [real, noise]" in done.stderr
    assert not list(tmp_path.iterdir())


def test_the_experiments_are_the_released_protocol_and_overridable():
    cpu = load(compose("search_run", ["experiment=search_mobilenetv2"]))
    paper = load(compose("search_run", ["experiment=search_mobilenetv2_paper", "constraints.flops_max=400e6"]))
    for cfg in (cpu, paper):
        assert (cfg.space.name, cfg.space.num_classes, cfg.search.name, cfg.search.replace) == \
            ("mobilenetv2", 1000, "evolution", False)
        assert (cfg.objective, cfg.vote.rule.value, cfg.vote.ties.value, cfg.accounting.value) == \
            ("vote_sjw_official", "absolute", "candidate", "released")
        assert cfg.batch.resolution == 320 and cfg.dataset.images == "ImageNet16-120" and cfg.wall_per_candidate
    assert (cpu.budget, cpu.search.population, cpu.search.tournament, cpu.batch.size,
            cpu.constraints.flops_max) == (16, 16, 4, 8, 600e6)
    assert (paper.budget, paper.search.population, paper.search.tournament, paper.batch.size,
            paper.constraints.flops_max) == (5000, 64, 10, 64, 400e6)
    objective = hs.objective_from_cfg(cpu)
    assert objective.components == ("synflow", "jacob_cov", "wrcor_official")


def test_released_ties_the_incumbent_goes_to_the_candidate_a_tournament_keeps_the_earlier():
    """search.py: ``best = max([cur, best])`` (a tie: the candidate, listed first) and
    ``parent = max(samples)`` (a tie: the earlier sample); absolute majority of the 3 signs."""
    released = Objective("v", ("a", "b", "c"), (1.0, 1.0, 1.0), rule="absolute", ties="candidate")
    tie_a, tie_b = Evaluation((2.0, 1.0, 0.0)), Evaluation((1.0, 1.0, 5.0))  # one each, one abstains
    assert released.prefers(tie_a, tie_b) and released.prefers(tie_b, tie_a)  # the incumbent's update
    assert released.champion([("first", tie_a), ("second", tie_b)])[0] == "first"  # the tournament
    assert released.champion([("first", tie_b), ("second", Evaluation((3.0, 2.0, 0.0)))])[0] == "second"
    # not transitive: a cycle's champion depends on the order
    cycle = [("x", Evaluation((3.0, 1.0, 2.0))), ("y", Evaluation((2.0, 3.0, 1.0))), ("z", Evaluation((1.0, 2.0, 3.0)))]
    assert {released.champion(cycle)[0], released.champion(cycle[::-1])[0]} == {"x", "z"}


def test_a_budget_up_to_the_population_is_allowed_on_top_of_it():
    load(compose("search_run", ["experiment=search_mobilenetv2", "budget=4"]))  # released: 16 initial + N=4
    with pytest.raises(ConfigError, match="budget=4 is not allowed"):
        load(compose("search_run", ["experiment=search_mobilenetv2", "budget=4", "accounting=in_budget"]))


def test_the_space_builds_the_released_1000_outputs_for_any_images():
    space = spaces.get_space("mobilenetv2", num_classes=1000, resize=False)
    arch = space.sample(np.random.default_rng(0))
    net = space.build(arch, 120, seed=0).eval()
    assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 1000)
    with pytest.raises(ValueError, match="fewer than the 1200 classes"):
        space.build(arch, 1200)
    assert spaces.get_space("mobilenetv2", resize=False).build(arch, 10).eval()(torch.zeros(1, 3, 32, 32)).shape \
        == (1, 10)


def test_the_genotype_table_redrawn_equals_the_committed_one(tmp_path):
    out = mr.build_genotypes(tmp_path)
    assert all(r["agreement"] == "equal" for r in out["rows"]) and len(out["rows"]) == 10
    for suffix in ("md", "tex", "csv"):
        committed = ROOT / "results" / "tables" / f"mobilenetv2_genotypes.{suffix}"
        assert (tmp_path / "tables" / f"mobilenetv2_genotypes.{suffix}").read_text() == committed.read_text(), suffix
    rows = {r["genotype"]: r for r in out["rows"]}
    assert rows["EA_our_vote_600M"]["harness_flops"] == 591_710_478 and rows["EA_our_vote_600M"]["within_600M"]
    assert rows["zennet_flops400M_res192"]["in_space"].startswith("no: C3")
